// One process's cost at one moment, from /proc (fleet_bench): CPU time,
// resident memory, open file descriptors and threads, for the per-host
// figures of a steady state (proc_stats.h sums processes by kind instead);
// and the room left for inotify instances, which simulated guests need.
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

// Each simulated guest holds one inotify instance for its life (it counts
// in-guest opens of its ttys), and Linux allows fs.inotify.max_user_instances
// per user (128 by default) machine-wide: past it a guest dies at boot
// ("inotify_init1: Too many open files") while `xensim domain create` still
// succeeds, and its channel never connects. fleet_bench checks the room
// first and names the remedy instead of failing after a 30 s timeout.
struct InotifyRoom {
  int limit = 0;  // fs.inotify.max_user_instances (0: unreadable)
  int used = 0;   // inotify instances open in this user's processes
};
InotifyRoom CheckInotifyRoom();

}  // namespace bench
}  // namespace xenchan

#endif  // XENCHAN_TESTS_BENCH_FLEET_BENCH_PROC_H_
