// RingChannel: the xenbus backend state machine (XEN-CHANNELS §7) and ring
// I/O (§3.3-3.5) of one channel that xenchan serves itself, on the engine
// thread.
//
// State machine (BE = our backend `state`, FE = the guest's):
//   created      -> FE watch armed, BE 1 -> 2 (WAITING_FOR_GUEST)
//   BE 2, FE 3/4 -> strict ring-ref/port, map, bind, attach, BE 4, new epoch
//                   (CONNECTED); any failure -> BE 5 (FAILED, last_error)
//   BE 4, FE 3 with a changed ring-ref/port (resume) -> unmap, unbind,
//                   remap, rebind, new epoch (EPOCH_CHANGED). FE 4 with a
//                   changed ring-ref/port counts too: the guest answers our
//                   4 at once, so its 3 may be gone before we look.
//                   (Garbage ring info there fails the channel: BE 5.)
//   FE 5         -> data path stopped, mapping kept, BE 5 (DISCONNECTED)
//   FE 6 or gone -> unmap, unbind, BE 6 (DISCONNECTED)
//   BE 6, FE 1   -> (kexec reset) cleared, BE 2 (WAITING_FOR_GUEST)
//   domain gone  -> unmap, unbind at once (REMOVED; the engine removes our
//                   backend directory). A durable channel is not removed
//                   but left DOMAIN_DOWN; the engine re-creates it, with a
//                   new RingChannel, in the domain's next incarnation
//   unplug       -> persist the intent (kUnpluggingNode in our backend dir,
//                   holding the force deadline), BE 5, wait for FE 6 (or
//                   force at the deadline), unmap, unbind, BE 6, record the
//                   devid's release, rm FE dir, rm BE dir (CLOSING ->
//                   REMOVED)
//   restart during an unplug -> the recovered channel resumes the sequence
//                   where it stopped (nothing is mapped any more): BE 1/2/6
//                   or FE 6/gone -> finish at once; BE 4 -> BE 5; then wait
//                   for FE 6 until the persisted deadline (CLOSING)
//   restart      -> BE 4 found with FE 3/4: re-map, re-bind (the port is
//                   unbound again), new epoch (SERVER_RESTARTED); the ring's
//                   indices are adopted, so nothing still in it is lost.
// Frontend values are parsed strictly; garbage is counted and ignored.
// Frontend changes are handled at most frontend_change_allowance times per
// frontend_change_period per channel: a guest that rewrites its xenstore
// keys in a loop would otherwise cost the engine thread xenstore round trips
// (and the engine-wide event log an event) per write. Changes past the
// allowance are deferred to the end of the period, when the frontend is
// read afresh, so the latest state is always acted on.
//
// Ring I/O on every event and after (re)connecting: drain `out` into the
// channel's OutputBuffer as far as its Space() allows, fill `in` from the
// write queue, notify when a waiting guest must hear of it (input put in,
// room freed in an `out` it found full, and once per epoch, as a previous
// backend may have freed room without telling), then unmask unless the
// channel is in debt with one of its two event token buckets (then the port
// stays masked until that debt is repaid). Corrupt indices are counted and
// the round is ignored.
//
// Event rate limits (XEN-CHANNELS §3.5.3 / §5.1 count every event against
// xenconsoled's 30 per 200 ms; we deliberately do not, see
// docs/PROTOCOL-NOTES.md). What an event moved is the guest's progress since
// its previous event: bytes it produced into `out` that we drained plus bytes
// of `in` it consumed (monotonic counters of ConsoleRing, checked against the
// ring sizes; a corrupt ring or an inactive data path moves nothing). Work
// done between events (a session wrote, memory was released) does not take
// that credit away, so the second notify of an echo round trip, whose data a
// pass in between already drained, is not spurious.
//  - a *spurious* event is one whose guest moved nothing since its previous
//    event, unless that event moved data (a guest notifies once per move,
//    and one pass may cover two: its consumed input and its answer; so an
//    event that moved data leaves credit for one more, charged as it was).
//    Spurious events are
//    charged to a strict bucket (event_allowance
//    per event_period, 30 / 200 ms by default, as a burst of 30): a guest
//    that kicks without reason gets xenconsoled's treatment;
//  - every event is charged to a generous cap bucket (event_cap events per
//    event_cap_period, 2000 / 200 ms by default), which bounds the engine
//    thread's work per channel whatever the guest does: an event costs
//    kCapUnitsPerEvent units less one per byte moved, so a spurious event or
//    one that moved a byte costs a whole event, and one that moved 32 bytes
//    or more is paid for by its data. A guest that moves a byte per event is
//    held to the cap; a bulk transfer whose every event moves data never is.
// A bucket in debt masks the port only until the debt is repaid (one event's
// refill time: 6.7 ms for the strict bucket, 100 us for the cap), not for the
// rest of a window. Counting every event strictly would cap a busy channel at
// 30 x 2 KiB per 200 ms (~0.3 MB/s), far below what the ring can carry.
//
// Thread safety: engine thread only (the Channel it updates is thread-safe).
//
// The state machine is in ring_channel.cc, ring I/O and the event rate
// limits in ring_channel_io.cc.
#ifndef XENCHAN_BACKEND_ENGINE_RING_CHANNEL_H_
#define XENCHAN_BACKEND_ENGINE_RING_CHANNEL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/engine/channel.h"
#include "backend/engine/rate_limiter.h"
#include "backend/engine/token_bucket.h"
#include "backend/engine/types.h"
#include "backend/platform/event_channels.h"
#include "backend/platform/grant_tables.h"
#include "backend/platform/xenstore.h"
#include "backend/ring/console_ring.h"

