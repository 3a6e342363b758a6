// xenchan_load's in-guest agent: this binary re-run in a child process, one
// per guest (--guest_agent=kind:tty,... --payload --read_rate), serving
// every channel tty of that guest on a thread each, in raw mode:
//   echo    writes every byte it reads back;
//   drain   reads and discards;
//   source  writes fixed-size records [u64 seq][u64 CLOCK_MONOTONIC ns][fill]
//           at `rate` records/s (0: as fast as the tty takes them).
#ifndef XENCHAN_TESTS_LOAD_LOAD_AGENT_H_
#define XENCHAN_TESTS_LOAD_LOAD_AGENT_H_

#include <stddef.h>
#include <sys/types.h>

#include <string>

namespace xenchan {
namespace load {

// The agent's own main: opens every tty of `spec` (kind:tty,...), prints
// "ready" on stdout, serves them until they hang up.
int RunGuestAgent(const std::string& spec, size_t payload, int rate);

// Starts an agent for `spec` in a child process; SIGKILLs and reaps it when
// destroyed. Main thread only (see bench_process.h).
class GuestAgent {
 public:
  GuestAgent(const std::string& spec, int payload, int rate);
  // Waits for the agent's ready line; Die if it does not come.
  void WaitReady();
  ~GuestAgent();
  GuestAgent(const GuestAgent&) = delete;
  GuestAgent& operator=(const GuestAgent&) = delete;

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
};

}  // namespace load
}  // namespace xenchan

#endif  // XENCHAN_TESTS_LOAD_LOAD_AGENT_H_
