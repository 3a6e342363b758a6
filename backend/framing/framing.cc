// Call framings: request encoders and bounded, hostile-safe response decoders.
#include "backend/framing/framing.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace xenchan {
namespace {

absl::Status TooLarge() {
  return absl::ResourceExhaustedError(
      absl::StrCat("response exceeds ", kMaxCallResponseBytes, " bytes"));
}

// Bytes up to the first `delim` (excluded), for newline and delimiter framing.
class DelimitedDecoder : public ResponseDecoder {
 public:
  DelimitedDecoder(std::string delim, bool strip_cr)
      : delim_(std::move(delim)), strip_cr_(strip_cr) {}

  absl::StatusOr<std::optional<std::string>> Feed(absl::string_view bytes) override {
    if (done_) return response_;
    // Search only where a match can newly start: the tail of the old buffer.
    const size_t from = buf_.size() >= delim_.size() ? buf_.size() - delim_.size() + 1 : 0;
    buf_.append(bytes.data(),
                std::min(bytes.size(), kMaxCallResponseBytes + delim_.size() - buf_.size()));
    const size_t at = buf_.find(delim_, from);
    if (at == std::string::npos) {
      if (buf_.size() > kMaxCallResponseBytes + delim_.size() - 1) return TooLarge();
      return std::nullopt;
    }
    std::string response = buf_.substr(0, at);
    if (strip_cr_ && !response.empty() && response.back() == '\r') response.pop_back();
    if (response.size() > kMaxCallResponseBytes) return TooLarge();
    done_ = true;
    response_ = std::move(response);
    return response_;
  }
  std::string Partial() const override {
    return done_ ? *response_ : buf_.substr(0, std::min(buf_.size(), kMaxCallResponseBytes));
  }

 private:
  const std::string delim_;
  const bool strip_cr_;
  std::string buf_;
  bool done_ = false;
  std::optional<std::string> response_;
};

// A 4-byte big-endian length, then that many bytes.
class LengthPrefixDecoder : public ResponseDecoder {
 public:
  absl::StatusOr<std::optional<std::string>> Feed(absl::string_view bytes) override {
    if (done_) return std::optional<std::string>(body_);
    while (!bytes.empty() && header_.size() < 4) {
      header_.push_back(bytes.front());
      bytes.remove_prefix(1);
    }
    if (header_.size() < 4) return std::nullopt;
    const uint32_t len = (uint32_t{static_cast<uint8_t>(header_[0])} << 24) |
                         (uint32_t{static_cast<uint8_t>(header_[1])} << 16) |
                         (uint32_t{static_cast<uint8_t>(header_[2])} << 8) |
                         uint32_t{static_cast<uint8_t>(header_[3])};
    if (len > kMaxCallResponseBytes) return TooLarge();
    const size_t take = std::min<size_t>(bytes.size(), len - body_.size());
    body_.append(bytes.data(), take);
    if (body_.size() < len) return std::nullopt;
    done_ = true;
    return std::optional<std::string>(body_);
  }
  std::string Partial() const override { return body_; }

 private:
  std::string header_;
  std::string body_;
  bool done_ = false;
};

// Splits a byte stream into top-level JSON objects/arrays by bracket depth,
// honouring strings and escapes. Bytes between values are skipped.
class JsonValueScanner {
 public:
  // Feeds one byte; returns true when it completed a value (then value()).
  bool Push(char c) {
    if (depth_ == 0) {
      if (c != '{' && c != '[') return false;  // whitespace or noise between values
      value_.clear();
    }
    if (value_.size() >= kMaxCallResponseBytes) {
      overflow_ = true;
      return false;
    }
    value_.push_back(c);
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      return false;
    }
    switch (c) {
      case '"':
        in_string_ = true;
        break;
      case '{':
      case '[':
        ++depth_;
        break;
      case '}':
      case ']':
        if (--depth_ == 0) return true;
        break;
    }
    return false;
  }
  const std::string& value() const { return value_; }
  bool overflow() const { return overflow_; }
  void Reset() { *this = JsonValueScanner(); }

 private:
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  bool overflow_ = false;
  std::string value_;
};

std::string WithoutWhitespaceOutsideStrings(const std::string& json) {
  std::string out;
  bool in_string = false, escape = false;
  for (char c : json) {
    if (in_string) {
      out.push_back(c);
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (!isspace(static_cast<unsigned char>(c))) {
      if (c == '"') in_string = true;
      out.push_back(c);
    }
  }
  return out;
}

// The QEMU guest agent protocol after a guest-sync-delimited: skip to the
// agent's 0xFF marker, then to the sync reply {"return": id}, then return
// the next complete JSON value.
class QemuGuestAgentDecoder : public ResponseDecoder {
 public:
  explicit QemuGuestAgentDecoder(uint32_t sync_id)
      : expected_sync_(absl::StrCat("{\"return\":", sync_id, "}")) {}

  absl::StatusOr<std::optional<std::string>> Feed(absl::string_view bytes) override {
    if (state_ == State::kDone) return response_;
    for (char c : bytes) {
      switch (state_) {
        case State::kWaitMarker:
          if (static_cast<unsigned char>(c) == 0xFF) state_ = State::kWaitSync;
          break;
        case State::kWaitSync:
          if (static_cast<unsigned char>(c) == 0xFF) {  // a newer marker restarts the scan
            scanner_.Reset();
            break;
          }
          if (scanner_.Push(c) &&
              WithoutWhitespaceOutsideStrings(scanner_.value()) == expected_sync_) {
            state_ = State::kWaitResponse;
            scanner_.Reset();
          }
          break;
        case State::kWaitResponse:
          if (scanner_.Push(c)) {
            state_ = State::kDone;
            response_ = scanner_.value();
            return response_;
          }
          break;
        case State::kDone:
          break;
      }
      if (scanner_.overflow()) return TooLarge();
    }
    return std::nullopt;
  }
  std::string Partial() const override {
    return state_ == State::kWaitResponse || state_ == State::kDone ? scanner_.value() : "";
  }
  bool ReadyForRequest() const override {
    return state_ == State::kWaitResponse || state_ == State::kDone;
  }

 private:
  enum class State { kWaitMarker, kWaitSync, kWaitResponse, kDone };
  const std::string expected_sync_;
  State state_ = State::kWaitMarker;
  JsonValueScanner scanner_;
  std::optional<std::string> response_;
};

}  // namespace

