#include "backend/sim/xenstore/wire.h"

#include <errno.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace xenchan::sim::xenstore {

static_assert(sizeof(xsd_sockmsg) == kHeaderSize, "xsd_sockmsg layout");
static_assert(XENSTORE_PAYLOAD_MAX == kPayloadMax, "payload limit");

void FrameParser::Append(absl::string_view bytes) {
  // Compact before growing so the buffer never holds consumed bytes for long.
  if (consumed_ > 0 && (consumed_ == buffer_.size() || consumed_ >= 65536)) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

absl::StatusOr<std::optional<Message>> FrameParser::Next() {
  const size_t avail = buffer_.size() - consumed_;
  if (avail < kHeaderSize) return std::optional<Message>();
  xsd_sockmsg hdr;
  std::memcpy(&hdr, buffer_.data() + consumed_, kHeaderSize);
  if (hdr.len > kPayloadMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("xenstore message payload of ", hdr.len, " bytes exceeds ", kPayloadMax));
  }
  if (avail < kHeaderSize + hdr.len) return std::optional<Message>();
  Message msg;
  msg.type = hdr.type;
  msg.req_id = hdr.req_id;
  msg.tx_id = hdr.tx_id;
  msg.payload.assign(buffer_.data() + consumed_ + kHeaderSize, hdr.len);
  consumed_ += kHeaderSize + hdr.len;
  if (consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  }
  return std::optional<Message>(std::move(msg));
}

std::string EncodeMessage(uint32_t type, uint32_t req_id, uint32_t tx_id,
                          absl::string_view payload) {
  xsd_sockmsg hdr;
  hdr.type = type;
  hdr.req_id = req_id;
  hdr.tx_id = tx_id;
  hdr.len = static_cast<uint32_t>(payload.size());
  std::string out(kHeaderSize + payload.size(), '\0');
  std::memcpy(&out[0], &hdr, kHeaderSize);
  if (!payload.empty()) {
    std::memcpy(&out[kHeaderSize], payload.data(), payload.size());
  }
  return out;
}

absl::StatusOr<Message> DecodeMessage(absl::string_view bytes) {
  FrameParser parser;
  parser.Append(bytes);
  absl::StatusOr<std::optional<Message>> msg = parser.Next();
  if (!msg.ok()) return msg.status();
  if (!msg->has_value()) {
    return absl::InvalidArgumentError("incomplete xenstore frame");
  }
  if (parser.buffered() != 0) {
    return absl::InvalidArgumentError("trailing bytes after xenstore frame");
  }
  return std::move(**msg);
}

SplitPayload SplitStrings(absl::string_view payload) {
  SplitPayload out;
  size_t off = 0;
  while (off < payload.size()) {
    const size_t nul = payload.find('\0', off);
    if (nul == absl::string_view::npos) break;
    out.strings.push_back(payload.substr(off, nul - off));
    off = nul + 1;
  }
  out.rest = payload.substr(off);
  return out;
}

std::optional<absl::string_view> OneArg(absl::string_view payload) {
  if (payload.empty() || payload.back() != '\0') return std::nullopt;
  absl::string_view s = payload.substr(0, payload.size() - 1);
  if (s.find('\0') != absl::string_view::npos) return std::nullopt;
  return s;
}

std::string JoinWithNuls(const std::vector<std::string>& strings) {
  std::string out;
  for (const std::string& s : strings) {
    out.append(s);
    out.push_back('\0');
  }
  return out;
}

absl::string_view ErrnoName(int errnum) {
  for (const struct xsd_errors& e : ::xsd_errors) {
    if (e.errnum == errnum) return e.errstring;
  }
  return ::xsd_errors[0].errstring;  // EINVAL, as xenstored falls back to.
}

std::optional<int> ErrnoFromName(absl::string_view name) {
  for (const struct xsd_errors& e : ::xsd_errors) {
    if (name == e.errstring) return e.errnum;
  }
  return std::nullopt;
}

std::string EncodeError(uint32_t req_id, uint32_t tx_id, int errnum) {
  absl::string_view name = ErrnoName(errnum);
  std::string payload(name);
  payload.push_back('\0');
  return EncodeMessage(XS_ERROR, req_id, tx_id, payload);
}

int64_t AtoiLike(absl::string_view s) {
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r'))) ++i;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    negative = s[i] == '-';
    ++i;
  }
  int64_t value = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    value = value * 10 + (s[i] - '0');
    if (value > (int64_t{1} << 40)) break;  // Far beyond any domid or port.
  }
  return negative ? -value : value;
}

}  // namespace xenchan::sim::xenstore
