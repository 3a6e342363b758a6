// Call framings (DESIGN §4 "Calls"; proto xenchan.v1.Framing): how one request
// is put on a channel and how one response is cut out of what the guest sends
// back. Plain byte codecs with no I/O, so they are unit-tested and fuzzed on
// their own; the engine drives them.
//
// The guest is untrusted: decoders bound what they buffer (kMaxCallResponseBytes)
// and accept any byte sequence without crashing.
#ifndef XENCHAN_BACKEND_FRAMING_FRAMING_H_
#define XENCHAN_BACKEND_FRAMING_FRAMING_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/util/api_limits.h"

namespace xenchan {

struct Framing {
  enum class Kind { kNewline, kDelimiter, kLengthPrefix, kQemuGuestAgent };
  Kind kind = Kind::kNewline;
  std::string delimiter;  // kDelimiter only: 1..16 bytes
};

inline constexpr size_t kMaxDelimiterBytes = 16;

// INVALID_ARGUMENT for a delimiter outside 1..16 bytes.
absl::Status ValidateFraming(const Framing& framing);

// A Framing as one printable token, for storing it (the engine keeps a
// channel's default framing in its backend directory as `xenchan-framing`):
// "newline", "length-prefix", "qemu-guest-agent", or "delimiter:" followed by
// the delimiter's bytes in lower-case hex.
std::string FramingSpec(const Framing& framing);
// The inverse of FramingSpec; INVALID_ARGUMENT for anything else (including
// a delimiter ValidateFraming refuses or upper-case/odd-length hex).
absl::StatusOr<Framing> ParseFramingSpec(absl::string_view spec);

// The bytes to write for one Call: `preamble` first, then `request` once the
// Call's decoder says ReadyForRequest().
struct EncodedCall {
  // Empty except for kQemuGuestAgent: 0xFF and the guest-sync-delimited.
  std::string preamble;
  std::string request;
};

// The bytes to write for `request`. INVALID_ARGUMENT if the request is larger
// than kMaxCallRequestBytes or, for the QEMU guest agent, empty.
// `sync_id` is used only by kQemuGuestAgent: the id of the
// guest-sync-delimited command sent (as the preamble) before the request.
absl::StatusOr<EncodedCall> EncodeCallRequest(const Framing& framing, absl::string_view request,
                                              uint32_t sync_id);

// Cuts one response out of the guest's output, fed in arbitrary pieces.
// Not thread-safe.
class ResponseDecoder {
 public:
  virtual ~ResponseDecoder() = default;
  // Consumes `bytes`. Returns the response once complete (later calls keep
  // returning it and ignore input); nullopt while more is needed;
  // RESOURCE_EXHAUSTED once the response would exceed kMaxCallResponseBytes.
  virtual absl::StatusOr<std::optional<std::string>> Feed(absl::string_view bytes) = 0;
  // What has been received towards the response so far (for DEADLINE_EXCEEDED
  // details); at most kMaxCallResponseBytes.
  virtual std::string Partial() const = 0;
  // Whether the request may be sent now: true once the preamble has been
  // answered (always, for framings without one).
  virtual bool ReadyForRequest() const { return true; }
};

// A decoder for `framing`; for kQemuGuestAgent it expects the reply to the
// guest-sync-delimited with `sync_id` first.
std::unique_ptr<ResponseDecoder> NewResponseDecoder(const Framing& framing, uint32_t sync_id);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_FRAMING_FRAMING_H_
