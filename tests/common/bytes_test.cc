// Tests of the deterministic byte patterns and their checks.
#include "tests/common/bytes.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace testcommon {
namespace {

using ::testing::HasSubstr;

TEST(PatternTest, IsDeterministicAndDependsOnTheSeed) {
  EXPECT_EQ(Pattern(1000, 3), Pattern(1000, 3));
  EXPECT_NE(Pattern(1000, 3), Pattern(1000, 4));
  EXPECT_EQ(Pattern(0, 1), "");
  // A longer pattern starts with the shorter one.
  EXPECT_EQ(Pattern(5000, 9).substr(0, 100), Pattern(100, 9));
}

TEST(PatternTest, StaysInsideItsAlphabet) {
  for (char c : Pattern(20000, 1)) {
    ASSERT_TRUE(c >= 'a' && c <= 'z') << static_cast<int>(c);
  }
  bool beyond_letters = false;
  for (char c : Pattern(20000, 1, PatternAlphabet::kPrintable)) {
    ASSERT_TRUE(c >= '!' && c <= 'z') << static_cast<int>(c);
    beyond_letters = beyond_letters || c < 'a';
  }
  EXPECT_TRUE(beyond_letters);
}

TEST(PatternTest, KeepsTheValuesTestsWereWrittenAgainst) {
  // Pinned: the server tests' and the engine tests' former copies gave these.
  EXPECT_EQ(Pattern(12, 0), "amzojdpomxmz");
  EXPECT_EQ(Pattern(12, 7, PatternAlphabet::kPrintable), "NXPNmlVMY\\eh");
}

TEST(PatternAtTest, AnySliceMatchesTheWholeStream) {
  const std::string whole = PatternAt(5, 0, 4096);
  EXPECT_EQ(PatternAt(5, 1000, 96), whole.substr(1000, 96));
  EXPECT_NE(PatternAt(6, 0, 4096), whole);
  for (char c : whole) ASSERT_TRUE(c >= 'a' && c <= 'z');
}

TEST(FirstMismatchTest, FindsTheFirstDifference) {
  EXPECT_EQ(FirstMismatch("abc", "abc"), std::string::npos);
  EXPECT_EQ(FirstMismatch("", ""), std::string::npos);
  EXPECT_EQ(FirstMismatch("abx", "abc"), 2u);
  EXPECT_EQ(FirstMismatch("ab", "abc"), 2u);
  EXPECT_EQ(FirstMismatch("abcd", "abc"), 3u);
}

TEST(DescribeMismatchTest, NamesSizesAndOffset) {
  EXPECT_EQ(DescribeMismatch("same", "same"), "");
  std::string got = Pattern(100, 1);
  const std::string want = got;
  got[60] = '\n';
  const std::string d = DescribeMismatch(got, want);
  EXPECT_THAT(d, HasSubstr("got 100 bytes, want 100"));
  EXPECT_THAT(d, HasSubstr("offset 60"));
  EXPECT_THAT(d, HasSubstr("\\n"));
  EXPECT_THAT(DescribeMismatch("ab", "abc"), HasSubstr("offset 2"));
}

}  // namespace
}  // namespace testcommon
}  // namespace xenchan
