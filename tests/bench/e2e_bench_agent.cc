// See e2e_bench_agent.h.
#include "tests/bench/e2e_bench_agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "tests/bench/bench_process.h"

namespace xenchan {
namespace bench {

int RunGuestAgent(const std::string& mode, const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) Die("agent: open " + path);
  termios t;
  if (tcgetattr(fd, &t) != 0) Die("agent: tcgetattr");
  cfmakeraw(&t);
  if (tcsetattr(fd, TCSANOW, &t) != 0) Die("agent: tcsetattr");
  printf("ready\n");
  fflush(stdout);
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;  // hung up
    if (mode == "drain") continue;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = write(fd, buf + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return 0;
      done += w;
    }
  }
}

GuestAgent::GuestAgent(const std::string& mode, const std::string& tty) {
  const Child child = StartChild({SelfPath(), "--guest_agent=" + mode, "--tty=" + tty});
  pid_ = child.pid;
  const std::string line = ReadLineAndClose(child.stdout_fd);
  if (line != "ready") Die("guest agent did not start on " + tty);
}

GuestAgent::~GuestAgent() {
  kill(pid_, SIGTERM);
  waitpid(pid_, nullptr, 0);
}

}  // namespace bench
}  // namespace xenchan
