// EtcdCluster: real etcd members (Debian's /usr/bin/etcd) for tests, on Unix
// sockets in a temp dir (no ports), so that tests are hermetic and can run
// in parallel. Members can be killed and restarted to inject faults.
#ifndef XENCHAN_TESTS_ETCD_ETCD_CLUSTER_H_
#define XENCHAN_TESTS_ETCD_ETCD_CLUSTER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace xenchan {
namespace etcdtest {

// Ownership: owns the member processes (SIGKILLed and reaped on
// destruction) and the temp dir (removed). Not thread-safe.
class EtcdCluster {
 public:
  // Starts `members` members forming one cluster and waits (up to 60 s)
  // until it answers a write. The cluster's data and logs go to a fresh
  // temp dir.
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(int members = 1);
  ~EtcdCluster();

  // Client endpoints, "unix:///dir/mN:2379", one per member.
  std::vector<std::string> endpoints() const;
  std::string endpoint(int member) const;
  int size() const { return static_cast<int>(pids_.size()); }

  // SIGKILLs member `member` (a crash: no clean shutdown).
  void Kill(int member);
  // Starts a killed member again on its data dir.
  absl::Status Restart(int member);
  // The tail of every member's log, for failure messages.
  std::string Logs() const;

 private:
  EtcdCluster() = default;
  absl::Status Spawn(int member, bool fresh);

  std::string dir_;
  std::vector<pid_t> pids_;
};

}  // namespace etcdtest
}  // namespace xenchan

#endif  // XENCHAN_TESTS_ETCD_ETCD_CLUSTER_H_
