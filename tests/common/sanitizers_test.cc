// Tests of the sanitizer switches: they agree with each other and with the
// build's own definition (--define=sanitizer=asan|tsan sets XENCHAN_EXPECT_*).
#include "tests/common/sanitizers.h"

#include <cstddef>

#include "gtest/gtest.h"

namespace xenchan {
namespace testcommon {
namespace {

TEST(SanitizersTest, AnyIsEitherOne) { EXPECT_EQ(kAnySanitizer, kAsan || kTsan); }

TEST(SanitizersTest, MatchesTheBuildConfiguration) {
#ifdef XENCHAN_EXPECT_ASAN
  EXPECT_TRUE(kAsan);
#else
  EXPECT_FALSE(kAsan);
#endif
#ifdef XENCHAN_EXPECT_TSAN
  EXPECT_TRUE(kTsan);
#else
  EXPECT_FALSE(kTsan);
#endif
}

TEST(SanitizersTest, ScaledPicksByBuild) {
  constexpr size_t kTotal = SanitizerScaled<size_t>(32 << 20, 8 << 20);
  EXPECT_EQ(kTotal, kAnySanitizer ? size_t{8} << 20 : size_t{32} << 20);
  static_assert(SanitizerScaled(2000, 500) == (kAnySanitizer ? 500 : 2000));
}

}  // namespace
}  // namespace testcommon
}  // namespace xenchan
