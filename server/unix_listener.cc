// UnixListener (see the header).
#include "server/unix_listener.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "backend/util/errno_status.h"
#include "grpcpp/server_posix.h"
#include "server/log.h"

namespace xenchan {
namespace server {

absl::StatusOr<std::unique_ptr<UnixListener>> UnixListener::Bind(const std::string& path,
                                                                 mode_t mode) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path[0] != '/' || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("bad Unix socket path '", path, "'"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty()) mkdir(dir.c_str(), 0755);  // EEXIST is fine
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " exists and is not a socket; refusing to replace it"));
    }
    unlink(path.c_str());  // a stale socket of an earlier run
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::InternalError(ErrnoMessage(errno, "socket"));
  // The mode is set before listen(), so nobody can connect while the
  // umask-dependent mode of bind() is in effect.
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int e = errno;
    close(fd);
    return absl::FailedPreconditionError(ErrnoMessage(e, absl::StrCat("bind ", path)));
  }
  if (chmod(path.c_str(), mode) != 0 || listen(fd, 128) != 0) {
    const int e = errno;
    close(fd);
    unlink(path.c_str());
    return absl::InternalError(ErrnoMessage(e, absl::StrCat("listen ", path)));
  }
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    const int e = errno;
    close(fd);
    unlink(path.c_str());
    return absl::InternalError(ErrnoMessage(e, "eventfd"));
  }
  return std::unique_ptr<UnixListener>(new UnixListener(path, fd, wake));
}

UnixListener::~UnixListener() {
  Stop();
  close(fd_);
  close(wake_fd_);
  unlink(path_.c_str());
}

void UnixListener::Start(grpc::Server* server, UnixPeerRegistry* peers) {
  thread_ = std::thread([this, server, peers] { Run(server, peers); });
}

void UnixListener::Stop() {
  if (stop_.exchange(true)) {
    if (thread_.joinable()) thread_.join();
    return;
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

void UnixListener::Run(grpc::Server* server, UnixPeerRegistry* peers) {
  while (!stop_.load()) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      Log("error", "unix listener poll failed", {{"error", std::strerror(errno)}});
      return;
    }
    if (stop_.load() || (fds[1].revents & POLLIN) != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      // EMFILE and the like: back off briefly rather than spin; the
      // connection stays queued in the backlog.
      Log("warning", "unix listener accept failed", {{"error", std::strerror(errno)}});
      pollfd wake = {wake_fd_, POLLIN, 0};
      poll(&wake, 1, 100);
      continue;
    }
    absl::Status s = peers->Register(conn);
    if (!s.ok()) {
      refused_.fetch_add(1);
      Log("warning", "unix connection refused", {{"error", std::string(s.message())}});
      close(conn);
      continue;
    }
    // gRPC takes the (non-blocking) fd over and closes it when the
    // connection ends.
    grpc::AddInsecureChannelFromFd(server, conn);
    accepted_.fetch_add(1);
  }
}

}  // namespace server
}  // namespace xenchan
