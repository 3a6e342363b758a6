// EngineErrors: see engine_errors.h.
#include "server/engine_errors.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/engine/memory_budget.h"
#include "server/convert.h"

namespace xenchan {
namespace server {

using absl::StatusCode;

v1::Channel ChannelProto(const ChannelInfo& info) {
  v1::Channel c;
  ToProto(info, &c);
  return c;
}

absl::Status EngineErrors::ShuttingDown() const {
  return ApiError(StatusCode::kUnavailable, v1::ERROR_REASON_SHUTTING_DOWN,
                  "xenchand is shutting down")
      .RetryAfter(options_.shutdown_retry_delay);
}

absl::Status EngineErrors::DomainNotFound(const std::string& domain) {
  return ApiError(StatusCode::kNotFound, v1::ERROR_REASON_DOMAIN_NOT_FOUND,
                  absl::StrCat("no domain '", domain, "'"))
      .Metadata("domain", "domains/" + domain);
}

absl::Status EngineErrors::ChannelNotFound(const ChannelName& name) const {
  if (!engine_->GetDomain(name.domain).ok()) return DomainNotFound(name.domain);
  return ApiError(StatusCode::kNotFound, v1::ERROR_REASON_CHANNEL_NOT_FOUND,
                  absl::StrCat("domain '", name.domain, "' has no channel '", name.channel_id, "'"))
      .Metadata("channel", "domains/" + name.domain + "/channels/" + name.channel_id);
}

absl::Status EngineErrors::ChannelGone(const absl::Status& s, const std::string& channel) const {
  if (shutting_down_ != nullptr && shutting_down_->load()) return ShuttingDown();
  if (s.code() == StatusCode::kNotFound) {
    return ApiError(StatusCode::kNotFound, v1::ERROR_REASON_CHANNEL_REMOVED,
                    absl::StrCat("the channel was removed: ", s.message()))
        .Metadata("channel", channel);
  }
  if (s.code() == StatusCode::kUnavailable) {
    return ApiError(StatusCode::kUnavailable, v1::ERROR_REASON_DOMAIN_GONE,
                    absl::StrCat("the domain went away: ", s.message()))
        .Metadata("channel", channel)
        .RetryAfter(absl::Seconds(1));
  }
  return s;
}

absl::Status EngineErrors::SessionOpen(const absl::Status& s, const ChannelName& name,
                                       const std::optional<Position>& requested) const {
  const std::string channel = "domains/" + name.domain + "/channels/" + name.channel_id;
  auto info = engine_->GetChannel(ChannelRef{name.domain, name.channel_id});
  switch (s.code()) {
    case StatusCode::kNotFound:
      if (!info.ok()) return ChannelNotFound(name);
      return ChannelGone(s, channel);
    case StatusCode::kUnavailable:
      return ChannelGone(s, channel);
    case StatusCode::kResourceExhausted: {
      if (IsMemoryBudgetError(s)) return MemoryBudgetExhausted(s).Metadata("channel", channel);
      v1::LimitExceeded limit;
      limit.set_limit("observers_per_channel");
      limit.set_limit_value(options_.max_readers_per_channel);
      limit.set_requested_value((info.ok() ? info->observer_count : 0) + 1);
      return ApiError(StatusCode::kResourceExhausted, v1::ERROR_REASON_TOO_MANY_OBSERVERS,
                      std::string(s.message()))
          .Metadata("channel", channel)
          .Metadata("limit", "observers_per_channel")
          .Detail(limit);
    }
    case StatusCode::kFailedPrecondition: {
      // The engine refuses a session for two reasons only: the channel is
      // closing, or (for a writer) the lease is held. The holder may have
      // let go since, so the lease is not required to be visible now.
      if (info.ok() && info->state != ChannelState::kClosing &&
          info->state != ChannelState::kClosed) {
        ApiError e(StatusCode::kFailedPrecondition, v1::ERROR_REASON_LEASE_HELD,
                   std::string(s.message()));
        e.Metadata("channel", channel);
        if (info->write_lease.has_value()) {
          v1::LeaseHolder holder;
          ToProto(*info->write_lease, &holder);
          e.Metadata("session_id", info->write_lease->session_id).Detail(holder);
        }
        return e;
      }
      return NotConnected(std::string(s.message()), channel,
                          info.ok() ? std::optional<ChannelInfo>(*info) : std::nullopt);
    }
    case StatusCode::kOutOfRange: {
      v1::RetainedRange range;
      if (requested.has_value()) ToProto(*requested, range.mutable_requested_position());
      if (info.ok() && (info->epoch != 0 || info->from_guest.next.epoch != 0)) {
        ToProto(info->from_guest.earliest, range.mutable_earliest_position());
        ToProto(info->from_guest.next, range.mutable_next_position());
      }
      return ApiError(StatusCode::kOutOfRange, v1::ERROR_REASON_OFFSET_NOT_RETAINED,
                      std::string(s.message()))
          .Metadata("channel", channel)
          .Detail(range);
    }
    default:
      return s;
  }
}

absl::Status EngineErrors::CreateChannel(const absl::Status& s, const DomainInfo& domain,
                                         const std::string& channel_id) const {
  const std::string channel = FormatChannelName(domain.uuid, channel_id);
  const std::string domain_name = FormatDomainName(domain.uuid);
  auto existing = engine_->GetChannel(ChannelRef{domain.uuid, channel_id});
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
      return InvalidOption("config", std::string(s.message()));
    case StatusCode::kNotFound:
      if (!engine_->GetDomain(domain.uuid).ok()) return DomainNotFound(domain.uuid);
      return ChannelGone(s, channel);
    case StatusCode::kUnavailable:
      return ApiError(StatusCode::kUnavailable, v1::ERROR_REASON_DOMAIN_GONE,
                      std::string(s.message()))
          .Metadata("domain", domain_name);
    case StatusCode::kAlreadyExists: {
      ApiError e(StatusCode::kAlreadyExists, v1::ERROR_REASON_CHANNEL_EXISTS,
                 std::string(s.message()));
      e.Metadata("channel", channel);
      if (existing.ok()) e.Detail(ChannelProto(*existing));
      return e;
    }
    case StatusCode::kResourceExhausted: {
      if (IsMemoryBudgetError(s)) return MemoryBudgetExhausted(s).Metadata("domain", domain_name);
      v1::LimitExceeded limit;
      limit.set_limit("devids_per_domain");
      limit.set_limit_value(options_.max_channels_per_domain);
      limit.set_requested_value(domain.channel_count + 1);
      return ApiError(StatusCode::kResourceExhausted, v1::ERROR_REASON_NO_FREE_DEVID,
                      std::string(s.message()))
          .Metadata("domain", domain_name)
          .Metadata("limit", "devids_per_domain")
          .Detail(limit);
    }
    case StatusCode::kDeadlineExceeded: {
      ApiError e(StatusCode::kDeadlineExceeded, v1::ERROR_REASON_GUEST_TIMEOUT,
                 std::string(s.message()));
      e.Metadata("channel", channel);
      if (existing.ok()) e.Detail(ChannelProto(*existing));
      return e;
    }
    case StatusCode::kFailedPrecondition:
      return NotConnected(std::string(s.message()), channel,
                          existing.ok() ? std::optional<ChannelInfo>(*existing) : std::nullopt);
    default:
      return ApiError(StatusCode::kUnavailable, v1::ERROR_REASON_TRANSPORT_UNAVAILABLE,
                      absl::StrCat("xenstore: ", s.message()))
          .RetryAfter(absl::Seconds(1));
  }
}

absl::Status EngineErrors::UpdateChannel(const absl::Status& s, const ChannelName& name,
                                         const std::string& channel) const {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
      return InvalidOption("channel.config", std::string(s.message()));
    case StatusCode::kNotFound:
      return ChannelNotFound(name);
    case StatusCode::kFailedPrecondition: {
      ApiError e(StatusCode::kFailedPrecondition, v1::ERROR_REASON_UPDATE_NOT_POSSIBLE,
                 std::string(s.message()));
      e.Metadata("channel", channel);
      auto info = engine_->GetChannel(ChannelRef{name.domain, name.channel_id});
      if (info.ok()) e.Detail(ChannelProto(*info));
      return e;
    }
    case StatusCode::kUnavailable:
      return ChannelGone(s, channel);
    default:
      return ApiError(StatusCode::kUnavailable, v1::ERROR_REASON_TRANSPORT_UNAVAILABLE,
                      absl::StrCat("the update could not be recorded: ", s.message()))
          .Metadata("channel", channel)
          .RetryAfter(absl::Seconds(1));
  }
}

