// Engine: the engine thread's poll loop and its dispatch, the registry
// callers query, events and sessions (see the header; discovery, hot-add,
// recovery and toolstack channels are in the engine_*.cc files beside it).
#include "backend/engine/engine.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backend/engine/names.h"
#include "backend/engine/watch_tokens.h"
#include "backend/engine/xenstore_layout.h"

namespace xenchan {
namespace {

constexpr int kMaxPendingPerRound = 4096;

}  // namespace

class Engine::Host : public RingHost {
 public:
  explicit Host(Engine* engine) : engine_(engine) {}
  XenStore& xs() override { return *engine_->options_.xenstore; }
  EventChannels& evtchn() override { return *engine_->options_.event_channels; }
  GrantTables& gnttab() override { return *engine_->options_.grant_tables; }
  void RoutePort(EvtchnPort port, RingChannel* channel) override {
    if (channel == nullptr) {
      engine_->ports_.erase(port);
    } else {
      engine_->ports_[port] = channel;
    }
  }
  void DevidReleased(uint32_t domid, uint32_t devid) override {
    engine_->RecordRelease(domid, devid, absl::Now());
  }

 private:
  Engine* const engine_;
};

Engine::Engine(EngineOptions options)
    : options_(std::move(options)), released_devids_(options_.devid_reuse_delay) {}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(EngineOptions options) {
  if (!options.xenstore || !options.event_channels || !options.grant_tables) {
    return absl::InvalidArgumentError("engine needs xenstore, event channels and grant tables");
  }
  if (ValidateChannelId(options.backend_type).ok() == false ||
      absl::StrContains(options.backend_type, ".")) {
    return absl::InvalidArgumentError("invalid backend type");
  }
  std::unique_ptr<Engine> engine(new Engine(std::move(options)));
  absl::Status s = engine->Init();
  if (!s.ok()) return s;
  engine->thread_ = std::thread([e = engine.get()] { e->Run(); });
  return engine;
}

absl::Status Engine::Init() {
  auto wakeup = Wakeup::Create();
  if (!wakeup.ok()) return wakeup.status();
  wakeup_ = *std::move(wakeup);
  if (options_.memory_budget_bytes == 0) {
    return absl::InvalidArgumentError("the memory budget must be positive");
  }
  budget_ = std::make_shared<MemoryBudget>(options_.memory_budget_bytes,
                                           options_.domain_memory_limit_bytes == 0
                                               ? MemoryBudget::kUnlimited
                                               : options_.domain_memory_limit_bytes);
  // Runs under the budget's lock: Kick only takes the wake-up's leaf lock.
  budget_->SetNotify([w = std::weak_ptr<Wakeup>(wakeup_)](uint64_t serial) {
    if (auto wakeup = w.lock()) wakeup->Kick(serial);
  });
  // Revisions start above anything an earlier engine on this host issued
  // (unless it sustained a million events per second).
  const size_t log_floor = std::min(options_.event_retention > (MemoryBudget::kUnlimited >> 10)
                                        ? MemoryBudget::kUnlimited
                                        : options_.event_retention << 10,
                                    options_.memory_budget_bytes / 16);
  log_ = std::make_shared<EventLog>(static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())),
                                    options_.event_retention, budget_, log_floor);
  host_ = std::make_unique<Host>(this);
  XenStore& xs = *options_.xenstore;
  absl::Status s = xs.Watch(kIntroduceDomainWatch, kIntroduceDomainToken);
  if (s.ok()) s = xs.Watch(kReleaseDomainWatch, kReleaseDomainToken);
  if (s.ok() && options_.serve_toolstack_channels) {
    s = xs.Watch(BackendTypeDir(options_.backend_domid, kToolstackBackendType),
                 kToolstackBackendsToken);
  }
  if (!s.ok()) return s;
  if (absl::Status loaded = LoadDeclarations(); !loaded.ok()) return loaded;
  ScanDomains();
  RecoverRingChannels();
  RestoreDeclaredChannels();
  ReleaseRecordedHolds();
  ScanToolstackChannels();
  started_ = true;
  return absl::OkStatus();
}

