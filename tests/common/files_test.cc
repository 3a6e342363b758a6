// Tests of the file-system helpers.
#include "tests/common/files.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <string>

#include "gtest/gtest.h"

namespace xenchan {
namespace testcommon {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

TEST(FilesTest, RunfilePathIsUnderTheWorkspace) {
  const std::string self = RunfilePath("tests/common/files_test");
  EXPECT_TRUE(Exists(self)) << self;
}

TEST(FilesTest, TempDirsAreFreshAndRemovable) {
  const std::string a = MakeTempDir("files");
  const std::string b = MakeTempDir("files");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  EXPECT_NE(a, b);
  ASSERT_TRUE(WriteFileAtomically(a + "/f", "x"));
  RemoveTree(a);
  EXPECT_FALSE(Exists(a));
  EXPECT_TRUE(Exists(b));
  RemoveTree(b);
  RemoveTree("");  // ignored
}

TEST(FilesTest, ShortTempDirLeavesRoomForSocketPaths) {
  const std::string dir = MakeShortTempDir("sh");
  ASSERT_FALSE(dir.empty());
  EXPECT_LT(dir.size(), 60u) << dir;
  EXPECT_TRUE(Exists(dir));
  RemoveTree(dir);
}

TEST(FilesTest, WholeFilesRoundTrip) {
  const std::string dir = MakeTempDir("files");
  ASSERT_FALSE(dir.empty());
  const std::string path = dir + "/data";
  EXPECT_EQ(ReadFileOrEmpty(path), "");
  const std::string text("with\0nul\nand lines\n", 19);
  ASSERT_TRUE(WriteFileAtomically(path, text));
  EXPECT_EQ(ReadFileOrEmpty(path), text);
  ASSERT_TRUE(WriteFileAtomically(path, "replaced"));
  EXPECT_EQ(ReadFileOrEmpty(path), "replaced");
  EXPECT_FALSE(Exists(path + ".tmp"));
  EXPECT_FALSE(WriteFileAtomically(dir + "/no/such/dir/f", "x"));
  RemoveTree(dir);
}

}  // namespace
}  // namespace testcommon
}  // namespace xenchan
