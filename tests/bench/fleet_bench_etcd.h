// What the fleet costs etcd, seen from etcd's side (fleet_bench, issue 13
// item 8): every write under the fleet prefix, attributed to the host that
// made it, from a watch of the prefix; the store revision (every write of
// the whole cluster bumps it); and lease keep-alives, which are not writes
// (they bump no revision) and are counted apart from etcd's own metric
// etcd_debugging_lease_renewed_total, read from each member's /metrics.
#ifndef XENCHAN_TESTS_BENCH_FLEET_BENCH_ETCD_H_
#define XENCHAN_TESTS_BENCH_FLEET_BENCH_ETCD_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/util/mutex.h"
#include "server/etcd/client.h"

namespace xenchan {
namespace bench {

// Counts the writes under one fleet prefix per host id. A put is the host
// its record names (hosts/ID: ID; domains/ and declarations/: the record's
// host_id); a delete, the host that last wrote the key; a key or value the
// fleet's codec refuses, "?".
//
// Ownership: owns a watch and the thread that follows it (cancelled and
// joined on destruction); shares the etcd client. Thread-safe: Counts may
// be called from any thread.
class FleetWriteCounter {
 public:
  struct Counts {
    std::map<std::string, uint64_t> per_host;  // events (key writes) by host id
    uint64_t events = 0;                       // all of them
    int64_t revision = 0;                      // of the last event seen (or the start)
    absl::Time last_event = absl::InfinitePast();
  };

  // Reads the prefix (who wrote each key so far) and follows it from there.
  static absl::StatusOr<std::unique_ptr<FleetWriteCounter>> Start(
      std::shared_ptr<etcd::Client> etcd, const std::string& prefix);
  ~FleetWriteCounter();

  Counts counts() const ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until no write came for `quiet` since the call (true), or `timeout`
  // (false).
  bool WaitQuiet(absl::Duration quiet, absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  FleetWriteCounter(std::shared_ptr<etcd::Client> etcd, std::string prefix)
      : etcd_(std::move(etcd)), prefix_(std::move(prefix)) {}
  void Run(int64_t from_revision);
  // The host that wrote `kv` (a put), or "?".
  std::string WriterOf(const etcd::KeyValue& kv) const;

  const std::shared_ptr<etcd::Client> etcd_;
  const std::string prefix_;
  std::thread thread_;
  mutable Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<etcd::Watch> watch_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> writer_ ABSL_GUARDED_BY(mu_);  // key -> host id
  Counts counts_ ABSL_GUARDED_BY(mu_);
};

// The store revision now (a read: it writes nothing).
absl::StatusOr<int64_t> StoreRevision(etcd::Client& etcd);

// etcd_debugging_lease_renewed_total summed over `endpoints`
// ("unix:///path" client URLs; /metrics is served there as HTTP/1). A
// follower forwards a keep-alive to the leader, which counts it: the sum
// counts each keep-alive once.
absl::StatusOr<double> LeaseRenewals(const std::vector<std::string>& endpoints);

}  // namespace bench
}  // namespace xenchan

#endif  // XENCHAN_TESTS_BENCH_FLEET_BENCH_ETCD_H_
