// Fuzz target: arbitrary bytes as etcd values (and the byte after the first
// '\n' as the key's tail) through every record decoder. They must never
// crash or read out of bounds (the sanitizers watch), and whatever decodes
// must encode and decode again to the same record.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/fleet/records.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace xenchan::fleet;  // NOLINT: a fuzz target's one scope
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  const std::string tail = nl == std::string::npos ? "" : input.substr(0, nl);
  const std::string value = nl == std::string::npos ? input : input.substr(nl + 1);
  const std::string prefix = kDefaultPrefix;
  if (auto h = DecodeHost(prefix, HostKey(prefix, tail), value); h.ok()) {
    if (!DecodeHost(prefix, HostKey(prefix, tail), Encode(*h)).ok()) abort();
  }
  if (auto d = DecodeDomain(prefix, DomainKey(prefix, tail), value); d.ok()) {
    if (!DecodeDomain(prefix, DomainKey(prefix, tail), Encode(*d)).ok()) abort();
  }
  const size_t slash = tail.find('/');
  if (slash != std::string::npos) {
    const std::string key = DeclarationKey(prefix, tail.substr(0, slash), tail.substr(slash + 1));
    if (auto c = DecodeDeclaration(prefix, key, value); c.ok()) {
      if (!DecodeDeclaration(prefix, key, Encode(*c)).ok()) abort();
    }
  }
  return 0;
}
