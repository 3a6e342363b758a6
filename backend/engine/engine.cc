// Engine: discovery, hot-add, the engine thread's poll loop, and the
// registry callers query (see the header).
#include "backend/engine/engine.h"

#include <errno.h>
#include <poll.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backend/engine/names.h"

namespace xenchan {
namespace {

constexpr char kIntroduceToken[] = "intro";
constexpr char kReleaseToken[] = "release";
constexpr char kNamePrefix[] = "name/";
constexpr char kFrontendPrefix[] = "fe/";
constexpr char kToolstackToken[] = "ts";
constexpr char kToolstackPrefix[] = "ts/";
constexpr uint32_t kMaxDomid = 0x7fef;  // DOMID_FIRST_RESERVED - 1
constexpr int kTransactionAttempts = 16;
constexpr size_t kMaxBufferLimit = size_t{1} << 30;
constexpr int kMaxPendingPerRound = 4096;
// Under our backend directory of a domain (B/backend/<type>/D), one node per
// recently released devid: its release time in Unix microseconds. Not a
// devid, so neither recovery nor the devid scan mistakes it for a channel;
// readable by dom0 only.
constexpr char kReleasedDir[] = "xenchan-released";

// Blocks a caller until a value arrives from the engine thread.
template <typename T>
class Waiter {
 public:
  void Set(T value) {
    MutexLock lock(&mu_);
    value_.emplace(std::move(value));
    cv_.SignalAll();
  }
  T Wait() {
    MutexLock lock(&mu_);
    while (!value_.has_value()) cv_.Wait(&mu_);
    return std::move(*value_);
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::optional<T> value_ ABSL_GUARDED_BY(mu_);
};

std::string OverflowName(OverflowPolicy p) {
  return p == OverflowPolicy::kDropOldest ? "drop-oldest" : "block";
}

absl::Status IgnoreNotFound(absl::Status s) {
  return s.code() == absl::StatusCode::kNotFound ? absl::OkStatus() : s;
}

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

Engine::Engine(EngineOptions options) : options_(std::move(options)) {}

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
  budget_ = std::make_shared<MemoryBudget>(
      options_.memory_budget_bytes,
      options_.domain_memory_limit_bytes == 0 ? MemoryBudget::kUnlimited
                                              : options_.domain_memory_limit_bytes);
  // Runs under the budget's lock: Kick only takes the wake-up's leaf lock.
  budget_->SetNotify([w = std::weak_ptr<Wakeup>(wakeup_)](uint64_t serial) {
    if (auto wakeup = w.lock()) wakeup->Kick(serial);
  });
  // Revisions start above anything an earlier engine on this host issued
  // (unless it sustained a million events per second).
  const size_t log_floor = std::min(
      options_.event_retention > (MemoryBudget::kUnlimited >> 10) ? MemoryBudget::kUnlimited
                                                                   : options_.event_retention << 10,
      options_.memory_budget_bytes / 16);
  log_ = std::make_shared<EventLog>(static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())),
                                    options_.event_retention, budget_, log_floor);
  host_ = std::make_unique<Host>(this);
  XenStore& xs = *options_.xenstore;
  absl::Status s = xs.Watch("@introduceDomain", kIntroduceToken);
  if (s.ok()) s = xs.Watch("@releaseDomain", kReleaseToken);
  if (s.ok() && options_.serve_toolstack_channels) {
    s = xs.Watch(absl::StrCat("/local/domain/", options_.backend_domid, "/backend/console"),
                 kToolstackToken);
  }
  if (!s.ok()) return s;
  ScanDomains();
  RecoverRingChannels();
  ScanToolstackChannels();
  return absl::OkStatus();
}

