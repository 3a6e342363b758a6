// One process's cost at one moment, from /proc (fleet_bench): CPU time,
// resident memory, open file descriptors and threads, for the per-host
// figures of a steady state (proc_stats.h sums processes by kind instead).
#ifndef XENCHAN_TESTS_BENCH_FLEET_BENCH_PROC_H_
#define XENCHAN_TESTS_BENCH_FLEET_BENCH_PROC_H_

#include <sys/types.h>

namespace xenchan {
namespace bench {

struct PidSample {
  double cpu_seconds = 0;  // every live thread's run time (schedstat; else utime + stime)
  long rss_kib = 0;        // VmRSS
  int fds = -1;            // entries of /proc/<pid>/fd (-1: unreadable)
  int threads = 0;
};

// Zeroes (fds -1) for a process that is gone.
PidSample SamplePid(pid_t pid);

}  // namespace bench
}  // namespace xenchan

#endif  // XENCHAN_TESTS_BENCH_FLEET_BENCH_PROC_H_
