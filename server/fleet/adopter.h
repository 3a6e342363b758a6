// Adopter: the fleet's answer to a domain that arrives with a UUID this host
// has no declaration for (Engine's on_domain_arrival, engine_adopt.cc): on
// its own thread it reads the UUID's durable channel declarations from etcd,
// checks them like any value read back from etcd, and hands them to the
// engine (Engine::AdoptDeclarations), which holds the domain paused until
// then. etcd failing is an empty answer: the hold ends and the domain runs
// without the channels, as it would outside a fleet.
//
// Thread safety: Offer may be called from any thread (the engine's); it
// never blocks.
#ifndef XENCHAN_SERVER_FLEET_ADOPTER_H_
#define XENCHAN_SERVER_FLEET_ADOPTER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "backend/engine/engine.h"
#include "backend/util/mutex.h"
#include "server/etcd/client.h"

namespace xenchan {
namespace fleet {

class Adopter {
 public:
  // `defaults`: the settings a declaration leaves unset take these (the
  // server's channel defaults).
  Adopter(std::shared_ptr<etcd::Client> etcd, std::string prefix, ChannelConfig defaults);
  ~Adopter();  // Stop()

  // Starts answering, for `engine` (which outlives this object).
  void Start(Engine* engine);
  // Queues an arrival; false (the engine then does not hold the domain) if
  // not started or too many are waiting.
  bool Offer(uint32_t domid, const std::string& uuid) ABSL_LOCKS_EXCLUDED(mu_);

  // Stops answering (offers are declined from now on) and joins the thread;
  // after it returns the engine is never called again. Offers not answered
  // end with the engine's hold limit. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Answers so far, for tests and metrics.
  uint64_t answered() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run();
  std::vector<ChannelDeclaration> Lookup(const std::string& uuid);

  const std::shared_ptr<etcd::Client> etcd_;
  const std::string prefix_;
  const ChannelConfig defaults_;
  Engine* engine_ = nullptr;
  std::thread thread_;

  mutable Mutex mu_;
  CondVar cv_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::pair<uint32_t, std::string>> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t answered_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fleet
}  // namespace xenchan

#endif  // XENCHAN_SERVER_FLEET_ADOPTER_H_
