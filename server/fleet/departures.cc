// See departures.h.
#include "server/fleet/departures.h"

#include <limits>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "backend/util/mutex.h"
#include "server/fleet/records.h"
#include "server/log.h"

namespace xenchan {
namespace fleet {
namespace {

// At most this many declarations are read per domain (a domain has at most
// kMaxChannelsPerDomain channels).
constexpr int64_t kMaxDeclarationsRead = 64;

}  // namespace

std::map<std::string, std::string> DomainsElsewhere(const FleetView& view,
                                                    const std::string& host_id, int64_t* cursor) {
  std::map<std::string, std::string> out;
  if (!view.loaded()) return out;
  bool everything = *cursor == 0;
  if (!everything) {
    std::vector<FleetEvent> events;
    if (!view.EventsAfter(*cursor, std::numeric_limits<size_t>::max(), &events).ok()) {
      everything = true;  // the history no longer reaches back: look at all
    }
    for (const FleetEvent& e : events) {
      if (e.type == FleetEvent::Type::kResynced) everything = true;
      if (e.kind != FleetEvent::Kind::kDomain || e.type == FleetEvent::Type::kDisappeared) continue;
      const v1::DomainRecord& r = e.domain.record;
      if (r.host_id() != host_id) {
        out[r.uuid()] = r.host_id();
      } else {
        out.erase(r.uuid());  // claimed back by this host after all
      }
    }
  }
  if (everything) {
    out.clear();
    for (const auto& [uuid, entry] : view.domains()) {
      if (entry.record.host_id() != host_id) out[uuid] = entry.record.host_id();
    }
  }
  *cursor = view.revision();
  return out;
}

struct Departures::State {
  State(std::shared_ptr<etcd::Client> e, DeparturesOptions o)
      : etcd(std::move(e)), options(std::move(o)) {}
  const std::shared_ptr<etcd::Client> etcd;
  const DeparturesOptions options;
  std::thread thread;

  Mutex mu;
  CondVar cv;
  bool stop ABSL_GUARDED_BY(mu) = false;
  Engine* engine ABSL_GUARDED_BY(mu) = nullptr;
  FleetReader* reader ABSL_GUARDED_BY(mu) = nullptr;
  uint64_t subscription ABSL_GUARDED_BY(mu) = 0;
  int64_t cursor ABSL_GUARDED_BY(mu) = 0;
  // UUID -> (the host the view names, when to stop checking).
  std::map<std::string, std::pair<std::string, absl::Time>> pending ABSL_GUARDED_BY(mu);

  // On the reader's thread (or Start's): queues what changed.
  void OnChange() ABSL_LOCKS_EXCLUDED(mu) {
    MutexLock lock(&mu);
    if (stop || reader == nullptr) return;
    std::map<std::string, std::string> elsewhere;
    (void)reader->Read([&](const FleetView& view) {
      elsewhere = DomainsElsewhere(view, options.host_id, &cursor);
    });
    const absl::Time until = absl::Now() + options.give_up;
    for (auto& [uuid, host] : elsewhere) pending[uuid] = {host, until};
    if (!elsewhere.empty()) cv.Signal();
  }

  // One check of `uuid`, which the view says `host` runs now; true when
  // nothing is left to do for it.
  bool Check(Engine* engine, const std::string& uuid, const std::string& host) {
    std::set<std::string> waiting;  // its durable channels waiting here
    bool any = false;
    for (const ChannelInfo& c : engine->ListChannels()) {
      if (c.domain_uuid != uuid) continue;
      any = true;
      if (c.state == ChannelState::kDomainDown && c.config.lifetime == ChannelLifetime::kDurable) {
        waiting.insert(c.channel_id);
      }
    }
    if (!any) return true;              // nothing of it here
    if (waiting.empty()) return false;  // it still runs here: check again when it has gone
    auto range =
        etcd->GetPrefix(DomainDeclarationsPrefix(options.prefix, uuid), kMaxDeclarationsRead);
    if (!range.ok()) return false;  // etcd away: again later
    Engine::MovedDomain moved;
    moved.host = host;
    for (const etcd::KeyValue& kv : range->kvs) {
      auto record = DecodeDeclaration(options.prefix, kv.key, kv.value);
      if (record.ok() && record->host_id() == host && waiting.count(record->channel_id()) != 0) {
        moved.channel_ids.insert(record->channel_id());
      }
    }
    const bool all = moved.channel_ids.size() == waiting.size();
    if (!moved.channel_ids.empty()) {
      server::Log(
          "info", "fleet: letting go of channels whose domain moved",
          {{"uuid", uuid}, {"host", host}, {"channels", std::to_string(moved.channel_ids.size())}});
      engine->ReleaseMovedChannels({{uuid, std::move(moved)}});
    }
    return all;
  }

  void Run() ABSL_LOCKS_EXCLUDED(mu) {
    for (;;) {
      Engine* e = nullptr;
      std::map<std::string, std::pair<std::string, absl::Time>> work;
      {
        MutexLock lock(&mu);
        if (pending.empty() && !stop) cv.Wait(&mu);
        if (stop) return;
        e = engine;
        work = pending;
      }
      const absl::Time now = absl::Now();
      for (const auto& [uuid, entry] : work) {
        const bool done = now >= entry.second || Check(e, uuid, entry.first);
        if (!done) continue;
        MutexLock lock(&mu);
        auto it = pending.find(uuid);
        if (it != pending.end() && it->second == entry) pending.erase(it);
      }
      MutexLock lock(&mu);
      if (!stop && !pending.empty()) cv.WaitWithDeadline(&mu, absl::Now() + options.recheck);
    }
  }
};

Departures::Departures(std::shared_ptr<etcd::Client> etcd, DeparturesOptions options)
    : state_(std::make_shared<State>(std::move(etcd), std::move(options))) {}

Departures::~Departures() { Stop(); }

void Departures::Start(Engine* engine, FleetReader* reader) {
  {
    MutexLock lock(&state_->mu);
    if (engine == nullptr || reader == nullptr || state_->reader != nullptr || state_->stop) {
      return;
    }
    state_->engine = engine;
    state_->reader = reader;
  }
  State* state = state_.get();
  state_->thread = std::thread([state] { state->Run(); });
  std::shared_ptr<State> shared = state_;
  const uint64_t id = reader->Subscribe([shared] { shared->OnChange(); });
  {
    MutexLock lock(&state_->mu);
    state_->subscription = id;
  }
  state_->OnChange();  // what the view holds already
}

void Departures::Stop() {
  FleetReader* reader = nullptr;
  uint64_t id = 0;
  {
    MutexLock lock(&state_->mu);
    state_->stop = true;
    reader = state_->reader;
    id = state_->subscription;
    state_->reader = nullptr;
    state_->subscription = 0;
    state_->cv.Signal();
  }
  // Without our lock: a callback running now holds the reader's subscriber
  // lock and waits for ours.
  if (reader != nullptr && id != 0) reader->Unsubscribe(id);
  if (state_->thread.joinable()) state_->thread.join();
}

}  // namespace fleet
}  // namespace xenchan