absl::Status ValidateFraming(const Framing& framing) {
  if (framing.kind == Framing::Kind::kDelimiter &&
      (framing.delimiter.empty() || framing.delimiter.size() > kMaxDelimiterBytes)) {
    return absl::InvalidArgumentError(absl::StrCat("a delimiter must be 1 to ", kMaxDelimiterBytes,
                                                   " bytes, not ", framing.delimiter.size()));
  }
  return absl::OkStatus();
}

std::string FramingSpec(const Framing& framing) {
  switch (framing.kind) {
    case Framing::Kind::kNewline:
      return "newline";
    case Framing::Kind::kDelimiter:
      return absl::StrCat("delimiter:", absl::BytesToHexString(framing.delimiter));
    case Framing::Kind::kLengthPrefix:
      return "length-prefix";
    case Framing::Kind::kQemuGuestAgent:
      return "qemu-guest-agent";
  }
  return "newline";
}

absl::StatusOr<Framing> ParseFramingSpec(absl::string_view spec) {
  Framing f;
  if (spec == "newline") {
    f.kind = Framing::Kind::kNewline;
  } else if (spec == "length-prefix") {
    f.kind = Framing::Kind::kLengthPrefix;
  } else if (spec == "qemu-guest-agent") {
    f.kind = Framing::Kind::kQemuGuestAgent;
  } else if (absl::ConsumePrefix(&spec, "delimiter:")) {
    const bool hex = spec.size() % 2 == 0 && std::all_of(spec.begin(), spec.end(), [](char c) {
                       return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                     });
    if (!hex) return absl::InvalidArgumentError("a delimiter is lower-case hex bytes");
    f.kind = Framing::Kind::kDelimiter;
    f.delimiter = absl::HexStringToBytes(spec);
    if (absl::Status s = ValidateFraming(f); !s.ok()) return s;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown framing '", spec, "'"));
  }
  return f;
}

absl::StatusOr<EncodedCall> EncodeCallRequest(const Framing& framing, absl::string_view request,
                                              uint32_t sync_id) {
  if (absl::Status s = ValidateFraming(framing); !s.ok()) return s;
  if (request.size() > kMaxCallRequestBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a Call request is at most ", kMaxCallRequestBytes, " bytes, not ", request.size()));
  }
  EncodedCall call;
  switch (framing.kind) {
    case Framing::Kind::kNewline:
      call.request =
          absl::EndsWith(request, "\n") ? std::string(request) : absl::StrCat(request, "\n");
      return call;
    case Framing::Kind::kDelimiter:
      call.request = absl::EndsWith(request, framing.delimiter)
                         ? std::string(request)
                         : absl::StrCat(request, framing.delimiter);
      return call;
    case Framing::Kind::kLengthPrefix: {
      const uint32_t n = static_cast<uint32_t>(request.size());
      call.request.push_back(static_cast<char>(n >> 24));
      call.request.push_back(static_cast<char>(n >> 16));
      call.request.push_back(static_cast<char>(n >> 8));
      call.request.push_back(static_cast<char>(n));
      call.request.append(request.data(), request.size());
      return call;
    }
    case Framing::Kind::kQemuGuestAgent: {
      const absl::string_view command = absl::StripTrailingAsciiWhitespace(request);
      if (absl::StripLeadingAsciiWhitespace(command).empty()) {
        return absl::InvalidArgumentError("a QEMU guest agent request must be a JSON command");
      }
      // 0xFF resets the agent's JSON parser; the sync reply is then prefixed
      // with the agent's own 0xFF so stale output can be skipped.
      call.preamble = absl::StrCat(
          "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":", sync_id, "}}\n");
      // qemu-ga loses a reply it writes while input it has not parsed yet
      // waits in its read buffer (GLib takes a tty for seekable, and its
      // write then fails with "Illegal seek"). So the command follows only
      // once the sync is answered (the preamble), and nothing follows the
      // command's closing brace, which ends it for the agent's parser; other
      // input (not an object, qemu-ga answers it with an error) still needs
      // a newline to end its last token.
      call.request =
          absl::EndsWith(command, "}") ? std::string(command) : absl::StrCat(command, "\n");
      return call;
    }
  }
  return absl::InternalError("unknown framing");
}

std::unique_ptr<ResponseDecoder> NewResponseDecoder(const Framing& framing, uint32_t sync_id) {
  switch (framing.kind) {
    case Framing::Kind::kNewline:
      return std::make_unique<DelimitedDecoder>("\n", /*strip_cr=*/true);
    case Framing::Kind::kDelimiter:
      return std::make_unique<DelimitedDecoder>(framing.delimiter, /*strip_cr=*/false);
    case Framing::Kind::kLengthPrefix:
      return std::make_unique<LengthPrefixDecoder>();
    case Framing::Kind::kQemuGuestAgent:
      return std::make_unique<QemuGuestAgentDecoder>(sync_id);
  }
  return nullptr;
}

}  // namespace xenchan
