// The xenstored socket wire protocol (xen/io/xs_wire.h), as pure functions.
//
// Every message on a xenstored socket is a 16-byte `struct xsd_sockmsg`
// header {type, req_id, tx_id, len} in host byte order, followed by `len`
// payload bytes (at most XENSTORE_PAYLOAD_MAX = 4096). Payloads are
// sequences of NUL-terminated strings, except XS_WRITE (path NUL, then raw
// data) and XS_READ replies (raw data, no NUL). Errors are XS_ERROR replies
// whose payload is the errno *name* from `xsd_errors[]`, NUL-terminated
// ("ENOENT\0").
//
// Nothing here does I/O or keeps global state; everything is safe to call
// from any thread. The parser is fed untrusted bytes (see the fuzz test).
#ifndef XENCHAN_BACKEND_SIM_XENSTORE_WIRE_H_
#define XENCHAN_BACKEND_SIM_XENSTORE_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace xenchan::sim::xenstore {

// Size of `struct xsd_sockmsg` on the wire.
inline constexpr size_t kHeaderSize = 16;
// XENSTORE_PAYLOAD_MAX: the largest payload either side may send.
inline constexpr size_t kPayloadMax = 4096;

// One decoded message (request, reply or watch event).
struct Message {
  uint32_t type = 0;
  uint32_t req_id = 0;
  uint32_t tx_id = 0;
  std::string payload;
};

// Incremental frame parser for one byte stream.
//
// Feed bytes as they arrive with Append(), then call Next() until it returns
// no message. Memory held is what was appended and not yet consumed; callers
// bound it by reading in bounded chunks and draining with Next() after each
// chunk. Not thread-safe (one per connection).
class FrameParser {
 public:
  // Appends raw bytes from the stream.
  void Append(absl::string_view bytes);

  // Returns the next complete message, std::nullopt when more bytes are
  // needed, or INVALID_ARGUMENT when the stream is broken (a header announces
  // a payload over kPayloadMax). After an error the stream cannot be
  // resynchronised: the caller must drop the connection (as xenstored does).
  absl::StatusOr<std::optional<Message>> Next();

  // Bytes received but not yet returned as messages (partial frame).
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  std::string buffer_;
  size_t consumed_ = 0;
};

// Encodes a message: header (host byte order) followed by `payload`.
// The caller keeps payloads within kPayloadMax; this function does not check.
std::string EncodeMessage(uint32_t type, uint32_t req_id, uint32_t tx_id,
                          absl::string_view payload);

// Decodes exactly one whole frame (header + payload) from `bytes`, for tests
// and clients. Returns INVALID_ARGUMENT if `bytes` is not exactly one frame.
absl::StatusOr<Message> DecodeMessage(absl::string_view bytes);

// The NUL-terminated strings at the start of a payload, xenstored style:
// `strings` holds each string that has a terminating NUL (without it), in
// order; `rest` is whatever follows the last NUL (empty if the payload ends
// in NUL). So "a\0b\0" gives {a, b} and rest "", "a\0bc" gives {a} and rest
// "bc". Views point into the argument.
struct SplitPayload {
  std::vector<absl::string_view> strings;
  absl::string_view rest;
};
SplitPayload SplitStrings(absl::string_view payload);

// If `payload` is exactly one NUL-terminated string with no other NUL,
// returns it (without the NUL); otherwise std::nullopt. (xenstored `onearg`.)
std::optional<absl::string_view> OneArg(absl::string_view payload);

// Joins strings, each followed by a NUL ("a\0b\0").
std::string JoinWithNuls(const std::vector<std::string>& strings);

// The xsd_errors[] name for an errno value ("ENOENT"); EINVAL's name for
// values that the protocol cannot express (as xenstored does).
absl::string_view ErrnoName(int errnum);

// The errno value for an xsd_errors[] name, or std::nullopt if unknown.
std::optional<int> ErrnoFromName(absl::string_view name);

// Encodes an XS_ERROR reply for `errnum` echoing the request's ids.
std::string EncodeError(uint32_t req_id, uint32_t tx_id, int errnum);

// Parses xenstored's lenient decimal (C atoi): optional leading whitespace
// and sign, then digits; stops at the first non-digit; garbage gives 0.
int64_t AtoiLike(absl::string_view s);

}  // namespace xenchan::sim::xenstore

#endif  // XENCHAN_BACKEND_SIM_XENSTORE_WIRE_H_
