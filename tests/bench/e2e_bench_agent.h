// e2e_bench's in-guest agent: this binary re-run in a child process
// (--guest_agent=echo|drain --tty=PATH) on a channel tty of the simulated
// guest, in raw mode: echo writes every byte back, drain discards them.
#ifndef XENCHAN_TESTS_BENCH_E2E_BENCH_AGENT_H_
#define XENCHAN_TESTS_BENCH_E2E_BENCH_AGENT_H_

#include <sys/types.h>

#include <string>

namespace xenchan {
namespace bench {

// The agent's own main: serves `path` until it hangs up; prints "ready" on
// stdout once the tty is open.
int RunGuestAgent(const std::string& mode, const std::string& path);

// Starts the agent in a child process and waits for its ready line (Die if
// it does not come); stops it (SIGTERM, waited for) when destroyed.
class GuestAgent {
 public:
  GuestAgent(const std::string& mode, const std::string& tty);
  ~GuestAgent();
  GuestAgent(const GuestAgent&) = delete;
  GuestAgent& operator=(const GuestAgent&) = delete;

 private:
  pid_t pid_ = -1;
};

}  // namespace bench
}  // namespace xenchan

#endif  // XENCHAN_TESTS_BENCH_E2E_BENCH_AGENT_H_
