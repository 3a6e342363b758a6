// How every benchmark and the load tool measure and print their figures:
// percentiles of latency samples, min/median/max of repeated runs, the
// figure lines, the goals with whether they are met, and the closing
// `RESULT name=value` lines that the smoke tests and README.md read.
#ifndef XENCHAN_TESTS_BENCH_BENCH_REPORT_H_
#define XENCHAN_TESTS_BENCH_BENCH_REPORT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace xenchan {
namespace bench {

// min, median and max of a figure measured several times.
struct Spread {
  double min = 0;
  double median = 0;
  double max = 0;
};
Spread SpreadOf(std::vector<double> values);

// The q-quantile (0 <= q < 1) of ascending samples: sorted[q * n], the last
// one at most. `sorted` must not be empty.
double Percentile(const std::vector<double>& sorted, double q);

// Calls f(first + i) for i in [0, n), timing each call: microseconds.
template <class F>
std::vector<double> TimeCalls(int n, int first, F&& f) {
  std::vector<double> us;
  us.reserve(n);
  for (int i = 0; i < n; ++i) {
    const absl::Time t0 = absl::Now();
    f(first + i);
    us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
  }
  return us;
}

// Waits up to 100 ms for `fd` (an eventfd, or a session's notify_fd) to be
// readable, then reads it to clear it.
void WaitFd(int fd);

// The figures of one run: printed as they are measured, kept for the
// closing RESULT lines; and the goals, kept for their own block. Not
// thread-safe (the tools report from their main thread).
class Report {
 public:
  // Column widths of the figure lines and goal lines.
  struct Style {
    int name_width = 40;  // "  <name> <value> <unit>"
    int goal_width = 58;  // "  <what> <figure> <= <bound> met"
    int bound_width = 8;
  };
  Report() = default;
  explicit Report(Style style) : style_(style) {}

  // Prints "  <name> <value> <unit>" (value %.6g) and keeps it.
  void Result(const std::string& name, double value, const char* unit);
  // Keeps a figure for the RESULT lines without printing it now.
  void Keep(const std::string& name, double value);
  // A repeated figure: min/median/max printed, the median kept; returns it.
  double Repeated(const std::string& name, const std::vector<double>& values, const char* unit);
  // A goal: the figure, the bound (at most or at least) and whether it is met.
  void Goal(const std::string& what, double figure, double bound, bool at_most);

  // "\n<heading>\n", the goals, then an empty line.
  void PrintGoals(const std::string& heading) const;
  // One `RESULT name=value` line per figure kept, in order.
  void PrintResults() const;

 private:
  Style style_;
  std::vector<std::pair<std::string, std::string>> results_;
  std::vector<std::string> goals_;
};

}  // namespace bench
}  // namespace xenchan

#endif  // XENCHAN_TESTS_BENCH_BENCH_REPORT_H_
