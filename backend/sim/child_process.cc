// See child_process.h.
#include "backend/sim/child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace sim {

absl::StatusOr<pid_t> SpawnChild(const std::vector<std::string>& args, bool start_stopped) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(ErrnoMessage(errno, "fork"));
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    if (start_stopped) raise(SIGSTOP);
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (start_stopped) {
    // Stopped before exec, so that a SIGCONT sent from now on is never lost.
    int status = 0;
    pid_t r;
    while ((r = waitpid(pid, &status, WUNTRACED)) < 0 && errno == EINTR) {
    }
    if (r != pid || !WIFSTOPPED(status)) {
      if (r != pid) KillAndReap(pid, SIGKILL);
      return absl::InternalError("the child did not stop before exec");
    }
  }
  return pid;
}

bool ReapIfExited(pid_t pid) {
  int status;
  return waitpid(pid, &status, WNOHANG) == pid;
}

void KillAndReap(pid_t pid, int sig, absl::Duration grace) {
  if (pid <= 0) return;
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (sig != 0) kill(pid, sig);
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    int r;
    do {
      r = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(grace)));
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
      std::fprintf(stderr, "xensim: child %d ignored signal %d for %s; killing it\n",
                   static_cast<int>(pid), sig, absl::FormatDuration(grace).c_str());
      kill(pid, SIGKILL);
    }
    close(pidfd);
  }
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace sim
}  // namespace xenchan
