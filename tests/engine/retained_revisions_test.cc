// EarliestResumableRevision: the binary search over the event log's
// retention, at its edges.
#include "backend/engine/retained_revisions.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace xenchan {
namespace {

TEST(EarliestResumableRevisionTest, FindsTheFirstRetainedRevision) {
  for (uint64_t earliest : {0u, 1u, 2u, 57u, 99u, 100u}) {
    int asked = 0;
    const uint64_t r = EarliestResumableRevision(100, [&](uint64_t rev) {
      ++asked;
      return rev >= earliest;
    });
    EXPECT_EQ(r, earliest);
    EXPECT_LE(asked, 8);  // log2(100) rounded up, plus one
  }
}

TEST(EarliestResumableRevisionTest, EmptyLogIsResumableFromZero) {
  EXPECT_EQ(EarliestResumableRevision(0, [](uint64_t) { return false; }), 0u);
}

TEST(EarliestResumableRevisionTest, NothingResumableBelowCurrentGivesCurrent) {
  EXPECT_EQ(EarliestResumableRevision(42, [](uint64_t) { return false; }), 42u);
}

TEST(EarliestResumableRevisionTest, HugeRevisionsDoNotOverflow) {
  const uint64_t current = UINT64_MAX;
  const uint64_t earliest = UINT64_MAX - 3;
  EXPECT_EQ(EarliestResumableRevision(current, [&](uint64_t rev) { return rev >= earliest; }),
            earliest);
}

}  // namespace
}  // namespace xenchan
