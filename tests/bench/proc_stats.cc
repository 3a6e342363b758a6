// Per-process CPU time, context switches and placement from /proc.
#include "tests/bench/proc_stats.h"

#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace xenchan {
namespace bench {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Fields of /proc/<pid>/stat after the command (which may hold spaces and
// parentheses): fields[0] is field 3 (state).
std::vector<std::string> StatFields(const std::string& stat) {
  std::vector<std::string> fields;
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream in(stat.substr(close + 1));
  std::string f;
  while (in >> f) fields.push_back(f);
  return fields;
}

pid_t ParentOf(pid_t pid) {
  const std::vector<std::string> f = StatFields(ReadAll(absl::StrCat("/proc/", pid, "/stat")));
  return f.size() > 1 ? static_cast<pid_t>(std::stol(f[1])) : -1;
}

std::vector<pid_t> Numbered(const std::string& dir) {
  std::vector<pid_t> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') out.push_back(std::atoi(e->d_name));
  }
  closedir(d);
  return out;
}

// "xensim serve", "xensim guest", "xenchand", the bench itself, or its
// re-run as an agent ("e2e_bench agent").
std::string Label(pid_t pid) {
  std::string cmdline = ReadAll(absl::StrCat("/proc/", pid, "/cmdline"));
  std::vector<std::string> argv;
  for (size_t start = 0; start < cmdline.size();) {
    const size_t end = cmdline.find('\0', start);
    argv.push_back(cmdline.substr(start, end == std::string::npos ? end : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (argv.empty()) return "?";
  std::string name = argv[0].substr(argv[0].rfind('/') + 1);
  if (name == "xensim") {
    for (size_t i = 1; i < argv.size(); ++i) {
      if (argv[i] == "serve" || argv[i] == "guest") return "xensim " + argv[i];
    }
  }
  for (const std::string& a : argv) {
    if (a.rfind("--guest_agent=", 0) == 0) return name + " agent";
  }
  return name;
}

ProcCounters Counters(pid_t pid) {
  ProcCounters c;
  const std::vector<std::string> f = StatFields(ReadAll(absl::StrCat("/proc/", pid, "/stat")));
  // utime and stime are fields 14 and 15 (fields[11], fields[12]).
  if (f.size() > 12) {
    c.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / sysconf(_SC_CLK_TCK);
  }
  const std::string tasks = absl::StrCat("/proc/", pid, "/task/");
  for (pid_t tid : Numbered(tasks)) {
    std::istringstream status(ReadAll(absl::StrCat(tasks, tid, "/status")));
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) {
        c.voluntary += std::stoull(line.substr(line.find(':') + 1));
      } else if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        c.nonvoluntary += std::stoull(line.substr(line.find(':') + 1));
      }
    }
    // Field 39, processor: the CPU the thread last ran on (fields[36]).
    const std::vector<std::string> tf = StatFields(ReadAll(absl::StrCat(tasks, tid, "/stat")));
    if (tf.size() > 36) c.cpus.push_back(std::stoi(tf[36]));
  }
  return c;
}

}  // namespace

std::map<std::string, ProcCounters> SampleTree() {
  const pid_t self = getpid();
  std::set<pid_t> tree = {self};
  const std::vector<pid_t> all = Numbered("/proc");
  std::map<pid_t, pid_t> parent;
  for (pid_t p : all) parent[p] = ParentOf(p);
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [p, pp] : parent) {
      if (tree.count(p) == 0 && tree.count(pp) != 0) grew = tree.insert(p).second || grew;
    }
  }
  std::map<std::string, ProcCounters> out;
  for (pid_t p : tree) {
    const ProcCounters c = Counters(p);
    ProcCounters& sum = out[Label(p)];
    sum.cpu_seconds += c.cpu_seconds;
    sum.voluntary += c.voluntary;
    sum.nonvoluntary += c.nonvoluntary;
    sum.cpus.insert(sum.cpus.end(), c.cpus.begin(), c.cpus.end());
  }
  return out;
}

double PrintPerMessage(const std::string& what, const std::map<std::string, ProcCounters>& before,
                       const std::map<std::string, ProcCounters>& after, double messages) {
  if (messages <= 0) messages = 1;
  double total_switches = 0;
  double total_cpu = 0;
  printf("    per message, %s (%.0f messages):\n", what.c_str(), messages);
  for (const auto& [label, a] : after) {
    ProcCounters b;
    if (auto it = before.find(label); it != before.end()) b = it->second;
    const double cpu_us = std::max(0.0, a.cpu_seconds - b.cpu_seconds) * 1e6 / messages;
    const double vol = static_cast<double>(a.voluntary - std::min(a.voluntary, b.voluntary));
    const double invol =
        static_cast<double>(a.nonvoluntary - std::min(a.nonvoluntary, b.nonvoluntary));
    total_switches += (vol + invol) / messages;
    total_cpu += cpu_us;
    std::vector<int> cpus = a.cpus;
    std::sort(cpus.begin(), cpus.end());
    cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
    printf("      %-18s cpu %8.2f us  switches %6.2f (voluntary %6.2f)  threads on cpus {%s}\n",
           label.c_str(), cpu_us, (vol + invol) / messages, vol / messages,
           absl::StrJoin(cpus, ",").c_str());
  }
  printf("      %-18s cpu %8.2f us  switches %6.2f\n", "whole system", total_cpu, total_switches);
  return total_switches;
}

int CurrentCpu() { return sched_getcpu(); }

}  // namespace bench
}  // namespace xenchan
