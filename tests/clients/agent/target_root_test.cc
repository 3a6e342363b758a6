// Unit tests of TargetRoot: confined, atomic writes into a temporary target
// root, and every escape attempt ("..", symlinks in the directory part)
// refused without touching anything outside.
#include "clients/agent/target_root.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/common/files.h"

namespace xenchan {
namespace agent {
namespace {

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  closedir(d);
  return out;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

class TargetRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = testcommon::MakeTempDir("target");
    ASSERT_FALSE(base_.empty());
    dir_ = base_ + "/root";
    outside_ = base_ + "/outside";
    ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(outside_.c_str(), 0755), 0);
    auto root = TargetRoot::Open(dir_);
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *std::move(root);
  }

  std::string base_, dir_, outside_;
  std::unique_ptr<TargetRoot> root_;
};

TEST_F(TargetRootTest, SplitPathRules) {
  auto p = TargetRoot::SplitPath("/etc//ssh/./sshd_config");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(TargetRoot::Canonical(*p), "/etc/ssh/sshd_config");
  EXPECT_EQ(TargetRoot::Canonical(*TargetRoot::SplitPath("etc/x")), "/etc/x");
  EXPECT_EQ(TargetRoot::SplitPath("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TargetRoot::SplitPath("/").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TargetRoot::SplitPath("/./.").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TargetRoot::SplitPath(std::string("a\0b", 3)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TargetRoot::SplitPath(std::string(256, 'a')).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const char* escape : {"..", "/..", "/etc/../../x", "a/..", "../outside/x"}) {
    EXPECT_EQ(TargetRoot::SplitPath(escape).status().code(), absl::StatusCode::kPermissionDenied)
        << escape;
  }
}

TEST_F(TargetRootTest, WritesAtomicallyWithModeAndCreatesParents) {
  ASSERT_TRUE(root_->WriteFile("/etc/app/config", "v1", 0640).ok());
  EXPECT_EQ(testcommon::ReadFileOrEmpty(dir_ + "/etc/app/config"), "v1");
  EXPECT_EQ(ModeOf(dir_ + "/etc/app/config"), 0640u);
  EXPECT_EQ(ModeOf(dir_ + "/etc/app"), 0755u);
  ASSERT_TRUE(root_->WriteFile("etc/app/config", "v2 longer", 0600).ok());
  EXPECT_EQ(testcommon::ReadFileOrEmpty(dir_ + "/etc/app/config"), "v2 longer");
  EXPECT_EQ(ModeOf(dir_ + "/etc/app/config"), 0600u);
  // No temporary files are left behind.
  EXPECT_EQ(Entries(dir_ + "/etc/app"), std::vector<std::string>{"config"});
  auto read = root_->ReadFile("/etc/app/config", 100);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, "v2 longer");
  EXPECT_EQ(root_->ReadFile("/etc/app/config", 3).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(root_->ReadFile("/etc/none", 3).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TargetRootTest, EnsureDirectorySetsMode) {
  ASSERT_TRUE(root_->EnsureDirectory("/root/.ssh", 0700).ok());
  EXPECT_EQ(ModeOf(dir_ + "/root/.ssh"), 0700u);
  ASSERT_EQ(chmod((dir_ + "/root/.ssh").c_str(), 0777), 0);
  ASSERT_TRUE(root_->EnsureDirectory("/root/.ssh", 0700).ok());
  EXPECT_EQ(ModeOf(dir_ + "/root/.ssh"), 0700u);
}

TEST_F(TargetRootTest, SymlinkInDirectoryPartIsRefused) {
  ASSERT_EQ(symlink(outside_.c_str(), (dir_ + "/escape").c_str()), 0);
  ASSERT_EQ(symlink("../outside", (dir_ + "/rel").c_str()), 0);
  ASSERT_EQ(mkdir((dir_ + "/etc").c_str(), 0755), 0);
  ASSERT_EQ(symlink("/etc", (dir_ + "/etc/abs").c_str()), 0);
  for (const char* path : {"/escape/x", "/rel/x", "/etc/abs/passwd", "/rel/sub/x"}) {
    const absl::Status s = root_->WriteFile(path, "owned", 0644);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << path << ": " << s;
    EXPECT_EQ(root_->ReadFile(path, 100).status().code(), absl::StatusCode::kPermissionDenied)
        << path;
  }
  EXPECT_FALSE(Exists(outside_ + "/x"));
  EXPECT_FALSE(Exists(outside_ + "/sub"));
  EXPECT_EQ(root_->EnsureDirectory("/rel/.ssh", 0700).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(Exists(outside_ + "/.ssh"));
}

TEST_F(TargetRootTest, FinalSymlinkIsReplacedNotFollowed) {
  ASSERT_EQ(symlink((outside_ + "/victim").c_str(), (dir_ + "/link").c_str()), 0);
  ASSERT_TRUE(root_->WriteFile("/link", "mine", 0644).ok());
  EXPECT_FALSE(Exists(outside_ + "/victim"));
  struct stat st;
  ASSERT_EQ(lstat((dir_ + "/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(testcommon::ReadFileOrEmpty(dir_ + "/link"), "mine");
  // Reading a final symlink is refused too.
  ASSERT_EQ(symlink((outside_ + "/secret").c_str(), (dir_ + "/peek").c_str()), 0);
  EXPECT_EQ(root_->ReadFile("/peek", 100).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(TargetRootTest, RemoveFileIsConfinedAndRemovesLinksNotTargets) {
  ASSERT_TRUE(root_->WriteFile("/var/lib/a/record", "x", 0644).ok());
  ASSERT_TRUE(root_->RemoveFile("/var/lib/a/record").ok());
  EXPECT_FALSE(Exists(dir_ + "/var/lib/a/record"));
  EXPECT_EQ(root_->RemoveFile("/var/lib/a/record").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(root_->RemoveFile("/no/such/dir/x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(root_->RemoveFile("/var/lib").code(), absl::StatusCode::kFailedPrecondition);
  // A symlink in the directory part is refused; one at the final name is
  // removed itself, its target stays.
  ASSERT_TRUE(testcommon::WriteFileAtomically(outside_ + "/keep", "keep"));
  ASSERT_EQ(symlink(outside_.c_str(), (dir_ + "/escape").c_str()), 0);
  EXPECT_EQ(root_->RemoveFile("/escape/keep").code(), absl::StatusCode::kPermissionDenied);
  ASSERT_EQ(symlink((outside_ + "/keep").c_str(), (dir_ + "/link").c_str()), 0);
  ASSERT_TRUE(root_->RemoveFile("/link").ok());
  EXPECT_FALSE(Exists(dir_ + "/link"));
  EXPECT_EQ(testcommon::ReadFileOrEmpty(outside_ + "/keep"), "keep");
  EXPECT_EQ(root_->RemoveFile("/../outside/keep").code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(TargetRootTest, WrongTypesFailCleanly) {
  ASSERT_TRUE(root_->WriteFile("/file", "x", 0644).ok());
  EXPECT_EQ(root_->WriteFile("/file/child", "x", 0644).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_EQ(mkdir((dir_ + "/dir").c_str(), 0755), 0);
  EXPECT_EQ(root_->WriteFile("/dir", "x", 0644).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(TargetRoot::Open(base_ + "/missing").ok());
}

}  // namespace
}  // namespace agent
}  // namespace xenchan
