// Value types of the channel engine's public API.
//
// They mirror the concepts of proto/xenchan/v1 (Channel, Domain, events,
// acknowledgement levels, ...) so that the gRPC server can be a thin adapter,
// but the engine depends on neither protobuf nor gRPC. Field meanings follow
// the proto comments unless stated otherwise. Plain structs: copyable, no
// thread safety of their own.
#ifndef XENCHAN_BACKEND_ENGINE_TYPES_H_
#define XENCHAN_BACKEND_ENGINE_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "backend/engine/output_buffer.h"
#include "backend/framing/framing.h"

namespace xenchan {

// How a channel's data reaches xenchan (proto Transport).
enum class Transport { kRing, kToolstackSocket, kToolstackPty };

// Lifecycle of a channel as the API reports it (proto ChannelState).
enum class ChannelState {
  kCreating,         // hot-add transaction committed, device not offered yet
  kWaitingForGuest,  // backend InitWait (2): waiting for ring-ref/port
  kConnected,        // ring mapped, port bound, backend Connected (4)
  kDisconnected,     // the guest closed its end or went away
  kClosing,          // an operator unplug is in progress
  kClosed,           // unplugged (the final state of a removed channel)
  kFailed,           // connecting failed (bad ring info, map or bind error)
  kDomainDown,       // durable: its domain is not running; re-created when it returns
};

// How long a ring channel lives (proto ChannelLifetime).
enum class ChannelLifetime {
  kIncarnation,  // removed when the domain's current incarnation ends
  kDurable,      // declared for the domain's UUID: re-created in every incarnation
};

// xenbus states (xen/io/xenbus.h); 0 also stands for "node missing".
enum class XenbusState : int {
  kUnknown = 0,
  kInitialising = 1,
  kInitWait = 2,
  kInitialised = 3,
  kConnected = 4,
  kClosing = 5,
  kClosed = 6,
  kReconfiguring = 7,
  kReconfigured = 8,
};

enum class AckLevel { kNone = 0, kAccepted = 1, kDelivered = 2, kConsumed = 3 };

enum class ChannelErrorKind {
  kNone,
  kBadRingInfo,
  kGrantMapFailed,
  kEventBindFailed,
  kBadRingIndices,
  kGuestNotConnecting,
  kFrontendRemoved,
  kToolstackUnreachable,
  kXenstore,
  kUnplugForced,
};

struct ChannelError {
  ChannelErrorKind kind = ChannelErrorKind::kNone;
  std::string message;
  absl::Time time = absl::InfinitePast();
};

// Per-channel settings (proto ChannelConfig). Zero/unset fields of a create
// request take the engine's defaults.
struct ChannelConfig {
  size_t buffer_limit_bytes = 0;
  std::optional<OverflowPolicy> overflow_policy;
  size_t write_queue_limit_bytes = 0;
  // How a Call without its own framing is framed. The engine does not frame
  // anything itself; it stores this with the channel (backend key
  // `xenchan-framing`, see FramingSpec) so that it survives a restart.
  // Unset: newline.
  std::optional<Framing> default_framing;
  // Unset: kIncarnation.
  std::optional<ChannelLifetime> lifetime;
};

struct GuestToHostStatus {
  Position earliest;
  Position next;
  uint64_t buffered_bytes = 0;
  uint64_t unread_bytes = 0;
};

// Host-to-guest offsets in the current epoch.
struct HostToGuestStatus {
  uint64_t accepted_offset = 0;
  uint64_t delivered_offset = 0;
  uint64_t consumed_offset = 0;
  uint64_t queued_bytes = 0;
};

struct ChannelCounters {
  uint64_t bytes_from_guest = 0;
  uint64_t bytes_to_guest = 0;
  uint64_t bytes_dropped = 0;
  uint64_t bytes_discarded_to_guest = 0;
  uint64_t events_from_guest = 0;
  // Events from the guest that found nothing to do: no index moved, no
  // input consumed (ring_channel.h). Only these count against the strict
  // event allowance.
  uint64_t spurious_events_from_guest = 0;
  uint64_t events_to_guest = 0;
  // Periods in which the channel's port was left masked because it exceeded
  // either event limit (EngineOptions).
  uint64_t rate_limited_periods = 0;
  // Periods in which the guest changed its frontend xenstore keys more often
  // than the engine handles (ring_channel.h); the rest waited for the
  // period's end.
  uint64_t frontend_rate_limited_periods = 0;
  uint64_t stalls = 0;
  uint64_t epochs = 0;
  uint64_t bad_ring_rounds = 0;      // rounds ignored because of corrupt indices
  uint64_t bad_xenstore_values = 0;  // unparsable frontend state/ring-ref/port
  absl::Time start_time = absl::InfinitePast();
};

enum class SessionKind { kAttach, kWrite, kCall };

struct LeaseHolder {
  std::string session_id;
  std::string identity;
  SessionKind kind = SessionKind::kAttach;
  absl::Time acquire_time = absl::InfinitePast();
};

// A snapshot of one channel (proto Channel).
struct ChannelInfo {
  std::string uid;
  std::string channel_id;
  std::string domain_uuid;
  std::string domain_name;
  uint32_t domid = 0;
  uint32_t devid = 0;
  Transport transport = Transport::kRing;
  ChannelState state = ChannelState::kCreating;
  XenbusState frontend_state = XenbusState::kUnknown;
  XenbusState backend_state = XenbusState::kUnknown;
  uint64_t epoch = 0;
  ChannelConfig config;  // effective: defaults filled in
  AckLevel max_ack_level = AckLevel::kConsumed;
  bool stalled = false;
  absl::Time stall_start_time = absl::InfinitePast();
  GuestToHostStatus from_guest;
  HostToGuestStatus to_guest;
  ChannelCounters counters;
  std::optional<LeaseHolder> write_lease;
  uint32_t observer_count = 0;  // reading sessions (writers included)
  absl::Time create_time = absl::InfinitePast();
  absl::Time connect_time = absl::InfinitePast();
  ChannelError last_error;
  std::string toolstack_endpoint;  // socket path or pty of toolstack channels
};

// kNotRunning: a domain known only by the durable channels declared for its
// UUID (it rebooted, was saved, migrated away or powered off); domid is 0.
enum class DomainState { kRunning, kDying, kNotRunning };

struct DomainInfo {
  uint32_t domid = 0;
  std::string name;
  std::string uuid;
  DomainState state = DomainState::kRunning;
  uint32_t channel_count = 0;
  // The toolstack's last request in control/shutdown ("reboot", "suspend",
  // "poweroff", ...; empty if none was seen). The guest clears the node as
  // it acts, so the engine records it when it is written: it tells what the
  // domain's next incarnation is (DOMAIN_REBOOTED or DOMAIN_RESTORED).
  std::string shutdown_request;
};

enum class EpochChangeReason {
  kUnspecified,
  kGuestConnected,
  kGuestResumed,
  kTransportReopened,
  kServerRestarted,
  // A durable channel's domain came back as a new incarnation (new domid):
  kDomainRebooted,  // it booted afresh (reboot, or powered off and started again)
  kDomainRestored,  // it resumed from a saved image (xl save / xl restore)
  kDomainMigrated,  // it arrived by migration
};

struct EpochChange {
  uint64_t previous_epoch = 0;
  uint64_t epoch = 0;
  uint64_t previous_end_offset = 0;
  EpochChangeReason reason = EpochChangeReason::kUnspecified;
  absl::Time time = absl::InfinitePast();
};

enum class ChannelEventType {
  kAppeared,
  kRemoved,
  kConnected,
  kDisconnected,
  kEpochChanged,
  kStateChanged,
  kStalled,
  kUnstalled,
  kLeaseChanged,
  kGap,
};

enum class RemovalReason { kUnspecified, kDeleted, kDomainGone, kToolstackRemoved };

struct DropReport {
  uint64_t dropped_bytes = 0;
  Position first_position;
  Position end_position;
};

struct LeaseChange {
  std::optional<LeaseHolder> previous_holder;
  std::optional<LeaseHolder> holder;
  bool taken_over = false;
};

// One lifecycle event (proto WatchChannelsResponse without the snapshot
// kinds). `revision` increases by one per event, starting above every
// revision an earlier engine on this host could have issued.
struct ChannelEvent {
  uint64_t revision = 0;
  ChannelEventType type = ChannelEventType::kStateChanged;
  absl::Time time = absl::InfinitePast();
  ChannelInfo channel;
  std::optional<EpochChange> epoch_change;                     // kConnected, kEpochChanged
  std::optional<DropReport> drop_report;                       // kGap
  std::optional<LeaseChange> lease_change;                     // kLeaseChanged
  RemovalReason removal_reason = RemovalReason::kUnspecified;  // kRemoved
};

// Names a channel: `domain` is the domain's UUID (any case) or its name.
struct ChannelRef {
  std::string domain;
  std::string channel_id;
};

const char* ToString(ChannelState state);
const char* ToString(ChannelEventType type);
const char* ToString(Transport transport);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_TYPES_H_
