// Channel: the part of one channel that the engine thread and callers'
// threads share: its guest-to-host OutputBuffer, host-to-guest WriteQueue,
// reported status and counters, and its sessions (readers, the write lease
// and the queue of sessions waiting for it). See session.h for the
// caller-facing side.
//
// The engine thread runs the channel's xenbus state machine and ring I/O (in
// ring_channel.h) and updates this object under its lock; callers read and
// write through Sessions under the same lock. The lock is never held across
// a blocking call, so neither side waits for the other for longer than a
// memcpy.
//
// Memory: the buffer's retained bytes, the queue's queued bytes and a fixed
// cost per session are charged to one MemoryAccount (memory_budget.h) of the
// channel's domain before they grow; a channel may hold a floor of it
// reserved up front. The buffer may therefore hold less than its own limit
// when the budget is short: under BLOCK the engine then drains less (the
// guest stalls, reported like any stall), under DROP_OLDEST it drops; a
// write the budget refuses gets RESOURCE_EXHAUSTED and the writer is woken
// once memory is released. Lock order: the channel's lock, then the
// budget's.
#ifndef XENCHAN_BACKEND_ENGINE_CHANNEL_H_
#define XENCHAN_BACKEND_ENGINE_CHANNEL_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/engine/event_log.h"
#include "backend/engine/memory_budget.h"
#include "backend/engine/output_buffer.h"
#include "backend/engine/types.h"
#include "backend/engine/wakeup.h"
#include "backend/engine/write_queue.h"
#include "backend/util/mutex.h"

namespace xenchan {

// Something a session's stream carries besides plain data.
struct StallNotice {
  bool stalled = false;
  absl::Time stall_start_time = absl::InfinitePast();
  uint64_t buffered_bytes = 0;
};

struct StateChange {
  ChannelState state = ChannelState::kCreating;
  XenbusState frontend_state = XenbusState::kUnknown;
  XenbusState backend_state = XenbusState::kUnknown;
  ChannelError error;
  absl::Time time = absl::InfinitePast();
};

// One item of a session's stream, in stream order.
struct SessionRecord {
  enum class Kind { kData, kGap, kEpochChange, kStall, kStateChange, kLeaseLost };
  Kind kind = Kind::kData;
  Position position;                      // kData: first byte; kGap: first lost byte
  std::string data;                       // kData
  uint64_t lost = 0;                      // kGap
  EpochChange epoch_change;               // kEpochChange
  StallNotice stall;                      // kStall
  StateChange state;                      // kStateChange
  std::optional<LeaseHolder> new_holder;  // kLeaseLost
};

enum class SessionRole { kObserver, kWriter };

// Identity of a channel. Only `domid` and `devid` ever change: a durable
// channel is re-created in each new incarnation of its domain (Rebind).
struct ChannelIdentity {
  uint64_t serial = 0;  // engine-unique, never reused within a process
  std::string uid;
  std::string channel_id;
  std::string domain_uuid;
  uint32_t domid = 0;
  uint32_t devid = 0;
  Transport transport = Transport::kRing;
};

// Which host-to-guest progress (bytes delivered into the ring, consumed by
// the guest) wakes a session (SessionOptions, session.h). Everything else
// (data, notices, state, epoch, lease, removal, configuration, memory
// released) wakes every session.
enum class ProgressWakeups {
  kAll,    // every movement of the delivered or consumed offset
  kAsked,  // only what WakeOnProgress asked for, and room after a full queue
};

// Thread-safe (one internal lock). Owned jointly (shared_ptr) by the engine
// and the sessions open on it; it stays readable after removal so sessions
// can drain what was buffered before they see the removal status.
class Channel {
 public:
  // What one session costs the memory budget: an upper bound of its notice
  // queue (the data it reads is handed out, not kept).
  static const size_t kSessionMemory;

  Channel(ChannelIdentity identity, ChannelConfig effective_config, std::string domain_name,
          size_t max_readers, std::shared_ptr<Wakeup> wakeup, std::shared_ptr<EventLog> log,
          absl::Time now, std::shared_ptr<MemoryBudget> budget = nullptr, size_t memory_floor = 0);

  // `domid` and `devid` change only in Rebind, which the engine calls on its
  // thread holding both its registry lock and this channel's lock: read them
  // on the engine thread or under either lock.
  const ChannelIdentity& identity() const { return identity_; }
  // The effective settings (every field set). They change only in
  // UpdateConfig, under the lock: this is a copy taken under it (InfoLocked
  // has the same).
  ChannelConfig config() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t serial() const { return identity_.serial; }

  Mutex& mu() ABSL_LOCK_RETURNED(mu_) { return mu_; }

  // The snapshot the API reports.
  ChannelInfo Info() const ABSL_LOCKS_EXCLUDED(mu_);
  ChannelInfo InfoLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Appends a lifecycle event of this channel (snapshotting it now). Must be
  // called without the lock held.
  void Emit(ChannelEventType type, std::optional<EpochChange> epoch_change = std::nullopt,
            std::optional<DropReport> drop = std::nullopt,
            std::optional<LeaseChange> lease = std::nullopt,
            RemovalReason removal = RemovalReason::kUnspecified) ABSL_LOCKS_EXCLUDED(mu_);

