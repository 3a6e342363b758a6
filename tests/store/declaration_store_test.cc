// DeclarationStore's contract on a healthy file: round trips, replacement,
// compare-and-set updates and deletes, generations that are never reused,
// listings, persistence across a reopen, concurrent callers, and the
// exclusive hold (a second opener, in this process or another, is refused).
#include "backend/store/declaration_store.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/store/store_test_util.h"

namespace xenchan {
namespace {

using storetest::DomainUuid;
using storetest::SampleDeclaration;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The declaration as the store returns it after Put returned `generation`.
ChannelDeclaration Stored(ChannelDeclaration d, int64_t generation) {
  d.generation = generation;
  return d;
}

class DeclarationStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = storetest::NewStorePath("declaration_store");
    ASSERT_FALSE(path_.empty());
    Reopen();
  }

  void Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<DeclarationStore>> opened = DeclarationStore::Open(path_);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
  }

  int64_t MustPut(const ChannelDeclaration& d) {
    absl::StatusOr<int64_t> generation = store_->Put(d);
    EXPECT_TRUE(generation.ok()) << generation.status();
    return generation.value_or(0);
  }

  std::string path_;
  std::unique_ptr<DeclarationStore> store_;
};

TEST_F(DeclarationStoreTest, PutThenGetRoundTrips) {
  const ChannelDeclaration d = SampleDeclaration(1, "org.xenchan.agent.0", 1);
  const int64_t generation = MustPut(d);
  EXPECT_GT(generation, 0);
  absl::StatusOr<ChannelDeclaration> got = store_->Get(d.domain_uuid, d.channel_id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Stored(d, generation));
}