Engine::~Engine() {
  stop_ = true;
  wakeup_->Poke();
  if (thread_.joinable()) thread_.join();
  // A domain held now would stay paused until the next engine starts.
  std::vector<uint32_t> held;
  for (const auto& [domid, deadline] : held_) held.push_back(domid);
  for (uint32_t domid : held) ReleaseHold(domid);
  // Commands posted but not run yet are answered UNAVAILABLE (see DoCreate
  // and DoDelete), so no caller waits forever.
  std::deque<std::function<void()>> commands;
  std::vector<std::shared_ptr<Channel>> channels;
  {
    MutexLock lock(&mu_);
    commands.swap(commands_);
    for (auto& [serial, ch] : channels_) channels.push_back(ch);
  }
  for (auto& c : commands) c();
  rings_.clear();  // unmaps and unbinds; xenstore is left for recovery
  toolstack_.clear();
  for (auto& ch : channels) ch->MarkRemoved(absl::UnavailableError("the engine is shutting down"));
}

void Engine::Post(std::function<void()> command) {
  {
    MutexLock lock(&mu_);
    commands_.push_back(std::move(command));
  }
  wakeup_->Poke();
}

// ---------------------------------------------------------------------------
// The engine thread.

void Engine::Run() {
  // Named for top -H, debuggers, and the allocation test that counts this
  // thread's allocations (tests/engine/engine_loop_alloc_test.cc).
  pthread_setname_np(pthread_self(), kEngineThreadName);
  XenStore& xs = *options_.xenstore;
  EventChannels& evtchn = *options_.event_channels;
  RescheduleAll();
  bool first_pass = true;
  while (!stop_) {
    const absl::Time next = NextTimer();
    int timeout_ms = -1;
    if (next != absl::InfiniteFuture()) {
      const absl::Duration left = next - absl::Now();
      timeout_ms = left <= absl::ZeroDuration() ? 0
                                                : static_cast<int>(absl::ToInt64Milliseconds(
                                                      absl::Ceil(left, absl::Milliseconds(1))));
    }
    BuildPollSet();
    const int ready = poll(poll_fds_.data(), poll_fds_.size(), timeout_ms);
    wakeups_.fetch_add(1, std::memory_order_relaxed);
    if (stop_) break;
    if (ready < 0 && errno != EINTR) break;
    absl::Time now = absl::Now();
    // Something besides the data path ran: every deadline is read afresh
    // (and on the first pass, after Init).
    bool reschedule = first_pass;
    bool reap = false;  // a channel may have finished

    kicked_.clear();
    if (poll_fds_[0].revents != 0) {
      wakeup_->Take(&kicked_);
      {
        MutexLock lock(&mu_);
        running_commands_.swap(commands_);
      }
      reschedule = reschedule || !running_commands_.empty();
      for (auto& c : running_commands_) c();
      running_commands_.clear();  // keeps its storage
    }
    frontends_.clear();
    while (std::optional<XsWatchEvent> ev = xs.ReadWatch()) {
      reschedule = true;
      HandleWatch(*ev, &frontends_);
    }
    now = absl::Now();
    if (!frontends_.empty()) {
      std::sort(frontends_.begin(), frontends_.end());
      frontends_.erase(std::unique(frontends_.begin(), frontends_.end()), frontends_.end());
      for (uint64_t serial : frontends_) {
        auto it = rings_.find(serial);
        if (it != rings_.end()) it->second->OnFrontendChanged(now);
        if (toolstack_.count(serial) != 0) RefreshToolstack(serial, now);
      }
    }
    for (size_t i = 0; i < poll_owner_.size(); ++i) {
      if (poll_fds_[3 + i].revents == 0) continue;
      auto it = toolstack_.find(poll_owner_[i]);
      if (it != toolstack_.end()) it->second->OnReady(poll_fds_[3 + i].revents, now);
      reap = true;
    }
    if (poll_fds_[2].revents != 0) {
      for (int i = 0; i < kMaxPendingPerRound; ++i) {
        absl::StatusOr<std::optional<EvtchnPort>> port = evtchn.Pending();
        if (!port.ok() || !port->has_value()) break;
        auto it = ports_.find(**port);
        if (it == ports_.end()) continue;
        RingChannel& ring = *it->second;
        ring.OnPortEvent(now);
        ScheduleRing(ring.channel().serial(), ring);
        reap = reap || ring.finished();
      }
    }
    for (uint64_t serial : kicked_) {
      auto it = rings_.find(serial);
      if (it != rings_.end()) {
        RingChannel& ring = *it->second;
        ring.channel().OnMemoryReleased();
        ring.Service(now);
        ScheduleRing(serial, ring);
        reap = reap || ring.finished();
      }
      auto ts = toolstack_.find(serial);
      if (ts != toolstack_.end()) {
        ts->second->channel().OnMemoryReleased();
        ts->second->Service(now);
        reap = true;
      }
    }
    if (budget_->TakeReclaimRequest()) ReclaimMemory();
    if (reschedule) RescheduleAll();
    now = absl::Now();
    if (RunDueTimers(now, &reap)) {
      RescheduleAll();
      reschedule = true;
    }
    if (reap || reschedule) ReapFinished();
    first_pass = false;
  }
}

