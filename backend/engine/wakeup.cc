// Wakeup: eventfd plus kicked-channel set.
#include "backend/engine/wakeup.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend/util/errno_status.h"

namespace xenchan {

absl::StatusOr<std::shared_ptr<Wakeup>> Wakeup::Create() {
  const int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return absl::InternalError(ErrnoMessage(errno, "eventfd"));
  return std::shared_ptr<Wakeup>(new Wakeup(fd));
}

Wakeup::~Wakeup() { close(fd_); }

void Wakeup::Kick(uint64_t serial) {
  {
    MutexLock lock(&mu_);
    if (!kicked_.insert(serial).second) return;  // already pending
  }
  Poke();
}

void Wakeup::Poke() {
  const uint64_t one = 1;
  // EAGAIN means the counter is saturated: the engine is woken anyway.
  [[maybe_unused]] ssize_t n = write(fd_, &one, sizeof(one));
}

std::set<uint64_t> Wakeup::Take() {
  uint64_t value;
  [[maybe_unused]] ssize_t n = read(fd_, &value, sizeof(value));
  MutexLock lock(&mu_);
  std::set<uint64_t> out;
  out.swap(kicked_);
  return out;
}

}  // namespace xenchan