TEST_F(DeclarationStoreTest, UuidsAreKeptInLowerCase) {
  ChannelDeclaration d = SampleDeclaration(1, "a");
  const ChannelDeclaration lower = d;
  d.domain_uuid = absl::AsciiStrToUpper(d.domain_uuid);
  d.uid = absl::AsciiStrToUpper(d.uid);
  const int64_t generation = MustPut(d);
  absl::StatusOr<ChannelDeclaration> got = store_->Get(d.domain_uuid, "a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Stored(lower, generation));
}

TEST_F(DeclarationStoreTest, InvalidDeclarationsAreRefusedAndNotStored) {
  ChannelDeclaration d = SampleDeclaration(1, "a");
  d.config.buffer_limit_bytes = 1;
  EXPECT_EQ(store_->Put(d).status().code(), absl::StatusCode::kInvalidArgument);
  d = SampleDeclaration(1, "a/b");
  EXPECT_EQ(store_->Put(d).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Get(DomainUuid(1), "x/y").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Get("nope", "a").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListForDomain("nope").status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::vector<ChannelDeclaration>> all = store_->ListAll();
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST_F(DeclarationStoreTest, PutReplacesWithANewerGeneration) {
  const int64_t first = MustPut(SampleDeclaration(1, "a", 0));
  const ChannelDeclaration replacement = SampleDeclaration(1, "a", 3);
  const int64_t second = MustPut(replacement);
  EXPECT_GT(second, first);
  EXPECT_EQ(store_->Get(DomainUuid(1), "a").value(), Stored(replacement, second));
}

TEST_F(DeclarationStoreTest, AUidBelongsToOneDeclaration) {
  const ChannelDeclaration a = SampleDeclaration(1, "a");
  const int64_t generation = MustPut(a);
  ChannelDeclaration b = SampleDeclaration(1, "b");
  b.uid = a.uid;
  absl::StatusOr<int64_t> refused = store_->Put(b);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(refused.status().message(), HasSubstr(a.uid));
  EXPECT_EQ(store_->Get(DomainUuid(1), "b").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Get(DomainUuid(1), "a").value(), Stored(a, generation));
}

TEST_F(DeclarationStoreTest, UpdateIsACompareAndSet) {
  const ChannelDeclaration d = SampleDeclaration(1, "a", 0);
  const int64_t first = MustPut(d);
  DeclarationUpdate update;
  update.config = SampleDeclaration(1, "a", 5).config;
  update.last_devid = 9;
  absl::StatusOr<int64_t> second = store_->Update(d.domain_uuid, "a", first, update);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_GT(*second, first);
  ChannelDeclaration want = Stored(d, *second);
  want.config = *update.config;
  want.last_devid = 9;
  EXPECT_EQ(store_->Get(d.domain_uuid, "a").value(), want);

  // A writer still holding the first generation is refused and changes nothing.
  DeclarationUpdate stale;
  stale.last_devid = 2;
  absl::StatusOr<int64_t> refused = store_->Update(d.domain_uuid, "a", first, stale);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(refused.status().message(),
              HasSubstr(absl::StrCat("its generation is ", *second, ", not ", first)));
  EXPECT_EQ(store_->Get(d.domain_uuid, "a").value(), want);
}

TEST_F(DeclarationStoreTest, UpdateRefusals) {
  const ChannelDeclaration d = SampleDeclaration(1, "a");
  const int64_t generation = MustPut(d);
  DeclarationUpdate update;
  EXPECT_EQ(store_->Update(d.domain_uuid, "a", generation, update).status().code(),
            absl::StatusCode::kInvalidArgument);  // nothing to change
  update.last_devid = 3;
  EXPECT_EQ(store_->Update(d.domain_uuid, "missing", generation, update).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Update(DomainUuid(2), "a", generation, update).status().code(),
            absl::StatusCode::kNotFound);
  update.last_devid = 0;
  EXPECT_EQ(store_->Update(d.domain_uuid, "a", generation, update).status().code(),
            absl::StatusCode::kInvalidArgument);
  update.last_devid.reset();
  update.config = d.config;
  update.config->default_framing = "bogus";
  EXPECT_EQ(store_->Update(d.domain_uuid, "a", generation, update).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Get(d.domain_uuid, "a").value(), Stored(d, generation));
}

TEST_F(DeclarationStoreTest, DeleteWithAndWithoutAGeneration) {
  const ChannelDeclaration a = SampleDeclaration(1, "a");
  const ChannelDeclaration b = SampleDeclaration(1, "b");
  const int64_t generation_a = MustPut(a);
  const int64_t generation_b = MustPut(b);
  EXPECT_EQ(store_->Delete(a.domain_uuid, "a", generation_a - 1).code(),
            absl::StatusCode::kAborted);
  EXPECT_TRUE(store_->Delete(a.domain_uuid, "a", generation_a).ok());
  EXPECT_EQ(store_->Get(a.domain_uuid, "a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Delete(a.domain_uuid, "a").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Get(b.domain_uuid, "b").value().generation, generation_b);
  EXPECT_TRUE(store_->Delete(b.domain_uuid, "b").ok());
  EXPECT_EQ(store_->Get(b.domain_uuid, "b").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Delete("bad", "b").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DeclarationStoreTest, GenerationsAreNeverReused) {
  const ChannelDeclaration d = SampleDeclaration(1, "a");
  const int64_t old_generation = MustPut(d);
  ASSERT_TRUE(store_->Delete(d.domain_uuid, "a").ok());
  const int64_t new_generation = MustPut(d);
  EXPECT_GT(new_generation, old_generation);
  // A writer that read the deleted declaration cannot update its successor.
  DeclarationUpdate update;
  update.last_devid = 4;
  EXPECT_EQ(store_->Update(d.domain_uuid, "a", old_generation, update).status().code(),
            absl::StatusCode::kAborted);
  // Nor after a reopen: the counter is on disk.
  Reopen();
  EXPECT_GT(MustPut(SampleDeclaration(2, "b")), new_generation);
}

TEST_F(DeclarationStoreTest, ListsAreOrderedByDomainAndChannel) {
  MustPut(SampleDeclaration(2, "zeta"));
  MustPut(SampleDeclaration(1, "beta"));
  MustPut(SampleDeclaration(2, "alpha"));
  MustPut(SampleDeclaration(1, "alpha"));
  absl::StatusOr<std::vector<ChannelDeclaration>> two = store_->ListForDomain(DomainUuid(2));
  ASSERT_TRUE(two.ok()) << two.status();
  std::vector<std::string> ids;
  for (const ChannelDeclaration& d : *two) ids.push_back(d.channel_id);
  EXPECT_THAT(ids, ElementsAre("alpha", "zeta"));
  EXPECT_TRUE(store_->ListForDomain(DomainUuid(3)).value().empty());

  absl::StatusOr<std::vector<ChannelDeclaration>> all = store_->ListAll();
  ASSERT_TRUE(all.ok()) << all.status();
  std::vector<std::string> keys;
  for (const ChannelDeclaration& d : *all) keys.push_back(d.domain_uuid + "/" + d.channel_id);
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(keys, sorted);
  EXPECT_EQ(keys.size(), 4u);
}

TEST_F(DeclarationStoreTest, EverythingSurvivesAReopen) {
  MustPut(SampleDeclaration(1, "a", 1));
  const int64_t b = MustPut(SampleDeclaration(1, "b", 2));
  MustPut(SampleDeclaration(2, "c", 3));
  DeclarationUpdate update;
  update.last_devid = 7;
  ASSERT_TRUE(store_->Update(DomainUuid(1), "b", b, update).ok());
  ASSERT_TRUE(store_->Delete(DomainUuid(2), "c").ok());
  const std::vector<ChannelDeclaration> before = store_->ListAll().value();
  ASSERT_EQ(before.size(), 2u);
  Reopen();
  EXPECT_EQ(store_->ListAll().value(), before);
}

TEST_F(DeclarationStoreTest, ConcurrentCallersEachGetTheirOwnGeneration) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10;
  std::vector<std::vector<int64_t>> generations(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        absl::StatusOr<int64_t> g = store_->Put(SampleDeclaration(t, absl::StrCat("c", i % 3), i));
        if (g.ok()) generations[t].push_back(*g);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<int64_t> all;
  for (const std::vector<int64_t>& mine : generations) {
    EXPECT_EQ(mine.size(), static_cast<size_t>(kPerThread));
    all.insert(mine.begin(), mine.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(store_->ListAll().value().size(), static_cast<size_t>(kThreads * 3));
}

TEST_F(DeclarationStoreTest, ASecondOpenerInThisProcessIsRefused) {
  absl::StatusOr<std::unique_ptr<DeclarationStore>> second = DeclarationStore::Open(path_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr(path_));
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat("in use by another process (pid ", getpid(), ")")));
  store_.reset();
  EXPECT_TRUE(DeclarationStore::Open(path_).ok());
}

TEST_F(DeclarationStoreTest, AnotherProcessHoldingTheStoreIsRefusedUntilItExits) {
  const int64_t generation = MustPut(SampleDeclaration(1, "a"));
  store_.reset();
  int to_child[2];
  int from_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(from_child), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Open, say so, and hold the store until the parent writes (or goes).
    close(to_child[1]);
    close(from_child[0]);
    absl::StatusOr<std::unique_ptr<DeclarationStore>> held = DeclarationStore::Open(path_);
    const char ready = held.ok() ? 'y' : 'n';
    if (write(from_child[1], &ready, 1) != 1) _exit(2);
    char go;
    (void)!read(to_child[0], &go, 1);
    _exit(held.ok() ? 0 : 1);
  }
  close(to_child[0]);
  close(from_child[1]);
  char ready = 0;
  ASSERT_EQ(read(from_child[0], &ready, 1), 1);
  ASSERT_EQ(ready, 'y');

  absl::StatusOr<std::unique_ptr<DeclarationStore>> refused = DeclarationStore::Open(path_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr(absl::StrCat("(pid ", child, ")")));

  ASSERT_EQ(write(to_child[1], "x", 1), 1);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
  close(to_child[1]);
  close(from_child[0]);
  Reopen();
  EXPECT_EQ(store_->Get(DomainUuid(1), "a").value().generation, generation);
}

TEST_F(DeclarationStoreTest, ARowDamagedWhileOpenFailsTheReadThatMeetsIt) {
  MustPut(SampleDeclaration(1, "good"));
  MustPut(SampleDeclaration(1, "bad"));
  ASSERT_TRUE(storetest::RawExec(path_,
                                 "UPDATE declarations SET overflow_policy = 'SOMETIMES' "
                                 "WHERE channel_id = 'bad'")
                  .ok());
  EXPECT_TRUE(store_->Get(DomainUuid(1), "good").ok());
  absl::StatusOr<ChannelDeclaration> bad = store_->Get(DomainUuid(1), "bad");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(bad.status().message(), HasSubstr("channel 'bad'"));
  EXPECT_THAT(bad.status().message(), HasSubstr("overflow_policy"));
  EXPECT_EQ(store_->ListAll().status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(store_->Delete(DomainUuid(1), "bad").code(), absl::StatusCode::kDataLoss);
}

TEST(DeclarationStoreOpenTest, MakesTheStateDirectory) {
  const std::string path = storetest::NewStorePath("mkdir");
  absl::StatusOr<std::unique_ptr<DeclarationStore>> store = DeclarationStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(access(path.c_str(), F_OK), 0);
  EXPECT_EQ(access((path + ".lock").c_str(), F_OK), 0);
  EXPECT_EQ(DeclarationStore::Open("").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace xenchan
