// The channel engine: the heart of xenchan (DESIGN §2-4), with no gRPC in it.
//
// One engine serves every PV channel of one Xen host (real, or simulated by
// xensim) from dom0:
//  - discovers domains from xenstore watches only (@introduceDomain,
//    @releaseDomain, /local/domain/D/name), never by polling;
//  - hot-adds RING channels (XEN-CHANNELS §2.5: one transaction, private
//    backend path /local/domain/0/backend/<type>/D/N, devid 1..9) and runs
//    the backend state machine of §7 for each (ring_channel.h), including
//    restart recovery of the channels a previous engine process served;
//  - moves bytes between each ring and its channel's buffers (§3.3-3.5) with
//    per-channel event rate limits;
//  - serves sessions (session.h): readers with cursors, one write lease,
//    acknowledgements at three levels;
//  - reports every lifecycle change as a ChannelEvent with a revision.
//
// Threading: one engine thread owns the rings, the event channels and the
// xenstore connection. It waits in poll() on the xenstore watch fd, the
// event-channel fd and a wake-up eventfd, with a timeout only when a timer
// is due (rate-limit unmask, unplug force, connect timeout), so an idle
// engine does not wake at all. Callers' methods never wait for the engine
// thread or a guest: queries read shared state under short locks; commands
// (create, delete) are posted and answered through callbacks, which run on
// the engine thread and must not block (the *AndWait wrappers block the
// caller, never the engine).
//
// Status codes: see each method.
//
// The implementation is split by what it does: engine.cc (the engine
// thread's loop, queries, events, sessions), engine_domains.cc (domain
// discovery), engine_hotplug.cc (hot-add and unplug of ring channels; the
// devid choice itself is devid.h), engine_recovery.cc (taking over the ring
// channels of a previous engine process), engine_durable.cc (durable
// channels), engine_adopt.cc and engine_moved.cc (durable channels arriving
// from and leaving for other hosts of a fleet), engine_update.cc
// (UpdateChannel) and engine_toolstack.cc (xl.cfg channels). Every xenstore
// path comes from xenstore_layout.h.
#ifndef XENCHAN_BACKEND_ENGINE_ENGINE_H_
#define XENCHAN_BACKEND_ENGINE_ENGINE_H_

#include <poll.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/engine/channel.h"
#include "backend/engine/console_device.h"
#include "backend/engine/devid.h"
#include "backend/engine/event_log.h"
#include "backend/engine/memory_budget.h"
#include "backend/engine/ring_channel.h"
#include "backend/engine/session.h"
#include "backend/engine/toolstack_channel.h"
#include "backend/engine/types.h"
#include "backend/engine/wakeup.h"
#include "backend/platform/domain_control.h"
#include "backend/platform/event_channels.h"
#include "backend/platform/grant_tables.h"
#include "backend/platform/xenstore.h"
#include "backend/store/declaration_store.h"
#include "backend/util/api_limits.h"
#include "backend/util/mutex.h"

namespace xenchan {

// The name of the engine thread (at most 15 characters, the kernel's limit).
inline constexpr char kEngineThreadName[] = "xenchan-engine";

struct EngineOptions {
  // The platform. Required. The engine thread is their only user.
  std::unique_ptr<XenStore> xenstore;
  std::unique_ptr<EventChannels> event_channels;
  std::unique_ptr<GrantTables> grant_tables;

  uint32_t backend_domid = 0;
  // Private backend type: channels live at /local/domain/B/backend/<type>/D/N
  // (XEN-CHANNELS §1.8 B). Also written as the frontend `type` and `output`.
  std::string backend_type = "xenchan";

  // Defaults for channels created without explicit settings.
  size_t buffer_limit_bytes = kDefaultBufferLimitBytes;
  OverflowPolicy overflow_policy = OverflowPolicy::kBlock;
  size_t write_queue_limit_bytes = kDefaultWriteQueueLimitBytes;

