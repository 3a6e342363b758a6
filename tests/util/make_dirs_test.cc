// mkdir -p: nested creation, repeated and trailing slashes, existing
// directories, and the cases it must refuse (a file in the way, an empty
// path, a directory it may not write).
#include "backend/util/make_dirs.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace xenchan {
namespace {

class MakeDirsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string templ = std::string(tmp != nullptr ? tmp : "/tmp") + "/make_dirs.XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    root_ = templ;
  }

  static bool IsDir(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }
  void MakeFile(const std::string& path) {
    const int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    close(fd);
  }

  std::string root_;
};

TEST_F(MakeDirsTest, CreatesEveryMissingLevel) {
  ASSERT_TRUE(MakeDirs(root_ + "/a/b/c", 0755).ok());
  EXPECT_TRUE(IsDir(root_ + "/a"));
  EXPECT_TRUE(IsDir(root_ + "/a/b/c"));
}

TEST_F(MakeDirsTest, ExistingDirectoriesAreFine) {
  ASSERT_TRUE(MakeDirs(root_ + "/a/b", 0755).ok());
  EXPECT_TRUE(MakeDirs(root_ + "/a/b", 0755).ok());
  EXPECT_TRUE(MakeDirs(root_ + "/a", 0755).ok());
  EXPECT_TRUE(MakeDirs(root_, 0755).ok());
  EXPECT_TRUE(MakeDirs("/", 0755).ok());
  EXPECT_TRUE(MakeDirs("//", 0755).ok());
}

TEST_F(MakeDirsTest, RepeatedAndTrailingSlashesCountAsOne) {
  ASSERT_TRUE(MakeDirs(root_ + "//x///y//", 0755).ok());
  EXPECT_TRUE(IsDir(root_ + "/x/y"));
  ASSERT_TRUE(MakeDirs("/" + root_ + "/x//z", 0755).ok());
  EXPECT_TRUE(IsDir(root_ + "/x/z"));
}

TEST_F(MakeDirsTest, RelativePathFromTheWorkingDirectory) {
  char old[4096];
  ASSERT_NE(getcwd(old, sizeof(old)), nullptr);
  ASSERT_EQ(chdir(root_.c_str()), 0);
  const absl::Status s = MakeDirs("rel/./deeper", 0755);
  ASSERT_EQ(chdir(old), 0);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(IsDir(root_ + "/rel/deeper"));
}

TEST_F(MakeDirsTest, SymbolicLinkToADirectoryIsADirectory) {
  ASSERT_TRUE(MakeDirs(root_ + "/real", 0755).ok());
  ASSERT_EQ(symlink((root_ + "/real").c_str(), (root_ + "/link").c_str()), 0);
  ASSERT_TRUE(MakeDirs(root_ + "/link/inner", 0755).ok());
  EXPECT_TRUE(IsDir(root_ + "/real/inner"));
}

TEST_F(MakeDirsTest, FileWhereTheDirectoryShouldBeIsRefused) {
  MakeFile(root_ + "/file");
  const absl::Status last = MakeDirs(root_ + "/file", 0755);
  EXPECT_EQ(last.code(), absl::StatusCode::kFailedPrecondition) << last;
  EXPECT_NE(last.message().find(root_ + "/file"), absl::string_view::npos) << last;
  const absl::Status ancestor = MakeDirs(root_ + "/file/below", 0755);
  EXPECT_EQ(ancestor.code(), absl::StatusCode::kFailedPrecondition) << ancestor;
  EXPECT_FALSE(IsDir(root_ + "/file"));
}

TEST_F(MakeDirsTest, EmptyPathIsInvalid) {
  EXPECT_EQ(MakeDirs("", 0755).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MakeDirsTest, ModeIsApplied) {
  const mode_t old = umask(022);
  const absl::Status s = MakeDirs(root_ + "/private/inner", 0700);
  umask(old);
  ASSERT_TRUE(s.ok()) << s;
  struct stat st;
  ASSERT_EQ(stat((root_ + "/private").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(MakeDirsTest, UnwritableParentNamesTheDirectory) {
  if (geteuid() == 0) GTEST_SKIP() << "root may write anywhere";
  ASSERT_TRUE(MakeDirs(root_ + "/locked", 0555).ok());
  const absl::Status s = MakeDirs(root_ + "/locked/a/b", 0755);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find("mkdir " + root_ + "/locked/a"), absl::string_view::npos) << s;
}

}  // namespace
}  // namespace xenchan
