// RunInTransaction against the in-memory xenstored (backend/platform/fake):
// a conflicting commit runs the transaction again, a failing body aborts it,
// a body returning DiscardTransaction() aborts it on purpose and succeeds,
// and a transaction that always conflicts gives up after max_attempts.
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "backend/platform/fake/trace.h"
#include "backend/platform/fake/xenstore.h"
#include "backend/platform/fake/xenstore_hub.h"
#include "backend/platform/xenstore.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace {

class RunInTransactionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hub_ = std::make_shared<FakeXenStoreHub>(std::make_shared<FakeTrace>());
    xs_ = Open();
    other_ = Open();
    ASSERT_TRUE(xs_->Write(kNoTransaction, "/counter", "0").ok());
  }
  std::unique_ptr<FakeXenStore> Open() {
    auto xs = FakeXenStore::Connect(hub_, 0, /*privileged=*/true);
    EXPECT_TRUE(xs.ok()) << xs.status();
    return xs.ok() ? *std::move(xs) : nullptr;
  }
  std::string Value(const std::string& path) {
    absl::StatusOr<std::string> v = xs_->Read(kNoTransaction, path);
    return v.ok() ? *v : v.status().ToString();
  }

  // Increments /counter in `t`; while `conflicts` is positive, another
  // connection first adds 10 to /counter on its own, so the commit conflicts.
  absl::Status Increment(XsTransaction t, int* conflicts) {
    absl::StatusOr<std::string> v = xs_->Read(t, "/counter");
    if (!v.ok()) return v.status();
    const int value = std::stoi(*v);
    if (*conflicts > 0) {
      --*conflicts;
      const std::string other = std::to_string(value + 10);
      if (absl::Status s = other_->Write(kNoTransaction, "/counter", other); !s.ok()) return s;
    }
    return xs_->Write(t, "/counter", std::to_string(value + 1));
  }

  std::shared_ptr<FakeXenStoreHub> hub_;
  std::unique_ptr<FakeXenStore> xs_;
  std::unique_ptr<FakeXenStore> other_;
};

TEST_F(RunInTransactionTest, CommitsAtOnceWithoutConflict) {
  int runs = 0;
  int conflicts = 0;
  EXPECT_TRUE(RunInTransaction(
                  *xs_,
                  [&](XsTransaction t) {
                    ++runs;
                    return Increment(t, &conflicts);
                  },
                  5)
                  .ok());
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(Value("/counter"), "1");
}

TEST_F(RunInTransactionTest, ConflictRunsTheWholeTransactionAgain) {
  int runs = 0;
  int conflicts = 2;
  EXPECT_TRUE(RunInTransaction(
                  *xs_,
                  [&](XsTransaction t) {
                    ++runs;
                    return Increment(t, &conflicts);
                  },
                  5)
                  .ok());
  EXPECT_EQ(runs, 3);
  // The third run read what the other connection wrote second (20).
  EXPECT_EQ(Value("/counter"), "21");
}

TEST_F(RunInTransactionTest, GivesUpAfterMaxAttemptsWithNothingApplied) {
  int runs = 0;
  int conflicts = 1000;
  const absl::Status s = RunInTransaction(
      *xs_,
      [&](XsTransaction t) {
        ++runs;
        return Increment(t, &conflicts);
      },
      4);
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_EQ(runs, 4);
  // Only the other connection's four writes landed, none of the increments.
  EXPECT_EQ(Value("/counter"), "40");
}

TEST_F(RunInTransactionTest, FailingBodyAbortsAndItsStatusIsReturned) {
  int runs = 0;
  const absl::Status s = RunInTransaction(
      *xs_,
      [&](XsTransaction t) {
        ++runs;
        EXPECT_TRUE(xs_->Write(t, "/half", "written").ok());
        return absl::FailedPreconditionError("body gave up");
      },
      5);
  EXPECT_EQ(s, absl::FailedPreconditionError("body gave up"));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(xs_->Read(kNoTransaction, "/half").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RunInTransactionTest, DiscardAbortsOnPurposeAndReturnsOk) {
  int runs = 0;
  const absl::Status s = RunInTransaction(
      *xs_,
      [&](XsTransaction t) {
        ++runs;
        EXPECT_TRUE(xs_->Write(t, "/half", "written").ok());
        EXPECT_TRUE(xs_->Write(t, "/counter", "5").ok());
        return DiscardTransaction();
      },
      5);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(xs_->Read(kNoTransaction, "/half").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Value("/counter"), "0");
}

TEST_F(RunInTransactionTest, DiscardIsNotRunAgainWhenTheStoreChangedMeanwhile) {
  int runs = 0;
  int conflicts = 1;
  const absl::Status s = RunInTransaction(
      *xs_,
      [&](XsTransaction t) {
        ++runs;
        if (absl::Status inc = Increment(t, &conflicts); !inc.ok()) return inc;
        return DiscardTransaction();
      },
      5);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(runs, 1);
  // Only the other connection's write landed.
  EXPECT_EQ(Value("/counter"), "10");
}

TEST_F(RunInTransactionTest, AnyOtherCancelledIsAFailure) {
  const absl::Status s = RunInTransaction(
      *xs_, [&](XsTransaction) { return absl::CancelledError("caller went away"); }, 5);
  EXPECT_EQ(s, absl::CancelledError("caller went away"));
}

TEST_F(RunInTransactionTest, BodyErrorFromXenstoreIsNotRetried) {
  int runs = 0;
  const absl::Status s = RunInTransaction(
      *xs_,
      [&](XsTransaction t) {
        ++runs;
        return xs_->Read(t, "/missing").status();
      },
      5);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_EQ(runs, 1);
}

TEST_F(RunInTransactionTest, AtLeastOneAttempt) {
  int runs = 0;
  int conflicts = 0;
  EXPECT_TRUE(RunInTransaction(
                  *xs_,
                  [&](XsTransaction t) {
                    ++runs;
                    return Increment(t, &conflicts);
                  },
                  0)
                  .ok());
  EXPECT_EQ(runs, 1);
}

TEST_F(RunInTransactionTest, StartFailureIsReturnedAndBodyNeverRuns) {
  // A guest connection answers UNAVAILABLE once its domain is released.
  ASSERT_TRUE(xs_->IntroduceDomain(7).ok());
  auto guest = FakeXenStore::Connect(hub_, 7, /*privileged=*/false);
  ASSERT_TRUE(guest.ok()) << guest.status();
  ASSERT_TRUE(xs_->ReleaseDomain(7).ok());
  int runs = 0;
  const absl::Status s = RunInTransaction(
      **guest,
      [&](XsTransaction) {
        ++runs;
        return absl::OkStatus();
      },
      5);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(runs, 0);
}

}  // namespace
}  // namespace xenchan
