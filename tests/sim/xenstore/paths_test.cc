// Unit tests of the xenstore path helpers: tree navigation, resolution of
// relative paths and xenstored's node name rules.
#include "backend/sim/xenstore/paths.h"

#include <string>

#include "gtest/gtest.h"

namespace xenchan::sim::xenstore {
namespace {

constexpr size_t kRelMax = 2048;  // XENSTORE_REL_PATH_MAX

TEST(PathsTest, ParentOfStopsAtRoot) {
  EXPECT_EQ(ParentOf("/"), "/");
  EXPECT_EQ(ParentOf("/tool"), "/");
  EXPECT_EQ(ParentOf("/tool/xenstored"), "/tool");
  EXPECT_EQ(ParentOf("/local/domain/1/data"), "/local/domain/1");
}

TEST(PathsTest, BaseNameIsTheLastComponent) {
  EXPECT_EQ(BaseName("/"), "");
  EXPECT_EQ(BaseName("/tool"), "tool");
  EXPECT_EQ(BaseName("/local/domain/1"), "1");
}

TEST(PathsTest, ChildPathDoesNotDoubleTheRootSlash) {
  EXPECT_EQ(ChildPath("/", "tool"), "/tool");
  EXPECT_EQ(ChildPath("/tool", "xenstored"), "/tool/xenstored");
}

TEST(PathsTest, IsChildMatchesWholeComponentsOnly) {
  EXPECT_TRUE(IsChild("/a", "/"));
  EXPECT_TRUE(IsChild("/", "/"));
  EXPECT_TRUE(IsChild("/a", "/a"));
  EXPECT_TRUE(IsChild("/a/b/c", "/a"));
  EXPECT_FALSE(IsChild("/ab", "/a"));
  EXPECT_FALSE(IsChild("/a", "/a/b"));
  EXPECT_FALSE(IsChild("/b/a", "/a"));
}

TEST(PathsTest, RelativePathsResolveAgainstTheDomainHome) {
  EXPECT_EQ(DomainPath(0), "/local/domain/0");
  EXPECT_EQ(DomainPath(17), "/local/domain/17");
  EXPECT_EQ(ResolvePath(5, "data/x"), "/local/domain/5/data/x");
  EXPECT_EQ(ResolvePath(5, "/tool"), "/tool");
  EXPECT_EQ(ResolvePath(5, "@releaseDomain"), "@releaseDomain");
  // Empty resolves to the home with a trailing slash, which is not valid.
  EXPECT_EQ(ResolvePath(5, ""), "/local/domain/5/");
  EXPECT_FALSE(IsValidNodePath(ResolvePath(5, ""), kRelMax));
}

TEST(PathsTest, ValidNodePaths) {
  EXPECT_TRUE(IsValidNodePath("/", kRelMax));
  EXPECT_TRUE(IsValidNodePath("/tool/xenstored", kRelMax));
  EXPECT_TRUE(IsValidNodePath("/local/domain/3/device/vif-0_a@b", kRelMax));
}

TEST(PathsTest, InvalidNodePaths) {
  EXPECT_FALSE(IsValidNodePath("", kRelMax));
  EXPECT_FALSE(IsValidNodePath("tool", kRelMax));
  EXPECT_FALSE(IsValidNodePath("@introduceDomain", kRelMax));
  EXPECT_FALSE(IsValidNodePath("/tool/", kRelMax));
  EXPECT_FALSE(IsValidNodePath("/tool//xenstored", kRelMax));
  EXPECT_FALSE(IsValidNodePath("/a b", kRelMax));
  EXPECT_FALSE(IsValidNodePath("/a.b", kRelMax));
  EXPECT_FALSE(IsValidNodePath(std::string("/a\0b", 4), kRelMax));
}

TEST(PathsTest, RelativeLengthCountsAfterTheDomainHome) {
  const std::string home = "/local/domain/1/";
  EXPECT_TRUE(IsValidNodePath(home + std::string(kRelMax, 'x'), kRelMax));
  EXPECT_FALSE(IsValidNodePath(home + std::string(kRelMax + 1, 'x'), kRelMax));
  // Outside a domain's home the whole path counts.
  EXPECT_TRUE(IsValidNodePath("/" + std::string(kRelMax - 1, 'x'), kRelMax));
  EXPECT_FALSE(IsValidNodePath("/" + std::string(kRelMax, 'x'), kRelMax));
  // A domid of more than five digits is not a domain home.
  const std::string six = "/local/domain/123456/";
  EXPECT_FALSE(IsValidNodePath(six + std::string(kRelMax - 10, 'x'), kRelMax));
}

TEST(PathsTest, AbsoluteLengthIsCappedWhateverTheRelativeLimit) {
  const size_t big = 10000;
  EXPECT_TRUE(IsValidNodePath("/" + std::string(kAbsolutePathMax - 1, 'x'), big));
  EXPECT_FALSE(IsValidNodePath("/" + std::string(kAbsolutePathMax, 'x'), big));
}

}  // namespace
}  // namespace xenchan::sim::xenstore