absl::Status EngineErrors::DeleteChannel(const absl::Status& s, const ChannelName& name,
                                         const std::string& channel) const {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return ChannelNotFound(name);
    case StatusCode::kFailedPrecondition:
      return ApiError(StatusCode::kFailedPrecondition, v1::ERROR_REASON_TOOLSTACK_MANAGED,
                      std::string(s.message()));
    case StatusCode::kUnavailable:
      return ChannelGone(s, channel);
    default:
      return s;
  }
}

ApiError EngineErrors::MemoryBudgetExhausted(const absl::Status& s) const {
  const MemoryUsage memory = engine_->Memory();
  v1::LimitExceeded limit;
  limit.set_limit("memory_budget_bytes");
  limit.set_limit_value(memory.limit);
  limit.set_requested_value(memory.used);
  return std::move(ApiError(StatusCode::kResourceExhausted,
                            v1::ERROR_REASON_MEMORY_BUDGET_EXHAUSTED, std::string(s.message()))
                       .Metadata("limit", "memory_budget_bytes")
                       .Detail(limit)
                       .RetryAfter(absl::Seconds(1)));
}

ApiError EngineErrors::LeaseTakenOver(const std::optional<LeaseHolder>& holder) {
  ApiError e(StatusCode::kAborted, v1::ERROR_REASON_LEASE_TAKEN_OVER,
             "an administrator's session took the write lease over");
  if (holder.has_value()) {
    v1::LeaseHolder h;
    ToProto(*holder, &h);
    e.Detail(h);
  }
  return e;
}

ApiError EngineErrors::EpochChanged(uint64_t expected, uint64_t current,
                                    const std::string& message) {
  v1::EpochMismatch mismatch;
  mismatch.set_expected_epoch(expected);
  mismatch.set_current_epoch(current);
  return std::move(
      ApiError(StatusCode::kAborted, v1::ERROR_REASON_EPOCH_CHANGED, message).Detail(mismatch));
}

ApiError EngineErrors::NotConnected(const std::string& message, const std::string& channel,
                                    const std::optional<ChannelInfo>& info) {
  ApiError e(StatusCode::kFailedPrecondition, v1::ERROR_REASON_NOT_CONNECTED, message);
  e.Metadata("channel", channel);
  if (info.has_value()) e.Detail(ChannelProto(*info));
  return e;
}

ApiError EngineErrors::AckLevelNotSupported(const std::string& channel, const ChannelInfo& info) {
  return std::move(ApiError(StatusCode::kFailedPrecondition,
                            v1::ERROR_REASON_ACK_LEVEL_NOT_SUPPORTED,
                            "the channel cannot report that acknowledgement level")
                       .Metadata("channel", channel)
                       .Detail(ChannelProto(info)));
}

}  // namespace server
}  // namespace xenchan
