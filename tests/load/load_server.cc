// See load_server.h.
#include "tests/load/load_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace xenchan {
namespace load {

double ProcCpuSeconds(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (pid <= 0 || close == std::string::npos) return -1;
  std::vector<std::string> f = absl::StrSplit(stat.substr(close + 2), ' ');
  double utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtod(f[11], &utime) || !absl::SimpleAtod(f[12], &stime)) {
    return -1;
  }
  return (utime + stime) / sysconf(_SC_CLK_TCK);
}

// "VmHWM" / "VmRSS" of a process in kB; -1 if unknown.
int64_t ProcStatusKb(int pid, const std::string& key) {
  if (pid <= 0) return -1;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, key + ":")) continue;
    int64_t kb = -1;
    std::string v(absl::StripAsciiWhitespace(line.substr(key.size() + 1)));
    v = std::string(absl::StripSuffix(v, " kB"));
    return absl::SimpleAtoi(v, &kb) ? kb : -1;
  }
  return -1;
}

ServerUsage SampleServer(int pid) {
  ServerUsage u;
  u.rss_kb = ProcStatusKb(pid, "VmRSS");
  u.hwm_kb = ProcStatusKb(pid, "VmHWM");
  u.cpu_seconds = ProcCpuSeconds(pid);
  return u;
}

int PeerPid(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return 0;
  memcpy(addr.sun_path, path.c_str(), path.size());
  int pid = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) pid = cred.pid;
  }
  close(fd);
  return pid;
}

bool IsLoopbackTarget(const std::string& target) {
  if (absl::StartsWith(target, "unix:")) return true;
  std::string host;
  if (absl::StartsWith(target, "[")) {
    const size_t end = target.find(']');
    if (end == std::string::npos) return false;
    host = target.substr(1, end - 1);
    return host == "::1";
  }
  host = target.substr(0, target.rfind(':'));
  if (host == "localhost") return true;
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
  return (ntohl(a.s_addr) >> 24) == 127;
}

std::string UnixPath(const std::string& target) {
  std::string p(absl::StripPrefix(target, "unix:"));
  if (absl::StartsWith(p, "//")) p = p.substr(2);
  return p;
}

}  // namespace load
}  // namespace xenchan
