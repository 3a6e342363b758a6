// Per-process CPU, memory, fds and threads from /proc.
#include "tests/bench/fleet_bench_proc.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace xenchan {
namespace bench {

PidSample SamplePid(pid_t pid) {
  PidSample s;
  const std::string dir = absl::StrCat("/proc/", pid, "/");
  {
    std::ifstream in(dir + "stat");
    std::stringstream text;
    text << in.rdbuf();
    const std::string stat = text.str();
    // After the command (which may hold spaces): state is field 3; utime
    // and stime are fields 14 and 15.
    const size_t close = stat.rfind(')');
    if (close != std::string::npos) {
      std::istringstream fields(stat.substr(close + 1));
      std::vector<std::string> f;
      for (std::string x; fields >> x;) f.push_back(x);
      if (f.size() > 12) {
        s.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / sysconf(_SC_CLK_TCK);
      }
    }
  }
  std::ifstream status(dir + "status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::atol(line.c_str() + 6);
    if (line.rfind("Threads:", 0) == 0) s.threads = std::atoi(line.c_str() + 8);
  }
  // CPU time in nanoseconds, summed over the threads (schedstat's first
  // field), finer than stat's clock ticks; stat's figure when unavailable.
  if (DIR* d = opendir((dir + "task").c_str())) {
    double ns = 0;
    bool any = false;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream in(dir + "task/" + e->d_name + "/schedstat");
      double run = 0;
      if (in >> run) {
        ns += run;
        any = true;
      }
    }
    closedir(d);
    if (any) s.cpu_seconds = ns / 1e9;
  }
  if (DIR* d = opendir((dir + "fd").c_str())) {
    s.fds = 0;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++s.fds;
    }
    closedir(d);
  }
  return s;
}

InotifyRoom CheckInotifyRoom() {
  InotifyRoom room;
  std::ifstream in("/proc/sys/fs/inotify/max_user_instances");
  if (!(in >> room.limit)) room.limit = 0;
  const uid_t uid = getuid();
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return room;
  while (dirent* p = readdir(proc)) {
    if (p->d_name[0] < '0' || p->d_name[0] > '9') continue;
    const std::string dir = absl::StrCat("/proc/", p->d_name);
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || st.st_uid != uid) continue;
    DIR* fds = opendir((dir + "/fd").c_str());
    if (fds == nullptr) continue;
    while (dirent* f = readdir(fds)) {
      char target[64];
      const std::string link = absl::StrCat(dir, "/fd/", f->d_name);
      const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
      if (n > 0 && std::string(target, n) == "anon_inode:inotify") ++room.used;
    }
    closedir(fds);
  }
  closedir(proc);
  return room;
}

}  // namespace bench
}  // namespace xenchan