namespace xenchan {

class RingChannel;

// Result of an unplug.
struct DeleteResult {
  ChannelInfo channel;  // final state, CLOSED
  bool forced = false;  // the guest did not close in time
};

// What the engine provides to its ring channels.
class RingHost {
 public:
  virtual ~RingHost() = default;
  virtual XenStore& xs() = 0;
  virtual EventChannels& evtchn() = 0;
  virtual GrantTables& gnttab() = 0;
  // Routes events of local port `port` to `channel` (nullptr: stop).
  virtual void RoutePort(EvtchnPort port, RingChannel* channel) = 0;
  // An unplug is releasing `devid` of `domid` (called just before the
  // frontend directory is removed).
  virtual void DevidReleased(uint32_t domid, uint32_t devid) = 0;
};

struct RingParams {
  std::string frontend_path;
  std::string backend_path;
  std::string watch_token;
  // Spurious events (see the file comment) allowed per period.
  uint32_t event_allowance = 30;
  absl::Duration event_period = absl::Milliseconds(200);
  // All events allowed per period.
  uint32_t event_cap = 2000;
  absl::Duration event_cap_period = absl::Milliseconds(200);
  // Frontend (xenstore) changes handled per period; a kexec reset takes 5,
  // a resume 2, and the watch may fire once per key written.
  uint32_t frontend_change_allowance = 50;
  absl::Duration frontend_change_period = absl::Seconds(1);
  absl::Duration connect_timeout = absl::Seconds(30);
  uint64_t persisted_epoch = 0;  // highest epoch ever used by this channel
  bool recovered = false;        // found by a restarted engine
  // A durable channel re-created in a new incarnation of its domain: the
  // reason its first connection reports.
  std::optional<EpochChangeReason> first_connect_reason;
  // Recovered with kUnpluggingNode set: resume the unplug, forced at this
  // deadline.
  std::optional<absl::Time> resume_unplug_deadline;
};

class RingChannel {
 public:
  using UnplugDone = std::function<void(absl::StatusOr<DeleteResult>)>;
  using ConnectDone = std::function<void(absl::Status)>;

  RingChannel(RingHost* host, std::shared_ptr<Channel> channel, RingParams params);
  // Unmaps and unbinds (process-local resources only; xenstore untouched, so
  // a new engine can recover the channel).
  ~RingChannel();
  RingChannel(const RingChannel&) = delete;
  RingChannel& operator=(const RingChannel&) = delete;

  // Arms the frontend watch. `backend_state` is the backend state as it is
  // in xenstore now (1 for a fresh channel: it is moved to 2).
  absl::Status Start(XenbusState backend_state, absl::Time now);

  // The frontend watch fired.
  void OnFrontendChanged(absl::Time now);
  // Our local port fired (it is now masked).
  void OnPortEvent(absl::Time now);
  // Moves bytes both ways if the data path is active. Returns true if it did
  // anything (an index moved, or the guest consumed input since the last
  // look). Whether an event was spurious is decided by OnPortEvent from the
  // guest's progress since its previous event, not by this pass.
  bool Service(absl::Time now);
  // Earliest time OnTimer wants to run; InfiniteFuture if none.
  absl::Time NextDeadline() const;
  void OnTimer(absl::Time now);
  // The engine's bookkeeping for its timer queue (Engine::ScheduleRing): the
  // NextDeadline it queued for this channel when it last looked.
  absl::Time queued_deadline() const { return queued_deadline_; }
  void set_queued_deadline(absl::Time t) { queued_deadline_ = t; }

  // Operator unplug (§2.3 order). `done` runs on the engine thread when the
  // channel is gone. Concurrent unplugs wait for the same one.
  void Unplug(absl::Duration force_after, UnplugDone done, absl::Time now);
  // Calls `done` once the channel is CONNECTED (OK), FAILED
  // (FAILED_PRECONDITION), removed (UNAVAILABLE/NOT_FOUND) or at `deadline`
  // (DEADLINE_EXCEEDED).
  void WaitConnected(absl::Time deadline, ConnectDone done);
  // The domain died: unmap and unbind at once, after a last drain of its
  // out ring, as every disconnect does (ReleaseForDomainGone), then,
  // once the engine has removed our backend directory, report the removal
  // (ReportDomainGone).
  void ReleaseForDomainGone();
  void ReportDomainGone();
  // As ReportDomainGone for a durable channel: it is not removed but waits,
  // DOMAIN_DOWN, for the domain's next incarnation (a new RingChannel).
  void ReportDomainDown();