void Engine::BuildPollSet() {
  poll_fds_.clear();
  poll_owner_.clear();
  poll_fds_.push_back({wakeup_->fd(), POLLIN, 0});
  poll_fds_.push_back({options_.xenstore->WatchFd(), POLLIN, 0});
  poll_fds_.push_back({options_.event_channels->fd(), POLLIN, 0});
  for (auto& [serial, ts] : toolstack_) {
    if (ts->fd() < 0) continue;
    poll_fds_.push_back({ts->fd(), ts->poll_events(), 0});
    poll_owner_.push_back(serial);
  }
}

void Engine::ScheduleRing(uint64_t serial, RingChannel& ring) {
  const absl::Time t = ring.NextDeadline();
  if (t == ring.queued_deadline()) return;
  ring.set_queued_deadline(t);
  if (t == absl::InfiniteFuture()) return;  // its old entry is stale now
  // Stale entries are dropped when they reach the top, or all at once when
  // they outnumber the live ones.
  if (timer_heap_.size() >= 2 * rings_.size() + 64) return RebuildTimerHeap();
  timer_heap_.emplace_back(t, serial);
  std::push_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
}

void Engine::RebuildTimerHeap() {
  timer_heap_.clear();
  for (auto& [serial, ring] : rings_) {
    const absl::Time t = ring->NextDeadline();
    ring->set_queued_deadline(t);
    if (t != absl::InfiniteFuture()) timer_heap_.emplace_back(t, serial);
  }
  std::make_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
}

void Engine::RescheduleAll() {
  RebuildTimerHeap();
  engine_deadline_ = absl::InfiniteFuture();
  for (const auto& [serial, check] : resume_checks_) {
    engine_deadline_ = std::min(engine_deadline_, check.first);
  }
  for (const auto& [domid, deadline] : held_) {
    engine_deadline_ = std::min(engine_deadline_, deadline);
  }
  for (const auto& [serial, copy] : moved_) {
    engine_deadline_ = std::min(engine_deadline_, copy.first);
  }
}

absl::Time Engine::NextTimer() {
  while (!timer_heap_.empty()) {
    const auto& [t, serial] = timer_heap_.front();
    auto it = rings_.find(serial);
    if (it != rings_.end() && it->second->queued_deadline() == t) {
      return std::min(t, engine_deadline_);
    }
    std::pop_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
    timer_heap_.pop_back();
  }
  return engine_deadline_;
}

bool Engine::RunDueTimers(absl::Time now, bool* ring_finished) {
  // The due rings first, then their timers: one that is due again at once
  // waits for the next pass (whose poll does not wait) rather than running
  // here forever.
  due_.clear();
  while (!timer_heap_.empty() && timer_heap_.front().first <= now) {
    const auto [t, serial] = timer_heap_.front();
    std::pop_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
    timer_heap_.pop_back();
    auto it = rings_.find(serial);
    if (it == rings_.end() || it->second->queued_deadline() != t) continue;  // stale
    it->second->set_queued_deadline(absl::InfiniteFuture());
    due_.push_back(serial);
  }
  for (uint64_t serial : due_) {
    auto it = rings_.find(serial);
    if (it == rings_.end()) continue;
    RingChannel& ring = *it->second;
    if (ring.NextDeadline() <= now) ring.OnTimer(now);
    ScheduleRing(serial, ring);
    if (ring.finished()) *ring_finished = true;
  }
  if (now < engine_deadline_) return false;
  CheckResumeProbes(now);
  CheckHolds(now);
  CheckMovedChannels(now);
  return true;
}

