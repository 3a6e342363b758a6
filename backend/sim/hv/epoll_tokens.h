// Private to the simulated hypervisor (hypervisor*.cc): how its epoll loop
// tells its file descriptors apart, and the two epoll_ctl calls it makes.
// Every file descriptor the server thread waits on is registered with a
// token whose low two bits say what it is.
#ifndef XENCHAN_BACKEND_SIM_HV_EPOLL_TOKENS_H_
#define XENCHAN_BACKEND_SIM_HV_EPOLL_TOKENS_H_

#include <sys/epoll.h>

#include <cstdint>
#include <cstring>

namespace xenchan {
namespace sim {
namespace hv {
namespace internal {

// epoll tokens: the low two bits say what the rest is.
inline constexpr uint64_t kWakeToken = 0;
inline constexpr uint64_t kListenTag = 1;  // rest: domid
inline constexpr uint64_t kConnTag = 2;    // rest: connection id
inline constexpr uint64_t kEventTag = 3;   // rest: connection id

inline uint64_t Token(uint64_t id, uint64_t tag) { return (id << 2) | tag; }

inline bool EpollAdd(int epfd, int fd, uint32_t events, uint64_t token) {
  struct epoll_event ev;
  std::memset(&ev, 0, sizeof(ev));
  ev.events = events;
  ev.data.u64 = token;
  return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0;
}

inline void EpollDel(int epfd, int fd) { epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr); }

}  // namespace internal
}  // namespace hv
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_HV_EPOLL_TOKENS_H_
