// Wakeup: kicks are handed to the engine each once, in the order of their
// first kick; the eventfd is readable exactly while something is pending;
// the hand-over reuses the caller's vector.
#include "backend/engine/wakeup.h"

#include <poll.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace xenchan {
namespace {

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

TEST(WakeupTest, KicksAreTakenOnceEachInTheOrderOfTheirFirstKick) {
  auto w = Wakeup::Create();
  ASSERT_TRUE(w.ok()) << w.status();
  std::vector<uint64_t> kicked;
  EXPECT_FALSE(Readable((*w)->fd()));
  (*w)->Kick(9);
  (*w)->Kick(3);
  (*w)->Kick(9);
  EXPECT_TRUE(Readable((*w)->fd()));
  (*w)->Take(&kicked);
  EXPECT_EQ(kicked, (std::vector<uint64_t>{9, 3}));
  EXPECT_FALSE(Readable((*w)->fd()));
  // Taken serials may be kicked again; the previous list is replaced.
  (*w)->Kick(9);
  (*w)->Take(&kicked);
  EXPECT_EQ(kicked, std::vector<uint64_t>{9});
  (*w)->Take(&kicked);
  EXPECT_TRUE(kicked.empty());
}

TEST(WakeupTest, APokeWakesWithoutNamingAChannel) {
  auto w = Wakeup::Create();
  ASSERT_TRUE(w.ok()) << w.status();
  (*w)->Poke();
  EXPECT_TRUE(Readable((*w)->fd()));
  std::vector<uint64_t> kicked = {1, 2};
  (*w)->Take(&kicked);
  EXPECT_TRUE(kicked.empty());
  EXPECT_FALSE(Readable((*w)->fd()));
}

TEST(WakeupTest, TheHandOverKeepsBothBuffers) {
  auto w = Wakeup::Create();
  ASSERT_TRUE(w.ok()) << w.status();
  std::vector<uint64_t> kicked;
  for (int round = 0; round < 3; ++round) {
    for (uint64_t s = 1; s <= 100; ++s) (*w)->Kick(s);
    (*w)->Take(&kicked);
    ASSERT_EQ(kicked.size(), 100u);
  }
  // Both vectors have grown to 100 by now: a round swaps them, nothing is
  // allocated, so the buffer handed back is one of the two seen before.
  const uint64_t* a = kicked.data();
  for (uint64_t s = 1; s <= 100; ++s) (*w)->Kick(s);
  (*w)->Take(&kicked);
  const uint64_t* b = kicked.data();
  EXPECT_NE(a, b);
  for (uint64_t s = 1; s <= 100; ++s) (*w)->Kick(s);
  (*w)->Take(&kicked);
  EXPECT_EQ(kicked.data(), a);
}

}  // namespace
}  // namespace xenchan
