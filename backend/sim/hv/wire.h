// Small helpers shared by the simulated hypervisor and its client library:
// an owning file descriptor and one-message send/receive with SCM_RIGHTS.
#ifndef XENCHAN_BACKEND_SIM_HV_WIRE_H_
#define XENCHAN_BACKEND_SIM_HV_WIRE_H_

#include <sys/types.h>

#include <cstddef>

namespace xenchan {
namespace sim {
namespace hv {

// Owns one file descriptor and closes it when destroyed. Move-only.
// Thread safety: as an int.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership and returns the descriptor.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes the current descriptor (if any) and owns `fd`.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// The most file descriptors one message carries (an event-channel binding:
// protocol.h).
inline constexpr size_t kMaxFdsPerMessage = 3;

// Sends `len` bytes as one message on `sock`, with `fd` attached as
// SCM_RIGHTS unless it is negative. `flags` go to sendmsg (MSG_NOSIGNAL is
// always added). Returns 0 or the errno; EINTR is retried.
int SendMessage(int sock, const void* data, size_t len, int fd, int flags);
// The same with `nfds` (<= kMaxFdsPerMessage) descriptors attached.
int SendMessageFds(int sock, const void* data, size_t len, const int* fds, size_t nfds, int flags);

// One received message.
struct ReceivedMessage {
  size_t size = 0;           // bytes stored in the buffer; 0 means end of stream
  bool truncated = false;    // the message was larger than the buffer
  bool bad_control = false;  // ancillary data truncated, foreign, or too many fds
  UniqueFd fd;               // the first fd that came with it, if any
  // The second and third, when the receiver accepts more than one.
  UniqueFd more_fds[kMaxFdsPerMessage - 1];
  size_t fd_count = 0;  // fds kept: fd, then more_fds
};

// Receives one message from `sock` into `buf` (capacity `cap`). At most
// `max_fds` (<= kMaxFdsPerMessage) SCM_RIGHTS fds are accepted; any others
// are closed and flagged. The fds are received close-on-exec. `flags` go to
// recvmsg. Returns 0 or the errno (EAGAIN when non-blocking and nothing is
// there); EINTR is retried.
int ReceiveMessage(int sock, void* buf, size_t cap, int flags, ReceivedMessage* out,
                   size_t max_fds = 1);

}  // namespace hv
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_HV_WIRE_H_
