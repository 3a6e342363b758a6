// Tests of PolicyStore (load, refused reloads keep the old policy, counters,
// readers across reloads) and PolicyWatcher (in-place edits, rename into
// place, symlink swaps, unrelated files, SIGHUP-style requests).
#include "server/policy/policy_store.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/util/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"

namespace xenchan {
namespace server {
namespace policy {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(30);

const char kReadOnly[] = "[identity cn:a]\nallow verbs=read domain=* channel=*\n";
const char kReadWrite[] = "[identity cn:a]\nallow verbs=read,write domain=* channel=*\n";
const char kBad[] = "[identity cn:a]\nallow verbs=read,wrte domain=* channel=*\n";

const Identity& A() {
  static const Identity* id = new Identity(Identity::FromCertificate({}, {}, "a"));
  return *id;
}
const DomainRef kDom = {"", "d"};

std::string TempDir() {
  const std::string dir = testcommon::MakeTempDir("policy");
  if (dir.empty()) std::abort();
  return dir;
}

// Writes `text` to `path` in place (truncate, write, close).
void WriteInPlace(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ASSERT_EQ(close(fd), 0);
}

// Writes `text` to a temporary file and renames it onto `path`, as editors
// and configuration management tools do.
void WriteAndRename(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  WriteInPlace(tmp, text);
  ASSERT_EQ(rename(tmp.c_str(), path.c_str()), 0);
}

std::unique_ptr<PolicyStore> MustCreate(const std::string& path) {
  PolicyStore::Options options;
  options.path = path;
  absl::StatusOr<std::unique_ptr<PolicyStore>> store = PolicyStore::Create(options);
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) std::abort();
  return *std::move(store);
}

TEST(PolicyStoreTest, LoadsAtCreate) {
  const std::string path = TempDir() + "/policy.conf";
  WriteInPlace(path, kReadOnly);
  std::unique_ptr<PolicyStore> store = MustCreate(path);
  ASSERT_NE(store->Current(), nullptr);
  EXPECT_TRUE(store->Current()->Allows(A(), kDom, "c", Verb::kRead));
  EXPECT_EQ(store->Current()->source(), path);
  const ReloadStatus status = store->status();
  EXPECT_EQ(status.attempts, 1u);
  EXPECT_EQ(status.loaded, 1u);
  EXPECT_EQ(status.failures, 0u);
  EXPECT_TRUE(status.last_status.ok());
  EXPECT_NE(status.last_loaded, absl::InfinitePast());
}

TEST(PolicyStoreTest, CreateRefusesBadOrMissingFiles) {
  const std::string dir = TempDir();
  PolicyStore::Options options;
  options.path = dir + "/policy.conf";
  WriteInPlace(options.path, kBad);
  absl::StatusOr<std::unique_ptr<PolicyStore>> store = PolicyStore::Create(options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(store.status().message()),
              HasSubstr(absl::StrCat(options.path, ":2:18: unknown verb `wrte`")));

  options.path = dir + "/missing.conf";
  EXPECT_EQ(PolicyStore::Create(options).status().code(), absl::StatusCode::kNotFound);
  options.path = dir;
  EXPECT_EQ(PolicyStore::Create(options).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(PolicyStoreTest, UnopenablePathsGetTheSharedErrnoCodes) {
  const std::string dir = TempDir();
  PolicyStore::Options options;
  // Through a file (ENOTDIR): a policy that is not there.
  options.path = dir + "/file";
  WriteInPlace(options.path, kReadOnly);
  options.path += "/policy.conf";
  absl::Status status = PolicyStore::Create(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat("cannot open policy ", options.path, ": Not a directory")));
  // A name over NAME_MAX (ENAMETOOLONG): a bad path.
  options.path = absl::StrCat(dir, "/", std::string(300, 'p'));
  status = PolicyStore::Create(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("File name too long"));
}

TEST(PolicyStoreTest, BadReloadKeepsOldPolicy) {
  const std::string path = TempDir() + "/policy.conf";
  WriteInPlace(path, kReadOnly);
  std::vector<absl::Status> seen;
  PolicyStore::Options options;
  options.path = path;
  options.on_reload = [&seen](const absl::Status& status, const ReloadStatus& totals) {
    seen.push_back(status);
    EXPECT_EQ(totals.attempts, seen.size());
  };
  std::unique_ptr<PolicyStore> store = *PolicyStore::Create(options);
  std::shared_ptr<const Policy> before = store->Current();

  WriteInPlace(path, kBad);
  absl::Status status = store->Reload();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(":2:18: unknown verb"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("stays in force"));
  EXPECT_EQ(store->Current(), before);
  EXPECT_TRUE(store->Current()->Allows(A(), kDom, "c", Verb::kRead));

  ASSERT_EQ(unlink(path.c_str()), 0);
  EXPECT_EQ(store->Reload().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Current(), before);

  WriteInPlace(path, kReadWrite);
  EXPECT_TRUE(store->Reload().ok());
  EXPECT_NE(store->Current(), before);
  EXPECT_TRUE(store->Current()->Allows(A(), kDom, "c", Verb::kWrite));
  // A reader that took the old policy keeps a consistent view of it.
  EXPECT_FALSE(before->Allows(A(), kDom, "c", Verb::kWrite));

  const ReloadStatus totals = store->status();
  EXPECT_EQ(totals.attempts, 4u);
  EXPECT_EQ(totals.loaded, 2u);
  EXPECT_EQ(totals.failures, 2u);
  EXPECT_TRUE(totals.last_status.ok());
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_TRUE(seen[0].ok());
  EXPECT_EQ(seen[1].code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(seen[2].code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(seen[3].ok());
}

TEST(PolicyStoreTest, UnchangedFileKeepsThePolicyObject) {
  const std::string path = TempDir() + "/policy.conf";
  WriteInPlace(path, kReadOnly);
  std::unique_ptr<PolicyStore> store = MustCreate(path);
  std::shared_ptr<const Policy> before = store->Current();
  EXPECT_TRUE(store->Reload().ok());
  EXPECT_EQ(store->Current(), before);
  EXPECT_EQ(store->status().unchanged, 1u);
  EXPECT_EQ(store->status().loaded, 1u);
}

TEST(PolicyStoreTest, ReadersDuringReloads) {
  const std::string path = TempDir() + "/policy.conf";
  WriteInPlace(path, kReadOnly);
  std::unique_ptr<PolicyStore> store = MustCreate(path);
  std::atomic<bool> stop{false};
  std::atomic<int> inconsistent{0};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        std::shared_ptr<const Policy> policy = store->Current();
        // Either policy: read always; write only with kReadWrite. Both
        // questions answered by one snapshot agree with one of the files.
        const bool read = policy->Allows(A(), kDom, "c", Verb::kRead);
        const VerbSet verbs = policy->VerbsOn(A(), kDom, "c");
        if (!read || verbs.Contains(Verb::kWrite) != policy->Allows(A(), kDom, "c", Verb::kWrite)) {
          inconsistent.fetch_add(1);
        }
        reads.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    WriteAndRename(path, (i % 2 == 0) ? kReadWrite : kReadOnly);
    EXPECT_TRUE(store->Reload().ok());
  }
  stop.store(true);
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(inconsistent.load(), 0);
  EXPECT_EQ(store->status().loaded, 51u);
}

class PolicyWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    path_ = dir_ + "/policy.conf";
    WriteInPlace(path_, kReadOnly);
    store_ = MustCreate(path_);
    absl::StatusOr<std::unique_ptr<PolicyWatcher>> watcher = PolicyWatcher::Start(store_.get());
    ASSERT_TRUE(watcher.ok()) << watcher.status();
    watcher_ = *std::move(watcher);
  }

  // Waits for the next load attempt after `attempts_before`.
  void AwaitNextAttempt(uint64_t attempts_before) {
    ASSERT_TRUE(store_->AwaitAttempts(attempts_before + 1, kWait));
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<PolicyStore> store_;
  std::unique_ptr<PolicyWatcher> watcher_;
};

TEST_F(PolicyWatcherTest, ReloadsOnInPlaceEdit) {
  const uint64_t before = store_->status().attempts;
  WriteInPlace(path_, kReadWrite);
  AwaitNextAttempt(before);
  EXPECT_TRUE(store_->Current()->Allows(A(), kDom, "c", Verb::kWrite));
  EXPECT_GE(watcher_->change_reloads(), 1u);
}

TEST_F(PolicyWatcherTest, ReloadsOnRenameIntoPlace) {
  const uint64_t before = store_->status().attempts;
  WriteAndRename(path_, kReadWrite);
  // Closing the temporary file is not about policy.conf; the rename is, so
  // the next attempt loads the new text.
  AwaitNextAttempt(before);
  EXPECT_TRUE(store_->Current()->Allows(A(), kDom, "c", Verb::kWrite));
  EXPECT_EQ(store_->status().attempts, before + 1);
  EXPECT_EQ(store_->status().failures, 0u);
}

TEST_F(PolicyWatcherTest, BadEditIsRefusedAndOldPolicyStays) {
  std::shared_ptr<const Policy> before_policy = store_->Current();
  const uint64_t before = store_->status().attempts;
  WriteAndRename(path_, kBad);
  AwaitNextAttempt(before);
  EXPECT_EQ(store_->status().failures, 1u);
  EXPECT_EQ(store_->status().last_status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Current(), before_policy);
  // Fixing the file puts the fix in force.
  const uint64_t after_bad = store_->status().attempts;
  WriteAndRename(path_, kReadWrite);
  AwaitNextAttempt(after_bad);
  EXPECT_TRUE(store_->Current()->Allows(A(), kDom, "c", Verb::kWrite));
}

TEST_F(PolicyWatcherTest, UnrelatedFilesDoNotReload) {
  const uint64_t before = store_->status().attempts;
  WriteInPlace(dir_ + "/other.conf", "junk");
  // The kernel queued the event above before this request; when the request
  // has been served, the event has been seen too.
  watcher_->RequestReload();
  AwaitNextAttempt(before);
  EXPECT_EQ(watcher_->change_reloads(), 0u);
  EXPECT_EQ(store_->status().attempts, before + 1);
  EXPECT_EQ(store_->status().unchanged, 1u);
}

TEST_F(PolicyWatcherTest, FollowsSymlinkSwap) {
  // The layout of configuration-map mounts: policy.conf -> ..data/policy.conf,
  // ..data -> v1, and an update swaps ..data atomically.
  const std::string cm = TempDir();
  ASSERT_EQ(mkdir((cm + "/v1").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((cm + "/v2").c_str(), 0755), 0);
  WriteInPlace(cm + "/v1/policy.conf", kReadOnly);
  WriteInPlace(cm + "/v2/policy.conf", kReadWrite);
  ASSERT_EQ(symlink("v1", (cm + "/..data").c_str()), 0);
  ASSERT_EQ(symlink("..data/policy.conf", (cm + "/policy.conf").c_str()), 0);
  std::unique_ptr<PolicyStore> store = MustCreate(cm + "/policy.conf");
  std::unique_ptr<PolicyWatcher> watcher = *PolicyWatcher::Start(store.get());
  EXPECT_FALSE(store->Current()->Allows(A(), kDom, "c", Verb::kWrite));
  const uint64_t before = store->status().attempts;
  ASSERT_EQ(symlink("v2", (cm + "/..data_tmp").c_str()), 0);
  ASSERT_EQ(rename((cm + "/..data_tmp").c_str(), (cm + "/..data").c_str()), 0);
  ASSERT_TRUE(store->AwaitAttempts(before + 1, kWait));
  EXPECT_TRUE(store->Current()->Allows(A(), kDom, "c", Verb::kWrite));
}

PolicyWatcher* g_watcher = nullptr;
void OnSighup(int) { g_watcher->RequestReload(); }

TEST_F(PolicyWatcherTest, ReloadRequestedFromSignalHandler) {
  WriteInPlace(path_ + ".staged", kReadWrite);
  g_watcher = watcher_.get();
  struct sigaction sa = {};
  struct sigaction old = {};
  sa.sa_handler = OnSighup;
  ASSERT_EQ(sigaction(SIGHUP, &sa, &old), 0);
  // Replace the file without the watcher seeing a relevant event (a hard link
  // is neither a close-after-write nor a rename), then signal.
  const uint64_t before = store_->status().attempts;
  ASSERT_EQ(unlink(path_.c_str()), 0);
  ASSERT_EQ(link((path_ + ".staged").c_str(), path_.c_str()), 0);
  ASSERT_EQ(raise(SIGHUP), 0);
  AwaitNextAttempt(before);
  ASSERT_EQ(sigaction(SIGHUP, &old, nullptr), 0);
  EXPECT_TRUE(store_->Current()->Allows(A(), kDom, "c", Verb::kWrite));
  EXPECT_EQ(watcher_->change_reloads(), 0u);
}

TEST(PolicyWatcherStartTest, MissingDirectory) {
  const std::string dir = TempDir();
  const std::string path = dir + "/policy.conf";
  WriteInPlace(path, kReadOnly);
  std::unique_ptr<PolicyStore> store = MustCreate(path);
  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_EQ(rmdir(dir.c_str()), 0);
  EXPECT_EQ(PolicyWatcher::Start(store.get()).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace policy
}  // namespace server
}  // namespace xenchan
