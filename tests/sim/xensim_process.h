// Test helper: runs `xensim serve` as a child process on a fresh state
// directory, and the `xensim` command line against it. For integration tests
// of anything that needs a simulated Xen host (depend on
// //tests/sim:xensim_process; the xensim binary comes along as runfiles).
//
// The state directory lives under /tmp (a fresh mkdtemp directory), because
// TEST_TMPDIR is usually too long for the Unix socket paths inside it.
#ifndef XENCHAN_TESTS_SIM_XENSIM_PROCESS_H_
#define XENCHAN_TESTS_SIM_XENSIM_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace xenchan {
namespace simtest {

// What a child process did.
struct ProcessResult {
  int exit_code = -1;  // 128 + signal if it was killed
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] is a path) to completion with `env` added to this
// process's environment, collecting stdout and stderr. Gives up (and kills
// it) after `timeout`.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env = {},
                         absl::Duration timeout = absl::Minutes(2));

// One running `xensim serve`. Not thread-safe.
class XensimProcess {
 public:
  // Makes /tmp/xensim-XXXXXX, starts `xensim serve --state-dir <it>/s` and
  // waits (up to 30 s) for its ready line. UNAVAILABLE if it does not start.
  static absl::StatusOr<std::unique_ptr<XensimProcess>> Start();
  // Stops the server (Stop()) and removes the scratch directory.
  ~XensimProcess();

  // Sends SIGTERM and waits; returns its exit status (0 on a clean stop).
  int Stop();

  // <scratch>/s: xenstored.sock, hypervisor.sock, control.sock, guests/...
  const std::string& state_dir() const { return state_dir_; }
  // A short directory of the test's own (e.g. for channel socket paths).
  const std::string& scratch_dir() const { return scratch_dir_; }
  std::string xenstored_socket() const { return state_dir_ + "/xenstored.sock"; }
  std::string hypervisor_socket() const { return state_dir_ + "/hypervisor.sock"; }
  // <state_dir>/guests/<name>/root.
  std::string guest_root(const std::string& name) const;

  // Runs `xensim --state-dir <state_dir> <args...>`.
  ProcessResult Cli(const std::vector<std::string>& args) const;
  // Runs `xensim domain create --name <name> [--channel spec]...` and returns
  // the domid; the error carries stderr.
  absl::StatusOr<uint32_t> CreateDomain(const std::string& name,
                                        const std::vector<std::string>& channels = {}) const;

  // The xensim binary in this test's runfiles.
  static std::string BinaryPath();

 private:
  XensimProcess() = default;

  std::string scratch_dir_;
  std::string state_dir_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
};

}  // namespace simtest
}  // namespace xenchan

#endif  // XENCHAN_TESTS_SIM_XENSIM_PROCESS_H_
