// The simulated hypervisor's domain pause (protocol.h, "Domain pause"): one
// controller pause count per domain, 1 at creation, shared by the toolstack
// (in process) and dom0's clients, bounded, dom0's alone to change; and the
// process playing a domain's vCPUs really stops while the count is above 0.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backend/sim/child_process.h"
#include "backend/sim/hv/client.h"
#include "backend/sim/hv/hypervisor.h"
#include "gtest/gtest.h"
#include "tests/sim/hv/hv_fixture.h"

namespace xenchan {
namespace sim {
namespace hv {
namespace {

// The scheduler state letter of `pid` from /proc/PID/stat ('T': stopped).
char ProcessState(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

// Waits (up to 10 s) until `pid` is stopped, or is not.
bool UntilStopped(pid_t pid, bool stopped) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while ((ProcessState(pid) == 'T') != stopped) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

TEST_F(HvTest, APauseCountStartsAtOneAndEveryControllerSharesIt) {
  EXPECT_EQ(hv_->Info(1).pause_count, 1u);
  auto dom0 = Conn(0);
  ASSERT_TRUE(dom0->PauseDomain(1).ok());  // a daemon, while the toolstack builds
  EXPECT_EQ(hv_->Info(1).pause_count, 2u);
  ASSERT_TRUE(hv_->Unpause(1).ok());  // the toolstack: built
  EXPECT_EQ(hv_->Info(1).pause_count, 1u);
  ASSERT_TRUE(dom0->UnpauseDomain(1).ok());
  EXPECT_EQ(hv_->Info(1).pause_count, 0u);
  EXPECT_EQ(dom0->UnpauseDomain(1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(hv_->Unpause(1).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(HvTest, OnlyDom0PausesOtherLiveDomainsAndTheCountIsBounded) {
  auto guest = Conn(1);
  EXPECT_EQ(guest->PauseDomain(2).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(guest->UnpauseDomain(1).code(), absl::StatusCode::kPermissionDenied);
  auto dom0 = Conn(0);
  EXPECT_EQ(dom0->PauseDomain(0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dom0->PauseDomain(7).code(), absl::StatusCode::kNotFound);
  uint32_t pauses = hv_->Info(2).pause_count;
  absl::Status s;
  while ((s = dom0->PauseDomain(2)).ok()) ++pauses;
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(pauses, kMaxControllerPauses);
  ASSERT_TRUE(hv_->DestroyDomain(2).ok());
  EXPECT_EQ(dom0->UnpauseDomain(2).code(), absl::StatusCode::kNotFound);
}

TEST_F(HvTest, TheVcpuProcessRunsOnlyWhileTheCountIsZero) {
  auto pid = SpawnChild({"/bin/sleep", "60"}, /*start_stopped=*/true);
  ASSERT_TRUE(pid.ok()) << pid.status();
  EXPECT_EQ(ProcessState(*pid), 'T');
  auto dom0 = Conn(0);
  ASSERT_TRUE(dom0->PauseDomain(1).ok());  // held before the toolstack is done
  ASSERT_TRUE(hv_->AttachVcpuProcess(1, *pid).ok());
  ASSERT_TRUE(hv_->Unpause(1).ok());
  EXPECT_EQ(ProcessState(*pid), 'T');
  ASSERT_TRUE(dom0->UnpauseDomain(1).ok());
  EXPECT_TRUE(UntilStopped(*pid, false));
  ASSERT_TRUE(dom0->PauseDomain(1).ok());
  EXPECT_TRUE(UntilStopped(*pid, true));
  ASSERT_TRUE(dom0->UnpauseDomain(1).ok());
  EXPECT_TRUE(UntilStopped(*pid, false));
  KillAndReap(*pid, SIGKILL);
  EXPECT_EQ(hv_->AttachVcpuProcess(9, *pid).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace hv
}  // namespace sim
}  // namespace xenchan