Engine::~Engine() {
  stop_ = true;
  wakeup_->Poke();
  if (thread_.joinable()) thread_.join();
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
  XenStore& xs = *options_.xenstore;
  EventChannels& evtchn = *options_.event_channels;
  while (!stop_) {
    absl::Time next = absl::InfiniteFuture();
    for (auto& [serial, ring] : rings_) next = std::min(next, ring->NextDeadline());
    int timeout_ms = -1;
    if (next != absl::InfiniteFuture()) {
      const absl::Duration left = next - absl::Now();
      timeout_ms = left <= absl::ZeroDuration()
                       ? 0
                       : static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))));
    }
    std::vector<pollfd> fds = {
        {wakeup_->fd(), POLLIN, 0}, {xs.WatchFd(), POLLIN, 0}, {evtchn.fd(), POLLIN, 0}};
    std::vector<uint64_t> fd_owner;  // serial of the toolstack channel of fds[3 + i]
    for (auto& [serial, ts] : toolstack_) {
      if (ts->fd() < 0) continue;
      fds.push_back({ts->fd(), ts->poll_events(), 0});
      fd_owner.push_back(serial);
    }
    const int ready = poll(fds.data(), fds.size(), timeout_ms);
    wakeups_.fetch_add(1, std::memory_order_relaxed);
    if (stop_) break;
    if (ready < 0 && errno != EINTR) break;
    absl::Time now = absl::Now();

    std::set<uint64_t> kicked;
    if (fds[0].revents != 0) {
      kicked = wakeup_->Take();
      std::deque<std::function<void()>> commands;
      {
        MutexLock lock(&mu_);
        commands.swap(commands_);
      }
      for (auto& c : commands) c();
    }
    std::set<uint64_t> frontends;
    while (std::optional<XsWatchEvent> ev = xs.ReadWatch()) HandleWatch(*ev, &frontends);
    now = absl::Now();
    for (uint64_t serial : frontends) {
      auto it = rings_.find(serial);
      if (it != rings_.end()) it->second->OnFrontendChanged(now);
      if (toolstack_.count(serial) != 0) RefreshToolstack(serial, now);
    }
    for (size_t i = 0; i < fd_owner.size(); ++i) {
      if (fds[3 + i].revents == 0) continue;
      auto it = toolstack_.find(fd_owner[i]);
      if (it != toolstack_.end()) it->second->OnReady(fds[3 + i].revents, now);
    }
    if (fds[2].revents != 0) {
      for (int i = 0; i < kMaxPendingPerRound; ++i) {
        absl::StatusOr<std::optional<EvtchnPort>> port = evtchn.Pending();
        if (!port.ok() || !port->has_value()) break;
        auto it = ports_.find(**port);
        if (it != ports_.end()) it->second->OnPortEvent(now);
      }
    }
    for (uint64_t serial : kicked) {
      auto it = rings_.find(serial);
      if (it != rings_.end()) {
        it->second->channel().OnMemoryReleased();
        it->second->Service(now);
      }
      auto ts = toolstack_.find(serial);
      if (ts != toolstack_.end()) {
        ts->second->channel().OnMemoryReleased();
        ts->second->Service(now);
      }
    }
    if (budget_->TakeReclaimRequest()) ReclaimMemory();
    now = absl::Now();
    for (auto& [serial, ring] : rings_) {
      if (ring->NextDeadline() <= now) ring->OnTimer(now);
    }
    ReapFinished();
  }
}

void Engine::HandleWatch(const XsWatchEvent& event, std::set<uint64_t>* frontends) {
  const std::string& token = event.token;
  if (token == kIntroduceToken) {
    ScanDomains();
  } else if (token == kReleaseToken) {
    CheckReleasedDomains();
  } else if (token == kToolstackToken) {
    ScanToolstackChannels();
  } else if (absl::StartsWith(token, kToolstackPrefix)) {
    uint64_t serial;
    if (absl::SimpleAtoi(token.substr(strlen(kToolstackPrefix)), &serial)) {
      frontends->insert(serial);
    }
  } else if (absl::StartsWith(token, kFrontendPrefix)) {
    uint64_t serial;
    if (absl::SimpleAtoi(token.substr(strlen(kFrontendPrefix)), &serial)) frontends->insert(serial);
  } else if (absl::StartsWith(token, kNamePrefix)) {
    uint32_t domid;
    if (absl::SimpleAtoi(token.substr(strlen(kNamePrefix)), &domid)) ReadDomainName(domid);
  }
}

