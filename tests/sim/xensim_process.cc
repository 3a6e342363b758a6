// See xensim_process.h.
#include "tests/sim/xensim_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/common/files.h"

namespace xenchan {
namespace simtest {

ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env, absl::Duration timeout) {
  ProcessResult r;
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return r;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return r;
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.push_back(*e);
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  const absl::Time deadline = absl::Now() + timeout;
  while (open_fds > 0) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      kill(pid, SIGKILL);
      break;
    }
    const int n = poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t got = read(fds[i].fd, buf, sizeof(buf));
      if (got <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(got));
    }
  }
  for (pollfd& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string XensimProcess::BinaryPath() { return testcommon::RunfilePath("backend/sim/xensim"); }

absl::StatusOr<std::unique_ptr<XensimProcess>> XensimProcess::Start() {
  char dir[] = "/tmp/xensim-XXXXXX";
  if (mkdtemp(dir) == nullptr) return absl::InternalError("mkdtemp failed");
  std::unique_ptr<XensimProcess> p(new XensimProcess());
  p->scratch_dir_ = dir;
  p->state_dir_ = p->scratch_dir_ + "/s";
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  const std::string bin = BinaryPath();
  p->pid_ = fork();
  if (p->pid_ == 0) {
    dup2(out[1], 1);
    execl(bin.c_str(), bin.c_str(), "serve", "--state-dir", p->state_dir_.c_str(), nullptr);
    _exit(127);
  }
  close(out[1]);
  p->stdout_fd_ = out[0];
  std::string line;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!absl::StrContains(line, "\n")) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    pollfd pfd{p->stdout_fd_, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
    char buf[256];
    const ssize_t n = read(p->stdout_fd_, buf, sizeof(buf));
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  if (!absl::StartsWith(line, "xensim: ready state-dir=" + p->state_dir_)) {
    return absl::UnavailableError(absl::StrCat("xensim serve did not start: '", line, "'"));
  }
  return p;
}

int XensimProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

XensimProcess::~XensimProcess() {
  Stop();
  if (stdout_fd_ >= 0) close(stdout_fd_);
  if (!scratch_dir_.empty()) RunProcess({"/bin/rm", "-rf", scratch_dir_});
}

std::string XensimProcess::guest_root(const std::string& name) const {
  return absl::StrCat(state_dir_, "/guests/", name, "/root");
}

ProcessResult XensimProcess::Cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {BinaryPath(), "--state-dir", state_dir_};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv);
}

absl::StatusOr<uint32_t> XensimProcess::CreateDomain(
    const std::string& name, const std::vector<std::string>& channels) const {
  std::vector<std::string> args = {"domain", "create", "--name", name};
  for (const std::string& c : channels) {
    args.push_back("--channel");
    args.push_back(c);
  }
  ProcessResult r = Cli(args);
  uint32_t domid = 0;
  if (r.exit_code != 0 || !absl::SimpleAtoi(absl::StripSuffix(r.out, "\n"), &domid)) {
    return absl::InternalError(
        absl::StrCat("domain create ", name, " failed (", r.exit_code, "): ", r.err));
  }
  return domid;
}

}  // namespace simtest
}  // namespace xenchan
