#include "backend/sim/hv/wire.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace xenchan {
namespace sim {
namespace hv {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

int SendMessage(int sock, const void* data, size_t len, int fd, int flags) {
  return SendMessageFds(sock, data, len, &fd, fd >= 0 ? 1 : 0, flags);
}

int SendMessageFds(int sock, const void* data, size_t len, const int* fds, size_t nfds, int flags) {
  if (nfds > kMaxFdsPerMessage) return EINVAL;
  struct iovec iov;
  iov.iov_base = const_cast<void*>(data);
  iov.iov_len = len;
  struct msghdr msg;
  std::memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  if (nfds > 0) {
    std::memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  }
  for (;;) {
    ssize_t n = sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<size_t>(n) == len ? 0 : EMSGSIZE;
    if (errno != EINTR) return errno;
  }
}

int ReceiveMessage(int sock, void* buf, size_t cap, int flags, ReceivedMessage* out,
                   size_t max_fds) {
  *out = ReceivedMessage();
  if (max_fds > kMaxFdsPerMessage) max_fds = kMaxFdsPerMessage;
  struct iovec iov;
  iov.iov_base = buf;
  iov.iov_len = cap;
  // Room for a few fds, so that a sender attaching several is detected and
  // every one of them gets closed rather than leaked.
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  struct msghdr msg;
  std::memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  for (;;) {
    n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
    if (n >= 0) break;
    if (errno != EINTR) return errno;
  }
  out->size = static_cast<size_t>(n);
  out->truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  out->bad_control = (msg.msg_flags & MSG_CTRUNC) != 0;
  for (struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr;
       cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
      out->bad_control = true;
      continue;
    }
    size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
      if (out->fd_count >= max_fds) {
        close(fd);
        out->bad_control = true;
      } else if (out->fd_count == 0) {
        out->fd.reset(fd);
        ++out->fd_count;
      } else {
        out->more_fds[out->fd_count - 1].reset(fd);
        ++out->fd_count;
      }
    }
  }
  return 0;
}

}  // namespace hv
}  // namespace sim
}  // namespace xenchan
