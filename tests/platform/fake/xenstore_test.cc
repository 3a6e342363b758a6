// FakeXenStore over FakeXenStoreHub: the XenStore contract (status codes,
// watches through a level-triggered fd that never blocks, transactions,
// perms between dom0 and a guest, release), checked without sockets.
#include "backend/platform/fake/xenstore.h"

#include <poll.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend/platform/fake/trace.h"
#include "backend/platform/fake/xenstore_hub.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace {

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

class FakeXenStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hub_ = std::make_shared<FakeXenStoreHub>(trace_);
    dom0_ = Open(0);
  }
  std::unique_ptr<FakeXenStore> Open(uint32_t domid) {
    auto xs = FakeXenStore::Connect(hub_, domid, domid == 0);
    EXPECT_TRUE(xs.ok()) << xs.status();
    return xs.ok() ? *std::move(xs) : nullptr;
  }
  std::vector<std::string> Drain(FakeXenStore& xs) {
    std::vector<std::string> paths;
    while (auto ev = xs.ReadWatch()) paths.push_back(ev->path + "|" + ev->token);
    return paths;
  }

  std::shared_ptr<FakeTrace> trace_ = std::make_shared<FakeTrace>();
  std::shared_ptr<FakeXenStoreHub> hub_;
  std::unique_ptr<FakeXenStore> dom0_;
};