  // Per-channel event rate limits (ring_channel.h, docs/PROTOCOL-NOTES.md),
  // token buckets that mask the port only until their debt is repaid.
  // Spurious events (the guest moved no index since its previous event) are
  // held to xenconsoled's rate: `event_allowance` per `event_period`, with a
  // burst of `event_allowance`.
  uint32_t event_allowance = 30;
  absl::Duration event_period = absl::Milliseconds(200);
  // Every event is charged to this cap, which bounds the engine's work per
  // channel (one event costs a ring pass, an unmask and usually a notify):
  // a whole event for one that moved nothing, 1/32 of an event less per
  // byte moved, nothing for one that moved 32 bytes or more (its data pays
  // for it), so a guest moving a byte per event is held to about `event_cap`
  // per `event_cap_period` and a bulk transfer is never held. Chosen from
  // ring_bench on the simulated host: the whole process spends 20-40 us of
  // CPU per event, so 2000 per 200 ms (10k/s) holds one channel's unpaid
  // events to roughly a third of a core. Setting event_cap to event_allowance
  // holds a byte-per-event guest to xenconsoled's rate too.
  uint32_t event_cap = 2000;
  absl::Duration event_cap_period = absl::Milliseconds(200);
  // After this long without the guest connecting, the channel reports
  // GUEST_NOT_CONNECTING (it keeps waiting).
  absl::Duration connect_timeout = absl::Seconds(30);
  // A devid an unplug released is not reused for this long (§2.5: the guest
  // must have noticed the old device go). Releases are persisted, so this
  // holds across engine restarts too.
  absl::Duration devid_reuse_delay = absl::Seconds(10);
  // Reading sessions per channel.
  size_t max_readers_per_channel = 16;
  // Lifecycle events retained for resuming watchers.
  size_t event_retention = 10000;
  // At most this many channels per guest (hvc allows 7 besides hvc0).
  uint32_t max_channels_per_domain = kMaxChannelsPerDomain;
  // Discover and serve xl.cfg channels (QEMU's) as toolstack channels.
  bool serve_toolstack_channels = true;

  // Where durable channels are declared (engine_durable.cc). Optional:
  // without it a durable create is FAILED_PRECONDITION. The engine thread is
  // its only user; a store change is one SQLite transaction (an fsync),
  // taken only by lifecycle events, never by the data path.
  std::unique_ptr<DeclarationStore> declarations;
  // A durable channel re-created in a restored or migrated domain whose
  // guest has not begun to connect it (frontend still Initialising) after
  // this long is moved once to another devid: the guest resumed before the
  // device existed and holds a stale device at the old devid, which Linux
  // does not probe again, while a device written after the resume is probed
  // (docs/PROTOCOL-NOTES.md, issue 12).
  absl::Duration resume_probe_timeout = absl::Seconds(5);
  // Holding a returning domain (engine_hold.cc). Optional: without it the
  // engine never pauses a domain. With it, a domain with durable channels
  // that is introduced again (reboot, restore, incoming migration) is
  // paused from @introduceDomain until its channels' devices exist, so that
  // the guest finds them when it boots or resumes rather than racing them;
  // Xen counts pauses, so the toolstack's own unpause does not end the
  // hold. A hold never lasts longer than `domain_hold_limit`.
  std::unique_ptr<DomainControl> domain_control;
  absl::Duration domain_hold_limit = absl::Seconds(30);
  // The fleet (engine_adopt.cc). Optional. Called on the engine thread when
  // a domain with a UUID is introduced after start and no channel is
  // declared here for that UUID: a domain that may have arrived from another
  // host with durable channels declared in the fleet. Returns true if the
  // caller will answer with AdoptDeclarations (then the engine holds the
  // domain paused meanwhile, at most `adoption_hold_limit`). Must not block.
  std::function<bool(uint32_t domid, const std::string& uuid)> on_domain_arrival;
  absl::Duration adoption_hold_limit = absl::Seconds(5);
  // A channel let go because its domain runs on another host
  // (ReleaseMovedChannels) stays readable this long, then is removed.
  absl::Duration moved_channel_retention = absl::Minutes(10);

