// The process side every benchmark and load tool shares: its name in error
// messages, Die, the runfiles it finds its helpers in, and the guarantee
// that it leaves no child process behind, however it ends:
//
//   - Die (any thread) and exit/return from main stop every descendant
//     (SIGKILL, a snapshot of the whole tree from /proc, so grandchildren
//     too) and reap the direct children; Die on the main thread first runs
//     the ScopedCleanup hooks still alive (graceful stops, state directories
//     removed), newest first;
//   - SIGINT, SIGTERM and SIGHUP do the same hard stop in the handler, then
//     end the tool with the signal's default action;
//   - a crash or SIGKILL of the tool: every child it forks gets
//     PR_SET_PDEATHSIG = SIGKILL (a pthread_atfork child handler, so it
//     covers the fork() inside the helpers of tests/sim, tests/server and
//     tests/etcd too). xensim serve does the same for its guests, so the
//     grandchildren go with it.
//
// PR_SET_PDEATHSIG fires when the *thread* that forked exits: a child that
// must outlive the thread that started it has to be started from the main
// thread (every tool here does; short-lived children such as
// `xensim domain create`, run and waited for by a worker, are fine).
#ifndef XENCHAN_TESTS_BENCH_BENCH_PROCESS_H_
#define XENCHAN_TESTS_BENCH_BENCH_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace xenchan {
namespace bench {

// Call first in main, after flag parsing, in the tool's benchmark mode (an
// agent re-run of the same binary need not): `name` prefixes Die's message.
// Installs the fork handler, the signal handlers and the exit hook above.
// Main thread only, once.
void InitTool(const char* name);

// Prints "<name>: <what>" on stderr, stops every child (see above) and
// exits with status 1. Any thread; a second Die while one is under way only
// waits for the first to end the process.
[[noreturn]] void Die(const std::string& what);

// SIGKILLs every descendant of this process and reaps the direct children.
// Async-signal-safe (no allocation; plain system calls), idempotent.
void StopChildren();

// A graceful stop for Die to run on the main thread before the hard stop
// (e.g. stop xenchand with SIGTERM, remove a state directory), registered
// for the lifetime of this object. Main thread only; not copyable.
class ScopedCleanup {
 public:
  explicit ScopedCleanup(std::function<void()> stop);
  ~ScopedCleanup();
  ScopedCleanup(const ScopedCleanup&) = delete;
  ScopedCleanup& operator=(const ScopedCleanup&) = delete;

 private:
  std::function<void()> stop_;
};

// A child process started by StartChild: its pid and the read end of a
// pipe on its stdout (owned by the caller).
struct Child {
  pid_t pid = -1;
  int stdout_fd = -1;
};

// Forks and execs `argv` (argv[0] a path; exit status 127 if exec fails)
// with its stdout on a pipe. Die if the pipe cannot be made. The caller
// reaps it (or Die / exit does).
Child StartChild(const std::vector<std::string>& argv);

// Reads from `fd` up to the first newline or end of file, closes `fd`, and
// returns what it read without the newline (e.g. a child's ready line).
std::string ReadLineAndClose(int fd);

// The path of this binary (/proc/self/exe); Die if unreadable.
std::string SelfPath();

// The helpers (XensimProcess, XenchandProcess, EtcdCluster) find their
// binaries in the runfiles: TEST_SRCDIR under `bazel test`; next to this
// binary under `bazel run` or when run directly, which this sets.
void UseOwnRunfiles();

}  // namespace bench
}  // namespace xenchan

#endif  // XENCHAN_TESTS_BENCH_BENCH_PROCESS_H_
