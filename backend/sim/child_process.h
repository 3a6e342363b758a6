// The child processes of xensim's toolstack (the simulated guest and QEMU of
// each domain): starting them so they never outlive the thread that started
// them, noticing when one died on its own, and stopping and reaping them.
//
// Only ever called for the caller's own children. The functions keep no
// state; callers serialise the calls for one pid (Host does it under its
// mutex).
#ifndef XENCHAN_BACKEND_SIM_CHILD_PROCESS_H_
#define XENCHAN_BACKEND_SIM_CHILD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace xenchan {
namespace sim {

// Forks and execs args[0] with `args`; stdin is /dev/null, the signal mask is
// cleared, and the child gets SIGKILL if the calling thread exits
// (PR_SET_PDEATHSIG). A child whose exec fails exits 127. `start_stopped`:
// the child stops itself (SIGSTOP) before exec and is returned stopped; it
// runs on SIGCONT. INTERNAL if fork fails or the child died before it
// stopped.
absl::StatusOr<pid_t> SpawnChild(const std::vector<std::string>& args, bool start_stopped = false);

// Reaps child `pid` if it has exited; true then (the pid is gone). Does not
// block.
bool ReapIfExited(pid_t pid);

// Sends `sig` to child `pid` (0: none, it is expected to exit by itself) and
// reaps it. If it has not exited after `grace`, it is SIGKILLed. Blocks until
// the child is reaped. Does nothing for pid <= 0.
void KillAndReap(pid_t pid, int sig, absl::Duration grace = absl::Seconds(5));

}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_CHILD_PROCESS_H_
