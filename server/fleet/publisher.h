// Publisher: what one xenchand tells the fleet (docs/FLEET.md): its host
// record under a lease kept alive, the domains it runs, and the durable
// channel declarations, kept equal to the host's local state by comparison,
// so that nothing is written while nothing changes (lease keep-alives
// aside).
//
// Never blocking the host: the publisher works on its own thread, reads the
// local state through LocalView (in-memory lists, never waiting), and every
// etcd call has a deadline. While etcd is away it keeps only the latest
// desired state (one entry per host, domain and declaration), reports
// itself degraded, and re-syncs everything when etcd answers again.
//
// Ownership rule (docs/FLEET.md, "the newest introduction wins"): a domain
// this host saw introduced is claimed with an unconditional put; every other
// write or delete of a domain record is guarded by the mod_revision this
// host wrote last, so a stale host never takes a domain back.
//
// Thread safety: Start, Stop and the accessors may be called from any thread.
#ifndef XENCHAN_SERVER_FLEET_PUBLISHER_H_
#define XENCHAN_SERVER_FLEET_PUBLISHER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/util/mutex.h"
#include "server/etcd/client.h"
#include "xenchan/fleet/v1/records.pb.h"

namespace xenchan {
namespace fleet {

// The host's local state, as the publisher sees it. Implementations answer
// from memory and never block.
class LocalView {
 public:
  virtual ~LocalView() = default;
  // The domains this host runs that have a UUID (version, host_id set by the
  // publisher).
  virtual std::vector<fleet::v1::DomainRecord> Domains() = 0;
  // The durable channels declared on this host (version, host_id set by the
  // publisher).
  virtual std::vector<fleet::v1::DeclarationRecord> Declarations() = 0;
  // Durable channels this host let go because their domain runs on another
  // host now (UUID, channel id): their declarations are that host's, so the
  // publisher forgets them without deleting them.
  virtual std::vector<std::pair<std::string, std::string>> MovedAway() { return {}; }
  // A number that changes whenever anything the three lists above report
  // may have changed (cheap: called on every scan). A view that cannot tell
  // returns a new number on every call, and every scan compares in full.
  virtual uint64_t Generation() { return ++calls_; }

 private:
  uint64_t calls_ = 0;
};

struct PublisherOptions {
  std::string prefix = "/xenchan/v1/";
  fleet::v1::HostRecord host;  // host_id, api_address, identity, version, start
  absl::Duration lease_ttl = absl::Seconds(10);
  // How often the view's generation is checked; a scan compares the local
  // state with what was published only when it changed (or a full
  // comparison is due).
  absl::Duration scan_interval = absl::Milliseconds(200);
  // The longest time between full comparisons while the generation stays
  // put: a backstop that costs one pass, never a write when nothing changed.
  absl::Duration full_scan_interval = absl::Seconds(30);
  // The longest wait between attempts while etcd is away.
  absl::Duration max_backoff = absl::Seconds(5);
  // Runs on the publisher's thread when etcd is reached or lost (optional).
  std::function<void(bool connected)> on_connection_change;
};

// Counters, for metrics and tests.
struct PublisherStats {
  bool connected = false;      // the last etcd call succeeded
  int64_t lease = 0;           // 0 while none
  uint64_t writes = 0;         // puts, deletes and transactions sent
  uint64_t failures = 0;       // etcd calls that failed
  uint64_t registrations = 0;  // host records written (1 + re-registrations)
  uint64_t full_passes = 0;    // scans that compared the whole local state
  uint64_t domains_lost = 0;   // domains another host claimed since
};

class Publisher {
 public:
  Publisher(std::shared_ptr<etcd::Client> etcd, PublisherOptions options,
            std::unique_ptr<LocalView> view);
  ~Publisher();  // Stop(false) if still running

  void Start();
  // Stops the thread. `graceful`: revoke the lease (the host's and its
  // domains' records go at once); otherwise they expire with it.
  void Stop(bool graceful);

  PublisherStats stats() const ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until one full pass has compared and published everything, or
  // `timeout`; true if it did (tests and the first start).
  bool WaitForSync(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Published {
    std::string value;         // what we wrote
    int64_t mod_revision = 0;  // when
  };

  void Run();
  // One pass; false if etcd failed somewhere (the pass is retried).
  bool Pass();
  bool EnsureLease();
  bool SyncDomains();
  bool SyncDeclarations();
  // Guarded write of `key` (see the file comment); false on an etcd error.
  bool PublishDomain(const fleet::v1::DomainRecord& record, bool claim);
  void Failed(const absl::Status& status, const std::string& what);
  void Succeeded();

  const std::shared_ptr<etcd::Client> etcd_;
  const PublisherOptions options_;
  const std::unique_ptr<LocalView> view_;
  std::thread thread_;

  // Publisher-thread state.
  int64_t lease_ = 0;
  bool registered_now_ = false;  // EnsureLease granted a new lease this pass
  absl::Time next_keepalive_ = absl::InfinitePast();
  bool synced_ = false;             // the last full comparison succeeded
  uint64_t synced_generation_ = 0;  // the view's generation it saw
  absl::Time next_full_ = absl::InfinitePast();
  std::map<std::string, Published> domains_;       // by key
  std::map<std::string, Published> declarations_;  // by key
  std::map<std::string, uint32_t> seen_domids_;    // UUID -> domid last seen here
  std::set<std::string> pending_claims_;           // domain keys to claim (new introductions)
  std::set<std::string> lost_;                     // domain keys another host claimed

  mutable Mutex mu_;
  CondVar cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t good_passes_ ABSL_GUARDED_BY(mu_) = 0;
  PublisherStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleet
}  // namespace xenchan

#endif  // XENCHAN_SERVER_FLEET_PUBLISHER_H_