void Engine::HandleWatch(const XsWatchEvent& event, std::vector<uint64_t>* frontends) {
  const WatchTarget target = ParseWatchToken(event.token);
  switch (target.kind) {
    case WatchTarget::Kind::kIntroduceDomain:
      ScanDomains();
      break;
    case WatchTarget::Kind::kReleaseDomain:
      CheckReleasedDomains();
      break;
    case WatchTarget::Kind::kToolstackBackends:
      ScanToolstackChannels();
      break;
    case WatchTarget::Kind::kToolstackChannel:
    case WatchTarget::Kind::kRingFrontend:
      frontends->push_back(target.id);
      break;
    case WatchTarget::Kind::kDomainName:
      ReadDomainName(static_cast<uint32_t>(target.id));
      break;
    case WatchTarget::Kind::kDomainShutdown:
      ReadShutdownRequest(static_cast<uint32_t>(target.id));
      break;
    case WatchTarget::Kind::kUnknown:
      break;
  }
}

void Engine::ReapFinished() {
  for (auto it = rings_.begin(); it != rings_.end();) {
    if (!it->second->finished()) {
      ++it;
      continue;
    }
    // A durable channel whose domain went stays, DOMAIN_DOWN, for the
    // domain's next incarnation.
    const bool waits = durable_serials_.count(it->first) != 0 && !it->second->channel().removed();
    if (!waits) {
      MutexLock lock(&mu_);
      channels_.erase(it->first);
    }
    it = rings_.erase(it);
  }
  for (auto it = toolstack_.begin(); it != toolstack_.end();) {
    if (!it->second->finished()) {
      ++it;
      continue;
    }
    {
      MutexLock lock(&mu_);
      channels_.erase(it->first);
    }
    for (auto d = toolstack_devices_.begin(); d != toolstack_devices_.end();) {
      d = d->second == it->first ? toolstack_devices_.erase(d) : std::next(d);
    }
    it = toolstack_.erase(it);
  }
}

void Engine::AddRingChannel(std::shared_ptr<Channel> channel, RingParams params,
                            XenbusState backend_state, ChannelEventType event) {
  const uint64_t serial = channel->serial();
  {
    MutexLock lock(&mu_);
    channels_[serial] = channel;
  }
  auto ring = std::make_unique<RingChannel>(host_.get(), channel, std::move(params));
  RingChannel* r = ring.get();
  rings_[serial] = std::move(ring);
  absl::Status s = r->Start(backend_state, absl::Now());
  if (!s.ok()) {
    channel->SetState(
        ChannelState::kFailed, XenbusState::kUnknown, backend_state,
        ChannelError{ChannelErrorKind::kXenstore,
                     absl::StrCat("watching the frontend: ", s.message()), absl::Now()});
  }
  channel->Emit(event);
}

// ---------------------------------------------------------------------------
// Queries.

absl::StatusOr<std::shared_ptr<Channel>> Engine::FindChannel(const ChannelRef& ref) const {
  MutexLock lock(&mu_);
  auto dom = ResolveDomainLocked(ref.domain);
  if (!dom.ok()) return dom.status();
  for (const auto& [serial, ch] : channels_) {
    if (BelongsTo(*ch, *dom) && ch->identity().channel_id == ref.channel_id && !ch->removed()) {
      return ch;
    }
  }
  return absl::NotFoundError(
      absl::StrCat("domain ", dom->name, " has no channel '", ref.channel_id, "'"));
}

std::vector<DomainInfo> Engine::ListDomains() const { return Snapshot().domains; }

absl::StatusOr<DomainInfo> Engine::GetDomain(const std::string& domain) const {
  MutexLock lock(&mu_);
  auto dom = ResolveDomainLocked(domain);
  if (!dom.ok()) return dom.status();
  DomainInfo info = *dom;
  for (const auto& [serial, ch] : channels_) {
    if (BelongsTo(*ch, info) && !ch->removed()) ++info.channel_count;
  }
  return info;
}

