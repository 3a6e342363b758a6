// See load_report.h.
#include "tests/load/load_report.h"

#include <stdint.h>
#include <stdio.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/bench/bench_report.h"

namespace xenchan {
namespace load {
namespace {

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
  size_t n = 0;
};

Percentiles Compute(std::vector<double> v) {
  Percentiles p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return bench::Percentile(v, q); };
  p.p50 = at(0.5);
  p.p90 = at(0.9);
  p.p99 = at(0.99);
  p.max = v.back();
  return p;
}

}  // namespace

void PrintReport(Figures& fig, std::map<Kind, int> stream_kinds, int channels, int streams,
                 absl::Duration elapsed, const ServerUsage& before, const ServerUsage& after) {
  MutexLock l(&fig.mu);
  bench::Report report;
  auto result = [&](const std::string& name, double v) { report.Keep(name, v); };
  const double secs = absl::ToDoubleSeconds(elapsed);
  std::vector<double> all;
  int64_t msgs = 0, bytes = 0;
  printf("results over %.3f s:\n", secs);
  for (Kind k : {Kind::kEcho, Kind::kWrite, Kind::kRead}) {
    if (stream_kinds[k] == 0) continue;
    const Percentiles p = Compute(fig.latency_us[k]);
    printf(
        "  %-5s %d streams: %lld msgs, %.1f msgs/s, %.3f MB/s; latency us p50 %.0f p90 %.0f "
        "p99 %.0f max %.0f\n",
        KindName(k), stream_kinds[k], static_cast<long long>(fig.messages[k]),
        fig.messages[k] / secs, fig.bytes[k] / secs / 1e6, p.p50, p.p90, p.p99, p.max);
    result(absl::StrCat(KindName(k), "_msgs_per_s"), fig.messages[k] / secs);
    result(absl::StrCat(KindName(k), "_p99_us"), p.p99);
    all.insert(all.end(), fig.latency_us[k].begin(), fig.latency_us[k].end());
    msgs += fig.messages[k];
    bytes += fig.bytes[k];
  }
  const Percentiles p = Compute(std::move(all));
  printf(
      "  all   %d streams: %lld msgs, %.1f msgs/s, %.3f MB/s; latency us p50 %.0f p90 %.0f "
      "p99 %.0f max %.0f\n",
      streams, static_cast<long long>(msgs), msgs / secs, bytes / secs / 1e6, p.p50, p.p90, p.p99,
      p.max);
  int64_t errors = 0;
  for (const auto& [k, n] : fig.errors) errors += n;
  printf("  stream ends:");
  for (const auto& [k, n] : fig.finished) printf(" %s=%lld", k.c_str(), static_cast<long long>(n));
  printf("\n  errors: %lld", static_cast<long long>(errors));
  for (const auto& [k, n] : fig.errors) printf(" %s=%lld", k.c_str(), static_cast<long long>(n));
  // xenchand's CPU per message (all its threads; every message the streams
  // counted, each kind once).
  const double server_cpu_us_per_msg = before.cpu_seconds >= 0 && after.cpu_seconds >= 0 && msgs > 0
                                           ? (after.cpu_seconds - before.cpu_seconds) * 1e6 / msgs
                                           : -1;
  printf("\n  xenchand CPU: %.1f us per message (%.2f s in all)", server_cpu_us_per_msg,
         after.cpu_seconds - before.cpu_seconds);
  printf(
      "\n  xenchand memory: VmHWM %lld kB (peak; %lld kB before the load), VmRSS %lld kB "
      "after (%lld kB before)\n\n",
      static_cast<long long>(after.hwm_kb), static_cast<long long>(before.hwm_kb),
      static_cast<long long>(after.rss_kb), static_cast<long long>(before.rss_kb));
  result("channels", channels);
  result("streams", streams);
  result("duration_s", secs);
  result("msgs", static_cast<double>(msgs));
  result("msgs_per_s", msgs / secs);
  result("mb_per_s", bytes / secs / 1e6);
  result("p50_us", p.p50);
  result("p90_us", p.p90);
  result("p99_us", p.p99);
  result("max_us", p.max);
  result("errors", static_cast<double>(errors));
  for (const auto& [k, n] : fig.errors) result("errors_" + k, static_cast<double>(n));
  result("server_vmhwm_kb", static_cast<double>(after.hwm_kb));
  result("server_vmrss_kb", static_cast<double>(after.rss_kb));
  result("server_cpu_us_per_msg", server_cpu_us_per_msg);
  report.PrintResults();
  fflush(stdout);
}

}  // namespace load
}  // namespace xenchan
