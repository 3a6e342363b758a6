#include "tests/sim/hv/peer_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/common/files.h"

extern char** environ;

namespace xenchan {
namespace sim {
namespace hv {

absl::StatusOr<std::unique_ptr<PeerProcess>> PeerProcess::Start(const std::string& socket_path) {
  std::string binary = testcommon::RunfilePath("tests/sim/hv/hv_peer");
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) return absl::InternalError("pipe");
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    close(in_pipe[0]);
    close(in_pipe[1]);
    return absl::InternalError("pipe");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  std::string arg0 = binary;
  std::string arg1 = socket_path;
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid;
  int err = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in_pipe[0]);
  close(out_pipe[1]);
  if (err != 0) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    return absl::InternalError(absl::StrCat("posix_spawn ", binary, ": ", strerror(err)));
  }
  std::unique_ptr<PeerProcess> peer(new PeerProcess());
  peer->pid_ = pid;
  peer->to_child_ = in_pipe[1];
  peer->from_child_ = out_pipe[0];
  return peer;
}

PeerProcess::~PeerProcess() {
  KillAndReap();
  if (to_child_ >= 0) close(to_child_);
  if (from_child_ >= 0) close(from_child_);
}

void PeerProcess::KillAndReap() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

absl::StatusOr<std::string> PeerProcess::Command(const std::string& line, absl::Duration timeout) {
  if (pid_ <= 0) return absl::UnavailableError("peer is gone");
  std::string out = line + "\n";
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = write(to_child_, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("write to peer: ", strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    size_t eol = buffered_.find('\n');
    if (eol != std::string::npos) {
      std::string answer = buffered_.substr(0, eol);
      buffered_.erase(0, eol + 1);
      return answer;
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat("peer did not answer: ", line));
    }
    struct pollfd pfd = {from_child_, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r < 0 && errno != EINTR) return absl::InternalError("poll");
    if (r <= 0) continue;
    char buf[256];
    ssize_t n = read(from_child_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError(absl::StrCat("peer exited during: ", line));
    buffered_.append(buf, static_cast<size_t>(n));
  }
}

absl::StatusOr<uint32_t> PeerProcess::Number(const std::string& line) {
  auto answer = Command(line);
  if (!answer.ok()) return answer.status();
  uint32_t value;
  if (answer->rfind("ok ", 0) != 0 || !absl::SimpleAtoi(answer->substr(3), &value)) {
    return absl::InternalError(absl::StrCat(line, " -> ", *answer));
  }
  return value;
}

}  // namespace hv
}  // namespace sim
}  // namespace xenchan
