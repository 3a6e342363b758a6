// See bench_process.h: Die, runfiles, and no child left behind.
#include "tests/bench/bench_process.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <utility>
#include <vector>

namespace xenchan {
namespace bench {
namespace {

const char* g_name = "bench";
pthread_t g_main_thread;
bool g_initialized = false;

// Set by the first of Die, a signal or the exit hook to end the process.
std::atomic<bool> g_ending{false};
// The thread inside Die, so a Die from a cleanup hook goes straight on.
thread_local bool t_dying = false;
// The graceful stops of the live ScopedCleanup objects, oldest first (main
// thread only).
std::vector<std::function<void()>*> g_cleanups;

// The pid of the process that is forking, written by the fork handler's
// prepare step (the same value from every thread of one process).
std::atomic<pid_t> g_forking_parent{0};

void BeforeFork() { g_forking_parent.store(getpid(), std::memory_order_relaxed); }

// In the child, before it execs: die with the parent. If the parent is
// already gone (it died between fork and prctl), die now.
void InForkedChild() {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != g_forking_parent.load(std::memory_order_relaxed)) raise(SIGKILL);
}

// --- The process tree, from /proc, without allocating (signal handlers). ---

struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

// A decimal pid from a /proc entry name; 0 if it is not one.
pid_t PidOf(const char* s) {
  if (*s == 0) return 0;
  long v = 0;
  for (; *s != 0; ++s) {
    if (*s < '0' || *s > '9' || v > 1 << 30) return 0;
    v = v * 10 + (*s - '0');
  }
  return static_cast<pid_t>(v);
}

// The parent of `pid` (field 4 of /proc/<pid>/stat, after the command in
// parentheses); 0 if it is gone.
pid_t ParentOf(pid_t pid) {
  char path[32] = "/proc/";
  char digits[16];
  int n = 0;
  for (pid_t v = pid; v > 0 && n < 15; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
  int at = 6;
  while (n > 0) path[at++] = digits[--n];
  for (const char* s = "/stat"; *s != 0; ++s) path[at++] = *s;
  path[at] = 0;
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[512];
  const ssize_t len = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (len <= 0) return 0;
  buf[len] = 0;
  const char* close_paren = nullptr;
  for (const char* p = buf; *p != 0; ++p) {
    if (*p == ')') close_paren = p;
  }
  // ") S <ppid> ..."
  if (close_paren == nullptr || close_paren[1] != ' ' || close_paren[2] == 0 ||
      close_paren[3] != ' ') {
    return 0;
  }
  pid_t ppid = 0;
  for (const char* p = close_paren + 4; *p >= '0' && *p <= '9'; ++p) ppid = ppid * 10 + (*p - '0');
  return ppid;
}

constexpr int kMaxTree = 8192;
pid_t g_tree[kMaxTree];    // this process, then its descendants
pid_t g_parent[kMaxTree];  // the parent of each when seen
int g_tree_size = 0;

bool InTree(pid_t pid) {
  for (int i = 0; i < g_tree_size; ++i) {
    if (g_tree[i] == pid) return true;
  }
  return false;
}

// Fills g_tree with this process and every descendant: scans /proc until a
// pass adds nobody (a child listed before its parent joins on the next).
void SnapshotTree() {
  g_tree[0] = getpid();
  g_parent[0] = 0;
  g_tree_size = 1;
  for (bool added = true; added && g_tree_size < kMaxTree;) {
    added = false;
    const int dir = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return;
    alignas(8) char buf[8192];
    for (;;) {
      const long n = syscall(SYS_getdents64, dir, buf, sizeof(buf));
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        const auto* d = reinterpret_cast<const LinuxDirent64*>(buf + off);
        off += d->d_reclen;
        const pid_t pid = PidOf(d->d_name);
        if (pid == 0 || InTree(pid)) continue;
        const pid_t ppid = ParentOf(pid);
        if (ppid == 0 || !InTree(ppid) || g_tree_size >= kMaxTree) continue;
        g_tree[g_tree_size] = pid;
        g_parent[g_tree_size] = ppid;
        ++g_tree_size;
        added = true;
      }
    }
    close(dir);
  }
}

std::atomic<bool> g_stopping{false};

void OnSignal(int sig) {
  if (g_ending.exchange(true)) return;  // Die or the exit hook is ending it
  StopChildren();
  signal(sig, SIG_DFL);
  raise(sig);  // SA_NODEFER: delivered now, with the default action
}

void AtExit() {
  if (g_ending.exchange(true)) return;
  StopChildren();
}

}  // namespace

void StopChildren() {
  if (g_stopping.exchange(true)) return;
  const int saved_errno = errno;
  SnapshotTree();
  const pid_t self = g_tree[0];
  for (int i = 1; i < g_tree_size; ++i) kill(g_tree[i], SIGKILL);
  for (int i = 1; i < g_tree_size; ++i) {
    if (g_parent[i] != self) continue;
    while (waitpid(g_tree[i], nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  errno = saved_errno;
  g_stopping.store(false);
}

void InitTool(const char* name) {
  if (g_initialized) return;
  g_initialized = true;
  g_name = name;
  g_main_thread = pthread_self();
  pthread_atfork(&BeforeFork, nullptr, &InForkedChild);
  struct sigaction sa = {};
  sa.sa_handler = &OnSignal;
  sa.sa_flags = SA_RESTART | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  atexit(&AtExit);
}

void Die(const std::string& what) {
  fprintf(stderr, "%s: %s\n", g_name, what.c_str());
  fflush(stderr);
  if (!t_dying && g_ending.exchange(true)) {
    // Another thread is ending the process.
    for (;;) pause();
  }
  const bool first = !t_dying;
  t_dying = true;
  if (first && g_initialized && pthread_equal(pthread_self(), g_main_thread)) {
    // Newest first; each runs once, even if it dies itself.
    while (!g_cleanups.empty()) {
      std::function<void()>* stop = g_cleanups.back();
      g_cleanups.pop_back();
      (*stop)();
    }
  }
  StopChildren();
  fflush(stdout);
  _exit(1);
}

ScopedCleanup::ScopedCleanup(std::function<void()> stop) : stop_(std::move(stop)) {
  g_cleanups.push_back(&stop_);
}

ScopedCleanup::~ScopedCleanup() {
  for (auto it = g_cleanups.begin(); it != g_cleanups.end(); ++it) {
    if (*it == &stop_) {
      g_cleanups.erase(it);
      break;
    }
  }
}

Child StartChild(const std::vector<std::string>& argv) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) Die("pipe");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  Child child;
  child.pid = fork();
  if (child.pid == 0) {
    dup2(out[1], 1);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  child.stdout_fd = out[0];
  return child;
}

std::string ReadLineAndClose(int fd) {
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') line += c;
  close(fd);
  return line;
}

std::string SelfPath() {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) Die("readlink /proc/self/exe");
  self[n] = 0;
  return self;
}

void UseOwnRunfiles() {
  if (getenv("TEST_SRCDIR") == nullptr) {
    setenv("TEST_SRCDIR", (SelfPath() + ".runfiles").c_str(), 1);
  }
}

}  // namespace bench
}  // namespace xenchan
