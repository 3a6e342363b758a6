// Fuzz target: xenchand's config file parser and listen-address parser take
// any bytes without crashing, and accepted configs validate consistently.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  xenchan::server::ServerConfig config;
  if (xenchan::server::ApplyConfigText(&config, text).ok()) {
    (void)xenchan::server::Validate(config);
  }
  (void)xenchan::server::ParseListenAddress(text);
  return 0;
}
