// Request validation (see the header).
#include "server/validate.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "backend/engine/names.h"
#include "backend/framing/framing.h"
#include "server/resource_names.h"
#include "server/status.h"

namespace xenchan {
namespace server {
namespace {

bool ValidPrefix(const std::string& prefix) {
  if (prefix.size() > kMaxChannelIdBytes) return false;
  for (char c : prefix) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// A google.protobuf.Duration as absl::Duration (out-of-range values become
// infinite, which every range check below refuses).
absl::Duration FromDurationProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// "allowed MIN..MAX" for an INVALID_OPTION about a size range.
std::string Allowed(size_t min, size_t max) { return absl::StrCat("allowed ", min, "..", max); }

}  // namespace

ApiError PayloadTooLarge(const std::string& field, size_t size) {
  return ApiError(absl::StatusCode::kInvalidArgument, v1::ERROR_REASON_PAYLOAD_TOO_LARGE,
                  absl::StrCat(field, " of ", size, " bytes; at most ", kMaxStreamMessageBytes))
      .Field(field, absl::StrCat("at most ", kMaxStreamMessageBytes, " bytes"));
}

absl::StatusOr<int32_t> PageSize(int32_t page_size) {
  if (page_size < 0) return InvalidOption("page_size", "must not be negative");
  if (page_size == 0) return kDefaultPageSize;
  return std::min(page_size, kMaxPageSize);
}

absl::Status ValidateFilter(const v1::ChannelFilter& filter, const std::string& field) {
  if (!ValidPrefix(filter.channel_id_prefix())) {
    return InvalidOption(field + ".channel_id_prefix",
                         absl::StrCat("at most ", kMaxChannelIdBytes, " bytes of [A-Za-z0-9._-]"));
  }
  for (int t : filter.transports()) {
    if (!v1::Transport_IsValid(t)) {
      return InvalidOption(field + ".transports", absl::StrCat("unknown transport ", t));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateFraming(const v1::Framing& f, const std::string& field) {
  switch (f.kind_case()) {
    case v1::Framing::KIND_NOT_SET:
      return InvalidOption(field, "a framing must set one kind");
    case v1::Framing::kDelimiter:
      if (f.delimiter().delimiter().empty() ||
          f.delimiter().delimiter().size() > kMaxDelimiterBytes) {
        return InvalidOption(field + ".delimiter.delimiter", "must be 1 to 16 bytes");
      }
      return absl::OkStatus();
    default:
      return absl::OkStatus();
  }
}

absl::Status ValidateStart(const v1::ReadStart& start, const std::string& field) {
  if (start.point_case() == v1::ReadStart::kAnchor && !v1::StartAnchor_IsValid(start.anchor())) {
    return InvalidOption(field + ".anchor", "unknown anchor");
  }
  if (start.point_case() == v1::ReadStart::kPosition && start.position().epoch() == 0) {
    return InvalidOption(field + ".position.epoch", "epochs are positive");
  }
  return absl::OkStatus();
}

std::string ListFingerprint(const v1::ListChannelsRequest& request) {
  std::vector<int> transports(request.filter().transports().begin(),
                              request.filter().transports().end());
  std::vector<int> states(request.states().begin(), request.states().end());
  std::sort(transports.begin(), transports.end());
  std::sort(states.begin(), states.end());
  return absl::StrCat(request.parent(), "|", request.filter().channel_id_prefix(), "|",
                      absl::StrJoin(transports, ","), "|", absl::StrJoin(states, ","));
}

absl::Status ValidateRequest(const v1::ListDomainsRequest& request) {
  auto size = PageSize(request.page_size());
  if (!size.ok()) return size.status();
  if (!request.page_token().empty()) {
    auto key = DecodePageToken(request.page_token(), "domains", "page_token");
    if (!key.ok()) return key.status();
  }
  return absl::OkStatus();
}

absl::Status ValidateRequest(const v1::GetDomainRequest& request) {
  return ParseDomainName(request.name(), "name", /*allow_all=*/false).status();
}

absl::Status ValidateRequest(const v1::ListChannelsRequest& request) {
  absl::Status s = ParseDomainName(request.parent(), "parent", /*allow_all=*/true).status();
  if (!s.ok()) return s;
  s = PageSize(request.page_size()).status();
  if (!s.ok()) return s;
  s = ValidateFilter(request.filter(), "filter");
  if (!s.ok()) return s;
  for (int st : request.states()) {
    if (!v1::ChannelState_IsValid(st)) {
      return InvalidOption("states", absl::StrCat("unknown channel state ", st));
    }
  }
  if (!request.page_token().empty()) {
    s = DecodePageToken(request.page_token(), ListFingerprint(request), "page_token").status();
  }
  return s;
}

absl::Status ValidateRequest(const v1::GetChannelRequest& request) {
  return ParseChannelName(request.name(), "name").status();
}

// The ranges of a ChannelConfig's fields (CreateChannel, UpdateChannel),
// named `prefix`.<field> in errors.
absl::Status ValidateConfig(const v1::ChannelConfig& c, const std::string& prefix) {
  absl::Status s;
  if (c.buffer_limit_bytes() != 0 && (c.buffer_limit_bytes() < kMinBufferLimitBytes ||
                                      c.buffer_limit_bytes() > kMaxBufferLimitBytes)) {
    return InvalidOption(prefix + ".buffer_limit_bytes",
                         Allowed(kMinBufferLimitBytes, kMaxBufferLimitBytes));
  }
  if (!v1::OverflowPolicy_IsValid(c.overflow_policy())) {
    return InvalidOption(prefix + ".overflow_policy", "unknown overflow policy");
  }
  if (c.write_queue_limit_bytes() != 0 &&
      (c.write_queue_limit_bytes() < kMinWriteQueueLimitBytes ||
       c.write_queue_limit_bytes() > kMaxWriteQueueLimitBytes)) {
    return InvalidOption(prefix + ".write_queue_limit_bytes",
                         Allowed(kMinWriteQueueLimitBytes, kMaxWriteQueueLimitBytes));
  }
  if (c.has_default_framing()) {
    s = ValidateFraming(c.default_framing(), prefix + ".default_framing");
    if (!s.ok()) return s;
  }
  if (!v1::ChannelLifetime_IsValid(c.lifetime())) {
    return InvalidOption(prefix + ".lifetime", "unknown channel lifetime");
  }
  return absl::OkStatus();
}

absl::Status ValidateRequest(const v1::CreateChannelRequest& request) {
  absl::Status s = ParseDomainName(request.parent(), "parent", /*allow_all=*/false).status();
  if (!s.ok()) return s;
  if (!ValidateChannelId(request.channel_id()).ok()) {
    const std::string why = absl::StrCat(
        "1 to ", kMaxChannelIdBytes, " bytes of [A-Za-z0-9._-], starting with a letter or digit");
    return ApiError(absl::StatusCode::kInvalidArgument, v1::ERROR_REASON_INVALID_CHANNEL_ID,
                    absl::StrCat("channel_id ", QuoteClientValue(request.channel_id()), ": ", why))
        .Field("channel_id", why);
  }
  s = ValidateConfig(request.config(), "config");
  if (!s.ok()) return s;
  if (request.wait_until_connected() && request.has_connect_timeout()) {
    const absl::Duration t = FromDurationProto(request.connect_timeout());
    if (t < absl::Seconds(1) || t > absl::Minutes(10)) {
      return InvalidOption("connect_timeout", "allowed 1 s..10 min");
    }
  }
  return absl::OkStatus();
}

bool IsUpdatableChannelPath(const std::string& path) {
  for (const char* p : kUpdatableChannelPaths) {
    if (path == p) return true;
  }
  return false;
}

absl::Status ValidateRequest(const v1::UpdateChannelRequest& request) {
  absl::Status s = ParseChannelName(request.channel().name(), "channel.name").status();
  if (!s.ok()) return s;
  if (request.update_mask().paths_size() == 0) {
    return InvalidOption("update_mask",
                         "required: name the fields to change (config.lifetime, "
                         "config.buffer_limit_bytes, config.overflow_policy, "
                         "config.write_queue_limit_bytes, config.default_framing, or config); "
                         "there is no implicit \"every set field\"");
  }
  for (const std::string& path : request.update_mask().paths()) {
    if (!IsUpdatableChannelPath(path)) {
      return InvalidOption(
          "update_mask", absl::StrCat("path ", QuoteClientValue(path),
                                      " cannot be updated: only config.lifetime, "
                                      "config.buffer_limit_bytes, config.overflow_policy, "
                                      "config.write_queue_limit_bytes and "
                                      "config.default_framing change in place; the other "
                                      "fields of a Channel are output only or fixed at creation"));
    }
  }
  // Fields the mask does not name are ignored, so only the named ones are
  // checked (`config` names them all).
  return ValidateConfig(request.channel().config(), "channel.config");
}

absl::Status ValidateRequest(const v1::DeleteChannelRequest& request) {
  absl::Status s = ParseChannelName(request.name(), "name").status();
  if (!s.ok()) return s;
  if (request.has_force_after()) {
    const absl::Duration t = FromDurationProto(request.force_after());
    if (t < absl::ZeroDuration() || t > absl::Minutes(10)) {
      return InvalidOption("force_after", "allowed 0..10 min");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRequest(const v1::WatchChannelsRequest& request) {
  absl::Status s = ParseDomainName(request.parent(), "parent", /*allow_all=*/true).status();
  if (!s.ok()) return s;
  return ValidateFilter(request.filter(), "filter");
}

absl::Status ValidateRequest(const v1::ReadRequest& request) {
  absl::Status s = ParseChannelName(request.channel(), "channel").status();
  if (!s.ok()) return s;
  return ValidateStart(request.start(), "start");
}

absl::Status ValidateRequest(const v1::CallRequest& request) {
  absl::Status s = ParseChannelName(request.channel(), "channel").status();
  if (!s.ok()) return s;
  if (request.request().size() > kMaxCallRequestBytes) {
    return PayloadTooLarge("request", request.request().size());
  }
  if (request.has_framing()) return ValidateFraming(request.framing(), "framing");
  return absl::OkStatus();
}

absl::Status ValidateAttachOpen(const v1::AttachOpen& open) {
  absl::Status s = ParseChannelName(open.channel(), "open.channel").status();
  if (!s.ok()) return s;
  if (open.role() != v1::SESSION_ROLE_WRITER && open.role() != v1::SESSION_ROLE_OBSERVER) {
    return InvalidOption("open.role", "SESSION_ROLE_WRITER or SESSION_ROLE_OBSERVER");
  }
  s = ValidateStart(open.start(), "open.start");
  if (!s.ok()) return s;
  if (!v1::AckLevel_IsValid(open.ack_level())) {
    return InvalidOption("open.ack_level", "unknown acknowledgement level");
  }
  if (open.role() == v1::SESSION_ROLE_OBSERVER) {
    if (open.ack_level() != v1::ACK_LEVEL_UNSPECIFIED) {
      return InvalidOption("open.ack_level", "observers do not write");
    }
    if (open.takeover()) return InvalidOption("open.takeover", "observers do not write");
    if (open.fail_fast()) return InvalidOption("open.fail_fast", "observers do not write");
  }
  return absl::OkStatus();
}

absl::Status ValidateWriteMessage(const v1::WriteRequest& message, bool first) {
  if (first) {
    absl::Status s = ParseChannelName(message.channel(), "channel").status();
    if (!s.ok()) return s;
    if (!v1::AckLevel_IsValid(message.ack_level())) {
      return InvalidOption("ack_level", "unknown acknowledgement level");
    }
  } else if (!message.channel().empty() || message.ack_level() != 0 ||
             message.expected_epoch() != 0 || message.fail_fast() || message.takeover()) {
    return ApiError(absl::StatusCode::kInvalidArgument, v1::ERROR_REASON_STREAM_PROTOCOL_VIOLATION,
                    "only the first message may set fields other than data")
        .Field("WriteRequest", "later messages set only data");
  }
  if (message.data().size() > kMaxStreamMessageBytes) {
    return PayloadTooLarge("data", message.data().size());
  }
  return absl::OkStatus();
}

}  // namespace server
}  // namespace xenchan
