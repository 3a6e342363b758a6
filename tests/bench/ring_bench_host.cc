// See ring_bench_host.h.
#include "tests/bench/ring_bench_host.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/platform/sim/event_channels.h"
#include "backend/platform/sim/grant_tables.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "tests/bench/bench_process.h"
#include "tests/common/io.h"

namespace xenchan {
namespace bench {

void Xensim::Start() {
  char dir[] = "/tmp/ringbench-XXXXXX";
  if (mkdtemp(dir) == nullptr) Die("mkdtemp");
  dir_ = dir;
  state_ = dir_ + "/s";
  const Child child = StartChild({bin_, "serve", "--state-dir", state_});
  pid_ = child.pid;
  const std::string line = ReadLineAndClose(child.stdout_fd);
  if (line.find("ready") == std::string::npos) Die("xensim serve did not start: " + bin_);
}

void Xensim::Stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  if (!dir_.empty()) {
    const std::string cmd = "rm -rf '" + dir_ + "'";
    [[maybe_unused]] int rc = system(cmd.c_str());
    dir_.clear();
  }
}

void Xensim::CreateDomain(const std::string& name) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execl(bin_.c_str(), bin_.c_str(), "--state-dir", state_.c_str(), "domain", "create", "--name",
          name.c_str(), nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) Die("domain create failed: " + name);
}

EngineOptions Xensim::Options() {
  EngineOptions o;
  auto xs = LibXenStore::Open(state_ + "/xenstored.sock");
  auto ev = SimEventChannels::Create(state_ + "/hypervisor.sock");
  auto gt = SimGrantTables::Create(state_ + "/hypervisor.sock");
  if (!xs.ok() || !ev.ok() || !gt.ok()) Die("cannot connect to xensim");
  o.xenstore = *std::move(xs);
  o.event_channels = *std::move(ev);
  o.grant_tables = *std::move(gt);
  return o;
}

int OpenRaw(const std::string& path) {
  const int fd = testcommon::OpenRawTty(path);
  if (fd < 0) Die("open " + path);
  return fd;
}

absl::StatusOr<ChannelInfo> HotAdd(Engine& engine, const std::string& domain,
                                   const std::string& id) {
  CreateChannelRequest req;
  req.domain = domain;
  req.channel_id = id;
  req.wait_until_connected = true;
  req.connect_timeout = absl::Seconds(60);
  // The engine learns a new domain from @introduceDomain a moment after the
  // toolstack returns.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    auto c = engine.CreateChannelAndWait(req);
    if (c.ok() || c.status().code() != absl::StatusCode::kNotFound || absl::Now() > deadline) {
      return c;
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
}

}  // namespace bench
}  // namespace xenchan
