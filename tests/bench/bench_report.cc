// See bench_report.h.
#include "tests/bench/bench_report.h"

#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_format.h"

namespace xenchan {
namespace bench {

Spread SpreadOf(std::vector<double> values) {
  if (values.empty()) return {};
  std::sort(values.begin(), values.end());
  return Spread{values.front(), values[values.size() / 2], values.back()};
}

double Percentile(const std::vector<double>& sorted, double q) {
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(q * sorted.size()))];
}

void WaitFd(int fd) {
  pollfd p{fd, POLLIN, 0};
  poll(&p, 1, 100);
  uint64_t v;
  [[maybe_unused]] ssize_t n = read(fd, &v, sizeof(v));
}

void Report::Result(const std::string& name, double value, const char* unit) {
  const std::string v = absl::StrFormat("%.6g", value);
  printf("  %-*s %s %s\n", style_.name_width, name.c_str(), v.c_str(), unit);
  fflush(stdout);
  results_.emplace_back(name, v);
}

void Report::Keep(const std::string& name, double value) {
  results_.emplace_back(name, absl::StrFormat("%.6g", value));
}

double Report::Repeated(const std::string& name, const std::vector<double>& values,
                        const char* unit) {
  const Spread s = SpreadOf(values);
  printf("  %-*s %.6g %s (min %.6g, max %.6g, n=%zu)\n", style_.name_width, name.c_str(), s.median,
         unit, s.min, s.max, values.size());
  fflush(stdout);
  results_.emplace_back(name, absl::StrFormat("%.6g", s.median));
  return s.median;
}

void Report::Goal(const std::string& what, double figure, double bound, bool at_most) {
  const bool met = at_most ? figure <= bound : figure >= bound;
  goals_.push_back(absl::StrFormat("  %-*s %10.4g %s %-*.4g %s", style_.goal_width, what, figure,
                                   at_most ? "<=" : ">=", style_.bound_width, bound,
                                   met ? "met" : "MISSED"));
}

void Report::PrintGoals(const std::string& heading) const {
  printf("\n%s\n", heading.c_str());
  for (const std::string& g : goals_) printf("%s\n", g.c_str());
  printf("\n");
}

void Report::PrintResults() const {
  for (const auto& [name, value] : results_) printf("RESULT %s=%s\n", name.c_str(), value.c_str());
}

}  // namespace bench
}  // namespace xenchan