  // --- Engine-thread side (all take the lock themselves). ---

  // Changes the reported lifecycle fields. Every session gets a state
  // notice. Returns true if anything changed.
  bool SetState(ChannelState state, XenbusState fe, XenbusState be,
                std::optional<ChannelError> error) ABSL_LOCKS_EXCLUDED(mu_);
  // Starts epoch `epoch` (the guest connected or reconnected): new buffer
  // epoch, write queue reset (undelivered bytes discarded and counted).
  // Returns the EpochChange to report.
  EpochChange BeginEpoch(uint64_t epoch, EpochChangeReason reason, absl::Time now)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The channel left CONNECTED: undelivered writes are discarded.
  void DiscardQueuedWrites() ABSL_LOCKS_EXCLUDED(mu_);

  // Space the buffer can take now (0 when stalled under BLOCK, by its own
  // limit or by the memory budget). A query only: see ReserveOutput.
  size_t BufferSpace() const ABSL_LOCKS_EXCLUDED(mu_);
  // Reserves budget for appending up to `max` bytes and returns how many
  // the caller may drain now (as BufferSpace, at most `max`). Every
  // reservation must be followed by AppendOutput (with 0 bytes if nothing
  // was drained), which settles it. When the budget holds the channel back,
  // the budget is asked to reclaim memory and to kick this channel when
  // some is released.
  size_t ReserveOutput(size_t max) ABSL_LOCKS_EXCLUDED(mu_);
  // Appends guest output (at most what ReserveOutput granted under BLOCK;
  // without a ReserveOutput first, it reserves itself) and wakes readers;
  // settles the reservation. Returns the bytes dropped by
  // this append (DROP_OLDEST).
  uint64_t AppendOutput(const char* data, size_t n) ABSL_LOCKS_EXCLUDED(mu_);
  // Memory was released after this channel was refused some: wakes sessions
  // whose write the budget refused.
  void OnMemoryReleased() ABSL_LOCKS_EXCLUDED(mu_);
  // Gives back replay-only bytes (every reader was handed them; a slower
  // reader gets a gap). Returns the bytes trimmed.
  size_t TrimReplay() ABSL_LOCKS_EXCLUDED(mu_);
  // Bytes charged to the memory budget for this channel now.
  size_t memory_used() const ABSL_LOCKS_EXCLUDED(mu_);
  // Copies up to `max` queued host-to-guest bytes.
  size_t PeekInput(char* dst, size_t max) const ABSL_LOCKS_EXCLUDED(mu_);
  // Records `n` bytes delivered into the ring and the guest's consumption
  // (offset in the current epoch); wakes writers if an offset moved.
  void InputProgress(size_t delivered, uint64_t consumed_offset) ABSL_LOCKS_EXCLUDED(mu_);
  // Re-evaluates the stall condition (stalled = `draining` and the buffer
  // has no space under BLOCK); returns +1 when a stall began, -1 when it
  // ended, 0 otherwise. Sessions get stall notices.
  int UpdateStall(absl::Time now, bool draining) ABSL_LOCKS_EXCLUDED(mu_);
  // Counter updates.
  void CountEvent(bool from_guest) ABSL_LOCKS_EXCLUDED(mu_);
  // A guest event that found nothing to do (ring_channel.h).
  void CountSpuriousEvent() ABSL_LOCKS_EXCLUDED(mu_);
  void CountRateLimited() ABSL_LOCKS_EXCLUDED(mu_);
  void CountFrontendRateLimited() ABSL_LOCKS_EXCLUDED(mu_);
  void CountBadRing(const std::string& message, absl::Time now, bool report)
      ABSL_LOCKS_EXCLUDED(mu_);
  void CountBadXenstore() ABSL_LOCKS_EXCLUDED(mu_);
  // Takes the drop report accumulated since the last call, if any bytes
  // were dropped.
  std::optional<DropReport> TakeDropReport() ABSL_LOCKS_EXCLUDED(mu_);
  // The channel is gone: sessions see `status` once they have drained the
  // buffer. The lease and the waiting queue are cleared.
  void MarkRemoved(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  bool removed() const ABSL_LOCKS_EXCLUDED(mu_);
  void SetDomainName(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  // A durable channel's domain is not running: state DOMAIN_DOWN (every
  // session gets a state notice), undelivered writes discarded, the buffer
  // and the sessions (and the write lease) kept.
  void SetDomainDown() ABSL_LOCKS_EXCLUDED(mu_);
  // A durable channel is re-created as device `devid` of a new incarnation
  // `domid` of its domain: identity, reported fields and memory charges move
  // there. Engine thread, with the engine's registry lock held.
  void Rebind(uint32_t domid, uint32_t devid, const std::string& domain_name)
      ABSL_LOCKS_EXCLUDED(mu_);
  void SetToolstackEndpoint(const std::string& endpoint) ABSL_LOCKS_EXCLUDED(mu_);
  // UpdateChannel: checks that `config` (every field set) can be applied
  // now. FAILED_PRECONDITION if its write-queue limit is below the bytes
  // queued for the guest (the queue never drops bytes it accepted).
  absl::Status CheckConfig(const ChannelConfig& config) const ABSL_LOCKS_EXCLUDED(mu_);
  // Applies `config` (every field set) at once: the buffer's limit (a shrink below the bytes
  // retained evicts the oldest as DROP_OLDEST does; readers get a gap and TakeDropReport reports
  // the bytes no reader had reached), the overflow policy, the write-queue
  // limit (if writers queued more since CheckConfig, the queue keeps it and
  // takes no more until the guest has taken the excess), and the recorded
  // framing and lifetime. Sessions are woken (a writer may have room now).
  // The caller services the ring (which re-evaluates the stall).
  void UpdateConfig(const ChannelConfig& config) ABSL_LOCKS_EXCLUDED(mu_);
  void SetMaxAckLevel(AckLevel level) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class Session;

  struct SessionSlot {
    SessionRole role = SessionRole::kObserver;
    SessionKind kind = SessionKind::kAttach;
    std::string identity;
    int notify_fd = -1;              // owned by the Session; -1 until asked for
    bool wake_pending = false;       // woken since its last Read
    std::function<void()> on_ready;  // may be empty
    ReadCursor cursor;
    std::deque<SessionRecord> notices;  // bounded
    bool has_lease = false;
    bool waiting_for_lease = false;
    bool lease_lost = false;
    bool lease_lost_delivered = false;
    // Which progress wakes it (session.h). kAsked: the offsets of
    // `progress_epoch` it waits for (0: none), and whether a Write found
    // the queue full since the last delivery.
    ProgressWakeups progress_wakeups = ProgressWakeups::kAll;
    uint64_t progress_epoch = 0;
    uint64_t wake_delivered_at = 0;
    uint64_t wake_consumed_at = 0;
    bool wants_room = false;
  };

  // Signals every session (eventfd) and collects their callbacks into
  // `callbacks`, to be run after the lock is released.
  void WakeSessionsLocked(std::vector<std::function<void()>>* callbacks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes the sessions that the write progress just made concerns (every
  // kAll session; kAsked ones whose WakeOnProgress it met, or that wait for
  // room and got some: delivery moved on from `delivered_before`).
  void WakeForProgressLocked(uint64_t delivered_before,
                             std::vector<std::function<void()>>* callbacks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushNoticeLocked(SessionSlot& slot, SessionRecord record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Converts buffer records into session records.
  void ConvertLocked(std::vector<OutputRecord> in, std::vector<SessionRecord>* out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  StateChange StateChangeLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The most bytes the buffer may retain now: what it holds and has
  // reserved, plus what the account could still take.
  size_t OutputCapacityLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Shrinks the account to what the buffer, queue and sessions hold (growth
  // is always charged before it happens).
  void SyncMemoryLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t ReserveOutputLocked(size_t max) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Grants the lease to the first waiting session if it is free. Returns the
  // lease change to report, if any.
  std::optional<LeaseChange> GrantToWaiterLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void RunCallbacks(std::vector<std::function<void()>>& callbacks);

  ChannelIdentity identity_;  // domid and devid: see identity()
  const size_t max_readers_;
  const std::shared_ptr<Wakeup> wakeup_;
  const std::shared_ptr<EventLog> log_;

  mutable Mutex mu_;
  OutputBuffer buffer_ ABSL_GUARDED_BY(mu_);
  WriteQueue queue_ ABSL_GUARDED_BY(mu_);
  MemoryAccount memory_ ABSL_GUARDED_BY(mu_);
  size_t output_reserved_ ABSL_GUARDED_BY(mu_) = 0;  // ReserveOutput, not yet appended
  bool output_reservation_open_ ABSL_GUARDED_BY(mu_) = false;
  size_t session_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // kSessionMemory per session
  bool writers_wait_for_memory_ ABSL_GUARDED_BY(mu_) = false;
  // Lifecycle fields, counters and the effective config (info_.config).
  ChannelInfo info_ ABSL_GUARDED_BY(mu_);
  std::deque<EpochChange> epoch_changes_ ABSL_GUARDED_BY(mu_);  // recent ones
  std::map<uint64_t, SessionSlot> sessions_ ABSL_GUARDED_BY(mu_);
  uint64_t next_session_ ABSL_GUARDED_BY(mu_) = 1;
  std::optional<LeaseHolder> lease_ ABSL_GUARDED_BY(mu_);
  uint64_t lease_slot_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<uint64_t> lease_waiters_ ABSL_GUARDED_BY(mu_);
  bool removed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status removed_status_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_reported_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<Position> drop_first_ ABSL_GUARDED_BY(mu_);
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_CHANNEL_H_
