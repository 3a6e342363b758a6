// See departures.h.
#include "server/fleet/departures.h"

#include <limits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "backend/util/mutex.h"

namespace xenchan {
namespace fleet {

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
  explicit State(std::string h) : host_id(std::move(h)) {}
  const std::string host_id;
  Mutex mu;
  Engine* engine ABSL_GUARDED_BY(mu) = nullptr;
  FleetReader* reader ABSL_GUARDED_BY(mu) = nullptr;
  uint64_t subscription ABSL_GUARDED_BY(mu) = 0;
  int64_t cursor ABSL_GUARDED_BY(mu) = 0;

  // On the reader's thread (or Start's): hands the engine what changed.
  void OnChange() ABSL_LOCKS_EXCLUDED(mu) {
    MutexLock lock(&mu);
    if (engine == nullptr || reader == nullptr) return;
    std::map<std::string, std::string> elsewhere;
    (void)reader->Read(
        [&](const FleetView& view) { elsewhere = DomainsElsewhere(view, host_id, &cursor); });
    if (!elsewhere.empty()) engine->ReleaseMovedChannels(std::move(elsewhere));
  }

  std::string HostOf(const std::string& uuid) ABSL_LOCKS_EXCLUDED(mu) {
    MutexLock lock(&mu);
    if (reader == nullptr) return "";
    std::string host;
    (void)reader->Read([&](const FleetView& view) {
      auto it = view.domains().find(uuid);
      if (it != view.domains().end() && it->second.record.host_id() != host_id) {
        host = it->second.record.host_id();
      }
    });
    return host;
  }
};

Departures::Departures(std::string host_id) : state_(std::make_shared<State>(std::move(host_id))) {}

Departures::~Departures() { Stop(); }

std::function<std::string(const std::string&)> Departures::Lookup() const {
  std::shared_ptr<State> state = state_;
  return [state](const std::string& uuid) { return state->HostOf(uuid); };
}

void Departures::Start(Engine* engine, FleetReader* reader) {
  {
    MutexLock lock(&state_->mu);
    if (engine == nullptr || reader == nullptr || state_->reader != nullptr) return;
    state_->engine = engine;
    state_->reader = reader;
  }
  std::shared_ptr<State> state = state_;
  const uint64_t id = reader->Subscribe([state] { state->OnChange(); });
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
    reader = state_->reader;
    id = state_->subscription;
    state_->engine = nullptr;
    state_->reader = nullptr;
    state_->subscription = 0;
  }
  // Without our lock: a callback running now holds the reader's subscriber
  // lock and waits for ours.
  if (reader != nullptr && id != 0) reader->Unsubscribe(id);
}

}  // namespace fleet
}  // namespace xenchan