  bool finished() const { return finished_; }
  // The guest moved this device to Closing or Closed itself (it shuts its
  // devices down before a poweroff or reboot, not before a suspend).
  bool guest_closed() const { return guest_closed_; }
  Channel& channel() { return *channel_; }
  const std::shared_ptr<Channel>& shared_channel() const { return channel_; }
  const RingParams& params() const { return params_; }

 private:
  struct RingInfo {
    uint32_t ring_ref = 0;
    uint32_t port = 0;
  };
  // nullopt if ring-ref or port is missing or not a strict decimal in range.
  std::optional<RingInfo> ReadRingInfo();
  // OnFrontendChanged past the rate limit.
  void HandleFrontendChange(absl::Time now);
  // Reads FE state: kUnknown if missing; nullopt for garbage.
  std::optional<XenbusState> ReadFrontendState();
  void Connect(EpochChangeReason reason, absl::Time now);
  void Fail(ChannelErrorKind kind, const std::string& message, absl::Time now);
  void Disconnect();
  void SetBackendState(XenbusState state);
  // Publishes state (and an event) after a transition.
  void Publish(ChannelState state, std::optional<ChannelError> error, bool was_connected);
  void FinishUnplug(bool forced, absl::Time now);
  void BadRing(const absl::Status& status, absl::Time now);
  void MaybeEmitGap(absl::Time now);
  void ResolveConnectWaiters(const absl::Status& status);
  uint32_t domid() const { return channel_->identity().domid; }

  // At most one GAP event per channel per interval.
  static constexpr absl::Duration kGapEventInterval = absl::Seconds(1);

  RingHost* const host_;
  const std::shared_ptr<Channel> channel_;
  RingParams params_;

  XenbusState be_state_ = XenbusState::kInitialising;
  XenbusState fe_state_ = XenbusState::kUnknown;
  ChannelState state_ = ChannelState::kCreating;
  std::unique_ptr<GrantMapping> mapping_;
  std::optional<ConsoleRing> ring_;
  std::optional<EvtchnPort> local_port_;
  RingInfo connected_info_;
  bool data_active_ = false;
  bool ever_connected_ = false;
  bool final_drain_ = false;
  // The first Service of an epoch notifies whatever it moved: a frontend may
  // wait for an event that a previous backend (a killed server, a domain
  // before its resume) freed room for but never sent.
  bool kick_pending_ = false;
  bool guest_closed_ = false;  // Disconnect's last Service is running
  uint64_t in_base_ = 0;       // ring in_produced at the epoch's start

  // Units of the cap bucket one event costs when it moved nothing; each byte
  // the guest moved pays for one of them.
  static constexpr uint64_t kCapUnitsPerEvent = 32;

  TokenBucket spurious_bucket_;       // spurious events only
  TokenBucket cap_bucket_;            // every event, kCapUnitsPerEvent units each
  uint64_t limited_seen_ = 0;         // limited episodes of both, last counted
  uint64_t in_consumed_seen_ = 0;     // ring InConsumed() at the last look
  uint64_t event_progress_seen_ = 0;  // guest progress at the previous event
  // The previous event moved data: one more event without progress is not
  // spurious and costs the cap what that event cost.
  std::optional<uint64_t> duplicate_units_;
  bool masked_ = false;
  absl::Time unmask_at_ = absl::InfiniteFuture();

  RateLimiter frontend_limiter_;
  uint64_t frontend_limited_seen_ = 0;
  bool frontend_deferred_ = false;  // a change waits for the period's end

  bool bad_ring_reported_ = false;
  absl::Time last_bad_ring_event_ = absl::InfinitePast();
  bool gap_pending_ = false;
  absl::Time last_gap_event_ = absl::InfinitePast();

  absl::Time waiting_since_ = absl::InfiniteFuture();
  bool timeout_reported_ = false;
  std::vector<std::pair<absl::Time, ConnectDone>> connect_waiters_;

  bool unplugging_ = false;
  // A resumed unplug that needs no answer from the guest any more: the first
  // frontend watch firing finishes it.
  bool finish_unplug_pending_ = false;
  absl::Time unplug_deadline_ = absl::InfiniteFuture();
  std::vector<UnplugDone> unplug_waiters_;
  bool finished_ = false;
  bool domain_gone_ = false;  // released, removal not reported yet
  absl::Time queued_deadline_ = absl::InfiniteFuture();
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_RING_CHANNEL_H_
