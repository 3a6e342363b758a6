// ring_bench: figures of the channel engine on the simulated Xen host.
//
//  1. Baseline: bytes through the same ring layout (struct xencons_interface,
//     ConsoleRing on the backend side, the guest's frontend ring code on the
//     other) between two threads of this process, woken by eventfds.
//  2. The composite floor: the same simulated guest, its pty and the same
//     ring, served by a minimal backend loop with no engine (sim_floor.h):
//     what the rest of the path costs on its own.
//  3. One channel on the simulated host (xensim serve as a child process, a
//     simulated guest process, the engine in this process): guest-to-host
//     and host-to-guest throughput through the guest's tty and the guest's
//     events per second, under three event rate-limit policies: xenchan's
//     default (token buckets: spurious events 30 / 200 ms, events not paid
//     for by their data 2000 / 200 ms), the cap lowered to 30 / 200 ms, and
//     no limit; the ratio to the composite floor (goal >= 0.8) and to the
//     baseline.
//  4. Scale: G guests x C channels hot-added (C <= 7; 5 by default):
//     hot-add-to-connected latency of each, resident memory per channel of
//     this process (the engine; xensim and the guests are other processes),
//     and engine wake-ups per second while everything is idle (goal: 0).
//
// Every throughput figure is measured --repeats times and printed as
// min/median/max (RESULT lines carry the median), with the CPU time and
// context switches per guest event of each process involved and the CPUs
// their threads ran on (proc_stats.h). Prints how it was run, the figures,
// the goals of issue 14 with their ratios, and one `RESULT name=value` line
// per figure at the end.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <xen/io/console.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/engine/engine.h"
#include "backend/platform/sim/event_channels.h"
#include "backend/platform/sim/grant_tables.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "backend/ring/console_ring.h"
#include "backend/sim/guest/frontend_ring.h"
#include "tests/bench/proc_stats.h"
#include "tests/bench/sim_floor.h"

ABSL_FLAG(std::string, xensim, "", "path of the xensim binary (default: from runfiles)");
ABSL_FLAG(int64_t, bytes, 4 << 20, "bytes per throughput run");
ABSL_FLAG(int32_t, guests, 100, "guests in the scale run");
ABSL_FLAG(int32_t, channels_per_guest, 5, "channels per guest in the scale run (<= 7)");
ABSL_FLAG(double, idle_seconds, 5.0, "how long to count wake-ups while idle");
ABSL_FLAG(int32_t, repeats, 3, "times each throughput figure is measured");

