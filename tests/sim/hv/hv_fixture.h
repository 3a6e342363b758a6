// Test fixture: a simulated hypervisor in a fresh short temp dir, with
// domains 1 and 2 created, and helpers to wait on events and domain deaths.
#ifndef XENCHAN_TESTS_SIM_HV_HV_FIXTURE_H_
#define XENCHAN_TESTS_SIM_HV_HV_FIXTURE_H_

#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/sim/hv/client.h"
#include "backend/sim/hv/hypervisor.h"
#include "backend/util/mutex.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"

namespace xenchan {
namespace sim {
namespace hv {

// Waits up to `timeout` for an event on `evtchn`; nullopt if none came.
inline std::optional<uint32_t> WaitEvent(HvEvtchn& evtchn,
                                         absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    auto port = evtchn.Pending();
    if (!port.ok()) return std::nullopt;
    if (port->has_value()) return **port;
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return std::nullopt;
    struct pollfd pfd = {evtchn.fd(), POLLIN, 0};
    poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
  }
}

class HvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testcommon::MakeShortTempDir("hv");
    ASSERT_FALSE(dir_.empty());
    Hypervisor::Options options;
    options.dom0_socket = dir_ + "/hypervisor.sock";
    options.domain_socket_dir = dir_ + "/domains";
    options.on_domain_gone = [this](uint32_t domid) {
      MutexLock lock(&gone_mu_);
      gone_.insert(domid);
      gone_cv_.SignalAll();
    };
    auto hv = Hypervisor::Create(options);
    ASSERT_TRUE(hv.ok()) << hv.status();
    hv_ = *std::move(hv);
    ASSERT_TRUE(hv_->CreateDomain(1).ok());
    ASSERT_TRUE(hv_->CreateDomain(2).ok());
  }

  void TearDown() override {
    hv_.reset();
    if (!dir_.empty()) {
      rmdir((dir_ + "/domains").c_str());
      rmdir(dir_.c_str());
    }
  }

  std::string Socket(uint32_t domid) const { return hv_->DomainSocketPath(domid); }

  std::unique_ptr<HvConnection> Conn(uint32_t domid) {
    auto conn = HvConnection::Connect(Socket(domid));
    EXPECT_TRUE(conn.ok()) << conn.status();
    return conn.ok() ? *std::move(conn) : nullptr;
  }

  std::unique_ptr<HvEvtchn> Evtchn(uint32_t domid) {
    auto evtchn = HvEvtchn::Open(Socket(domid));
    EXPECT_TRUE(evtchn.ok()) << evtchn.status();
    return evtchn.ok() ? *std::move(evtchn) : nullptr;
  }

  // True once on_domain_gone(domid) has fired, waiting up to 10 s.
  bool WaitGone(uint32_t domid) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    MutexLock lock(&gone_mu_);
    while (gone_.count(domid) == 0) {
      if (gone_cv_.WaitWithDeadline(&gone_mu_, deadline)) return gone_.count(domid) != 0;
    }
    return true;
  }

  bool HasGone(uint32_t domid) {
    MutexLock lock(&gone_mu_);
    return gone_.count(domid) != 0;
  }

  std::string dir_;
  std::unique_ptr<Hypervisor> hv_;
  Mutex gone_mu_;
  CondVar gone_cv_;
  std::set<uint32_t> gone_ ABSL_GUARDED_BY(gone_mu_);
};

}  // namespace hv
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_TESTS_SIM_HV_HV_FIXTURE_H_
