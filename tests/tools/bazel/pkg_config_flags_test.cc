// Checks that system_libs (tools/bazel/pkg_config.bzl) passes pkg-config's
// compile flags on to dependents: the defines below come only from
// `pkg-config --cflags` of absl_* and gtest (Debian 12), and used to be
// dropped because they sat in a source-less library's copts.
#include <string>

#include "gtest/gtest.h"

#ifndef NOMINMAX
#error "absl's pkg-config flag -DNOMINMAX did not reach this dependent"
#endif
#if !defined(GTEST_HAS_PTHREAD) || GTEST_HAS_PTHREAD != 1
#error "gtest's pkg-config flag -DGTEST_HAS_PTHREAD=1 did not reach this dependent"
#endif

namespace {

TEST(PkgConfigFlagsTest, DefinesFromPkgConfigReachDependents) {
  // The real checks are the #error lines above, at compile time; this only
  // records what arrived.
  EXPECT_EQ(GTEST_HAS_PTHREAD, 1);
}

}  // namespace