namespace xenchan {
namespace {

std::vector<std::pair<std::string, std::string>> g_results;

void Result(const std::string& name, double value, const char* unit) {
  const std::string v = absl::StrFormat("%.6g", value);
  printf("  %-40s %s %s\n", name.c_str(), v.c_str(), unit);
  fflush(stdout);
  g_results.emplace_back(name, v);
}

void Die(const std::string& what) {
  fprintf(stderr, "ring_bench: %s\n", what.c_str());
  exit(1);
}

// A repeated figure: min/median/max printed, the median as its RESULT.
double Repeated(const std::string& name, const std::vector<double>& values, const char* unit) {
  const bench::Spread s = bench::SpreadOf(values);
  printf("  %-40s %.6g %s (min %.6g, max %.6g, n=%zu)\n", name.c_str(), s.median, unit, s.min,
         s.max, values.size());
  fflush(stdout);
  g_results.emplace_back(name, absl::StrFormat("%.6g", s.median));
  return s.median;
}

// One goal of issue 14: the figure, the bound and whether it is met.
std::vector<std::string> g_goals;
void Goal(const std::string& what, double figure, double bound, bool at_most) {
  const bool met = at_most ? figure <= bound : figure >= bound;
  g_goals.push_back(absl::StrFormat("  %-58s %10.4g %s %-8.4g %s", what, figure,
                                    at_most ? "<=" : ">=", bound, met ? "met" : "MISSED"));
}

std::string XensimPath() {
  if (!absl::GetFlag(FLAGS_xensim).empty()) return absl::GetFlag(FLAGS_xensim);
  if (const char* srcdir = getenv("TEST_SRCDIR")) {
    return std::string(srcdir) + "/xenchan/backend/sim/xensim";
  }
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = 0;
    return std::string(self) + ".runfiles/xenchan/backend/sim/xensim";
  }
  return "backend/sim/xensim";
}

// CPU seconds (user + system) this process has used: the engine thread and
// the bench's own tty and session threads.
double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

void Signal(int fd) {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(fd, &one, sizeof(one));
}

void WaitFd(int fd) {
  pollfd p{fd, POLLIN, 0};
  poll(&p, 1, 100);
  uint64_t v;
  [[maybe_unused]] ssize_t n = read(fd, &v, sizeof(v));
}

// ---------------------------------------------------------------------------
// 1. Baseline: two threads, one page, two eventfds.

double BaselineGuestToHost(size_t total) {
  alignas(4096) static char page[4096];
  memset(page, 0, sizeof(page));
  auto* intf = reinterpret_cast<xencons_interface*>(page);
  const int to_backend = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const int to_guest = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const absl::Time start = absl::Now();
  std::thread guest([&] {
    std::vector<char> chunk(4096, 'g');
    size_t sent = 0;
    while (sent < total) {
      auto n = sim::guest::WriteOutRing(intf, chunk.data(), std::min(chunk.size(), total - sent));
      if (!n.ok()) Die("baseline: bad ring");
      if (*n == 0) {
        WaitFd(to_guest);
        continue;
      }
      sent += *n;
      Signal(to_backend);
    }
  });
  ConsoleRing ring(page);
  char buf[ConsoleRing::kOutSize];
  size_t got = 0;
  while (got < total) {
    auto n = ring.DrainOut(buf, sizeof(buf));
    if (!n.ok()) Die("baseline: bad ring");
    if (*n == 0) {
      WaitFd(to_backend);
      continue;
    }
    got += *n;
    Signal(to_guest);
  }
  guest.join();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  close(to_backend);
  close(to_guest);
  return total / secs / 1e6;
}

double BaselineHostToGuest(size_t total) {
  alignas(4096) static char page[4096];
  memset(page, 0, sizeof(page));
  auto* intf = reinterpret_cast<xencons_interface*>(page);
  const int to_backend = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const int to_guest = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const absl::Time start = absl::Now();
  std::thread guest([&] {
    char buf[sim::guest::kInRingSize];
    size_t got = 0;
    while (got < total) {
      auto view = sim::guest::PeekInRing(intf);
      if (!view.ok()) Die("baseline: bad ring");
      if (view->available == 0) {
        WaitFd(to_guest);
        continue;
      }
      const size_t n = sim::guest::CopyFromInRing(intf, *view, 0, buf, sizeof(buf));
      sim::guest::ConsumeInRing(intf, *view, n);
      got += n;
      Signal(to_backend);
    }
  });
  ConsoleRing ring(page);
  std::vector<char> chunk(4096, 'h');
  size_t sent = 0;
  while (sent < total) {
    auto n = ring.FillIn(chunk.data(), std::min(chunk.size(), total - sent));
    if (!n.ok()) Die("baseline: bad ring");
    if (*n == 0) {
      WaitFd(to_backend);
      continue;
    }
    sent += *n;
    Signal(to_guest);
  }
  guest.join();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  close(to_backend);
  close(to_guest);
  return total / secs / 1e6;
}

// ---------------------------------------------------------------------------
// The simulated host as a child process.

class Xensim {
 public:
  void Start() {
    char dir[] = "/tmp/ringbench-XXXXXX";
    if (mkdtemp(dir) == nullptr) Die("mkdtemp");
    dir_ = dir;
    state_ = dir_ + "/s";
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) Die("pipe");
    const std::string bin = XensimPath();
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      execl(bin.c_str(), bin.c_str(), "serve", "--state-dir", state_.c_str(), nullptr);
      _exit(127);
    }
    close(out[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    if (line.find("ready") == std::string::npos) Die("xensim serve did not start: " + bin);
  }
  ~Xensim() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      waitpid(pid_, &status, 0);
    }
    if (!dir_.empty()) {
      const std::string cmd = "rm -rf '" + dir_ + "'";
      [[maybe_unused]] int rc = system(cmd.c_str());
    }
  }
  void CreateDomain(const std::string& name) {
    const std::string bin = XensimPath();
    const pid_t pid = fork();
    if (pid == 0) {
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      execl(bin.c_str(), bin.c_str(), "--state-dir", state_.c_str(), "domain", "create", "--name",
            name.c_str(), nullptr);
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) Die("domain create failed: " + name);
  }
  EngineOptions Options() {
    EngineOptions o;
    auto xs = LibXenStore::Open(state_ + "/xenstored.sock");
    auto ev = SimEventChannels::Create(state_ + "/hypervisor.sock");
    auto gt = SimGrantTables::Create(state_ + "/hypervisor.sock");
    if (!xs.ok() || !ev.ok() || !gt.ok()) Die("cannot connect to xensim");
    o.xenstore = *std::move(xs);
    o.event_channels = *std::move(ev);
    o.grant_tables = *std::move(gt);
    return o;
  }
  std::string Tty(const std::string& domain, const std::string& channel) const {
    return state_ + "/guests/" + domain + "/root/dev/xen-channel/" + channel;
  }

 private:
  std::string dir_;
  std::string state_;
  pid_t pid_ = -1;
};

