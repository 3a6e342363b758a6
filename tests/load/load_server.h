// Facts xenchan_load reads about the xenchand it loads, from /proc and its
// socket, and the check that a target stays on this host.
#ifndef XENCHAN_TESTS_LOAD_LOAD_SERVER_H_
#define XENCHAN_TESTS_LOAD_LOAD_SERVER_H_

#include <stdint.h>

#include <string>

namespace xenchan {
namespace load {

// CPU seconds (utime + stime, fields 14 and 15 of /proc/<pid>/stat) a
// process has used; -1 if unknown.
double ProcCpuSeconds(int pid);

// "VmHWM" / "VmRSS" of a process in kB; -1 if unknown.
int64_t ProcStatusKb(int pid, const std::string& key);

// The server's memory and CPU at one moment (-1 where unknown).
struct ServerUsage {
  int64_t rss_kb = -1;  // VmRSS
  int64_t hwm_kb = -1;  // VmHWM: the peak so far
  double cpu_seconds = -1;
};
ServerUsage SampleServer(int pid);

// The pid of the process serving a Unix socket (SO_PEERCRED); 0 if unknown.
int PeerPid(const std::string& path);

// True for targets that stay on this host.
bool IsLoopbackTarget(const std::string& target);

// The socket path of a unix: target.
std::string UnixPath(const std::string& target);

}  // namespace load
}  // namespace xenchan

#endif  // XENCHAN_TESTS_LOAD_LOAD_SERVER_H_
