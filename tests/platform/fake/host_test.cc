// FakeHost's domain lifecycle and the scripted FakeConsoleFrontend, played
// against by hand (the test is the backend), before the engine runs on them.
#include "backend/platform/fake/host.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/platform/fake/console_frontend.h"
#include "backend/platform/fake/grant_tables.h"
#include "backend/sim/guest/frontend_ring.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace {

using Fe = FakeConsoleFrontend;

class FakeHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto host = FakeHost::Create();
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = *std::move(host);
  }
  std::string Read(const std::string& path) {
    auto v = host_->xs().Read(kNoTransaction, path);
    return v.ok() ? *v : "<" + std::string(absl::StatusCodeToString(v.status().code())) + ">";
  }
  // What the engine's hot-add writes, reduced to what the frontend reads.
  void WriteDevice(uint32_t domid, const std::string& fe, const std::string& be) {
    XenStore& xs = host_->xs();
    ASSERT_TRUE(xs.Mkdir(kNoTransaction, fe).ok());
    ASSERT_TRUE(xs.SetPermissions(kNoTransaction, fe,
                                  {{domid, XsPermission::kNone}, {0, XsPermission::kRead}})
                    .ok());
    ASSERT_TRUE(xs.Write(kNoTransaction, fe + "/backend", be).ok());
    ASSERT_TRUE(xs.Write(kNoTransaction, fe + "/backend-id", "0").ok());
    ASSERT_TRUE(xs.Write(kNoTransaction, fe + "/state", "1").ok());
    ASSERT_TRUE(xs.Write(kNoTransaction, be + "/state", "2").ok());
    ASSERT_TRUE(xs.SetPermissions(kNoTransaction, be,
                                  {{0, XsPermission::kNone}, {domid, XsPermission::kRead}})
                    .ok());
    ASSERT_TRUE(xs.SetPermissions(kNoTransaction, be + "/state",
                                  {{0, XsPermission::kNone}, {domid, XsPermission::kRead}})
                    .ok());
  }

  std::unique_ptr<FakeHost> host_;
};

