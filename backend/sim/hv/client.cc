#include "backend/sim/hv/client.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace sim {
namespace hv {

// The shared errno table (backend/util/errno_status.h) with this protocol's
// departures: a missing socket or a broken connection means the hypervisor
// is gone, EAGAIN is SO_RCVTIMEO expiring, and a mapped grant (EBUSY) or
// unopened event channels (EBADF) are state to fix first. ESRCH (no such
// domain) is NOT_FOUND by absl's table, which decides unlisted errnos.
absl::Status HvErrnoToStatus(int err, absl::string_view what) {
  static constexpr ErrnoCode kOverrides[] = {
      {ENOENT, absl::StatusCode::kUnavailable},
      {ECONNREFUSED, absl::StatusCode::kUnavailable},
      {ECONNRESET, absl::StatusCode::kUnavailable},
      {EPIPE, absl::StatusCode::kUnavailable},
      {ENOTCONN, absl::StatusCode::kUnavailable},
      {EAGAIN, absl::StatusCode::kDeadlineExceeded},  // SO_RCVTIMEO expired
      {EBUSY, absl::StatusCode::kFailedPrecondition},
      {EBADF, absl::StatusCode::kFailedPrecondition},
  };
  return ErrnoToStatus(err, what, ErrnoMapping{kOverrides, std::nullopt});
}

absl::StatusOr<UniqueFd> CreateGrantablePage() {
  UniqueFd fd(memfd_create("xensim-grant", MFD_ALLOW_SEALING | MFD_CLOEXEC));
  if (!fd.valid()) return HvErrnoToStatus(errno, "memfd_create");
  if (ftruncate(fd.get(), kPageSize) != 0) return HvErrnoToStatus(errno, "ftruncate");
  return fd;
}

namespace internal {

absl::StatusOr<std::shared_ptr<RpcChannel>> RpcChannel::Connect(const std::string& socket_path) {
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long: ", socket_path));
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return HvErrnoToStatus(errno, "socket");
  if (connect(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    return absl::UnavailableError(ErrnoMessage(err, absl::StrCat("connect ", socket_path)));
  }
  struct timeval timeout;
  timeout.tv_sec = 30;
  timeout.tv_usec = 0;
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  return std::shared_ptr<RpcChannel>(new RpcChannel(std::move(fd)));
}

absl::Status RpcChannel::Call(uint32_t type, uint32_t a0, uint32_t a1, uint32_t a2, int fd,
                              uint32_t* value, UniqueFd* reply_fd, size_t reply_fd_count) {
  MutexLock lock(&mu_);
  if (broken_) return absl::UnavailableError("hypervisor connection is broken");
  Request req;
  std::memset(&req, 0, sizeof(req));
  req.type = type;
  req.request_id = next_id_++;
  req.args[0] = a0;
  req.args[1] = a1;
  req.args[2] = a2;
  int err = SendMessage(sock_.get(), &req, sizeof(req), fd, 0);
  if (err != 0) {
    broken_ = true;
    return HvErrnoToStatus(err, "send to hypervisor");
  }
  alignas(Reply) char buf[sizeof(Reply) + 1];
  ReceivedMessage msg;
  err = ReceiveMessage(sock_.get(), buf, sizeof(buf), 0, &msg,
                       reply_fd != nullptr ? reply_fd_count : 1);
  if (err != 0) {
    broken_ = true;
    return HvErrnoToStatus(err, "receive from hypervisor");
  }
  if (msg.size == 0) {
    broken_ = true;
    return absl::UnavailableError("hypervisor closed the connection");
  }
  Reply reply;
  std::memcpy(&reply, buf, sizeof(reply) <= msg.size ? sizeof(reply) : msg.size);
  if (msg.size != sizeof(Reply) || msg.truncated || msg.bad_control || reply.type != kReply ||
      reply.request_id != req.request_id) {
    broken_ = true;
    return absl::UnavailableError("malformed reply from hypervisor");
  }
  if (reply.error != 0) return HvErrnoToStatus(reply.error, "hypervisor");
  if (value != nullptr) *value = reply.value;
  if (reply_fd != nullptr) {
    if (msg.fd_count != reply_fd_count) {
      broken_ = true;
      return absl::UnavailableError("hypervisor reply lacks its fds");
    }
    reply_fd[0] = std::move(msg.fd);
    for (size_t i = 1; i < reply_fd_count; ++i) reply_fd[i] = std::move(msg.more_fds[i - 1]);
  }
  return absl::OkStatus();
}

absl::Status RpcChannel::Send(uint32_t type, uint32_t a0) {
  MutexLock lock(&mu_);
  if (broken_) return absl::UnavailableError("hypervisor connection is broken");
  Request req;
  std::memset(&req, 0, sizeof(req));
  req.type = type;
  req.request_id = next_id_++;
  req.args[0] = a0;
  int err = SendMessage(sock_.get(), &req, sizeof(req), -1, 0);
  if (err != 0) {
    broken_ = true;
    return HvErrnoToStatus(err, "send to hypervisor");
  }
  return absl::OkStatus();
}

}  // namespace internal

// ---- grants ----

HvMapping::~HvMapping() {
  munmap(addr_, kPageSize);
  // Failure means the hypervisor or the connection is gone, and with it the
  // mapping's record; nothing is left to release.
  (void)channel_->Call(kUnmap, id_, 0, 0, -1, nullptr, nullptr);
}

absl::StatusOr<std::unique_ptr<HvConnection>> HvConnection::Connect(
    const std::string& socket_path) {
  auto channel = internal::RpcChannel::Connect(socket_path);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<HvConnection>(new HvConnection(*std::move(channel)));
}

absl::StatusOr<uint32_t> HvConnection::GrantPage(int memfd, uint32_t to_domid, bool readonly) {
  if (memfd < 0) return absl::InvalidArgumentError("GrantPage: no memfd");
  uint32_t ref = 0;
  absl::Status status = channel_->Call(kGrant, to_domid, readonly ? 1 : 0, 0, memfd, &ref, nullptr);
  if (!status.ok()) return status;
  return ref;
}

absl::Status HvConnection::EndAccess(uint32_t ref) {
  return channel_->Call(kEndAccess, ref, 0, 0, -1, nullptr, nullptr);
}

absl::Status HvConnection::PauseDomain(uint32_t domid) {
  return channel_->Call(kPauseDomain, domid, 0, 0, -1, nullptr, nullptr);
}

absl::Status HvConnection::UnpauseDomain(uint32_t domid) {
  return channel_->Call(kUnpauseDomain, domid, 0, 0, -1, nullptr, nullptr);
}

absl::StatusOr<std::unique_ptr<HvMapping>> HvConnection::MapGrant(uint32_t domid, uint32_t ref,
                                                                  bool writable) {
  uint32_t id = 0;
  UniqueFd page;
  absl::Status status = channel_->Call(kMap, domid, ref, writable ? 1 : 0, -1, &id, &page);
  if (!status.ok()) return status;
  void* addr = mmap(nullptr, kPageSize, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
                    page.get(), 0);
  if (addr == MAP_FAILED) {
    int err = errno;
    (void)channel_->Call(kUnmap, id, 0, 0, -1, nullptr, nullptr);
    return HvErrnoToStatus(err, "mmap of granted page");
  }
  return std::unique_ptr<HvMapping>(new HvMapping(channel_, addr, id, writable));
}

}  // namespace hv
}  // namespace sim
}  // namespace xenchan
