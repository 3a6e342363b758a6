// xenchanctl's terminal handling (terminal.h).
#include "clients/cli/terminal.h"

#include <errno.h>
#include <unistd.h>

#include <cstdio>

#include "absl/time/clock.h"

namespace xenchan {
namespace cli {

bool CutAtQuitKey(std::string* data) {
  const size_t esc = data->find(kQuitKey);
  if (esc == std::string::npos) return false;
  data->resize(esc);
  return true;
}

ssize_t ReadRetryingOnEintr(int fd, void* buf, size_t size) {
  ssize_t n;
  do {
    n = read(fd, buf, size);
  } while (n < 0 && errno == EINTR);
  return n;
}

bool RawTerminal::Enter(int fd) {
  if (tcgetattr(fd, &saved_) != 0) return false;
  termios t = saved_;
  cfmakeraw(&t);
  if (tcsetattr(fd, TCSANOW, &t) != 0) return false;
  fd_ = fd;
  return true;
}

void RawTerminal::Restore() {
  if (fd_ < 0) return;
  tcsetattr(fd_, TCSANOW, &saved_);
  fd_ = -1;
}

ProgressLine::ProgressLine(bool enabled) : enabled_(enabled), last_(absl::Now()) {}

void ProgressLine::Update(uint64_t sent) {
  if (enabled_ && absl::Now() - last_ > absl::Milliseconds(250)) {
    last_ = absl::Now();
    std::fprintf(stderr, "\r%llu bytes sent", static_cast<unsigned long long>(sent));
  }
}

void ProgressLine::Finish(uint64_t sent) {
  if (enabled_) std::fprintf(stderr, "\r%llu bytes sent\n", static_cast<unsigned long long>(sent));
}

}  // namespace cli
}  // namespace xenchan
