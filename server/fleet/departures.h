// Departures: tells the engine when durable channels waiting here DOMAIN_DOWN
// were adopted by another host of the fleet, which now runs their domain
// (docs/FLEET.md, "The source host lets go of a channel that moved"). It
// follows the FleetReader's view: every domain whose record names another
// host becomes a candidate. Its own thread then checks each candidate the
// engine holds channels of: the channels whose declaration in etcd the new
// host has written (so the new host adopted them) are handed to the engine
// (Engine::ReleaseMovedChannels). A candidate is checked again every
// `recheck` while its domain still runs here or the new host has not written
// every declaration yet (the claim usually arrives before the source's
// domain goes, and the declarations a moment after the claim), for at most
// `give_up`; a channel the new host never adopts stays durable here.
//
// Ownership: owned by Fleet; shares the etcd client. The reader and the
// engine outlive Stop. Thread safety: every method may be called from any
// thread; the reader's callback only queues.
#ifndef XENCHAN_SERVER_FLEET_DEPARTURES_H_
#define XENCHAN_SERVER_FLEET_DEPARTURES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "backend/engine/engine.h"
#include "server/etcd/client.h"
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

struct DeparturesOptions {
  std::string prefix = "/xenchan/v1/";
  std::string host_id;
  absl::Duration recheck = absl::Milliseconds(500);
  absl::Duration give_up = absl::Minutes(2);
};

class Departures {
 public:
  Departures(std::shared_ptr<etcd::Client> etcd, DeparturesOptions options);
  ~Departures();  // Stop()
  Departures(const Departures&) = delete;
  Departures& operator=(const Departures&) = delete;

  // Follows `reader` for `engine` (both outlive Stop): what the view holds
  // now, then every change.
  void Start(Engine* engine, FleetReader* reader);
  // Stops following and joins the thread; after it returns the engine is
  // not told anything more. Idempotent.
  void Stop();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace fleet
}  // namespace xenchan

#endif  // XENCHAN_SERVER_FLEET_DEPARTURES_H_
