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
//
// The pieces: ring_bench_host.h (xensim serve and hot-add),
// ring_bench_throughput.h (the throughput runs), bench_report.h (the
// figures and goals), bench_process.h (Die; no child left behind).
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/engine/engine.h"
#include "tests/bench/bench_process.h"
#include "tests/bench/bench_report.h"
#include "tests/bench/proc_stats.h"
#include "tests/bench/ring_bench_host.h"
#include "tests/bench/ring_bench_throughput.h"
#include "tests/bench/sim_floor.h"

ABSL_FLAG(std::string, xensim, "", "path of the xensim binary (default: from runfiles)");
ABSL_FLAG(int64_t, bytes, 4 << 20, "bytes per throughput run");
ABSL_FLAG(int32_t, guests, 100, "guests in the scale run");
ABSL_FLAG(int32_t, channels_per_guest, 5, "channels per guest in the scale run (<= 7)");
ABSL_FLAG(double, idle_seconds, 5.0, "how long to count wake-ups while idle");
ABSL_FLAG(int32_t, repeats, 3, "times each throughput figure is measured");

namespace xenchan {
namespace bench {
namespace {

std::string XensimPath() {
  if (!absl::GetFlag(FLAGS_xensim).empty()) return absl::GetFlag(FLAGS_xensim);
  // UseOwnRunfiles set TEST_SRCDIR if `bazel test` did not.
  return std::string(getenv("TEST_SRCDIR")) + "/xenchan/backend/sim/xensim";
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

int Main() {
  Report report;
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
      idle_seconds, repeats, sysconf(_SC_NPROCESSORS_ONLN), CurrentCpu(), XensimPath().c_str());
  printf(
      "  host: xensim serve (child process); guests: xensim guest processes; engine: this "
      "process over LibXenStore + SimEventChannels + SimGrantTables\n");
  printf(
      "  data path of one channel: test thread -> guest pty -> guest process -> ring page "
      "(shared memfd) -> engine -> session (and back)\n\n");

  printf("baseline (two threads, one ring page, eventfd wake-ups):\n");
  const double base_up = BaselineGuestToHost(bytes);
  const double base_down = BaselineHostToGuest(bytes);
  report.Result("baseline_guest_to_host_mbps", base_up, "MB/s");
  report.Result("baseline_host_to_guest_mbps", base_down, "MB/s");

  Xensim sim(XensimPath());
  const ScopedCleanup stop_sim([&] { sim.Stop(); });  // on Die
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
    auto floor =
        SimFloor::Attach(*o.xenstore, std::move(o.event_channels), *o.grant_tables, domid, devid);
    if (!floor.ok()) Die("floor: " + floor.status().ToString());
    printf("\ncomposite floor: the same guest, pty and ring, a minimal backend loop, no engine:\n");
    std::vector<double> up, down;
    const auto p0 = SampleTree();
    const uint64_t e0 = (*floor)->events();
    for (int r = 0; r < repeats; ++r) {
      up.push_back(FloorGuestToHost(**floor, sim, "bench0", "tp", bytes));
      down.push_back(FloorHostToGuest(**floor, sim, "bench0", "tp", bytes));
    }
    const auto p1 = SampleTree();
    floor_up = report.Repeated("floor_guest_to_host_mbps", up, "MB/s");
    floor_down = report.Repeated("floor_host_to_guest_mbps", down, "MB/s");
    const uint64_t events = (*floor)->events() - e0;
    report.Result("floor_events", static_cast<double>(events), "");
    PrintPerMessage("guest event (floor, both directions)", p0, p1, static_cast<double>(events));
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
    const auto p0 = SampleTree();
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
    const auto p1 = SampleTree();
    ChannelCounters c2 = counters();
    const double cpu = CpuSeconds() - cpu0;
    const std::string s = p.suffix;
    const double med_up = report.Repeated("sim_guest_to_host" + s + "_mbps", up, "MB/s");
    const double med_down = report.Repeated("sim_host_to_guest" + s + "_mbps", down, "MB/s");
    report.Result("ratio_guest_to_host" + s + "_vs_floor", med_up / floor_up, "");
    report.Result("ratio_host_to_guest" + s + "_vs_floor", med_down / floor_down, "");
    report.Result("ratio_guest_to_host" + s + "_vs_baseline", med_up / base_up, "");
    report.Result("ratio_host_to_guest" + s + "_vs_baseline", med_down / base_down, "");
    report.Repeated("events_per_second_guest_to_host" + s, up_events, "1/s");
    report.Repeated("events_per_second_host_to_guest" + s, down_events, "1/s");
    report.Result(
        "spurious_events" + s,
        static_cast<double>(c2.spurious_events_from_guest - c0.spurious_events_from_guest), "");
    // An upper bound of the engine's cost per event: the whole process's CPU
    // (engine thread plus the bench's tty and session threads) per event.
    const uint64_t events = c2.events_from_guest - c0.events_from_guest;
    const double cpu_per_event = events > 0 ? cpu * 1e6 / events : 0.0;
    report.Result("cpu_us_per_event" + s, cpu_per_event, "us");
    const double limited = static_cast<double>(c2.rate_limited_periods - c0.rate_limited_periods);
    report.Result("rate_limited_periods" + s, limited, "");
    PrintPerMessage("guest event (both directions)", p0, p1, static_cast<double>(events));
    if (s.empty()) {
      report.Goal("ring_bench default, guest to host / composite floor", med_up / floor_up, 0.8,
                  false);
      report.Goal("ring_bench default, host to guest / composite floor", med_down / floor_down, 0.8,
                  false);
      report.Goal("rate-limited periods in bulk transfers (default)", limited, 0, true);
      report.Goal("engine CPU per event, us (cpu_us_per_event)", cpu_per_event, 10, true);
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
  auto pct = [&](double p) { return Percentile(latencies_ms, p); };
  report.Result("hotadd_to_connected_p50_ms", pct(0.5), "ms");
  report.Result("hotadd_to_connected_p99_ms", pct(0.99), "ms");
  report.Result("hotadd_to_connected_max_ms", latencies_ms.back(), "ms");
  report.Result("channels_connected", channels, "");
  report.Result(
      "rss_per_channel_bytes",
      rss_after > rss_before ? static_cast<double>(rss_after - rss_before) / channels : 0.0,
      "bytes");
  report.Result("rss_engine_total_bytes", static_cast<double>(rss_after), "bytes");

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
  report.Result("idle_wakeups_per_second", (w1 - w0) / idle_seconds, "1/s");
  engine->reset();

  report.PrintGoals("goals (issue 14; ratios from this run, medians):");
  report.PrintResults();
  return 0;
}

}  // namespace
}  // namespace bench
}  // namespace xenchan

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  xenchan::bench::InitTool("ring_bench");
  xenchan::bench::UseOwnRunfiles();
  return xenchan::bench::Main();
}
