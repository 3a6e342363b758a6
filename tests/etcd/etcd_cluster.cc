#include "tests/etcd/etcd_cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "server/etcd/client.h"
#include "tests/common/files.h"

namespace xenchan {
namespace etcdtest {
namespace {

constexpr char kEtcd[] = "/usr/bin/etcd";

std::string Name(int member) { return absl::StrCat("m", member); }

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(int members) {
  if (access(kEtcd, X_OK) != 0) {
    return absl::FailedPreconditionError("no /usr/bin/etcd: run scripts/setup.sh (etcd-server)");
  }
  std::unique_ptr<EtcdCluster> c(new EtcdCluster());
  c->dir_ = testcommon::MakeShortTempDir("etcd");
  if (c->dir_.empty()) return absl::InternalError("cannot make a temp dir");
  c->pids_.assign(members, -1);
  for (int i = 0; i < members; ++i) {
    if (absl::Status s = c->Spawn(i, /*fresh=*/true); !s.ok()) return s;
  }
  etcd::ClientOptions options;
  options.endpoints = c->endpoints();
  options.rpc_timeout = absl::Seconds(2);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  absl::Status last;
  while (absl::Now() < deadline) {
    // A new client each time: etcd accepts on its socket before it serves,
    // and a connection made then waits ~5 s for etcd's first HTTP/2 frame.
    auto client = etcd::Client::Create(options);
    if (!client.ok()) return client.status();
    auto put = (*client)->Put("/etcdtest/ready", "1");
    if (put.ok()) return c;
    last = put.status();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("etcd did not come up in 60 s: ", last.ToString(), "\n", c->Logs()));
}

EtcdCluster::~EtcdCluster() {
  for (int i = 0; i < size(); ++i) Kill(i);
  if (!dir_.empty()) testcommon::RemoveTree(dir_);
}

std::string EtcdCluster::endpoint(int member) const {
  return absl::StrCat("unix://", dir_, "/", Name(member), ":2379");
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(endpoint(i));
  return out;
}

absl::Status EtcdCluster::Spawn(int member, bool fresh) {
  std::vector<std::string> peers;
  for (int i = 0; i < size(); ++i)
    peers.push_back(absl::StrCat(Name(i), "=unix://", Name(i), ":2380"));
  const std::string name = Name(member);
  std::vector<std::string> args = {
      kEtcd,
      "--name",
      name,
      "--data-dir",
      absl::StrCat(dir_, "/", name, ".data"),
      "--listen-client-urls",
      absl::StrCat("unix://", name, ":2379"),
      "--advertise-client-urls",
      absl::StrCat("unix://", name, ":2379"),
      "--listen-peer-urls",
      absl::StrCat("unix://", name, ":2380"),
      "--initial-advertise-peer-urls",
      absl::StrCat("unix://", name, ":2380"),
      "--initial-cluster",
      absl::StrJoin(peers, ","),
      "--initial-cluster-state",
      fresh ? "new" : "existing",
      "--initial-cluster-token",
      "xenchan-test",
      // Short timings: tests wait for elections and lease expiry.
      "--heartbeat-interval",
      "50",
      "--election-timeout",
      "500",
  };
  const std::string log = absl::StrCat(dir_, "/", name, ".log");
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (chdir(dir_.c_str()) != 0) _exit(127);
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(kEtcd, argv.data());
    _exit(127);
  }
  pids_[member] = pid;
  return absl::OkStatus();
}

void EtcdCluster::Kill(int member) {
  if (pids_[member] <= 0) return;
  kill(pids_[member], SIGKILL);
  while (waitpid(pids_[member], nullptr, 0) < 0 && errno == EINTR) {
  }
  pids_[member] = -1;
  // A dead member leaves its socket files, which would stop a restart.
  for (const char* port : {":2379", ":2380"}) {
    unlink(absl::StrCat(dir_, "/", Name(member), port).c_str());
  }
}

absl::Status EtcdCluster::Restart(int member) {
  if (pids_[member] > 0) return absl::FailedPreconditionError("the member runs");
  return Spawn(member, /*fresh=*/false);
}

std::string EtcdCluster::Logs() const {
  std::string out;
  for (int i = 0; i < size(); ++i) {
    std::ifstream in(absl::StrCat(dir_, "/", Name(i), ".log"));
    std::stringstream text;
    text << in.rdbuf();
    std::string s = text.str();
    if (s.size() > 2000) s = s.substr(s.size() - 2000);
    absl::StrAppend(&out, "---- ", Name(i), "\n", s);
  }
  return out;
}

}  // namespace etcdtest
}  // namespace xenchan
