// Engine <-> proto conversions (see the header).
#include "server/convert.h"

#include "server/resource_names.h"

namespace xenchan {
namespace server {

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return;
  const int64_t nanos = absl::ToUnixNanos(t);
  int64_t secs = nanos / 1000000000;
  int64_t rem = nanos % 1000000000;
  if (rem < 0) {
    rem += 1000000000;
    --secs;
  }
  out->set_seconds(secs);
  out->set_nanos(static_cast<int32_t>(rem));
}

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

v1::ChannelState ToProto(ChannelState s) {
  switch (s) {
    case ChannelState::kCreating:
      return v1::CHANNEL_STATE_CREATING;
    case ChannelState::kWaitingForGuest:
      return v1::CHANNEL_STATE_WAITING_FOR_GUEST;
    case ChannelState::kConnected:
      return v1::CHANNEL_STATE_CONNECTED;
    case ChannelState::kDisconnected:
      return v1::CHANNEL_STATE_DISCONNECTED;
    case ChannelState::kClosing:
      return v1::CHANNEL_STATE_CLOSING;
    case ChannelState::kClosed:
      return v1::CHANNEL_STATE_CLOSED;
    case ChannelState::kFailed:
      return v1::CHANNEL_STATE_FAILED;
    case ChannelState::kDomainDown:
      return v1::CHANNEL_STATE_DOMAIN_DOWN;
  }
  return v1::CHANNEL_STATE_UNSPECIFIED;
}

std::optional<ChannelState> FromProto(v1::ChannelState s) {
  switch (s) {
    case v1::CHANNEL_STATE_CREATING:
      return ChannelState::kCreating;
    case v1::CHANNEL_STATE_WAITING_FOR_GUEST:
      return ChannelState::kWaitingForGuest;
    case v1::CHANNEL_STATE_CONNECTED:
      return ChannelState::kConnected;
    case v1::CHANNEL_STATE_DISCONNECTED:
      return ChannelState::kDisconnected;
    case v1::CHANNEL_STATE_CLOSING:
      return ChannelState::kClosing;
    case v1::CHANNEL_STATE_CLOSED:
      return ChannelState::kClosed;
    case v1::CHANNEL_STATE_FAILED:
      return ChannelState::kFailed;
    case v1::CHANNEL_STATE_DOMAIN_DOWN:
      return ChannelState::kDomainDown;
    default:
      return std::nullopt;
  }
}

v1::DomainState ToProto(DomainState s) {
  switch (s) {
    case DomainState::kRunning:
      return v1::DOMAIN_STATE_RUNNING;
    case DomainState::kDying:
      return v1::DOMAIN_STATE_DYING;
    case DomainState::kNotRunning:
      return v1::DOMAIN_STATE_NOT_RUNNING;
  }
  return v1::DOMAIN_STATE_UNSPECIFIED;
}

v1::ChannelLifetime ToProto(ChannelLifetime l) {
  switch (l) {
    case ChannelLifetime::kIncarnation:
      return v1::CHANNEL_LIFETIME_INCARNATION;
    case ChannelLifetime::kDurable:
      return v1::CHANNEL_LIFETIME_DURABLE;
  }
  return v1::CHANNEL_LIFETIME_UNSPECIFIED;
}

std::optional<ChannelLifetime> FromProto(v1::ChannelLifetime l) {
  switch (l) {
    case v1::CHANNEL_LIFETIME_INCARNATION:
      return ChannelLifetime::kIncarnation;
    case v1::CHANNEL_LIFETIME_DURABLE:
      return ChannelLifetime::kDurable;
    default:
      return std::nullopt;
  }
}

v1::XenbusState ToProto(XenbusState s) {
  const int v = static_cast<int>(s);
  return (v >= 0 && v <= 8) ? static_cast<v1::XenbusState>(v) : v1::XENBUS_STATE_UNSPECIFIED;
}

v1::Transport ToProto(Transport t) {
  switch (t) {
    case Transport::kRing:
      return v1::TRANSPORT_RING;
    case Transport::kToolstackSocket:
      return v1::TRANSPORT_TOOLSTACK_SOCKET;
    case Transport::kToolstackPty:
      return v1::TRANSPORT_TOOLSTACK_PTY;
  }
  return v1::TRANSPORT_UNSPECIFIED;
}

std::optional<Transport> FromProto(v1::Transport t) {
  switch (t) {
    case v1::TRANSPORT_RING:
      return Transport::kRing;
    case v1::TRANSPORT_TOOLSTACK_SOCKET:
      return Transport::kToolstackSocket;
    case v1::TRANSPORT_TOOLSTACK_PTY:
      return Transport::kToolstackPty;
    default:
      return std::nullopt;
  }
}

v1::AckLevel ToProto(AckLevel a) {
  switch (a) {
    case AckLevel::kNone:
      return v1::ACK_LEVEL_UNSPECIFIED;
    case AckLevel::kAccepted:
      return v1::ACK_LEVEL_ACCEPTED;
    case AckLevel::kDelivered:
      return v1::ACK_LEVEL_DELIVERED;
    case AckLevel::kConsumed:
      return v1::ACK_LEVEL_CONSUMED;
  }
  return v1::ACK_LEVEL_UNSPECIFIED;
}

v1::OverflowPolicy ToProto(OverflowPolicy p) {
  return p == OverflowPolicy::kDropOldest ? v1::OVERFLOW_POLICY_DROP_OLDEST
                                          : v1::OVERFLOW_POLICY_BLOCK;
}

v1::SessionKind ToProto(SessionKind k) {
  switch (k) {
    case SessionKind::kAttach:
      return v1::SESSION_KIND_ATTACH;
    case SessionKind::kWrite:
      return v1::SESSION_KIND_WRITE;
    case SessionKind::kCall:
      return v1::SESSION_KIND_CALL;
  }
  return v1::SESSION_KIND_UNSPECIFIED;
}

v1::ChannelErrorKind ToProto(ChannelErrorKind k) {
  switch (k) {
    case ChannelErrorKind::kNone:
      return v1::CHANNEL_ERROR_KIND_UNSPECIFIED;
    case ChannelErrorKind::kBadRingInfo:
      return v1::CHANNEL_ERROR_KIND_BAD_RING_INFO;
    case ChannelErrorKind::kGrantMapFailed:
      return v1::CHANNEL_ERROR_KIND_GRANT_MAP_FAILED;
    case ChannelErrorKind::kEventBindFailed:
      return v1::CHANNEL_ERROR_KIND_EVENT_BIND_FAILED;
    case ChannelErrorKind::kBadRingIndices:
      return v1::CHANNEL_ERROR_KIND_BAD_RING_INDICES;
    case ChannelErrorKind::kGuestNotConnecting:
      return v1::CHANNEL_ERROR_KIND_GUEST_NOT_CONNECTING;
    case ChannelErrorKind::kFrontendRemoved:
      return v1::CHANNEL_ERROR_KIND_FRONTEND_REMOVED;
    case ChannelErrorKind::kToolstackUnreachable:
      return v1::CHANNEL_ERROR_KIND_TOOLSTACK_UNREACHABLE;
    case ChannelErrorKind::kXenstore:
      return v1::CHANNEL_ERROR_KIND_XENSTORE;
    case ChannelErrorKind::kUnplugForced:
      return v1::CHANNEL_ERROR_KIND_UNPLUG_FORCED;
  }
  return v1::CHANNEL_ERROR_KIND_UNSPECIFIED;
}

v1::EpochChangeReason ToProto(EpochChangeReason r) {
  switch (r) {
    case EpochChangeReason::kUnspecified:
      return v1::EPOCH_CHANGE_REASON_UNSPECIFIED;
    case EpochChangeReason::kGuestConnected:
      return v1::EPOCH_CHANGE_REASON_GUEST_CONNECTED;
    case EpochChangeReason::kGuestResumed:
      return v1::EPOCH_CHANGE_REASON_GUEST_RESUMED;
    case EpochChangeReason::kTransportReopened:
      return v1::EPOCH_CHANGE_REASON_TRANSPORT_REOPENED;
    case EpochChangeReason::kServerRestarted:
      return v1::EPOCH_CHANGE_REASON_SERVER_RESTARTED;
    case EpochChangeReason::kDomainRebooted:
      return v1::EPOCH_CHANGE_REASON_DOMAIN_REBOOTED;
    case EpochChangeReason::kDomainRestored:
      return v1::EPOCH_CHANGE_REASON_DOMAIN_RESTORED;
    case EpochChangeReason::kDomainMigrated:
      return v1::EPOCH_CHANGE_REASON_DOMAIN_MIGRATED;
  }
  return v1::EPOCH_CHANGE_REASON_UNSPECIFIED;
}

v1::ChannelEventType ToProto(ChannelEventType t) {
  switch (t) {
    case ChannelEventType::kAppeared:
      return v1::CHANNEL_EVENT_TYPE_APPEARED;
    case ChannelEventType::kRemoved:
      return v1::CHANNEL_EVENT_TYPE_REMOVED;
    case ChannelEventType::kConnected:
      return v1::CHANNEL_EVENT_TYPE_CONNECTED;
    case ChannelEventType::kDisconnected:
      return v1::CHANNEL_EVENT_TYPE_DISCONNECTED;
    case ChannelEventType::kEpochChanged:
      return v1::CHANNEL_EVENT_TYPE_EPOCH_CHANGED;
    case ChannelEventType::kStateChanged:
      return v1::CHANNEL_EVENT_TYPE_STATE_CHANGED;
    case ChannelEventType::kStalled:
      return v1::CHANNEL_EVENT_TYPE_STALLED;
    case ChannelEventType::kUnstalled:
      return v1::CHANNEL_EVENT_TYPE_UNSTALLED;
    case ChannelEventType::kLeaseChanged:
      return v1::CHANNEL_EVENT_TYPE_LEASE_CHANGED;
    case ChannelEventType::kGap:
      return v1::CHANNEL_EVENT_TYPE_GAP;
  }
  return v1::CHANNEL_EVENT_TYPE_UNSPECIFIED;
}

v1::RemovalReason ToProto(RemovalReason r) {
  switch (r) {
    case RemovalReason::kUnspecified:
      return v1::REMOVAL_REASON_UNSPECIFIED;
    case RemovalReason::kDeleted:
      return v1::REMOVAL_REASON_DELETED;
    case RemovalReason::kDomainGone:
      return v1::REMOVAL_REASON_DOMAIN_GONE;
    case RemovalReason::kToolstackRemoved:
      return v1::REMOVAL_REASON_TOOLSTACK_REMOVED;
  }
  return v1::REMOVAL_REASON_UNSPECIFIED;
}

void ToProto(const Position& p, v1::Position* out) {
  out->set_epoch(p.epoch);
  out->set_offset(p.offset);
}

void ToProto(const LeaseHolder& h, v1::LeaseHolder* out) {
  out->set_session_id(h.session_id);
  out->set_identity(h.identity);
  out->set_kind(ToProto(h.kind));
  SetTimeIfKnown(h.acquire_time, out, &v1::LeaseHolder::mutable_acquire_time);
}

void ToProto(const EpochChange& e, v1::EpochChange* out) {
  out->set_previous_epoch(e.previous_epoch);
  out->set_epoch(e.epoch);
  out->set_previous_end_offset(e.previous_end_offset);
  out->set_reason(ToProto(e.reason));
  SetTimeIfKnown(e.time, out, &v1::EpochChange::mutable_time);
}

void ToProto(const DomainInfo& d, v1::Domain* out) {
  out->set_name(FormatDomainName(d.uuid));
  out->set_uuid(d.uuid);
  out->set_display_name(d.name);
  out->set_domid(d.domid);
  out->set_state(ToProto(d.state));
  out->set_channel_count(d.channel_count);
}

void ToProto(const Framing& f, v1::Framing* out) {
  switch (f.kind) {
    case Framing::Kind::kNewline:
      out->mutable_newline();
      break;
    case Framing::Kind::kDelimiter:
      out->mutable_delimiter()->set_delimiter(f.delimiter);
      break;
    case Framing::Kind::kLengthPrefix:
      out->mutable_length_prefix();
      break;
    case Framing::Kind::kQemuGuestAgent:
      out->mutable_qemu_guest_agent();
      break;
  }
}

Framing FromProto(const v1::Framing& f) {
  Framing out;
  switch (f.kind_case()) {
    case v1::Framing::kDelimiter:
      out.kind = Framing::Kind::kDelimiter;
      out.delimiter = f.delimiter().delimiter();
      break;
    case v1::Framing::kLengthPrefix:
      out.kind = Framing::Kind::kLengthPrefix;
      break;
    case v1::Framing::kQemuGuestAgent:
      out.kind = Framing::Kind::kQemuGuestAgent;
      break;
    default:
      out.kind = Framing::Kind::kNewline;
      break;
  }
  return out;
}

void ToProto(const ChannelConfig& c, v1::ChannelConfig* out) {
  out->set_buffer_limit_bytes(c.buffer_limit_bytes);
  out->set_overflow_policy(ToProto(c.overflow_policy.value_or(OverflowPolicy::kBlock)));
  out->set_write_queue_limit_bytes(c.write_queue_limit_bytes);
  ToProto(c.default_framing.value_or(Framing{}), out->mutable_default_framing());
  out->set_lifetime(ToProto(c.lifetime.value_or(ChannelLifetime::kIncarnation)));
}

ChannelConfig FromProto(const v1::ChannelConfig& c) {
  ChannelConfig out;
  out.buffer_limit_bytes = c.buffer_limit_bytes();
  out.write_queue_limit_bytes = c.write_queue_limit_bytes();
  if (c.overflow_policy() == v1::OVERFLOW_POLICY_BLOCK) {
    out.overflow_policy = OverflowPolicy::kBlock;
  } else if (c.overflow_policy() == v1::OVERFLOW_POLICY_DROP_OLDEST) {
    out.overflow_policy = OverflowPolicy::kDropOldest;
  }
  if (c.has_default_framing()) out.default_framing = FromProto(c.default_framing());
  out.lifetime = FromProto(c.lifetime());
  return out;
}

ChannelUpdate FromProto(const v1::ChannelConfig& c, const google::protobuf::FieldMask& mask) {
  ChannelUpdate out;
  for (const std::string& path : mask.paths()) {
    const bool all = path == "config";
    if (all || path == "config.buffer_limit_bytes") {
      out.buffer_limit_bytes = c.buffer_limit_bytes();
    }
    if (all || path == "config.overflow_policy") {
      out.overflow_policy = c.overflow_policy() == v1::OVERFLOW_POLICY_DROP_OLDEST
                                ? OverflowPolicy::kDropOldest
                                : OverflowPolicy::kBlock;
    }
    if (all || path == "config.write_queue_limit_bytes") {
      out.write_queue_limit_bytes = c.write_queue_limit_bytes();
    }
    if (all || path == "config.default_framing") {
      out.default_framing = c.has_default_framing() ? FromProto(c.default_framing()) : Framing{};
    }
    if (all || path == "config.lifetime") {
      out.lifetime = FromProto(c.lifetime()).value_or(ChannelLifetime::kIncarnation);
    }
  }
  return out;
}

void ToProto(const ChannelInfo& c, v1::Channel* out) {
  out->set_name(FormatChannelName(c.domain_uuid, c.channel_id));
  out->set_uid(c.uid);
  out->set_channel_id(c.channel_id);
  out->set_domain_uuid(c.domain_uuid);
  out->set_domid(c.domid);
  out->set_devid(c.devid);
  out->set_transport(ToProto(c.transport));
  out->set_state(ToProto(c.state));
  out->set_frontend_state(ToProto(c.frontend_state));
  out->set_backend_state(ToProto(c.backend_state));
  out->set_epoch(c.epoch);
  ToProto(c.config, out->mutable_config());
  out->set_max_ack_level(ToProto(c.max_ack_level));
  out->set_stalled(c.stalled);
  if (c.stalled) SetTimeIfKnown(c.stall_start_time, out, &v1::Channel::mutable_stall_start_time);
  if (c.from_guest.next.epoch != 0 || c.epoch != 0) {
    ToProto(c.from_guest.earliest, out->mutable_from_guest()->mutable_earliest_position());
    ToProto(c.from_guest.next, out->mutable_from_guest()->mutable_next_position());
  }
  out->mutable_from_guest()->set_buffered_bytes(c.from_guest.buffered_bytes);
  out->mutable_from_guest()->set_unread_bytes(c.from_guest.unread_bytes);
  v1::HostToGuestStatus* to = out->mutable_to_guest();
  to->set_accepted_offset(c.to_guest.accepted_offset);
  to->set_delivered_offset(c.to_guest.delivered_offset);
  to->set_consumed_offset(c.to_guest.consumed_offset);
  to->set_queued_bytes(c.to_guest.queued_bytes);
  v1::ChannelCounters* k = out->mutable_counters();
  k->set_bytes_from_guest(c.counters.bytes_from_guest);
  k->set_bytes_to_guest(c.counters.bytes_to_guest);
  k->set_bytes_dropped(c.counters.bytes_dropped);
  k->set_bytes_discarded_to_guest(c.counters.bytes_discarded_to_guest);
  k->set_events_from_guest(c.counters.events_from_guest);
  k->set_events_to_guest(c.counters.events_to_guest);
  k->set_rate_limited_periods(c.counters.rate_limited_periods);
  k->set_stalls(c.counters.stalls);
  k->set_epochs(c.counters.epochs);
  SetTimeIfKnown(c.counters.start_time, k, &v1::ChannelCounters::mutable_start_time);
  if (c.write_lease.has_value()) ToProto(*c.write_lease, out->mutable_write_lease());
  out->set_observer_count(c.observer_count);
  SetTimeIfKnown(c.create_time, out, &v1::Channel::mutable_create_time);
  SetTimeIfKnown(c.connect_time, out, &v1::Channel::mutable_connect_time);
  if (c.last_error.kind != ChannelErrorKind::kNone) {
    v1::ChannelError* e = out->mutable_last_error();
    e->set_kind(ToProto(c.last_error.kind));
    e->set_message(c.last_error.message);
    SetTimeIfKnown(c.last_error.time, e, &v1::ChannelError::mutable_time);
  }
  out->set_toolstack_endpoint(c.toolstack_endpoint);
}

}  // namespace server
}  // namespace xenchan
