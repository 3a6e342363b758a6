// Unit tests of WriteQueue: bounded host-to-guest queue and its three
// acknowledgement levels.
#include "backend/engine/write_queue.h"

#include <string>

#include "gtest/gtest.h"

namespace xenchan {
namespace {

TEST(WriteQueue, RangesAndLevels) {
  WriteQueue q(10);
  q.Reset(7);
  auto a = q.Append("abcd");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->epoch, 7u);
  EXPECT_EQ(a->start, 0u);
  EXPECT_EQ(a->end, 4u);
  auto b = q.Append("efg");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->start, 4u);
  EXPECT_EQ(b->end, 7u);
  EXPECT_EQ(q.room(), 3u);
  // Whole writes only.
  EXPECT_EQ(q.Append("hijk").status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(q.accepted_offset(), 7u);

  char buf[16];
  ASSERT_EQ(q.Peek(buf, 5), 5u);
  EXPECT_EQ(std::string(buf, 5), "abcde");
  q.MarkDelivered(5);
  EXPECT_EQ(q.delivered_offset(), 5u);
  EXPECT_EQ(q.queued(), 2u);
  ASSERT_EQ(q.Peek(buf, 16), 2u);
  EXPECT_EQ(std::string(buf, 2), "fg");
  q.SetConsumed(9);  // clamped to delivered
  EXPECT_EQ(q.consumed_offset(), 5u);
  q.SetConsumed(3);  // never backwards
  EXPECT_EQ(q.consumed_offset(), 5u);
}

TEST(WriteQueue, NewEpochDiscardsUndelivered) {
  WriteQueue q(100);
  q.Reset(1);
  ASSERT_TRUE(q.Append("0123456789").ok());
  q.MarkDelivered(4);
  EXPECT_EQ(q.Reset(2), 6u);
  EXPECT_EQ(q.epoch(), 2u);
  EXPECT_EQ(q.accepted_offset(), 0u);
  EXPECT_EQ(q.delivered_offset(), 0u);
  EXPECT_EQ(q.queued(), 0u);
}

TEST(WriteQueue, DiscardKeepsOffsetsSoLossIsVisible) {
  WriteQueue q(100);
  q.Reset(1);
  ASSERT_TRUE(q.Append("abcdef").ok());
  q.MarkDelivered(2);
  EXPECT_EQ(q.DiscardQueued(), 4u);
  EXPECT_EQ(q.accepted_offset(), 6u);
  EXPECT_EQ(q.delivered_offset(), 2u);
  EXPECT_EQ(q.queued(), 0u);
}

TEST(WriteQueue, SetLimitChangesTheRoomButNeverDropsQueuedBytes) {
  WriteQueue q(10);
  q.Reset(1);
  ASSERT_TRUE(q.Append("abcdef").ok());
  q.SetLimit(4);  // below what is queued: kept, no room until delivered
  EXPECT_EQ(q.limit(), 4u);
  EXPECT_EQ(q.queued(), 6u);
  EXPECT_EQ(q.room(), 0u);
  EXPECT_EQ(q.Append("g").status().code(), absl::StatusCode::kResourceExhausted);
  q.MarkDelivered(3);
  EXPECT_EQ(q.room(), 1u);
  q.SetLimit(20);
  EXPECT_EQ(q.room(), 17u);
  ASSERT_TRUE(q.Append("ghij").ok());
  EXPECT_EQ(q.queued(), 7u);
}

// The engine fills the 1 KiB `in` ring from the queue: writes of many sizes
// come out in order and whole across the queue's 4 KiB chunks.
TEST(WriteQueue, DeliversInRingSizedPiecesAcrossChunks) {
  WriteQueue q(256 << 10);
  q.Reset(1);
  std::string sent;
  for (size_t n : {1u, 1023u, 4096u, 4097u, 3000u, 12000u, 5u}) {
    std::string data(n, '\0');
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>(sent.size() + i * 7);
    auto r = q.Append(data);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->start, sent.size());
    sent += data;
  }
  EXPECT_EQ(q.queued(), sent.size());
  std::string delivered;
  char ring[1024];
  while (q.queued() > 0) {
    const size_t n = q.Peek(ring, sizeof(ring) - delivered.size() % 3);  // ragged pieces
    ASSERT_GT(n, 0u);
    delivered.append(ring, n);
    q.MarkDelivered(n);
  }
  EXPECT_EQ(delivered, sent);
  EXPECT_EQ(q.delivered_offset(), sent.size());
  EXPECT_EQ(q.Peek(ring, sizeof(ring)), 0u);
  q.MarkDelivered(5);  // nothing queued: no effect
  EXPECT_EQ(q.delivered_offset(), sent.size());
}

}  // namespace
}  // namespace xenchan
