// See ring_bench_throughput.h.
#include "tests/bench/ring_bench_throughput.h"

#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <xen/io/console.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/ring/console_ring.h"
#include "backend/sim/guest/frontend_ring.h"
#include "tests/bench/bench_process.h"
#include "tests/bench/bench_report.h"

namespace xenchan {
namespace bench {
namespace {

void Signal(int fd) {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(fd, &one, sizeof(one));
}

// Moves `total` bytes by `step(left)` (bytes moved; 0 when the ring has no
// room or no data): waits on `wait_fd` when a step moved none, signals
// `signal_fd` after each that moved some.
template <class Step>
void Pump(size_t total, int wait_fd, int signal_fd, Step step) {
  for (size_t done = 0; done < total;) {
    const size_t n = step(total - done);
    if (n == 0) {
      WaitFd(wait_fd);
      continue;
    }
    done += n;
    Signal(signal_fd);
  }
}

// One baseline run over a fresh page and two eventfds: `guest(intf,
// to_backend, to_guest)` on its own thread, `backend(page, to_backend,
// to_guest)` on this one; MB/s from start until the guest thread is joined.
template <class Guest, class Backend>
double BaselineRun(size_t total, Guest guest, Backend backend) {
  alignas(4096) static char page[4096];
  memset(page, 0, sizeof(page));
  auto* intf = reinterpret_cast<xencons_interface*>(page);
  const int to_backend = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const int to_guest = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const absl::Time start = absl::Now();
  std::thread guest_thread([&] { guest(intf, to_backend, to_guest); });
  backend(page, to_backend, to_guest);
  guest_thread.join();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  close(to_backend);
  close(to_guest);
  return total / secs / 1e6;
}

// The guest's side of a channel tty: `total` bytes written in 4 KiB chunks,
// or read and discarded; Die on a failure.
void WriteTty(int tty, size_t total) {
  std::string chunk(4096, 'u');
  for (size_t sent = 0; sent < total;) {
    const ssize_t n = write(tty, chunk.data(), std::min(chunk.size(), total - sent));
    if (n <= 0) Die("tty write");
    sent += static_cast<size_t>(n);
  }
}

void ReadTty(int tty, size_t total) {
  char buf[65536];
  for (size_t got = 0; got < total;) {
    const ssize_t n = read(tty, buf, sizeof(buf));
    if (n <= 0) Die("tty read");
    got += static_cast<size_t>(n);
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// 1. Baseline: two threads, one page, two eventfds.

double BaselineGuestToHost(size_t total) {
  return BaselineRun(
      total,
      [total](xencons_interface* intf, int to_backend, int to_guest) {
        std::vector<char> chunk(4096, 'g');
        Pump(total, to_guest, to_backend, [&](size_t left) -> size_t {
          auto n = sim::guest::WriteOutRing(intf, chunk.data(), std::min(chunk.size(), left));
          if (!n.ok()) Die("baseline: bad ring");
          return *n;
        });
      },
      [total](char* page, int to_backend, int to_guest) {
        ConsoleRing ring(page);
        char buf[ConsoleRing::kOutSize];
        Pump(total, to_backend, to_guest, [&](size_t) -> size_t {
          auto n = ring.DrainOut(buf, sizeof(buf));
          if (!n.ok()) Die("baseline: bad ring");
          return *n;
        });
      });
}

double BaselineHostToGuest(size_t total) {
  return BaselineRun(
      total,
      [total](xencons_interface* intf, int to_backend, int to_guest) {
        char buf[sim::guest::kInRingSize];
        Pump(total, to_guest, to_backend, [&](size_t) -> size_t {
          auto view = sim::guest::PeekInRing(intf);
          if (!view.ok()) Die("baseline: bad ring");
          if (view->available == 0) return 0;
          const size_t n = sim::guest::CopyFromInRing(intf, *view, 0, buf, sizeof(buf));
          sim::guest::ConsumeInRing(intf, *view, n);
          return n;
        });
      },
      [total](char* page, int to_backend, int to_guest) {
        ConsoleRing ring(page);
        std::vector<char> chunk(4096, 'h');
        Pump(total, to_backend, to_guest, [&](size_t left) -> size_t {
          auto n = ring.FillIn(chunk.data(), std::min(chunk.size(), left));
          if (!n.ok()) Die("baseline: bad ring");
          return *n;
        });
      });
}

// 2. The composite floor: the guest's tty on one side, SimFloor on the other.
double FloorGuestToHost(SimFloor& floor, Xensim& sim, const std::string& dom,
                        const std::string& chan, size_t total) {
  const int tty = OpenRaw(sim.Tty(dom, chan));
  const absl::Time start = absl::Now();
  std::thread writer([&] { WriteTty(tty, total); });
  if (floor.Drain(total) != total) Die("floor: guest to host stalled");
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  writer.join();
  close(tty);
  return total / secs / 1e6;
}

double FloorHostToGuest(SimFloor& floor, Xensim& sim, const std::string& dom,
                        const std::string& chan, size_t total) {
  const int tty = OpenRaw(sim.Tty(dom, chan));
  const absl::Time start = absl::Now();
  std::thread reader([&] { ReadTty(tty, total); });
  if (floor.Fill(total, 'd') != total) Die("floor: host to guest stalled");
  reader.join();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  close(tty);
  return total / secs / 1e6;
}

// 3. One channel through the engine.
double GuestToHost(Engine& engine, Xensim& sim, const std::string& dom, const std::string& chan,
                   size_t total) {
  const int tty = OpenRaw(sim.Tty(dom, chan));
  SessionOptions so;
  so.start.anchor = ReadStart::Anchor::kNext;
  auto session = engine.OpenSession({dom, chan}, so);
  if (!session.ok()) Die(session.status().ToString());
  const absl::Time start = absl::Now();
  std::thread writer([&] { WriteTty(tty, total); });
  size_t got = 0;
  while (got < total) {
    auto recs = (*session)->Read(1 << 20);
    if (!recs.ok()) Die(recs.status().ToString());
    for (const auto& r : *recs) {
      if (r.kind == SessionRecord::Kind::kData) got += r.data.size();
    }
    if (recs->empty()) WaitFd((*session)->notify_fd());
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  writer.join();
  close(tty);
  return total / secs / 1e6;
}

double HostToGuest(Engine& engine, Xensim& sim, const std::string& dom, const std::string& chan,
                   size_t total) {
  const int tty = OpenRaw(sim.Tty(dom, chan));
  SessionOptions so;
  so.role = SessionRole::kWriter;
  auto session = engine.OpenSession({dom, chan}, so);
  if (!session.ok()) Die(session.status().ToString());
  const absl::Time start = absl::Now();
  std::thread reader([&] { ReadTty(tty, total); });
  const std::string chunk(Session::kMaxWrite, 'd');
  for (size_t sent = 0; sent < total;) {
    const size_t n = std::min(chunk.size(), total - sent);
    auto r = (*session)->Write(absl::string_view(chunk.data(), n));
    if (r.ok()) {
      sent += n;
    } else if (r.status().code() == absl::StatusCode::kResourceExhausted) {
      WaitFd((*session)->notify_fd());
    } else {
      Die(r.status().ToString());
    }
  }
  reader.join();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  close(tty);
  return total / secs / 1e6;
}

}  // namespace bench
}  // namespace xenchan
