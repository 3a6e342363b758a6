// XenchandProcess (see the header).
#include "tests/server/xenchand_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/common/files.h"

namespace xenchan {
namespace servertest {

std::string XenchandProcess::BinaryPath() { return testcommon::RunfilePath("server/xenchand"); }

absl::StatusOr<std::unique_ptr<XenchandProcess>> XenchandProcess::Start(
    const std::string& state_dir, const std::string& socket_path,
    const std::vector<std::string>& extra_args, const std::string& tcp_listen) {
  std::unique_ptr<XenchandProcess> p(new XenchandProcess());
  p->socket_path_ = socket_path;
  int err[2];
  if (pipe2(err, O_CLOEXEC) != 0) return absl::InternalError("pipe");
  std::vector<std::string> args = {BinaryPath(), "--platform=sim", "--sim-state-dir=" + state_dir,
                                   "--listen=unix://" + socket_path};
  if (!tcp_listen.empty()) args.push_back("--listen=" + tcp_listen);
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  p->pid_ = fork();
  if (p->pid_ == 0) {
    dup2(err[1], 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(err[1]);
  p->stderr_fd_ = err[0];
  p->drainer_ = std::thread([raw = p.get()] { raw->Drain(); });
  if (!p->WaitForLog("msg=ready", absl::Seconds(30))) {
    return absl::UnavailableError(absl::StrCat("xenchand did not start:\n", p->log()));
  }
  for (absl::string_view line : absl::StrSplit(p->log(), '\n')) {
    if (!absl::StrContains(line, "msg=listening") || !absl::StrContains(line, "transport=tcp")) {
      continue;
    }
    const size_t at = line.find("address=");
    if (at == absl::string_view::npos) continue;
    absl::string_view rest = line.substr(at + 8);
    if (p->tcp_target_.empty()) p->tcp_target_ = std::string(rest.substr(0, rest.find(' ')));
  }
  if (!tcp_listen.empty() && p->tcp_target_.empty()) {
    return absl::InternalError("no tcp address in the log:\n" + p->log());
  }
  return p;
}

void XenchandProcess::Drain() {
  char buf[4096];
  for (;;) {
    const ssize_t n = read(stderr_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    MutexLock lock(&mu_);
    if (n <= 0) {
      eof_ = true;
      cv_.SignalAll();
      return;
    }
    log_.append(buf, static_cast<size_t>(n));
    cv_.SignalAll();
  }
}

std::string XenchandProcess::log() const {
  MutexLock lock(&mu_);
  return log_;
}

bool XenchandProcess::WaitForLog(const std::string& text, absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  MutexLock lock(&mu_);
  while (!absl::StrContains(log_, text)) {
    if (eof_ || cv_.WaitWithDeadline(&mu_, deadline)) return absl::StrContains(log_, text);
  }
  return true;
}

int XenchandProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  // Bounded: a server that does not stop within 30 s is killed (and the
  // caller sees 128 + SIGKILL).
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    if (poll(&p, 1, 30000) == 0) kill(pid_, SIGKILL);
    close(pidfd);
  }
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (drainer_.joinable()) drainer_.join();
  close(stderr_fd_);
  stderr_fd_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void XenchandProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  Stop();
}

XenchandProcess::~XenchandProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    Stop();
  }
  if (drainer_.joinable()) drainer_.join();
  if (stderr_fd_ >= 0) close(stderr_fd_);
}

}  // namespace servertest
}  // namespace xenchan
