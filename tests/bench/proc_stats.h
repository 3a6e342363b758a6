// What the benchmarks print beside every figure: the CPU time and context
// switches of each process involved, per message, from /proc (utime+stime
// of /proc/<pid>/stat, voluntary and nonvoluntary_ctxt_switches of every
// /proc/<pid>/task/*/status), the CPU each of their threads last ran on
// (field 39 of /proc/<pid>/task/*/stat). On a VM a wake-up that crosses vCPUs costs far more than
// one on the same vCPU, so a latency figure means little without its placement.
#ifndef XENCHAN_TESTS_BENCH_PROC_STATS_H_
#define XENCHAN_TESTS_BENCH_PROC_STATS_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace xenchan {
namespace bench {

// One process's counters at one moment.
struct ProcCounters {
  double cpu_seconds = 0;  // utime + stime, all threads
  uint64_t voluntary = 0;  // context switches, all threads
  uint64_t nonvoluntary = 0;
  std::vector<int> cpus;  // the CPU each thread last ran on
};

// Counters of this process and every descendant, keyed by a label that
// says what the process is ("ring_bench", "xensim serve", "xensim guest",
// "xenchand", ...; processes with the same label are summed).
std::map<std::string, ProcCounters> SampleTree();

// Prints, for each label, CPU microseconds and context switches per message
// between two samples (processes that came or went count from zero), with
// the CPUs their threads last ran on; returns the whole tree's context
// switches per message. `what` names the run, `messages` its messages.
double PrintPerMessage(const std::string& what, const std::map<std::string, ProcCounters>& before,
                       const std::map<std::string, ProcCounters>& after, double messages);

// The CPU this thread is on now (sched_getcpu).
int CurrentCpu();

}  // namespace bench
}  // namespace xenchan

#endif  // XENCHAN_TESTS_BENCH_PROC_STATS_H_
