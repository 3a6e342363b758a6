// Fuzzes the Call response decoders with hostile guest output. Input: one
// byte picks the framing, one the split size, the rest is guest output (and,
// as a whole, a stored framing spec for ParseFramingSpec).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "backend/framing/framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  xenchan::Framing framing;
  switch (data[0] % 4) {
    case 0:
      framing.kind = xenchan::Framing::Kind::kNewline;
      break;
    case 1:
      framing.kind = xenchan::Framing::Kind::kDelimiter;
      framing.delimiter = std::string(1 + (data[0] >> 4) % 3, '#');
      break;
    case 2:
      framing.kind = xenchan::Framing::Kind::kLengthPrefix;
      break;
    case 3:
      framing.kind = xenchan::Framing::Kind::kQemuGuestAgent;
      break;
  }
  const size_t split = 1 + data[1] % 64;
  const std::string input(reinterpret_cast<const char*>(data + 2), size - 2);
  auto decoder = xenchan::NewResponseDecoder(framing, 7);
  for (size_t at = 0; at < input.size(); at += split) {
    auto r = decoder->Feed(input.substr(at, split));
    if (!r.ok()) break;
    if (r->has_value() && (*r)->size() > xenchan::kMaxCallResponseBytes) abort();
    if (decoder->Partial().size() > xenchan::kMaxCallResponseBytes) abort();
  }
  auto encoded = xenchan::EncodeCallRequest(framing, input, 7);
  // Nothing of the request is lost (the QEMU guest agent's trailing
  // whitespace aside).
  if (encoded.ok() && encoded->request.size() < absl::StripTrailingAsciiWhitespace(input).size()) {
    abort();
  }
  // The stored form (xenstore `xenchan-framing`): what parses must print back
  // the same.
  auto parsed = xenchan::ParseFramingSpec(input);
  if (parsed.ok() && xenchan::FramingSpec(*parsed) != input) abort();
  return 0;
}
