// See load_agent.h.
#include "tests/load/load_agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "tests/bench/bench_process.h"
#include "tests/common/io.h"
#include "tests/load/load_pacer.h"

namespace xenchan {
namespace load {
namespace {

using bench::Die;

bool WriteFully(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void ServeTty(const std::string& kind, int fd, size_t payload, int rate) {
  if (kind == "source") {
    std::string record(payload, 'r');
    uint64_t next = MonoNs();
    for (uint64_t seq = 0;; ++seq) {
      if (rate > 0) {
        next += 1000000000u / static_cast<uint64_t>(rate);
        timespec ts{static_cast<time_t>(next / 1000000000u), static_cast<long>(next % 1000000000u)};
        // Pacing of the generator (its send schedule), not a synchronisation.
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
        }
      }
      const uint64_t now = MonoNs();
      memcpy(&record[0], &seq, 8);
      memcpy(&record[8], &now, 8);
      if (!WriteFully(fd, record.data(), record.size())) return;
    }
  }
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // hung up
    if (kind == "echo" && !WriteFully(fd, buf, static_cast<size_t>(n))) return;
  }
}

}  // namespace

int RunGuestAgent(const std::string& spec, size_t payload, int rate) {
  std::vector<std::pair<std::string, int>> ttys;
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    const std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits(':', 1));
    const int fd = testcommon::OpenGuestTty(kv.second, absl::Seconds(60));
    if (fd < 0) Die("agent: cannot open " + kv.second);
    ttys.emplace_back(kv.first, fd);
  }
  printf("ready\n");
  fflush(stdout);
  std::vector<std::thread> threads;
  for (const auto& [kind, fd] : ttys) {
    threads.emplace_back(
        [kind = kind, fd = fd, payload, rate] { ServeTty(kind, fd, payload, rate); });
  }
  for (std::thread& t : threads) t.join();
  return 0;
}

GuestAgent::GuestAgent(const std::string& spec, int payload, int rate) {
  const bench::Child child =
      bench::StartChild({bench::SelfPath(), "--guest_agent=" + spec,
                         absl::StrCat("--payload=", payload), absl::StrCat("--read_rate=", rate)});
  pid_ = child.pid;
  fd_ = child.stdout_fd;
}

void GuestAgent::WaitReady() {
  const std::string line = bench::ReadLineAndClose(fd_);
  fd_ = -1;
  if (line != "ready") Die("guest agent did not start");
}

GuestAgent::~GuestAgent() {
  if (fd_ >= 0) close(fd_);
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

}  // namespace load
}  // namespace xenchan