int OpenRaw(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) Die("open " + path);
  termios t;
  tcgetattr(fd, &t);
  cfmakeraw(&t);
  tcsetattr(fd, TCSANOW, &t);
  return fd;
}

absl::StatusOr<ChannelInfo> HotAdd(Engine& engine, const std::string& domain,
                                   const std::string& id) {
  CreateChannelRequest req;
  req.domain = domain;
  req.channel_id = id;
  req.wait_until_connected = true;
  req.connect_timeout = absl::Seconds(60);
  // The engine learns a new domain from @introduceDomain a moment after the
  // toolstack returns.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    auto c = engine.CreateChannelAndWait(req);
    if (c.ok() || c.status().code() != absl::StatusCode::kNotFound || absl::Now() > deadline) {
      return c;
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
}

double GuestToHost(Engine& engine, Xensim& sim, const std::string& dom, const std::string& chan,
                   size_t total) {
  const int tty = OpenRaw(sim.Tty(dom, chan));
  SessionOptions so;
  so.start.anchor = ReadStart::Anchor::kNext;
  auto session = engine.OpenSession({dom, chan}, so);
  if (!session.ok()) Die(session.status().ToString());
  const absl::Time start = absl::Now();
  std::thread writer([&] {
    std::string chunk(4096, 'u');
    for (size_t sent = 0; sent < total;) {
      const ssize_t n = write(tty, chunk.data(), std::min(chunk.size(), total - sent));
      if (n <= 0) Die("tty write");
      sent += static_cast<size_t>(n);
    }
  });
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
  std::thread reader([&] {
    char buf[65536];
    for (size_t got = 0; got < total;) {
      const ssize_t n = read(tty, buf, sizeof(buf));
      if (n <= 0) Die("tty read");
      got += static_cast<size_t>(n);
    }
  });
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

// 2. The composite floor: the guest's tty on one side, SimFloor on the other.
double FloorGuestToHost(bench::SimFloor& floor, Xensim& sim, const std::string& dom,
                        const std::string& chan, size_t total) {
  const int tty = OpenRaw(sim.Tty(dom, chan));
  const absl::Time start = absl::Now();
  std::thread writer([&] {
    std::string chunk(4096, 'u');
    for (size_t sent = 0; sent < total;) {
      const ssize_t n = write(tty, chunk.data(), std::min(chunk.size(), total - sent));
      if (n <= 0) Die("tty write");
      sent += static_cast<size_t>(n);
    }
  });
  if (floor.Drain(total) != total) Die("floor: guest to host stalled");
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  writer.join();
  close(tty);
  return total / secs / 1e6;
}

double FloorHostToGuest(bench::SimFloor& floor, Xensim& sim, const std::string& dom,
                        const std::string& chan, size_t total) {
  const int tty = OpenRaw(sim.Tty(dom, chan));
  const absl::Time start = absl::Now();
  std::thread reader([&] {
    char buf[65536];
    for (size_t got = 0; got < total;) {
      const ssize_t n = read(tty, buf, sizeof(buf));
      if (n <= 0) Die("tty read");
      got += static_cast<size_t>(n);
    }
  });
  if (floor.Fill(total, 'd') != total) Die("floor: host to guest stalled");
  reader.join();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  close(tty);
  return total / secs / 1e6;
}

int Main() {
  const size_t bytes = static_cast<size_t>(absl::GetFlag(FLAGS_bytes));
  const int guests = std::max(1, absl::GetFlag(FLAGS_guests));
  const int per_guest = std::clamp(absl::GetFlag(FLAGS_channels_per_guest), 1, 7);
  const double idle_seconds = absl::GetFlag(FLAGS_idle_seconds);
  const int repeats = std::max(1, absl::GetFlag(FLAGS_repeats));
  printf("ring_bench: how it was run\n");
  printf("  bytes per throughput run: %zu\n  scale: %d guests x %d channels = %d channels\n", bytes,
         guests, per_guest, guests * per_guest);
  printf(
      "  idle window: %.1f s\n  repeats per figure: %d\n  cpus: %ld (bench main thread on cpu "
      "%d)\n  xensim: %s\n",
      idle_seconds, repeats, sysconf(_SC_NPROCESSORS_ONLN), bench::CurrentCpu(),
      XensimPath().c_str());
  printf(
      "  host: xensim serve (child process); guests: xensim guest processes; engine: this "
      "process over LibXenStore + SimEventChannels + SimGrantTables\n");
  printf(
      "  data path of one channel: test thread -> guest pty -> guest process -> ring page "
      "(shared memfd) -> engine -> session (and back)\n\n");

  printf("baseline (two threads, one ring page, eventfd wake-ups):\n");
  const double base_up = BaselineGuestToHost(bytes);
  const double base_down = BaselineHostToGuest(bytes);
  Result("baseline_guest_to_host_mbps", base_up, "MB/s");
  Result("baseline_host_to_guest_mbps", base_down, "MB/s");

  Xensim sim;
  sim.Start();
  sim.CreateDomain("bench0");
  uint32_t domid = 0, devid = 0;
  {
    auto engine = Engine::Create(sim.Options());
    if (!engine.ok()) Die(engine.status().ToString());
    auto c = HotAdd(**engine, "bench0", "tp");
    if (!c.ok()) Die(c.status().ToString());
    domid = c->domid;
    devid = c->devid;
  }
  // The engine is gone (port unbound, page unmapped, xenstore kept): the
  // floor takes the backend's place on the same ring and port.
  double floor_up = 0, floor_down = 0;
  {
    EngineOptions o = sim.Options();
    auto floor = bench::SimFloor::Attach(*o.xenstore, std::move(o.event_channels), *o.grant_tables,
                                         domid, devid);
    if (!floor.ok()) Die("floor: " + floor.status().ToString());
    printf("\ncomposite floor: the same guest, pty and ring, a minimal backend loop, no engine:\n");
    std::vector<double> up, down;
    const auto p0 = bench::SampleTree();
    const uint64_t e0 = (*floor)->events();
    for (int r = 0; r < repeats; ++r) {
      up.push_back(FloorGuestToHost(**floor, sim, "bench0", "tp", bytes));
      down.push_back(FloorHostToGuest(**floor, sim, "bench0", "tp", bytes));
    }
    const auto p1 = bench::SampleTree();
    floor_up = Repeated("floor_guest_to_host_mbps", up, "MB/s");
    floor_down = Repeated("floor_host_to_guest_mbps", down, "MB/s");
    const uint64_t events = (*floor)->events() - e0;
    Result("floor_events", static_cast<double>(events), "");
    bench::PrintPerMessage("guest event (floor, both directions)", p0, p1,
                           static_cast<double>(events));
  }
  // The same channel under three event rate-limit policies, each served by
  // a fresh engine that recovers it.
  struct Policy {
    const char* suffix;  // of the RESULT names
    const char* what;
    uint32_t allowance;  // spurious events per 200 ms
    uint32_t cap;        // events not paid for by their data per 200 ms
  };
  const EngineOptions defaults;
  const Policy policies[] = {
      {"", "xenchan default: spurious events 30 / 200 ms, unpaid events 2000 / 200 ms",
       defaults.event_allowance, defaults.event_cap},
      {"_every_event", "the cap lowered to the allowance: unpaid events 30 / 200 ms",
       defaults.event_allowance, defaults.event_allowance},
      {"_nolimit", "no limit at all", UINT32_MAX, UINT32_MAX},
  };
  for (const Policy& p : policies) {
    EngineOptions o = sim.Options();
    o.event_allowance = p.allowance;
    o.event_cap = p.cap;
    auto engine = Engine::Create(std::move(o));
    if (!engine.ok()) Die(engine.status().ToString());
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      auto c = (*engine)->GetChannel({"bench0", "tp"});
      if (c.ok() && c->state == ChannelState::kConnected) break;
      absl::SleepFor(absl::Milliseconds(2));
    }
    printf("\none channel on the simulated host, %s:\n", p.what);
    auto counters = [&] {
      auto c = (*engine)->GetChannel({"bench0", "tp"});
      if (!c.ok()) Die(c.status().ToString());
      return c->counters;
    };
    std::vector<double> up, down, up_events, down_events;
    ChannelCounters c0 = counters();
    const double cpu0 = CpuSeconds();
    const auto p0 = bench::SampleTree();
    for (int r = 0; r < repeats; ++r) {
      ChannelCounters ca = counters();
      absl::Time t0 = absl::Now();
      up.push_back(GuestToHost(**engine, sim, "bench0", "tp", bytes));
      ChannelCounters cb = counters();
      absl::Time t1 = absl::Now();
      down.push_back(HostToGuest(**engine, sim, "bench0", "tp", bytes));
      ChannelCounters cc = counters();
      absl::Time t2 = absl::Now();
      up_events.push_back((cb.events_from_guest - ca.events_from_guest) /
                          absl::ToDoubleSeconds(t1 - t0));
      down_events.push_back((cc.events_from_guest - cb.events_from_guest) /
                            absl::ToDoubleSeconds(t2 - t1));
    }
    const auto p1 = bench::SampleTree();
    ChannelCounters c2 = counters();
    const double cpu = CpuSeconds() - cpu0;
    const std::string s = p.suffix;
    const double med_up = Repeated("sim_guest_to_host" + s + "_mbps", up, "MB/s");
    const double med_down = Repeated("sim_host_to_guest" + s + "_mbps", down, "MB/s");
    Result("ratio_guest_to_host" + s + "_vs_floor", med_up / floor_up, "");
    Result("ratio_host_to_guest" + s + "_vs_floor", med_down / floor_down, "");
    Result("ratio_guest_to_host" + s + "_vs_baseline", med_up / base_up, "");
    Result("ratio_host_to_guest" + s + "_vs_baseline", med_down / base_down, "");
    Repeated("events_per_second_guest_to_host" + s, up_events, "1/s");
    Repeated("events_per_second_host_to_guest" + s, down_events, "1/s");
    Result("spurious_events" + s,
           static_cast<double>(c2.spurious_events_from_guest - c0.spurious_events_from_guest), "");
    // An upper bound of the engine's cost per event: the whole process's CPU
    // (engine thread plus the bench's tty and session threads) per event.
    const uint64_t events = c2.events_from_guest - c0.events_from_guest;
    const double cpu_per_event = events > 0 ? cpu * 1e6 / events : 0.0;
    Result("cpu_us_per_event" + s, cpu_per_event, "us");
    const double limited = static_cast<double>(c2.rate_limited_periods - c0.rate_limited_periods);
    Result("rate_limited_periods" + s, limited, "");
    bench::PrintPerMessage("guest event (both directions)", p0, p1, static_cast<double>(events));
    if (s.empty()) {
      Goal("ring_bench default, guest to host / composite floor", med_up / floor_up, 0.8, false);
      Goal("ring_bench default, host to guest / composite floor", med_down / floor_down, 0.8,
           false);
      Goal("rate-limited periods in bulk transfers (default)", limited, 0, true);
      Goal("engine CPU per event, us (cpu_us_per_event)", cpu_per_event, 10, true);
    }
  }

  printf("\nscale: %d guests x %d channels\n", guests, per_guest);
  for (int g = 1; g < guests; ++g) sim.CreateDomain(absl::StrCat("bench", g));
  auto engine = Engine::Create(sim.Options());
  if (!engine.ok()) Die(engine.status().ToString());
  {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while ((*engine)->stats().domains < static_cast<uint64_t>(guests) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  const size_t rss_before = ResidentBytes();
  std::vector<double> latencies_ms;
  for (int g = 0; g < guests; ++g) {
    for (int k = 0; k < per_guest; ++k) {
      const absl::Time t0 = absl::Now();
      auto c = HotAdd(**engine, absl::StrCat("bench", g), absl::StrCat("org.bench.c", k));
      if (!c.ok()) Die(absl::StrCat("hot-add bench", g, "/c", k, ": ", c.status().ToString()));
      latencies_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    }
  }
  const size_t rss_after = ResidentBytes();
  const int channels = guests * per_guest;
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    return latencies_ms[std::min(latencies_ms.size() - 1,
                                 static_cast<size_t>(p * latencies_ms.size()))];
  };
  Result("hotadd_to_connected_p50_ms", pct(0.5), "ms");
  Result("hotadd_to_connected_p99_ms", pct(0.99), "ms");
  Result("hotadd_to_connected_max_ms", latencies_ms.back(), "ms");
  Result("channels_connected", channels, "");
  Result("rss_per_channel_bytes",
         rss_after > rss_before ? static_cast<double>(rss_after - rss_before) / channels : 0.0,
         "bytes");
  Result("rss_engine_total_bytes", static_cast<double>(rss_after), "bytes");

  // Idle: nothing moves; count the engine thread's returns from poll().
  // First let the last hot-adds settle: every guest answers our Connected
  // with its own state 4 shortly after the channel connected.
  {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    for (;;) {
      size_t settled = 0;
      for (const ChannelInfo& c : (*engine)->ListChannels()) {
        settled += c.frontend_state == XenbusState::kConnected ? 1 : 0;
      }
      if (settled >= static_cast<size_t>(channels) || absl::Now() > deadline) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    uint64_t last = (*engine)->stats().wakeups;
    for (int i = 0; i < 50; ++i) {  // until a 100 ms window passes without a wake-up
      absl::SleepFor(absl::Milliseconds(100));
      const uint64_t now = (*engine)->stats().wakeups;
      if (now == last) break;
      last = now;
    }
  }
  const uint64_t w0 = (*engine)->stats().wakeups;
  absl::SleepFor(absl::Seconds(idle_seconds));  // the measurement window itself
  const uint64_t w1 = (*engine)->stats().wakeups;
  Result("idle_wakeups_per_second", (w1 - w0) / idle_seconds, "1/s");
  engine->reset();

  printf("\ngoals (issue 14; ratios from this run, medians):\n");
  for (const std::string& g : g_goals) printf("%s\n", g.c_str());
  printf("\n");
  for (const auto& [name, value] : g_results) printf("RESULT %s=%s\n", name.c_str(), value.c_str());
  return 0;
}

}  // namespace
}  // namespace xenchan

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  return xenchan::Main();
}
