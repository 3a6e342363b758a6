// Unit test of the simulated QEMU's buffer policy ("discard the middle").
// The rest of qemu_console is exercised end to end by
// xensim_integration_test.
#include "backend/sim/qemu_console.h"

#include <string>

#include "gtest/gtest.h"

namespace xenchan {
namespace sim {
namespace {

TEST(AppendDiscardingMiddleTest, GrowsUpToTheLimit) {
  std::string buf;
  EXPECT_EQ(AppendDiscardingMiddle(&buf, "abcd", 4, 8), 0u);
  EXPECT_EQ(AppendDiscardingMiddle(&buf, "efgh", 4, 8), 0u);
  EXPECT_EQ(buf, "abcdefgh");
}

TEST(AppendDiscardingMiddleTest, DiscardsTheBytesBeforeTheNewestData) {
  std::string buf = "abcdefgh";
  // 3 over the limit: QEMU drops the 3 bytes just before offset `limit`.
  EXPECT_EQ(AppendDiscardingMiddle(&buf, "XYZ", 3, 8), 3u);
  EXPECT_EQ(buf, "abcdeXYZ");
  EXPECT_EQ(buf.size(), 8u);
  EXPECT_EQ(AppendDiscardingMiddle(&buf, "12", 2, 8), 2u);
  EXPECT_EQ(buf, "abcdeX12");  // "YZ" sat just before the newest bytes
}

TEST(AppendDiscardingMiddleTest, HugeChunkKeepsTheLimit) {
  std::string buf = "ab";
  const std::string chunk(20, 'x');
  EXPECT_EQ(AppendDiscardingMiddle(&buf, chunk.data(), chunk.size(), 8), 14u);
  EXPECT_EQ(buf.size(), 8u);
}

}  // namespace
}  // namespace sim
}  // namespace xenchan