TEST_F(FakeXenStoreTest, ReadWriteDirectoryRemoveWithXenstoredStatusCodes) {
  ASSERT_TRUE(dom0_->Write(kNoTransaction, "/a/b/c", std::string("x\0y", 3)).ok());
  EXPECT_EQ(*dom0_->Read(kNoTransaction, "/a/b/c"), std::string("x\0y", 3));
  EXPECT_EQ(*dom0_->Read(kNoTransaction, "/a/b"), "");  // parents made empty
  ASSERT_TRUE(dom0_->Mkdir(kNoTransaction, "/a/d").ok());
  EXPECT_EQ(*dom0_->Directory(kNoTransaction, "/a"), (std::vector<std::string>{"b", "d"}));
  EXPECT_EQ(dom0_->Read(kNoTransaction, "/nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(dom0_->Read(kNoTransaction, "bad//path").status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(dom0_->Remove(kNoTransaction, "/a").ok());
  EXPECT_EQ(dom0_->Read(kNoTransaction, "/a/b/c").status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(trace_->Find("xs 0 write /a/b/c " + std::string("x\0y", 3)), -1);
  EXPECT_GT(trace_->Find("xs 0 rm /a"), trace_->Find("xs 0 mkdir /a/d"));
}

TEST_F(FakeXenStoreTest, WatchFiresAtOnceThenOnChangesAndTheFdIsLevelTriggered) {
  EXPECT_FALSE(Readable(dom0_->WatchFd()));
  EXPECT_FALSE(dom0_->ReadWatch().has_value());  // never blocks
  ASSERT_TRUE(dom0_->Watch("/w", "tok").ok());
  EXPECT_TRUE(Readable(dom0_->WatchFd()));
  EXPECT_EQ(Drain(*dom0_), (std::vector<std::string>{"/w|tok"}));
  EXPECT_FALSE(Readable(dom0_->WatchFd()));
  ASSERT_TRUE(dom0_->Write(kNoTransaction, "/w/x", "1").ok());
  ASSERT_TRUE(dom0_->Write(kNoTransaction, "/other", "1").ok());
  ASSERT_TRUE(dom0_->Write(kNoTransaction, "/w/y", "1").ok());
  EXPECT_TRUE(Readable(dom0_->WatchFd()));
  ASSERT_TRUE(dom0_->ReadWatch().has_value());
  EXPECT_TRUE(Readable(dom0_->WatchFd()));  // one event still queued
  EXPECT_EQ(Drain(*dom0_), (std::vector<std::string>{"/w/y|tok"}));
  EXPECT_FALSE(Readable(dom0_->WatchFd()));
  ASSERT_TRUE(dom0_->Unwatch("/w", "tok").ok());
  ASSERT_TRUE(dom0_->Write(kNoTransaction, "/w/z", "1").ok());
  EXPECT_TRUE(Drain(*dom0_).empty());
  EXPECT_EQ(dom0_->Unwatch("/w", "tok").code(), absl::StatusCode::kNotFound);
}

TEST_F(FakeXenStoreTest, ConflictingTransactionIsAbortedAndAppliesNothing) {
  ASSERT_TRUE(dom0_->Write(kNoTransaction, "/t", "0").ok());
  auto other = Open(0);
  auto t = dom0_->StartTransaction();
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*dom0_->Read(*t, "/t"), "0");
  ASSERT_TRUE(dom0_->Write(*t, "/t2", "in tx").ok());
  EXPECT_EQ(other->Read(kNoTransaction, "/t2").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(other->Write(kNoTransaction, "/t", "1").ok());
  EXPECT_EQ(dom0_->EndTransaction(*t, true).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(dom0_->Read(kNoTransaction, "/t2").status().code(), absl::StatusCode::kNotFound);

  auto t2 = dom0_->StartTransaction();
  ASSERT_TRUE(t2.ok());
  ASSERT_TRUE(dom0_->Write(*t2, "/t2", "ok").ok());
  ASSERT_TRUE(dom0_->EndTransaction(*t2, true).ok());
  EXPECT_EQ(*other->Read(kNoTransaction, "/t2"), "ok");
  EXPECT_NE(trace_->Find("xs 0 commit"), -1);
}

TEST_F(FakeXenStoreTest, GuestIsHeldToPermissionsAndLosesItsConnectionOnRelease) {
  ASSERT_TRUE(dom0_->IntroduceDomain(5).ok());
  EXPECT_TRUE(*dom0_->IsDomainIntroduced(5));
  auto guest = Open(5);
  ASSERT_TRUE(dom0_->Write(kNoTransaction, "/local/domain/5/ro", "v").ok());
  const std::vector<XsPermission> ro = {{0, XsPermission::kNone}, {5, XsPermission::kRead}};
  ASSERT_TRUE(dom0_->SetPermissions(kNoTransaction, "/local/domain/5/ro", ro).ok());
  EXPECT_EQ(*dom0_->GetPermissions(kNoTransaction, "/local/domain/5/ro"), ro);
  EXPECT_EQ(*guest->Read(kNoTransaction, "/local/domain/5/ro"), "v");
  EXPECT_EQ(*guest->Read(kNoTransaction, "ro"), "v");  // relative to its home
  EXPECT_EQ(guest->Write(kNoTransaction, "/local/domain/5/ro", "x").code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(dom0_->Write(kNoTransaction, "/secret", "s").ok());
  ASSERT_TRUE(dom0_->SetPermissions(kNoTransaction, "/secret", {{0, XsPermission::kNone}}).ok());
  EXPECT_EQ(guest->Read(kNoTransaction, "/secret").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(guest->IntroduceDomain(6).code(), absl::StatusCode::kPermissionDenied);

  ASSERT_TRUE(dom0_->Watch("@releaseDomain", "rel").ok());
  Drain(*dom0_);
  ASSERT_TRUE(dom0_->ReleaseDomain(5).ok());
  EXPECT_EQ(Drain(*dom0_), (std::vector<std::string>{"@releaseDomain|rel"}));
  EXPECT_FALSE(*dom0_->IsDomainIntroduced(5));
  EXPECT_EQ(guest->Read(kNoTransaction, "ro").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(guest->Watch("/x", "t").code(), absl::StatusCode::kUnavailable);
}

TEST_F(FakeXenStoreTest, CallsFromManyThreadsAreSerialised) {
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([this, i] {
      auto xs = Open(0);
      for (int j = 0; j < 200; ++j) {
        ASSERT_TRUE(xs->Write(kNoTransaction, "/n/" + std::to_string(i * 1000 + j), "v").ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(dom0_->Directory(kNoTransaction, "/n")->size(), 800u);
}

}  // namespace
}  // namespace xenchan