  // Memory (memory_budget.h): every channel buffer, write queue, session
  // and the event log's retention is charged to one budget that is never
  // exceeded. `memory_budget_bytes` caps the total, `domain_memory_limit_bytes`
  // what one guest's channels may hold, and each channel reserves a floor of
  // `channel_memory_reserve_bytes` when it is created (so that a quiet
  // channel keeps working while others hold the rest; a hot-add the budget
  // cannot give its floor fails with RESOURCE_EXHAUSTED). The event log
  // reserves min(event_retention x 1 KiB, memory_budget_bytes / 16) and
  // retains fewer events when it needs more than that and the budget has
  // none.
  size_t memory_budget_bytes = size_t{256} << 20;
  size_t domain_memory_limit_bytes = size_t{64} << 20;
  size_t channel_memory_reserve_bytes = size_t{64} << 10;
};

struct CreateChannelRequest {
  std::string domain;      // UUID or name
  std::string channel_id;  // see ValidateChannelId
  ChannelConfig config;    // unset fields take the engine defaults
  bool wait_until_connected = false;
  absl::Duration connect_timeout = absl::Seconds(30);
  bool validate_only = false;
};

// What Engine::UpdateChannel changes: the fields that are set, each to its
// value, which is checked as a create checks it. A 0 limit means the
// engine's default, as in a create.
struct ChannelUpdate {
  std::optional<size_t> buffer_limit_bytes;
  std::optional<OverflowPolicy> overflow_policy;
  std::optional<size_t> write_queue_limit_bytes;
  std::optional<Framing> default_framing;
  std::optional<ChannelLifetime> lifetime;
};

// A consistent view: `channels` reflect at least every event up to
// `revision` (events after it may or may not be reflected).
struct EngineSnapshot {
  uint64_t revision = 0;
  std::vector<DomainInfo> domains;    // by domid
  std::vector<ChannelInfo> channels;  // by (domain uuid, channel id)
};

struct EngineStats {
  uint64_t wakeups = 0;  // returns from poll() on the engine thread
  uint64_t channels = 0;
  uint64_t domains = 0;
};

// The engine's memory budget now (MemoryUsage), with the bytes charged to
// each domain (by domid; host-wide charges such as the event log are only
// in the total).
struct EngineMemory {
  MemoryUsage usage;
  std::map<uint32_t, size_t> by_domain;
};

// Thread-safe: every public method may be called from any thread.
class Engine {
 public:
  // Connects the pieces, registers the watches, learns the current domains,
  // recovers the ring channels of a previous engine process (re-mapping
  // connected rings without the guest's help), and starts the engine thread.
  // INVALID_ARGUMENT if a platform object is missing; the xenstore error if
  // the watches cannot be registered; INTERNAL for fd trouble.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(EngineOptions options);
  // Stops the thread; unmaps and unbinds (process-local), leaving xenstore as
  // it is so that a new engine recovers every channel. Open sessions then
  // see UNAVAILABLE once they have drained their buffers.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // --- Queries (never block on the engine thread). ---
  std::vector<DomainInfo> ListDomains() const ABSL_LOCKS_EXCLUDED(mu_);
  // `domain` is a UUID (any case) or a name. NOT_FOUND if unknown.
  absl::StatusOr<DomainInfo> GetDomain(const std::string& domain) const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<ChannelInfo> ListChannels() const ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_FOUND for an unknown domain or channel.
  absl::StatusOr<ChannelInfo> GetChannel(const ChannelRef& ref) const ABSL_LOCKS_EXCLUDED(mu_);
  EngineSnapshot Snapshot() const ABSL_LOCKS_EXCLUDED(mu_);
  EngineStats stats() const ABSL_LOCKS_EXCLUDED(mu_);
  // Current and peak use of the memory budget (for metrics and load tools).
  EngineMemory memory() const ABSL_LOCKS_EXCLUDED(mu_);

  // --- Events. ---
  // Events after `revision` (see EventLog::After; OUT_OF_RANGE if no longer
  // retained).
  absl::StatusOr<std::vector<ChannelEvent>> EventsAfter(uint64_t revision, size_t max) const;
  uint64_t revision() const;
  // `notify` runs (must not block, must not call back into the engine's
  // event methods) whenever new events exist. Returns an id to unsubscribe.
  uint64_t SubscribeEvents(std::function<void()> notify);
  void UnsubscribeEvents(uint64_t id);

  // --- Commands. `done` runs on the engine thread and must not block. ---