void Engine::ReapFinished() {
  for (auto it = rings_.begin(); it != rings_.end();) {
    if (!it->second->finished()) {
      ++it;
      continue;
    }
    {
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

// ---------------------------------------------------------------------------
// Domains.

void Engine::ScanDomains() {
  XenStore& xs = *options_.xenstore;
  auto dirs = xs.Directory(kNoTransaction, "/local/domain");
  if (!dirs.ok()) return;
  bool added = false;
  for (const std::string& d : *dirs) {
    std::optional<uint32_t> domid = ParseDecimal(d, kMaxDomid);
    if (!domid.has_value() || *domid == options_.backend_domid) continue;
    {
      MutexLock lock(&mu_);
      if (domains_.count(*domid) != 0) continue;
    }
    const std::string base = absl::StrCat("/local/domain/", *domid);
    auto name = xs.Read(kNoTransaction, base + "/name");
    if (!name.ok()) continue;  // not fully set up yet: @introduceDomain comes back
    std::string uuid;
    auto vm = xs.Read(kNoTransaction, base + "/vm");
    if (vm.ok()) {
      auto u = xs.Read(kNoTransaction, *vm + "/uuid");
      if (u.ok() && LooksLikeUuid(*u)) {
        uuid = *u;
      } else {
        std::vector<std::string> parts = absl::StrSplit(*vm, '/');
        if (!parts.empty() && LooksLikeUuid(parts.back())) uuid = parts.back();
      }
    }
    DomainRecord rec;
    rec.info.domid = *domid;
    rec.info.name = *name;
    rec.info.uuid = absl::AsciiStrToLower(uuid);
    rec.name_token = absl::StrCat(kNamePrefix, *domid);
    {
      MutexLock lock(&mu_);
      domains_[*domid] = rec;
    }
    (void)xs.Watch(base + "/name", rec.name_token);
    added = true;
  }
  if (added) ScanToolstackChannels();
}

void Engine::ReadDomainName(uint32_t domid) {
  auto name = options_.xenstore->Read(kNoTransaction, absl::StrCat("/local/domain/", domid, "/name"));
  if (!name.ok()) return;
  std::vector<std::shared_ptr<Channel>> affected;
  {
    MutexLock lock(&mu_);
    auto it = domains_.find(domid);
    if (it == domains_.end() || it->second.info.name == *name) return;
    it->second.info.name = *name;
    for (auto& [serial, ch] : channels_) {
      if (ch->identity().domid == domid) affected.push_back(ch);
    }
  }
  for (auto& ch : affected) ch->SetDomainName(*name);
}

void Engine::CheckReleasedDomains() {
  std::vector<uint32_t> domids;
  {
    MutexLock lock(&mu_);
    for (const auto& [domid, rec] : domains_) domids.push_back(domid);
  }
  for (uint32_t domid : domids) {
    auto introduced = options_.xenstore->IsDomainIntroduced(domid);
    if (introduced.ok() && !*introduced) RemoveDomain(domid);
  }
}

void Engine::RemoveDomain(uint32_t domid) {
  for (auto& [serial, ts] : toolstack_) {
    if (ts->channel().identity().domid == domid) ts->Remove(RemovalReason::kDomainGone);
  }
  std::vector<RingChannel*> gone;
  for (auto& [serial, ring] : rings_) {
    if (ring->channel().identity().domid == domid && !ring->finished()) {
      ring->ReleaseForDomainGone();
      gone.push_back(ring.get());
    }
  }
  XenStore& xs = *options_.xenstore;
  (void)xs.Remove(kNoTransaction, absl::StrCat("/local/domain/", options_.backend_domid,
                                               "/backend/", options_.backend_type, "/", domid));
  std::string token;
  {
    // Forget the domain and its channels before anyone hears of it.
    MutexLock lock(&mu_);
    auto it = domains_.find(domid);
    if (it != domains_.end()) {
      token = it->second.name_token;
      domains_.erase(it);
    }
    for (RingChannel* ring : gone) channels_.erase(ring->channel().serial());
  }
  for (RingChannel* ring : gone) ring->ReportDomainGone();
  if (!token.empty()) {
    (void)xs.Unwatch(absl::StrCat("/local/domain/", domid, "/name"), token);
  }
  released_devids_.erase(domid);
  ReapFinished();
}

// ---------------------------------------------------------------------------
// Ring channels: recovery and hot-add.

std::string Engine::ReleasedPath(uint32_t domid) const {
  return absl::StrCat("/local/domain/", options_.backend_domid, "/backend/", options_.backend_type,
                      "/", domid, "/", kReleasedDir);
}

void Engine::RecordRelease(uint32_t domid, uint32_t devid, absl::Time now) {
  released_devids_[domid][devid] = now;
  // Persisted so that a restarted engine does not hand the devid out again
  // before the guest can have dropped the old device (§2.5). Best effort: a
  // failure only loses the protection across a restart.
  XenStore& xs = *options_.xenstore;
  const std::vector<XsPermission> dom0_only = {{options_.backend_domid, XsPermission::kNone}};
  const std::string dir = ReleasedPath(domid);
  const std::string node = absl::StrCat(dir, "/", devid);
  if (xs.Write(kNoTransaction, node, absl::StrCat(absl::ToUnixMicros(now))).ok()) {
    (void)xs.SetPermissions(kNoTransaction, dir, dom0_only);
    (void)xs.SetPermissions(kNoTransaction, node, dom0_only);
  }
}

void Engine::LoadReleasedDevids(uint32_t domid, absl::Time now) {
  XenStore& xs = *options_.xenstore;
  const std::string dir = ReleasedPath(domid);
  auto entries = xs.Directory(kNoTransaction, dir);
  if (!entries.ok()) return;
  for (const std::string& e : *entries) {
    std::optional<uint32_t> devid = ParseDecimal(e, 9);
    auto value = xs.Read(kNoTransaction, dir + "/" + e);
    int64_t micros = 0;
    // Only we write these; anything unreadable counts as released just now.
    absl::Time at = value.ok() && absl::SimpleAtoi(*value, &micros) ? absl::FromUnixMicros(micros)
                                                                    : now;
    at = std::min(at, now);  // a clock that went back must not extend it
    if (!devid.has_value() || *devid == 0 || now - at >= options_.devid_reuse_delay) {
      (void)xs.Remove(kNoTransaction, dir + "/" + e);
      continue;
    }
    released_devids_[domid][*devid] = at;
  }
}

ChannelConfig Engine::EffectiveConfig(const ChannelConfig& asked) const {
  ChannelConfig c = asked;
  if (c.buffer_limit_bytes == 0) c.buffer_limit_bytes = options_.buffer_limit_bytes;
  if (!c.overflow_policy.has_value()) c.overflow_policy = options_.overflow_policy;
  if (c.write_queue_limit_bytes == 0) c.write_queue_limit_bytes = options_.write_queue_limit_bytes;
  if (!c.default_framing.has_value()) c.default_framing = Framing{};
  return c;
}

RingParams Engine::NewRingParams(uint32_t domid, uint32_t devid, uint64_t serial) const {
  RingParams params;
  // Both paths are ours to compute, never the guest's word for them.
  params.frontend_path = FrontendPath(domid, devid);
  params.backend_path = BackendPath(options_.backend_domid, options_.backend_type, domid, devid);
  params.watch_token = absl::StrCat(kFrontendPrefix, serial);
  params.event_allowance = options_.event_allowance;
  params.event_period = options_.event_period;
  params.event_cap = options_.event_cap;
  params.event_cap_period = options_.event_cap_period;
  params.connect_timeout = options_.connect_timeout;
  return params;
}

void Engine::AddRingChannel(std::shared_ptr<Channel> channel, RingParams params,
                            XenbusState backend_state) {
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
    channel->SetState(ChannelState::kFailed, XenbusState::kUnknown, backend_state,
                      ChannelError{ChannelErrorKind::kXenstore,
                                   absl::StrCat("watching the frontend: ", s.message()),
                                   absl::Now()});
  }
  channel->Emit(ChannelEventType::kAppeared);
}

void Engine::RecoverRingChannels() {
  XenStore& xs = *options_.xenstore;
  const std::string base =
      absl::StrCat("/local/domain/", options_.backend_domid, "/backend/", options_.backend_type);
  auto doms = xs.Directory(kNoTransaction, base);
  if (!doms.ok()) return;
  for (const std::string& d : *doms) {
    std::optional<uint32_t> domid = ParseDecimal(d, kMaxDomid);
    DomainInfo dom;
    bool known = false;
    if (domid.has_value()) {
      MutexLock lock(&mu_);
      auto it = domains_.find(*domid);
      if (it != domains_.end()) {
        known = true;
        dom = it->second.info;
      }
    }
    if (known) {
      auto introduced = xs.IsDomainIntroduced(*domid);
      known = !introduced.ok() || *introduced;
    }
    if (!known) {  // its domain is gone: what is left is ours to clean up
      (void)xs.Remove(kNoTransaction, base + "/" + d);
      continue;
    }
    LoadReleasedDevids(*domid, absl::Now());
    auto devs = xs.Directory(kNoTransaction, base + "/" + d);
    if (!devs.ok()) continue;
    for (const std::string& n : *devs) {
      std::optional<uint32_t> devid = ParseDecimal(n, 9);
      if (!devid.has_value() || *devid == 0) continue;
      const std::string be = base + "/" + d + "/" + n;
      auto read = [&](const std::string& key) -> std::string {
        auto v = xs.Read(kNoTransaction, be + "/" + key);
        return v.ok() ? *v : std::string();
      };
      const std::string name = read("name");
      if (!ValidateChannelId(name).ok()) continue;
      std::string uid = read("xenchan-uid");
      if (!LooksLikeUuid(uid)) uid = NewUuid();
      // Our own keys (the guest can read but not write them), still parsed
      // strictly and within the limits a create would accept; anything else
      // takes the defaults.
      ChannelConfig asked;
      constexpr uint32_t kMaxLimit = static_cast<uint32_t>(kMaxBufferLimit);
      asked.buffer_limit_bytes = ParseDecimal(read("xenchan-buffer-limit"), kMaxLimit).value_or(0);
      asked.write_queue_limit_bytes =
          ParseDecimal(read("xenchan-write-queue-limit"), kMaxLimit).value_or(0);
      const std::string overflow = read("xenchan-overflow");
      if (overflow == "drop-oldest") asked.overflow_policy = OverflowPolicy::kDropOldest;
      if (overflow == "block") asked.overflow_policy = OverflowPolicy::kBlock;
      auto framing = ParseFramingSpec(read("xenchan-framing"));
      if (framing.ok()) asked.default_framing = *framing;
      uint64_t epoch = 0;
      (void)absl::SimpleAtoi(read("xenchan-epoch"), &epoch);
      const XenbusState be_state =
          ParseXenbusState(read("state")).value_or(XenbusState::kInitialising);
      // An unplug the previous engine had begun (ring_channel.h).
      std::optional<absl::Time> unplug_deadline;
      auto unplugging = xs.Read(kNoTransaction, be + "/" + kUnpluggingKey);
      if (unplugging.ok()) {
        int64_t micros = 0;
        unplug_deadline = absl::SimpleAtoi(*unplugging, &micros) ? absl::FromUnixMicros(micros)
                                                                 : absl::Now();
      }

      ChannelIdentity id;
      id.serial = next_serial_++;
      id.uid = uid;
      id.channel_id = name;
      id.domain_uuid = dom.uuid;
      id.domid = *domid;
      id.devid = *devid;
      id.transport = Transport::kRing;
      auto channel = NewChannel(id, EffectiveConfig(asked), dom.name, absl::Now());
      RingParams params = NewRingParams(*domid, *devid, id.serial);
      params.persisted_epoch = epoch;
      params.recovered = true;
      params.resume_unplug_deadline = unplug_deadline;
      AddRingChannel(std::move(channel), std::move(params), be_state);
    }
  }
}

void Engine::ScanToolstackChannels() {
  if (!options_.serve_toolstack_channels) return;
  XenStore& xs = *options_.xenstore;
  const std::string base = absl::StrCat("/local/domain/", options_.backend_domid, "/backend/console");
  auto doms = xs.Directory(kNoTransaction, base);
  if (!doms.ok()) return;
  const absl::Time now = absl::Now();
  for (const std::string& d : *doms) {
    std::optional<uint32_t> domid = ParseDecimal(d, kMaxDomid);
    if (!domid.has_value()) continue;
    DomainInfo dom;
    {
      MutexLock lock(&mu_);
      auto it = domains_.find(*domid);
      if (it == domains_.end()) continue;  // learnt later, then scanned again
      dom = it->second.info;
    }
    auto devs = xs.Directory(kNoTransaction, base + "/" + d);
    if (!devs.ok()) continue;
    for (const std::string& n : *devs) {
      std::optional<uint32_t> devid = ParseDecimal(n, 1000000);
      if (!devid.has_value() || toolstack_devices_.count({*domid, *devid}) != 0) continue;
      std::optional<ToolstackSpec> spec = ReadToolstackSpec(xs, *domid, *devid);
      if (!spec.has_value()) continue;
      bool taken = false;
      {
        MutexLock lock(&mu_);
        for (const auto& [serial, ch] : channels_) {
          taken = taken || (ch->identity().domid == *domid &&
                            ch->identity().channel_id == spec->name && !ch->removed());
        }
      }
      if (taken) continue;  // a channel id is unique per domain across transports
      ChannelIdentity id;
      id.serial = next_serial_++;
      id.uid = StableUuid(absl::StrCat("toolstack/", dom.uuid, "/", *domid, "/", *devid, "/",
                                       spec->name));
      id.channel_id = spec->name;
      id.domain_uuid = dom.uuid;
      id.domid = *domid;
      id.devid = *devid;
      id.transport = spec->socket ? Transport::kToolstackSocket : Transport::kToolstackPty;
      auto channel = NewChannel(id, EffectiveConfig({}), dom.name, now);
      {
        MutexLock lock(&mu_);
        channels_[id.serial] = channel;
      }
      auto ts = std::make_unique<ToolstackChannel>(&xs, channel, *spec,
                                                   absl::StrCat(kToolstackPrefix, id.serial));
      toolstack_devices_[{*domid, *devid}] = id.serial;
      ToolstackChannel* t = ts.get();
      toolstack_[id.serial] = std::move(ts);
      (void)t->Start();
      t->Refresh(now);
      channel->Emit(ChannelEventType::kAppeared);
    }
  }
}

void Engine::RefreshToolstack(uint64_t serial, absl::Time now) {
  auto it = toolstack_.find(serial);
  if (it == toolstack_.end() || it->second->finished()) return;
  if (it->second->Refresh(now)) return;
  // Its device is gone. If its domain is going too, say so (libxl removes
  // the devices first when it destroys a domain; this cannot always tell).
  const uint32_t domid = it->second->channel().identity().domid;
  auto introduced = options_.xenstore->IsDomainIntroduced(domid);
  const bool domain_gone =
      (introduced.ok() && !*introduced) ||
      options_.xenstore->Read(kNoTransaction, absl::StrCat("/local/domain/", domid, "/name"))
              .status()
              .code() == absl::StatusCode::kNotFound;
  it->second->Remove(domain_gone ? RemovalReason::kDomainGone : RemovalReason::kToolstackRemoved);
}

void Engine::CreateChannel(CreateChannelRequest request,
                           std::function<void(absl::StatusOr<ChannelInfo>)> done) {
  Post([this, request = std::move(request), done = std::move(done)]() mutable {
    DoCreate(std::move(request), std::move(done));
  });
}

void Engine::DoCreate(CreateChannelRequest request,
                      std::function<void(absl::StatusOr<ChannelInfo>)> done) {
  if (stop_) return done(absl::UnavailableError("the engine is shutting down"));
  absl::Status valid = ValidateChannelId(request.channel_id);
  if (!valid.ok()) return done(valid);
  const ChannelConfig config = EffectiveConfig(request.config);
  if (config.buffer_limit_bytes > kMaxBufferLimit) {
    return done(absl::InvalidArgumentError("buffer limit above 1 GiB"));
  }
  if (config.write_queue_limit_bytes > kMaxBufferLimit) {
    return done(absl::InvalidArgumentError("write queue limit above 1 GiB"));
  }
  if (absl::Status s = ValidateFraming(*config.default_framing); !s.ok()) return done(s);
  DomainInfo dom;
  {
    MutexLock lock(&mu_);
    auto resolved = ResolveDomainLocked(request.domain);
    if (!resolved.ok()) return done(resolved.status());
    dom = *resolved;
    for (const auto& [serial, ch] : channels_) {
      if (ch->identity().domid == dom.domid && ch->identity().channel_id == request.channel_id &&
          !ch->removed()) {
        return done(absl::AlreadyExistsError(absl::StrCat(
            "domain ", dom.name, " already has a channel '", request.channel_id, "'")));
      }
    }
  }
  XenStore& xs = *options_.xenstore;
  const uint32_t B = options_.backend_domid;
  const uint32_t D = dom.domid;
  const absl::Time now = absl::Now();
  // Forget releases old enough to reuse.
  auto& released = released_devids_[D];
  for (auto it = released.begin(); it != released.end();) {
    if (now - it->second < options_.devid_reuse_delay) {
      ++it;
      continue;
    }
    (void)xs.Remove(kNoTransaction, absl::StrCat(ReleasedPath(D), "/", it->first));
    it = released.erase(it);
  }
  // The channel's memory floor must fit (memory_budget.h).
  if (budget_->Headroom(D) < options_.channel_memory_reserve_bytes) {
    return done(MemoryBudgetError(absl::StrCat(
        "the memory budget has no room for another channel's ",
        options_.channel_memory_reserve_bytes, "-byte reserve in domain ", dom.name)));
  }
  const std::string uid = NewUuid();
  uint32_t devid = 0;
  absl::Status status;
  for (int attempt = 0; attempt < kTransactionAttempts; ++attempt) {
    auto t = xs.StartTransaction();
    if (!t.ok()) return done(t.status());
    auto abort = [&](absl::Status s) {
      (void)xs.EndTransaction(*t, false);
      return s;
    };
    const std::string dom_path = absl::StrCat("/local/domain/", D);
    auto exists = xs.Read(*t, dom_path + "/name");
    if (!exists.ok()) {
      return done(abort(absl::UnavailableError(
          absl::StrCat("domain ", dom.name, " is going away"))));
    }
    std::set<uint32_t> used;
    size_t consoles = 0;
    for (const std::string& dir :
         {dom_path + "/device/console", absl::StrCat("/libxl/", D, "/device/console"),
          absl::StrCat("/local/domain/", B, "/backend/", options_.backend_type, "/", D)}) {
      auto entries = xs.Directory(*t, dir);
      if (!entries.ok()) continue;
      for (const std::string& e : *entries) {
        std::optional<uint32_t> n = ParseDecimal(e, 1000000);
        if (!n.has_value()) continue;
        if (used.insert(*n).second && *n != 0 && dir == dom_path + "/device/console") ++consoles;
        // hvc_xen takes the devid from the last character (§6.1).
        used.insert(*n % 10);
      }
    }
    if (consoles >= options_.max_channels_per_domain) {
      return done(abort(absl::ResourceExhaustedError(absl::StrCat(
          "domain ", dom.name, " already has ", consoles, " console devices (the limit)"))));
    }
    devid = 0;
    for (uint32_t n = 1; n <= 9; ++n) {
      if (used.count(n) == 0 && released.count(n) == 0) {
        devid = n;
        break;
      }
    }
    if (devid == 0) {
      return done(abort(absl::ResourceExhaustedError(
          absl::StrCat("no free console devid 1..9 in domain ", dom.name))));
    }
    if (request.validate_only) {
      (void)xs.EndTransaction(*t, false);
      ChannelInfo preview;
      preview.channel_id = request.channel_id;
      preview.domain_uuid = dom.uuid;
      preview.domain_name = dom.name;
      preview.domid = D;
      preview.transport = Transport::kRing;
      preview.state = ChannelState::kCreating;
      preview.config = config;
      return done(preview);
    }
    const std::string fe = FrontendPath(D, devid);
    const std::string be = BackendPath(B, options_.backend_type, D, devid);
    const std::vector<XsPermission> be_perms = {{B, XsPermission::kNone}, {D, XsPermission::kRead}};
    const std::vector<XsPermission> fe_perms = {{D, XsPermission::kNone}, {B, XsPermission::kRead}};
    const std::vector<XsPermission> ro_perms = be_perms;
    status = absl::OkStatus();
    auto write = [&](const std::string& path, const std::string& value,
                     const std::vector<XsPermission>* perms) {
      if (!status.ok()) return;
      status = xs.Write(*t, path, value);
      if (status.ok() && perms != nullptr) status = xs.SetPermissions(*t, path, *perms);
    };
    // Backend directory first: it must exist before the guest can see state 1.
    status = IgnoreNotFound(xs.Remove(*t, be));
    if (status.ok()) status = xs.Mkdir(*t, be);
    if (status.ok()) status = xs.SetPermissions(*t, be, be_perms);
    write(be + "/frontend", fe, nullptr);
    write(be + "/frontend-id", absl::StrCat(D), nullptr);
    write(be + "/online", "1", nullptr);
    write(be + "/state", "1", nullptr);
    write(be + "/protocol", "vt100", nullptr);
    write(be + "/name", request.channel_id, nullptr);
    write(be + "/xenchan-uid", uid, nullptr);
    write(be + "/xenchan-epoch", "0", nullptr);
    write(be + "/xenchan-buffer-limit", absl::StrCat(config.buffer_limit_bytes), nullptr);
    write(be + "/xenchan-overflow", OverflowName(*config.overflow_policy), nullptr);
    write(be + "/xenchan-write-queue-limit", absl::StrCat(config.write_queue_limit_bytes),
          nullptr);
    write(be + "/xenchan-framing", FramingSpec(*config.default_framing), nullptr);
    // Frontend directory, guest-owned, with libxl's keys.
    if (status.ok()) status = IgnoreNotFound(xs.Remove(*t, fe));
    if (status.ok()) status = xs.Mkdir(*t, fe);
    if (status.ok()) status = xs.SetPermissions(*t, fe, fe_perms);
    write(fe + "/backend", be, &fe_perms);
    write(fe + "/backend-id", absl::StrCat(B), &fe_perms);
    write(fe + "/state", "1", &fe_perms);
    write(fe + "/protocol", "vt100", &fe_perms);
    // Read-only to the guest.
    write(fe + "/name", request.channel_id, &ro_perms);
    write(fe + "/type", options_.backend_type, &ro_perms);
    write(fe + "/limit", absl::StrCat(config.buffer_limit_bytes), &ro_perms);
    write(fe + "/output", options_.backend_type, &ro_perms);
    write(fe + "/tty", "", &ro_perms);
    if (!status.ok()) return done(abort(status));
    status = xs.EndTransaction(*t, true);
    if (status.code() == absl::StatusCode::kAborted) continue;  // conflict: run it again
    if (!status.ok()) return done(status);
    break;
  }
  if (!status.ok()) return done(status);

  ChannelIdentity id;
  id.serial = next_serial_++;
  id.uid = uid;
  id.channel_id = request.channel_id;
  id.domain_uuid = dom.uuid;
  id.domid = D;
  id.devid = devid;
  id.transport = Transport::kRing;
  auto channel = NewChannel(id, config, dom.name, now);
  AddRingChannel(channel, NewRingParams(D, devid, id.serial), XenbusState::kInitialising);
  if (!request.wait_until_connected) return done(channel->Info());
  RingChannel* ring = rings_[id.serial].get();
  ring->WaitConnected(absl::Now() + request.connect_timeout,
                      [channel, done = std::move(done)](absl::Status s) {
                        if (s.ok()) return done(channel->Info());
                        done(std::move(s));  // hand the one reference over: no rep shared across threads
                      });
}

void Engine::DeleteChannel(const ChannelRef& ref, absl::Duration force_after,
                           std::function<void(absl::StatusOr<DeleteResult>)> done) {
  Post([this, ref, force_after, done = std::move(done)]() mutable {
    DoDelete(ref, force_after, std::move(done));
  });
}

void Engine::DoDelete(ChannelRef ref, absl::Duration force_after,
                      std::function<void(absl::StatusOr<DeleteResult>)> done) {
  if (stop_) return done(absl::UnavailableError("the engine is shutting down"));
  auto channel = FindChannel(ref);
  if (!channel.ok()) return done(channel.status());
  if ((*channel)->identity().transport != Transport::kRing) {
    return done(absl::FailedPreconditionError(
        "toolstack channels are managed by xl.cfg, not deleted through xenchan"));
  }
  auto it = rings_.find((*channel)->serial());
  if (it == rings_.end()) return done(absl::NotFoundError("channel was removed"));
  it->second->Unplug(force_after, std::move(done), absl::Now());
  ReapFinished();
}

absl::StatusOr<ChannelInfo> Engine::CreateChannelAndWait(CreateChannelRequest request) {
  auto waiter = std::make_shared<Waiter<absl::StatusOr<ChannelInfo>>>();
  CreateChannel(std::move(request),
                [waiter](absl::StatusOr<ChannelInfo> r) { waiter->Set(std::move(r)); });
  return waiter->Wait();
}

absl::StatusOr<DeleteResult> Engine::DeleteChannelAndWait(const ChannelRef& ref,
                                                          absl::Duration force_after) {
  auto waiter = std::make_shared<Waiter<absl::StatusOr<DeleteResult>>>();
  DeleteChannel(ref, force_after,
                [waiter](absl::StatusOr<DeleteResult> r) { waiter->Set(std::move(r)); });
  return waiter->Wait();
}

// ---------------------------------------------------------------------------
// Queries.

absl::StatusOr<DomainInfo> Engine::ResolveDomainLocked(const std::string& domain) const {
  const std::string lower = absl::AsciiStrToLower(domain);
  const DomainRecord* by_name = nullptr;
  for (const auto& [domid, rec] : domains_) {
    if (!rec.info.uuid.empty() && rec.info.uuid == lower) {
      DomainInfo info = rec.info;
      return info;
    }
    if (rec.info.name == domain && by_name == nullptr) by_name = &rec;
  }
  if (by_name == nullptr) {
    return absl::NotFoundError(absl::StrCat("no domain '", domain, "'"));
  }
  return by_name->info;
}

absl::StatusOr<std::shared_ptr<Channel>> Engine::FindChannel(const ChannelRef& ref) const {
  MutexLock lock(&mu_);
  auto dom = ResolveDomainLocked(ref.domain);
  if (!dom.ok()) return dom.status();
  for (const auto& [serial, ch] : channels_) {
    if (ch->identity().domid == dom->domid && ch->identity().channel_id == ref.channel_id &&
        !ch->removed()) {
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
    if (ch->identity().domid == info.domid && !ch->removed()) ++info.channel_count;
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
        if (ch->identity().domid == domid && !ch->removed()) ++info.channel_count;
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

absl::StatusOr<std::vector<ChannelEvent>> Engine::EventsAfter(uint64_t revision,
                                                              size_t max) const {
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