TEST_F(FakeHostTest, CreateWritesLibxlShapedEntriesAndIntroduces) {
  ASSERT_TRUE(host_->xs().Watch("@introduceDomain", "intro").ok());
  while (host_->xs().ReadWatch()) {
  }
  auto d = host_->CreateDomain("vm1");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->domid, 1u);
  EXPECT_EQ(Read("/local/domain/1/name"), "vm1");
  EXPECT_EQ(Read(Read("/local/domain/1/vm") + "/uuid"), d->uuid);
  EXPECT_EQ(Read("/local/domain/0/name"), "Domain-0");
  auto ev = host_->xs().ReadWatch();
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->path, "@introduceDomain");
  EXPECT_TRUE(*host_->xs().IsDomainIntroduced(1));
  EXPECT_TRUE(host_->hypervisor().Info(1).exists);
  EXPECT_EQ(host_->CreateDomain("vm1").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(host_->CreateDomain("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(host_->CreateDomain("x", "not-a-uuid").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto guest = host_->OpenXenStore(1);
  ASSERT_TRUE(guest.ok());
  EXPECT_EQ((*guest)->Write(kNoTransaction, "/local/domain/1/name", "evil").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE((*guest)->Write(kNoTransaction, "/local/domain/1/data/x", "ok").ok());
}

TEST_F(FakeHostTest, FrontendProbesMovesBytesFollowsTheBackendAndGoesWithItsDirectory) {
  auto d = host_->CreateDomain("vm1");
  ASSERT_TRUE(d.ok());
  const std::string fe = "/local/domain/1/device/console/1";
  const std::string be = "/local/domain/0/backend/test/1/1";
  WriteDevice(1, fe, be);
  auto front = Fe::Create(*host_, 1, 1);
  ASSERT_TRUE(front.ok()) << front.status();
  Fe& f = **front;
  ASSERT_TRUE(f.Probe().ok());
  EXPECT_EQ(Read(fe + "/state"), "3");
  EXPECT_EQ(Read(fe + "/ring-ref"), absl::StrCat(f.ring_ref()));
  EXPECT_EQ(Read(fe + "/port"), absl::StrCat(f.port()));

  // The test plays the backend: map, bind, connect.
  FakeGrantTables gnttab(host_->shared_hypervisor(), 0);
  auto mapping = gnttab.Map(1, f.ring_ref(), true);
  ASSERT_TRUE(mapping.ok()) << mapping.status();
  auto evtchn = host_->OpenEventChannels(0);
  ASSERT_TRUE(evtchn.ok());
  auto local = (*evtchn)->BindInterdomain(1, f.port());
  ASSERT_TRUE(local.ok()) << local.status();
  ASSERT_TRUE(host_->xs().Write(kNoTransaction, be + "/state", "4").ok());
  ASSERT_TRUE(f.FollowUntil(Fe::kConnected).ok());
  EXPECT_EQ(Read(fe + "/state"), "4");

  // Guest -> backend through the out ring, backend -> guest through in.
  auto* intf = static_cast<xencons_interface*>((*mapping)->data());
  ASSERT_EQ(*f.Write("ping"), 4u);
  EXPECT_EQ(intf->out_prod - intf->out_cons, 4u);
  EXPECT_EQ(std::string(intf->out, 4), "ping");
  std::memcpy(intf->in, "pong", 4);
  intf->in_prod = 4;
  ASSERT_TRUE((*evtchn)->Notify(*local).ok());
  EXPECT_EQ(f.ReadExactly(4, absl::Seconds(5)), "pong");
  EXPECT_EQ(intf->in_cons, 4u);
  // Scribbled indices are refused by the guest half as by hvc_xen.
  f.ring()->out_prod = f.ring()->out_cons + 5000;
  EXPECT_EQ(f.Write("x").status().code(), absl::StatusCode::kInvalidArgument);
  f.ring()->out_prod = f.ring()->out_cons;

  // Backend Closing: the frontend closes and keeps its grant and port.
  ASSERT_TRUE(host_->xs().Write(kNoTransaction, be + "/state", "5").ok());
  f.Follow();
  EXPECT_EQ(Read(fe + "/state"), "6");
  EXPECT_TRUE(host_->hypervisor().Port(1, f.port()).interdomain);
  mapping->reset();
  ASSERT_TRUE((*evtchn)->Unbind(*local).ok());
  ASSERT_TRUE(host_->xs().Remove(kNoTransaction, fe).ok());
  f.Follow();
  EXPECT_TRUE(f.removed());
  EXPECT_FALSE(host_->hypervisor().Port(1, f.port()).exists);
}

TEST_F(FakeHostTest, DestroyRemovesTheDomainAndLeavesItDyingWhileMapped) {
  auto d = host_->CreateDomain("vm1");
  ASSERT_TRUE(d.ok());
  const std::string fe = "/local/domain/1/device/console/1";
  WriteDevice(1, fe, "/local/domain/0/backend/test/1/1");
  auto front = Fe::Create(*host_, 1, 1);
  ASSERT_TRUE(front.ok());
  ASSERT_TRUE((*front)->Probe().ok());
  FakeGrantTables gnttab(host_->shared_hypervisor(), 0);
  auto mapping = gnttab.Map(1, (*front)->ring_ref(), true);
  ASSERT_TRUE(mapping.ok());
  ASSERT_TRUE(host_->xs().Watch("@releaseDomain", "rel").ok());
  while (host_->xs().ReadWatch()) {
  }

  ASSERT_TRUE(host_->DestroyDomain(1).ok());
  EXPECT_EQ(Read("/local/domain/1"), "<NOT_FOUND>");
  EXPECT_EQ(Read("/vm/" + d->uuid), "<NOT_FOUND>");
  EXPECT_FALSE(*host_->xs().IsDomainIntroduced(1));
  auto ev = host_->xs().ReadWatch();
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->path, "@releaseDomain");
  EXPECT_TRUE(host_->hypervisor().Info(1).dying);
  EXPECT_EQ((*front)->xs().Read(kNoTransaction, fe).status().code(),
            absl::StatusCode::kUnavailable);
  mapping->reset();
  EXPECT_FALSE(host_->hypervisor().Info(1).exists);
  EXPECT_EQ(host_->DestroyDomain(1).code(), absl::StatusCode::kNotFound);
  // Domids are not reused.
  auto d2 = host_->CreateDomain("vm1");
  ASSERT_TRUE(d2.ok());
  EXPECT_EQ(d2->domid, 2u);
}

}  // namespace
}  // namespace xenchan
