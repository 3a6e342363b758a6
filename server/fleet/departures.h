// Departures: tells the engine when a domain whose durable channels wait
// here DOMAIN_DOWN now runs on another host of the fleet (docs/FLEET.md,
// "The source host lets go of a channel that moved"). It follows the
// FleetReader's view: on every change it hands the engine the domains whose
// records name another host (Engine::ReleaseMovedChannels, which ignores the
// ones it has nothing of), and it answers the engine's lookup when a domain
// goes here (EngineOptions::domain_elsewhere), since the destination's claim
// usually arrives while the outgoing domain still exists.
//
// Ownership: owned by Fleet; shares its state with the lookup it hands the
// engine, which answers "" once stopped. The reader and the engine outlive
// Stop. Thread safety: every method may be called from any thread; the
// lookup never waits for more than the reader's short lock.
#ifndef XENCHAN_SERVER_FLEET_DEPARTURES_H_
#define XENCHAN_SERVER_FLEET_DEPARTURES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "backend/engine/engine.h"
#include "server/fleet/fleet_view.h"
#include "server/fleet/reader.h"

namespace xenchan {
namespace fleet {

// The domains of `view` whose records name a host other than `host_id`
// (UUID -> host id) that changed after `*cursor` (0: all of them), and moves
// `*cursor` to the view's revision. A history the view no longer holds, or a
// re-read of the fleet, makes it look at every domain. Exposed for tests.
std::map<std::string, std::string> DomainsElsewhere(const FleetView& view,
                                                    const std::string& host_id, int64_t* cursor);

class Departures {
 public:
  explicit Departures(std::string host_id);
  ~Departures();  // Stop()
  Departures(const Departures&) = delete;
  Departures& operator=(const Departures&) = delete;

  // For EngineOptions::domain_elsewhere: the host that runs `uuid` now if
  // the fleet's view names another host; "" otherwise, before Start and
  // after Stop.
  std::function<std::string(const std::string& uuid)> Lookup() const;

  // Follows `reader` for `engine` (both outlive Stop): tells the engine of
  // what the view holds now, then of every change.
  void Start(Engine* engine, FleetReader* reader);
  // Stops following; after it returns the engine is not told anything
  // more and lookups answer "". Idempotent.
  void Stop();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace fleet
}  // namespace xenchan

#endif  // XENCHAN_SERVER_FLEET_DEPARTURES_H_
