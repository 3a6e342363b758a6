// Wakeup: eventfd plus the kicked channels.
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
    if (!pending_.insert(serial).second) return;  // already pending
    kicked_.push_back(serial);
  }
  Poke();
}

void Wakeup::Poke() {
  const uint64_t one = 1;
  // EAGAIN means the counter is saturated: the engine is woken anyway.
  [[maybe_unused]] ssize_t n = write(fd_, &one, sizeof(one));
}

void Wakeup::Take(std::vector<uint64_t>* kicked) {
  uint64_t value;
  [[maybe_unused]] ssize_t n = read(fd_, &value, sizeof(value));
  kicked->clear();
  MutexLock lock(&mu_);
  kicked->swap(kicked_);
  // Erased one by one rather than cleared: clear() frees a large table.
  for (uint64_t serial : *kicked) pending_.erase(serial);
}

}  // namespace xenchan
