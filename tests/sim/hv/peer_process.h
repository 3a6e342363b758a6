// Test helper: runs tests/sim/hv/hv_peer as a child process and talks to it
// line by line, so that a test can put one domain in another process.
#ifndef XENCHAN_TESTS_SIM_HV_PEER_PROCESS_H_
#define XENCHAN_TESTS_SIM_HV_PEER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace xenchan {
namespace sim {
namespace hv {

// One hv_peer child. Not thread-safe. The destructor kills and reaps it.
class PeerProcess {
 public:
  // Spawns hv_peer (found in the test's runfiles) against `socket_path`.
  static absl::StatusOr<std::unique_ptr<PeerProcess>> Start(const std::string& socket_path);
  ~PeerProcess();

  // Sends one command line and returns its answer line ("ok ..."/"err ...").
  // DEADLINE_EXCEEDED if no answer within `timeout`; UNAVAILABLE if the child
  // is gone.
  absl::StatusOr<std::string> Command(const std::string& line,
                                      absl::Duration timeout = absl::Seconds(20));
  // Like Command, but expects "ok <number>" and returns the number.
  absl::StatusOr<uint32_t> Number(const std::string& line);

  // SIGKILLs the child and waits until it is reaped (the kernel has then
  // closed all its sockets).
  void KillAndReap();
  pid_t pid() const { return pid_; }

 private:
  PeerProcess() = default;
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buffered_;
};

}  // namespace hv
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_TESTS_SIM_HV_PEER_PROCESS_H_