std::vector<ChannelInfo> Engine::ListChannels() const { return Snapshot().channels; }

absl::StatusOr<ChannelInfo> Engine::GetChannel(const ChannelRef& ref) const {
  auto ch = FindChannel(ref);
  if (!ch.ok()) return ch.status();
  return (*ch)->Info();
}

EngineSnapshot Engine::Snapshot() const {
  EngineSnapshot snap;
  snap.revision = log_->revision();  // first: every event up to it is reflected below
  std::vector<std::shared_ptr<Channel>> channels;
  {
    MutexLock lock(&mu_);
    for (const auto& [domid, rec] : domains_) {
      DomainInfo info = rec.info;
      for (const auto& [serial, ch] : channels_) {
        if (BelongsTo(*ch, info) && !ch->removed()) ++info.channel_count;
      }
      snap.domains.push_back(info);
    }
    // Not running, known by their durable channels (domid 0: after the
    // running ones).
    for (const auto& [uuid, down] : down_domains_) {
      DomainInfo info;
      info.uuid = uuid;
      info.name = down.name;
      info.state = DomainState::kNotRunning;
      for (const auto& [serial, ch] : channels_) {
        if (BelongsTo(*ch, info) && !ch->removed()) ++info.channel_count;
      }
      snap.domains.push_back(info);
    }
    for (const auto& [serial, ch] : channels_) channels.push_back(ch);
  }
  for (const auto& ch : channels) {
    ChannelInfo info = ch->Info();
    if (info.state != ChannelState::kClosed) snap.channels.push_back(std::move(info));
  }
  std::sort(snap.channels.begin(), snap.channels.end(),
            [](const ChannelInfo& a, const ChannelInfo& b) {
              return std::tie(a.domain_uuid, a.domid, a.channel_id) <
                     std::tie(b.domain_uuid, b.domid, b.channel_id);
            });
  return snap;
}

std::shared_ptr<Channel> Engine::NewChannel(ChannelIdentity id, ChannelConfig config,
                                            const std::string& domain_name, absl::Time now) {
  return std::make_shared<Channel>(std::move(id), std::move(config), domain_name,
                                   options_.max_readers_per_channel, wakeup_, log_, now, budget_,
                                   options_.channel_memory_reserve_bytes);
}

void Engine::ReclaimMemory() {
  std::vector<std::shared_ptr<Channel>> channels;
  {
    MutexLock lock(&mu_);
    for (const auto& [serial, ch] : channels_) channels.push_back(ch);
  }
  size_t trimmed = 0;
  for (const auto& ch : channels) trimmed += ch->TrimReplay();
  if (trimmed > 0) budget_->CountReclaimed(trimmed);
}

EngineMemory Engine::memory() const {
  EngineMemory m;
  m.usage = budget_->usage();
  std::set<uint32_t> domids;
  {
    MutexLock lock(&mu_);
    for (const auto& [domid, rec] : domains_) domids.insert(domid);
    for (const auto& [serial, ch] : channels_) domids.insert(ch->identity().domid);
  }
  for (uint32_t domid : domids) {
    const size_t used = budget_->domain_used(domid);
    if (used > 0) m.by_domain[domid] = used;
  }
  return m;
}

EngineStats Engine::stats() const {
  EngineStats s;
  s.wakeups = wakeups_.load(std::memory_order_relaxed);
  MutexLock lock(&mu_);
  s.channels = channels_.size();
  s.domains = domains_.size();
  return s;
}

absl::StatusOr<std::vector<ChannelEvent>> Engine::EventsAfter(uint64_t revision, size_t max) const {
  return log_->After(revision, max);
}

uint64_t Engine::revision() const { return log_->revision(); }

uint64_t Engine::SubscribeEvents(std::function<void()> notify) {
  return log_->Subscribe(std::move(notify));
}

void Engine::UnsubscribeEvents(uint64_t id) { log_->Unsubscribe(id); }

absl::StatusOr<std::unique_ptr<Session>> Engine::OpenSession(const ChannelRef& ref,
                                                             SessionOptions options) {
  auto ch = FindChannel(ref);
  if (!ch.ok()) return ch.status();
  return Session::Open(*std::move(ch), std::move(options));
}

}  // namespace xenchan
