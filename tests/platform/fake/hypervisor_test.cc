// FakeEventChannels and FakeGrantTables over FakeHypervisor: the Xen
// semantics the engine relies on (bind needs an earmarked unbound port and
// raises the new port, masked until unmasked, peers revert to unbound on
// close, grants mapped only by their grantee, dying domains while mapped).
#include "backend/platform/fake/hypervisor.h"

#include <poll.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>

#include "backend/platform/fake/event_channels.h"
#include "backend/platform/fake/grant_tables.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace {

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

class FakeHypervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(hv_->CreateDomain(1).ok());
    dom0_ = Open(0);
    guest_ = Open(1);
  }
  std::unique_ptr<FakeEventChannels> Open(uint32_t domid) {
    auto h = FakeEventChannels::Create(hv_, domid);
    EXPECT_TRUE(h.ok()) << h.status();
    return h.ok() ? *std::move(h) : nullptr;
  }
  std::optional<EvtchnPort> Take(FakeEventChannels& h) {
    auto p = h.Pending();
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : std::nullopt;
  }

  std::shared_ptr<FakeTrace> trace_ = std::make_shared<FakeTrace>();
  std::shared_ptr<FakeHypervisor> hv_ = std::make_shared<FakeHypervisor>(trace_);
  std::unique_ptr<FakeEventChannels> dom0_;
  std::unique_ptr<FakeEventChannels> guest_;
};

TEST_F(FakeHypervisorTest, BindRaisesThePortAndNotifiesBothWaysMaskedUntilUnmask) {
  auto gport = guest_->AllocUnbound(0);
  ASSERT_TRUE(gport.ok());
  EXPECT_EQ(*gport, 1u);
  auto local = dom0_->BindInterdomain(1, *gport);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_TRUE(Readable(dom0_->fd()));  // the spurious event of a bind
  EXPECT_EQ(Take(*dom0_), *local);
  EXPECT_FALSE(Readable(dom0_->fd()));
  EXPECT_EQ(Take(*dom0_), std::nullopt);

  // Masked: a notify is held until the unmask.
  ASSERT_TRUE(guest_->Notify(*gport).ok());
  EXPECT_FALSE(Readable(dom0_->fd()));
  ASSERT_TRUE(dom0_->Unmask(*local).ok());
  EXPECT_EQ(Take(*dom0_), *local);
  ASSERT_TRUE(dom0_->Unmask(*local).ok());
  // Several notifies while unmasked fire once (the port masks itself).
  ASSERT_TRUE(guest_->Notify(*gport).ok());
  ASSERT_TRUE(guest_->Notify(*gport).ok());
  EXPECT_EQ(Take(*dom0_), *local);
  EXPECT_EQ(Take(*dom0_), std::nullopt);

  // The other way.
  ASSERT_TRUE(dom0_->Notify(*local).ok());
  EXPECT_TRUE(Readable(guest_->fd()));
  EXPECT_EQ(Take(*guest_), *gport);
}

