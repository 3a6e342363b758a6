// Helpers for the simulated xenstored's integration tests: a temp directory
// short enough for Unix socket paths, a started server, raw socket clients
// and child processes with bounded waits.
#ifndef XENCHAN_TESTS_SIM_XENSTORE_TEST_UTIL_H_
#define XENCHAN_TESTS_SIM_XENSTORE_TEST_UTIL_H_

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/sim/xenstore/server.h"
#include "backend/sim/xenstore/wire.h"
#include "gtest/gtest.h"

namespace xenchan::sim::xenstore::testing {

// A fresh directory under /tmp (TEST_TMPDIR is too long for sun_path),
// removed with its contents on destruction.
class ShortTempDir {
 public:
  ShortTempDir() {
    char tmpl[] = "/tmp/xsimXXXXXX";
    const char* made = mkdtemp(tmpl);
    EXPECT_NE(made, nullptr) << std::strerror(errno);
    if (made != nullptr) path_ = made;
  }
  ~ShortTempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::unique_ptr<XenstoreServer> StartServer(const std::string& dir,
                                                   XenstoreServer::Options options = {}) {
  options.socket_path = dir + "/xenstored.sock";
  options.state_dir = dir;
  auto server = XenstoreServer::Create(std::move(options));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// A raw client socket speaking frames by hand.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawClient() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  bool SendAll(absl::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  bool Send(uint32_t type, absl::string_view payload, uint32_t req_id = 1, uint32_t tx_id = 0) {
    return SendAll(EncodeMessage(type, req_id, tx_id, payload));
  }
  // The next message, or nullopt on EOF, error or timeout.
  std::optional<Message> Receive(absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      auto next = parser_.Next();
      if (!next.ok()) return std::nullopt;
      if (next->has_value()) return **next;
      if (!WaitReadable(deadline)) return std::nullopt;
      char buf[8192];
      const ssize_t n = read(fd_, buf, sizeof(buf));
      if (n <= 0) return std::nullopt;
      parser_.Append(absl::string_view(buf, static_cast<size_t>(n)));
    }
  }
  // True if the server closed the connection before `timeout` (any data
  // still queued is discarded).
  bool WaitClosed(absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (WaitReadable(deadline)) {
      char buf[8192];
      const ssize_t n = read(fd_, buf, sizeof(buf));
      if (n == 0) return true;
      if (n < 0 && errno != EINTR && errno != EAGAIN) return true;
    }
    return false;
  }

 private:
  bool WaitReadable(absl::Time deadline) {
    while (true) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      pollfd p{fd_, POLLIN, 0};
      const int r = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }

  int fd_ = -1;
  bool connected_ = false;
  FrameParser parser_;
};

// A child process with its stdout on a pipe. Every child runs under
// coreutils `timeout` so that a stuck tool cannot hang the test.
class Child {
 public:
  Child(std::vector<std::string> argv, const std::string& xenstored_path) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    std::vector<std::string> args = {"/usr/bin/timeout", "20"};
    if (!argv.empty() && argv[0].find('/') == std::string::npos) {
      argv[0] = "/usr/bin/" + argv[0];
    }
    args.insert(args.end(), argv.begin(), argv.end());
    std::vector<char*> cargv;
    for (auto& a : args) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::string env_path = "XENSTORED_PATH=" + xenstored_path;
    std::string env_search = "PATH=/usr/bin:/bin";
    std::vector<char*> envp = {env_path.data(), env_search.data(), nullptr};
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      execve(cargv[0], cargv.data(), envp.data());
      _exit(127);
    }
    close(fds[1]);
    out_fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0 && status_ < 0) {
      kill(pid_, SIGKILL);
      Wait();
    }
    if (out_fd_ >= 0) close(out_fd_);
  }
  // Reads one line of output (without '\n'), nullopt on EOF or timeout.
  std::optional<std::string> ReadLine(absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      const size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return std::nullopt;
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) {
        continue;
      }
      char buf[4096];
      const ssize_t n = read(out_fd_, buf, sizeof(buf));
      if (n <= 0) return std::nullopt;
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }
  // Reads all remaining output and waits for exit; returns the exit code.
  int Finish(std::string* output) {
    char buf[4096];
    ssize_t n;
    while ((n = read(out_fd_, buf, sizeof(buf))) > 0) {
      buffer_.append(buf, static_cast<size_t>(n));
    }
    *output = buffer_;
    buffer_.clear();
    return Wait();
  }
  int Wait() {
    if (status_ >= 0) return status_;
    int st = 0;
    while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int status_ = -1;
  std::string buffer_;
};

// Runs a tool to completion; returns its exit code and output.
inline int RunTool(std::vector<std::string> argv, const std::string& socket, std::string* output) {
  Child child(std::move(argv), socket);
  return child.Finish(output);
}

}  // namespace xenchan::sim::xenstore::testing

#endif  // XENCHAN_TESTS_SIM_XENSTORE_TEST_UTIL_H_
