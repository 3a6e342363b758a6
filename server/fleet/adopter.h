// Adopter: the fleet's answer to a domain that arrives with a UUID this host
// has no declaration for (Engine's on_domain_arrival, engine_adopt.cc): on
// its own thread it reads the UUID's durable channel declarations from etcd,
// checks them like any value read back from etcd, and hands them to the
// engine (Engine::AdoptDeclarations), which holds the domain paused until
// then. etcd failing is an empty answer: the hold ends and the domain runs
// without the channels, as it would outside a fleet.
//
// A declaration can be late: the source host publishes it a moment after the
// channel is created (its publisher scans every ~200 ms), so a domain
// migrated at once arrives before it; or etcd is away at the arrival. So
// after an empty or failed lookup the arrival is kept for a bounded window
// (`retry_window`) and looked up again with backoff; declarations found then
// are handed to the engine the same way (it adopts them into the running
// domain, and does nothing if the domain is gone). A declaration this host
// wrote itself is not a late one and is ignored by those later lookups.
//
// Thread safety: Offer may be called from any thread (the engine's); it
// never blocks.
#ifndef XENCHAN_SERVER_FLEET_ADOPTER_H_
#define XENCHAN_SERVER_FLEET_ADOPTER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/engine/engine.h"
#include "backend/util/mutex.h"
#include "server/etcd/client.h"

namespace xenchan {
namespace fleet {

struct AdopterOptions {
  std::string prefix;  // the fleet's key prefix
  // The settings a declaration leaves unset take these (the server's
  // channel defaults).
  ChannelConfig defaults;
  // This host's id: its own declarations are never late arrivals.
  std::string host_id;
  // After an empty or failed lookup, look again for this long, first after
  // `first_retry`, then doubling up to `max_retry` between lookups.
  absl::Duration retry_window = absl::Seconds(60);
  absl::Duration first_retry = absl::Milliseconds(250);
  absl::Duration max_retry = absl::Seconds(5);
};

class Adopter {
 public:
  Adopter(std::shared_ptr<etcd::Client> etcd, AdopterOptions options);
  ~Adopter();  // Stop()

  // Starts answering, for `engine` (which outlives this object).
  void Start(Engine* engine);
  // Queues an arrival; false (the engine then does not hold the domain) if
  // not started or too many are waiting.
  bool Offer(uint32_t domid, const std::string& uuid) ABSL_LOCKS_EXCLUDED(mu_);

  // Stops answering (offers are declined from now on, later lookups end)
  // and joins the thread; after it returns the engine is never called
  // again. Offers not answered end with the engine's hold limit. Returns
  // within one etcd call's deadline. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Answers so far (first answers, not later adoptions), for tests and
  // metrics.
  uint64_t answered() const ABSL_LOCKS_EXCLUDED(mu_);
  // Arrivals adopted by a later lookup, and arrivals still looked for.
  uint64_t late_adoptions() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t retrying() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // An arrival answered empty, looked up again until `give_up`.
  struct Retry {
    uint32_t domid = 0;
    std::string uuid;
    absl::Time next;
    absl::Time give_up;
    absl::Duration backoff;
  };

  void Run();
  void Answer(uint32_t domid, const std::string& uuid);
  // One later lookup; the retry to keep, if the window goes on.
  std::optional<Retry> LookAgain(Retry retry);
  // Whether `domid` is still the domain `uuid` here (else nothing to adopt
  // into: stop looking).
  bool StillHere(uint32_t domid, const std::string& uuid) const;
  // The domain's declarations in etcd, checked; `skip_own` leaves out those
  // this host wrote. The etcd call's error if it failed.
  absl::StatusOr<std::vector<ChannelDeclaration>> Lookup(const std::string& uuid, bool skip_own);

  const std::shared_ptr<etcd::Client> etcd_;
  const AdopterOptions options_;
  Engine* engine_ = nullptr;
  std::thread thread_;

  mutable Mutex mu_;
  CondVar cv_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::pair<uint32_t, std::string>> queue_ ABSL_GUARDED_BY(mu_);
  // At most kMaxQueued; unordered (a few hundred at most: scanned).
  std::vector<Retry> retries_ ABSL_GUARDED_BY(mu_);
  // One taken out of retries_ for its lookup (still counted as retrying).
  bool looking_again_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t answered_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t late_adoptions_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fleet
}  // namespace xenchan

#endif  // XENCHAN_SERVER_FLEET_ADOPTER_H_
