// fd and tty helpers for tests (see io.h).
#include "tests/common/io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/time/clock.h"

namespace xenchan {
namespace testcommon {
namespace {

// Milliseconds left until `deadline` for poll(2), rounded up so that poll
// does not return just before it; 0 once it passed.
int PollMillis(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
}

}  // namespace

int OpenRawTty(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return -1;
  termios t;
  if (tcgetattr(fd, &t) == 0) {
    cfmakeraw(&t);
    tcsetattr(fd, TCSANOW, &t);
  }
  return fd;
}

int OpenGuestTty(const std::string& path, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const int fd = OpenRawTty(path);
    if (fd >= 0) return fd;
    if (absl::Now() > deadline) return -1;
    // The guest creates the tty when the device appears; poll(2) on nothing
    // is a bounded wait between attempts, not a synchronisation sleep.
    poll(nullptr, 0, 20);
  }
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 1000);
      continue;
    }
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool WaitReadable(int fd, absl::Time deadline) {
  for (;;) {
    const int millis = PollMillis(deadline);
    if (millis == 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, millis);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

bool ReadSome(int fd, std::string* out, absl::Time deadline, size_t max) {
  if (!WaitReadable(fd, deadline)) return false;
  char buf[65536];
  const ssize_t n = read(fd, buf, std::min(sizeof(buf), max));
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  out->append(buf, static_cast<size_t>(n));
  return true;
}

std::string ReadExactly(int fd, size_t n, absl::Duration timeout) {
  std::string got;
  const absl::Time deadline = absl::Now() + timeout;
  while (got.size() < n && ReadSome(fd, &got, deadline, n - got.size())) {
  }
  return got;
}

std::string ReadUntil(int fd, const std::string& delim, absl::Duration timeout) {
  std::string got;
  const absl::Time deadline = absl::Now() + timeout;
  while (!absl::StrContains(got, delim) && ReadSome(fd, &got, deadline)) {
  }
  return got;
}

void AnswerOneLine(int fd, const std::string& prefix, absl::Duration timeout) {
  const std::string line = ReadUntil(fd, "\n", timeout);
  WriteAll(fd, prefix + line);
}

}  // namespace testcommon
}  // namespace xenchan