TEST_F(FakeHypervisorTest, BindNeedsAnUnboundPortEarmarkedForUs) {
  auto gport = guest_->AllocUnbound(7);  // for someone else
  ASSERT_TRUE(gport.ok());
  EXPECT_EQ(dom0_->BindInterdomain(1, *gport).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dom0_->BindInterdomain(1, 99).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dom0_->BindInterdomain(42, 1).status().code(), absl::StatusCode::kNotFound);
  auto ours = guest_->AllocUnbound(0);
  ASSERT_TRUE(dom0_->BindInterdomain(1, *ours).ok());
  EXPECT_EQ(dom0_->BindInterdomain(1, *ours).status().code(),
            absl::StatusCode::kInvalidArgument);  // already bound
  EXPECT_EQ(dom0_->Notify(77).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dom0_->Unmask(77).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dom0_->Unbind(77).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FakeHypervisorTest, ClosingRevertsThePeerToUnboundSoARestartedBackendRebinds) {
  auto gport = guest_->AllocUnbound(0);
  auto local = dom0_->BindInterdomain(1, *gport);
  ASSERT_TRUE(local.ok());
  ASSERT_TRUE(dom0_->Unbind(*local).ok());
  EXPECT_FALSE(Readable(dom0_->fd()));  // its queued event went with it
  EXPECT_FALSE(hv_->Port(1, *gport).interdomain);
  EXPECT_EQ(hv_->Port(1, *gport).remote_domid, 0u);
  ASSERT_TRUE(guest_->Notify(*gport).ok());  // dropped silently, as Xen does

  ASSERT_TRUE(dom0_->BindInterdomain(1, *gport).ok());
  dom0_.reset();  // the backend process exits
  EXPECT_FALSE(hv_->Port(1, *gport).interdomain);
  auto restarted = Open(0);
  EXPECT_TRUE(restarted->BindInterdomain(1, *gport).ok());
  EXPECT_NE(trace_->Find("evtchn close 0:1"), -1);
}

TEST_F(FakeHypervisorTest, GrantsAreMappedOnlyByTheirGranteeAndShareTheBytes) {
  auto page = std::shared_ptr<FakePage>(new FakePage());
  auto ref = hv_->GrantPage(1, 0, /*readonly=*/false, page);
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(*ref, FakeHypervisor::kFirstGrantRef);
  auto ro = hv_->GrantPage(1, 0, /*readonly=*/true, page);
  ASSERT_TRUE(ro.ok());
  EXPECT_NE(*ro, *ref);
  FakeGrantTables dom0(hv_, 0);
  FakeGrantTables other(hv_, 2);
  EXPECT_EQ(other.Map(1, *ref, true).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(dom0.Map(1, *ro, true).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(dom0.Map(1, *ro, false).ok());
  EXPECT_EQ(dom0.Map(1, 999, true).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dom0.Map(9, *ref, true).status().code(), absl::StatusCode::kNotFound);

  auto mapping = dom0.Map(1, *ref, true);
  ASSERT_TRUE(mapping.ok()) << mapping.status();
  std::memcpy((*mapping)->data(), "hello", 5);
  EXPECT_EQ(std::memcmp(page->bytes, "hello", 5), 0);
  EXPECT_EQ(hv_->MapCount(1, *ref), 1u);
  EXPECT_EQ(hv_->EndAccess(1, *ref).code(), absl::StatusCode::kFailedPrecondition);
  mapping->reset();
  EXPECT_EQ(hv_->MapCount(1, *ref), 0u);
  EXPECT_TRUE(hv_->EndAccess(1, *ref).ok());
  EXPECT_EQ(dom0.Map(1, *ref, true).status().code(), absl::StatusCode::kInvalidArgument);
  auto again = hv_->GrantPage(1, 0, false, page);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, *ref);  // next-fit: a fresh ref
}

TEST_F(FakeHypervisorTest, DestroyedDomainStaysDyingWhileMappedAndItsHandlesDie) {
  auto page = std::shared_ptr<FakePage>(new FakePage());
  auto ref = hv_->GrantPage(1, 0, false, page);
  auto gport = guest_->AllocUnbound(0);
  auto local = dom0_->BindInterdomain(1, *gport);
  ASSERT_TRUE(local.ok());
  FakeGrantTables dom0(hv_, 0);
  auto mapping = dom0.Map(1, *ref, true);
  ASSERT_TRUE(mapping.ok());
  page.reset();  // the guest's own reference goes with the guest

  ASSERT_TRUE(hv_->DestroyDomain(1).ok());
  EXPECT_TRUE(hv_->Info(1).exists);
  EXPECT_TRUE(hv_->Info(1).dying);
  EXPECT_EQ(hv_->Info(1).mapped_pages_by_others, 1u);
  EXPECT_FALSE(hv_->Port(0, *local).interdomain);  // our end reverts to unbound
  EXPECT_EQ(guest_->Notify(*gport).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(dom0.Map(1, *ref, true).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(hv_->DestroyDomain(1).code(), absl::StatusCode::kNotFound);
  std::memcpy((*mapping)->data(), "still valid", 11);  // memory stays ours
  mapping->reset();
  EXPECT_FALSE(hv_->Info(1).exists);
  EXPECT_NE(trace_->Find("domain gone 1"), -1);
  EXPECT_EQ(hv_->DestroyDomain(0).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FakeHypervisorTest, NotifiesFromAnotherThreadAreNeitherLostNorDuplicatedPerUnmask) {
  auto gport = guest_->AllocUnbound(0);
  auto local = dom0_->BindInterdomain(1, *gport);
  ASSERT_TRUE(local.ok());
  ASSERT_EQ(Take(*dom0_), *local);
  ASSERT_TRUE(dom0_->Unmask(*local).ok());
  std::atomic<bool> stop{false};
  std::thread storm([&] {
    while (!stop.load()) ASSERT_TRUE(guest_->Notify(*gport).ok());
  });
  int taken = 0;
  while (taken < 200) {
    pollfd p{dom0_->fd(), POLLIN, 0};
    ASSERT_GT(poll(&p, 1, 5000), 0);
    auto port = Take(*dom0_);
    if (!port) continue;
    EXPECT_EQ(*port, *local);
    EXPECT_EQ(Take(*dom0_), std::nullopt);  // masked: at most one queued
    ++taken;
    ASSERT_TRUE(dom0_->Unmask(*local).ok());
  }
  stop = true;
  storm.join();
}

}  // namespace
}  // namespace xenchan