  // Hot-adds a ring channel. Errors: INVALID_ARGUMENT (bad channel id or
  // config), NOT_FOUND (unknown domain), UNAVAILABLE (domain dying),
  // ALREADY_EXISTS (channel id in use in the domain), RESOURCE_EXHAUSTED (no
  // free devid 1..9 or the per-domain limit), the xenstore error; with
  // wait_until_connected also DEADLINE_EXCEEDED (the channel remains) and
  // FAILED_PRECONDITION (it failed while connecting; it remains).
  void CreateChannel(CreateChannelRequest request,
                     std::function<void(absl::StatusOr<ChannelInfo>)> done);
  // Unplugs a ring channel (§2.3 order; forced after `force_after`). The
  // intent and its deadline are persisted first: if this engine stops before
  // the unplug completes (even kill -9), the next engine finishes it, forcing
  // it at the same deadline (a delete there joins it); callers waiting here
  // get UNAVAILABLE. A delete of a channel already being unplugged joins
  // that unplug. NOT_FOUND for an unknown channel; FAILED_PRECONDITION for a
  // toolstack channel.
  void DeleteChannel(const ChannelRef& ref, absl::Duration force_after,
                     std::function<void(absl::StatusOr<DeleteResult>)> done);

  // Changes the settings of a ring channel in place (engine_update.cc);
  // `done` gets the channel as it is after the update (with
  // `validate_only`, as it would be; nothing changes). Semantics:
  //  - buffer limit, overflow policy, write-queue limit and framing take
  //    effect at once. A buffer limit below the bytes retained evicts the
  //    oldest as DROP_OLDEST does (readers get a gap; a GAP event reports the
  //    bytes no reader had reached).
  //  - lifetime INCARNATION -> DURABLE declares the channel for its domain's
  //    UUID; DURABLE -> INCARNATION removes the declaration, so the channel
  //    goes with its domain's current incarnation.
  //  - a DOMAIN_DOWN durable channel takes new settings for its re-creation.
  //  - the channel's backend record (channel_record.h) is rewritten, and a
  //    durable channel's declaration updated, before the change is applied,
  //    so that neither a restarted engine nor the store is ever behind what
  //    was answered. The guest's frontend `limit` key is left alone.
  //  - watchers get a STATE_CHANGED event with the new config.
  // Errors: INVALID_ARGUMENT (no field set, a value a create would refuse);
  // NOT_FOUND (unknown or removed channel); FAILED_PRECONDITION (a toolstack
  // channel; a channel being unplugged; a write-queue limit below the bytes
  // queued now; DURABLE without a declaration store or for a domain without
  // a UUID; INCARNATION for a DOMAIN_DOWN channel, which has no incarnation
  // to live in: delete it instead); the store's or xenstore's error (then
  // nothing changed).
  void UpdateChannel(const ChannelRef& ref, ChannelUpdate update, bool validate_only,
                     std::function<void(absl::StatusOr<ChannelInfo>)> done);

  // Blocking wrappers for callers that may block (tests, CLIs).
  absl::StatusOr<ChannelInfo> CreateChannelAndWait(CreateChannelRequest request);
  absl::StatusOr<DeleteResult> DeleteChannelAndWait(const ChannelRef& ref,
                                                    absl::Duration force_after);
  absl::StatusOr<ChannelInfo> UpdateChannelAndWait(const ChannelRef& ref, ChannelUpdate update,
                                                   bool validate_only = false);

