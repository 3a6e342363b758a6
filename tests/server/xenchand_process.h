// Test helper: runs the real xenchand binary as a child process against a
// running xensim (`--platform=sim`), listening on a Unix socket in a short
// scratch directory and (by default) on plaintext loopback TCP
// (`insecure-tcp://127.0.0.1:0`, whose callers are unauthenticated), and
// learns the bound addresses from its structured log. The test's own uid is
// granted everything on the Unix socket by xenchand's built-in policy. No
// sleeps: every wait is bounded by a deadline.
#ifndef XENCHAN_TESTS_SERVER_XENCHAND_PROCESS_H_
#define XENCHAN_TESTS_SERVER_XENCHAND_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/util/mutex.h"

namespace xenchan {
namespace servertest {

class XenchandProcess {
 public:
  // Starts `xenchand --platform=sim --sim-state-dir=<state_dir>
  // --listen=unix://<socket> [--listen=<tcp_listen>] <extra...>` and waits
  // (up to 30 s) for `msg=ready`. `tcp_listen` empty: no TCP listener (pass
  // TCP listeners in `extra_args` then; tcp_target() is the first logged).
  static absl::StatusOr<std::unique_ptr<XenchandProcess>> Start(
      const std::string& state_dir, const std::string& socket_path,
      const std::vector<std::string>& extra_args = {},
      const std::string& tcp_listen = "insecure-tcp://127.0.0.1:0");
  ~XenchandProcess();

  // SIGTERM and wait; returns the exit code (128+signal if killed).
  int Stop();
  // SIGKILL and wait.
  void Kill();

  // The server's process id (-1 once stopped), e.g. for /proc/<pid>/status.
  pid_t pid() const { return pid_; }
  std::string unix_target() const { return "unix://" + socket_path_; }
  // The first TCP listener's address (HOST:PORT), empty if none.
  const std::string& tcp_target() const { return tcp_target_; }
  // Everything it logged so far.
  std::string log() const;
  // Waits until the log contains `text`.
  bool WaitForLog(const std::string& text, absl::Duration timeout = absl::Seconds(20)) const;

  static std::string BinaryPath();

 private:
  XenchandProcess() = default;
  void Drain();

  pid_t pid_ = -1;
  int stderr_fd_ = -1;
  std::string socket_path_;
  std::string tcp_target_;
  std::thread drainer_;
  mutable Mutex mu_;
  mutable CondVar cv_;
  std::string log_ ABSL_GUARDED_BY(mu_);
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace servertest
}  // namespace xenchan

#endif  // XENCHAN_TESTS_SERVER_XENCHAND_PROCESS_H_