  // Opens a session (see Session::Open for its errors); NOT_FOUND for an
  // unknown channel.
  absl::StatusOr<std::unique_ptr<Session>> OpenSession(const ChannelRef& ref,
                                                       SessionOptions options)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The answer to on_domain_arrival: declares `declarations` (durable
  // channels declared for `uuid` elsewhere in the fleet, each checked like
  // a create's settings; those already declared here are skipped), re-creates
  // them in `domid` as for a migration, and ends the hold. An empty list
  // just ends the hold. Thread-safe; does not wait.
  void AdoptDeclarations(uint32_t domid, const std::string& uuid,
                         std::vector<ChannelDeclaration> declarations);

  // The fleet says that these domains run on other hosts now, each of which
  // has adopted the named channels (engine_moved.cc, docs/FLEET.md). For
  // each domain that does not run here, each of those durable channels
  // waiting DOMAIN_DOWN here is let go: a new,
  // empty epoch with reason kDomainMigrated begins after its last byte (its
  // readers learn that they have everything this host had), its declaration
  // here is deleted (the fleet's is the truth), it is reported DOMAIN_DOWN
  // with lifetime INCARNATION (no longer durable here: a combination no
  // other channel has, since a non-durable channel goes with its domain),
  // and it is removed after
  // moved_channel_retention (or on DeleteChannel, or when the domain is
  // introduced here again). UUIDs this engine has no such channel for are
  // ignored. Thread-safe; does not wait.
  struct MovedDomain {
    std::string host;                   // the host that runs it now
    std::set<std::string> channel_ids;  // the channels that host adopted
  };
  void ReleaseMovedChannels(std::map<std::string, MovedDomain> moved);  // by UUID

 private:
  class Host;  // RingHost over this engine
  struct DomainRecord {
    DomainInfo info;
    std::string name_token;
    std::string shutdown_token;
    // Events of the control/shutdown watch: its registration fires one, a
    // request and the guest's acknowledgement two more. The guest clears
    // the node at once, so the request's value may be gone when read.
    int shutdown_events = 0;
  };
  // A domain that is not running but has durable channels declared: known
  // by its UUID until it returns or its last declaration is deleted.
  struct DownDomain {
    std::string name;  // the last name it had
    // Its last incarnation ended in a suspend (xl save, or the sending side
    // of a migration): the next one is a restore.
    bool suspended = false;
  };

  explicit Engine(EngineOptions options);
  absl::Status Init();
  void Post(std::function<void()> command) ABSL_LOCKS_EXCLUDED(mu_);

  // Engine-thread work, by the file that holds it.

  // The loop and its dispatch (engine.cc).
  void Run();
  // Fills poll_fds_ (wake-up, xenstore, event channels, then each toolstack
  // channel's fd, whose serial is in poll_owner_).
  void BuildPollSet();
  // Appends the channels whose frontend (or toolstack) watch fired to
  // `frontends` (duplicates are removed by the caller).
  void HandleWatch(const XsWatchEvent& event, std::vector<uint64_t>* frontends);
  void ReapFinished();
  // The timer queue (engine.cc). Ring deadlines sit in a min-heap of
  // (deadline, serial) with lazy invalidation: an entry is live while its
  // ring's queued_deadline() equals it. A ring is re-read after each call
  // the loop makes into it; every ring, and the engine's own timers, after
  // a pass that ran anything else (commands, watches, engine timers), which
  // is how deadlines changed by those are honoured.
  // Queues ring `serial`'s NextDeadline if it changed.
  void ScheduleRing(uint64_t serial, RingChannel& ring);
  // Rebuilds the heap from every ring's NextDeadline (and drops the stale
  // entries).
  void RebuildTimerHeap();
  // RebuildTimerHeap, and the earliest of the engine's own deadlines
  // (resume checks, holds, moved-channel retention).
  void RescheduleAll();
  // The earliest live deadline (InfiniteFuture if none).
  absl::Time NextTimer();
  // Runs the ring timers and engine timers due at `now`; true if engine
  // timers ran (the caller then reschedules everything). Sets
  // `*ring_finished` if a ring finished.
  bool RunDueTimers(absl::Time now, bool* ring_finished);
  // Starts serving a ring channel (created or recovered).
  // Announces it with `event` (APPEARED; a re-created durable channel is
  // not new: STATE_CHANGED).
  void AddRingChannel(std::shared_ptr<Channel> channel, RingParams params,
                      XenbusState backend_state,
                      ChannelEventType event = ChannelEventType::kAppeared);
  // A new Channel charged to the engine's memory budget.
  std::shared_ptr<Channel> NewChannel(ChannelIdentity id, ChannelConfig config,
                                      const std::string& domain_name, absl::Time now);
  // Trims replay-only bytes across channels (the budget asked for memory).
  void ReclaimMemory() ABSL_LOCKS_EXCLUDED(mu_);

  // Domain discovery (engine_domains.cc).
  void ScanDomains();
  void ReadDomainName(uint32_t domid);
  void CheckReleasedDomains();
  void RemoveDomain(uint32_t domid);

  // Hot-add and unplug of ring channels (engine_hotplug.cc).
  void DoCreate(CreateChannelRequest request,
                std::function<void(absl::StatusOr<ChannelInfo>)> done);
  void DoDelete(ChannelRef ref, absl::Duration force_after,
                std::function<void(absl::StatusOr<DeleteResult>)> done);
  ChannelConfig EffectiveConfig(const ChannelConfig& asked) const;
  // Ring parameters of channel `serial` at (domid, devid) from the options.
  RingParams NewRingParams(uint32_t domid, uint32_t devid, uint64_t serial) const;
  // Recently released devids (§2.5), kept in memory and persisted under our
  // backend directory of the domain (gone with it).
  void RecordRelease(uint32_t domid, uint32_t devid, absl::Time now);

  // Restart recovery (engine_recovery.cc).
  void RecoverRingChannels();
  // Learns the persisted releases of `domid` still within
  // devid_reuse_delay, forgets (removes) the others.
  void LoadReleasedDevids(uint32_t domid, absl::Time now);

  // Durable channels (engine_durable.cc).
  // Declares the channel of `device` for domain `uuid`; the generation.
  absl::StatusOr<int64_t> Declare(const std::string& uuid, const std::string& domain_name,
                                  const NewConsoleDevice& device, absl::Time now);
  absl::Status Undeclare(const std::string& uuid, const std::string& channel_id);
  // Records the devid the channel has now and, if not empty, its domain's
  // name; the new generation.
  absl::StatusOr<int64_t> RecordDeclaredDevid(const std::string& uuid,
                                              const std::string& channel_id, uint32_t devid,
                                              const std::string& domain_name = "");
  // The first epoch of a durable channel's incarnation whose declaration
  // took `generation` sits above every epoch of its earlier incarnations.
  static uint64_t EpochFloor(int64_t generation);
  // Reads every declaration (Init; a store that cannot be read stops the
  // engine from starting).
  absl::Status LoadDeclarations();
  // After recovery: each declared channel without a recovered ring is
  // re-created if its domain runs, or waits DOMAIN_DOWN.
  void RestoreDeclaredChannels();
  // Re-creates the DOMAIN_DOWN durable channels of the running domain
  // `domid` (ScanDomains, RemoveDomain). `moved`: a second attempt after a
  // stale device (CheckResumeProbes), not checked again.
  void RecreateDurableChannels(uint32_t domid, EpochChangeReason reason, bool moved = false);
  // Moves the re-created channels whose guest resumed without probing them
  // (see resume_probe_timeout) whose check is due at `now`.
  void CheckResumeProbes(absl::Time now);
  // Why a domain with durable channels appeared again as `domid`.
  EpochChangeReason DomainReturnReason(uint32_t domid, const std::string& uuid)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Holds (engine_hold.cc): pauses `domid`, which has durable channels
  // under `uuid`, until ReleaseHold or `deadline`; records the hold in
  // xenstore (HeldDomainPath) so that an engine that dies holding it lets
  // the domain go when it restarts. Does nothing without a DomainControl
  // or if the domain is held already.
  void HoldDomain(uint32_t domid, const std::string& uuid, absl::Time deadline);
  // Ends the hold of `domid`, if any: the record first, then the unpause.
  void ReleaseHold(uint32_t domid);
  // Ends the holds whose deadline is at or before `now`.
  void CheckHolds(absl::Time now);
  // At start: ends the holds an earlier engine recorded and did not end.
  void ReleaseRecordedHolds();
  // True if some channel is declared durable for `uuid`.
  bool HasDeclarations(const std::string& uuid) const;
  // Adoption (engine_adopt.cc): see AdoptDeclarations.
  void DoAdopt(uint32_t domid, const std::string& uuid,
               std::vector<ChannelDeclaration> declarations);
  // A DOMAIN_DOWN channel for declaration `d`, registered (channels_,
  // durable_serials_) and announced; `name` its domain's name.
  std::shared_ptr<Channel> AddWaitingChannel(const ChannelDeclaration& d, const std::string& name,
                                             absl::Time now);
  // Deletes a DOMAIN_DOWN channel: its declaration, then the channel.
  void DeleteDownChannel(const std::shared_ptr<Channel>& channel,
                         std::function<void(absl::StatusOr<DeleteResult>)> done);
  // The toolstack's control/shutdown request of `domid` was written.
  void ReadShutdownRequest(uint32_t domid);
  // True if `ch` belongs to the domain `info` (by UUID when it has one).
  static bool BelongsTo(const Channel& ch, const DomainInfo& info);

  // Channels that moved to another host (engine_moved.cc).
  void DoReleaseMoved(const std::string& uuid, const MovedDomain& moved, absl::Time now);
  // Removes the let-go copies whose retention ended by `now`.
  void CheckMovedChannels(absl::Time now);
  // Removes every let-go copy of `uuid` (its domain is introduced here
  // again: the fleet's declaration is adopted instead); forgets the down
  // domain if nothing else of it is left.
  void RetireMovedChannels(const std::string& uuid);
  // Removes one let-go copy: readers drain what they had not read, then
  // see NOT_FOUND (`why`). Announced with `reason`.
  void RemoveMovedChannel(const std::shared_ptr<Channel>& channel, const std::string& why,
                          RemovalReason reason);

  // In-place updates (engine_update.cc).
  void DoUpdate(const ChannelRef& ref, const ChannelUpdate& update, bool validate_only,
                std::function<void(absl::StatusOr<ChannelInfo>)> done);
  // Persists the new settings `config` of `channel` (running ring `ring`,
  // or nullptr while its domain is down) before they are applied: its
  // backend record, then its declaration (written, changed or removed as
  // `durable` says). On an error nothing is left changed.
  absl::Status PersistUpdate(const std::shared_ptr<Channel>& channel, RingChannel* ring,
                             const ChannelConfig& config, bool durable, absl::Time now);

  // Toolstack channels (engine_toolstack.cc).
  void ScanToolstackChannels();
  void RefreshToolstack(uint64_t serial, absl::Time now);

  // Lookups under mu_.
  absl::StatusOr<DomainInfo> ResolveDomainLocked(const std::string& domain) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::shared_ptr<Channel>> FindChannel(const ChannelRef& ref) const
      ABSL_LOCKS_EXCLUDED(mu_);

  EngineOptions options_;
  std::shared_ptr<Wakeup> wakeup_;
  std::shared_ptr<MemoryBudget> budget_;
  std::shared_ptr<EventLog> log_;
  std::unique_ptr<Host> host_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> wakeups_{0};

  // Shared registry.
  mutable Mutex mu_;
  std::map<uint32_t, DomainRecord> domains_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, DownDomain> down_domains_ ABSL_GUARDED_BY(mu_);  // by UUID
  // serial -> channel
  std::map<uint64_t, std::shared_ptr<Channel>> channels_ ABSL_GUARDED_BY(mu_);
  std::deque<std::function<void()>> commands_ ABSL_GUARDED_BY(mu_);

  // Engine-thread state (touched by Init before the thread starts).
  uint64_t next_serial_ = 1;
  std::map<uint64_t, std::unique_ptr<RingChannel>> rings_;
  std::map<EvtchnPort, RingChannel*> ports_;
  std::map<uint64_t, std::unique_ptr<ToolstackChannel>> toolstack_;
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> toolstack_devices_;  // (domid, devid) -> serial
  // Devids unplugs released lately, by domain (§2.5; see RecordRelease).
  ReleasedDevids released_devids_;
  // Durable channels by serial, and their declarations by (domain UUID,
  // channel id) with the last generation this engine wrote or read.
  std::set<uint64_t> durable_serials_;
  // Re-created channels to check for a stale device: serial -> (deadline,
  // the reason their domain came back).
  std::map<uint64_t, std::pair<absl::Time, EpochChangeReason>> resume_checks_;
  std::map<std::pair<std::string, std::string>, ChannelDeclaration> declarations_;
  // Let-go copies of channels that moved to another host: serial -> (when
  // they are removed, the host their domain runs on).
  std::map<uint64_t, std::pair<absl::Time, std::string>> moved_;
  // Domains this engine holds paused: domid -> when the hold ends at the
  // latest.
  std::map<uint32_t, absl::Time> held_;
  // Set once Init has scanned the domains that ran before: only domains
  // introduced after that are arrivals (on_domain_arrival).
  bool started_ = false;

  // The loop's working buffers, kept between passes so that a steady-state
  // pass (port events, kicks, ring timers) allocates nothing.
  std::vector<pollfd> poll_fds_;
  std::vector<uint64_t> poll_owner_;  // serial of the toolstack channel of poll_fds_[3 + i]
  std::vector<uint64_t> kicked_;
  std::vector<uint64_t> frontends_;
  std::deque<std::function<void()>> running_commands_;
  // The timer queue (see ScheduleRing): a min-heap under std::greater.
  std::vector<std::pair<absl::Time, uint64_t>> timer_heap_;
  std::vector<uint64_t> due_;  // serials whose timers run this pass
  // The earliest of resume_checks_, held_ and moved_ (they change only in
  // passes that reschedule everything).
  absl::Time engine_deadline_ = absl::InfiniteFuture();
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_ENGINE_H_
