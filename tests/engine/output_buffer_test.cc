// Unit tests for OutputBuffer: positions, epochs, replay, and both overflow
// policies with their gap accounting.
#include "backend/engine/output_buffer.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace xenchan {
namespace {

using Kind = OutputRecord::Kind;

std::string DataOf(const std::vector<OutputRecord>& records) {
  std::string out;
  for (const auto& r : records) {
    if (r.kind == Kind::kData) out += r.data;
  }
  return out;
}

TEST(OutputBufferTest, ReadersGetDataWithPositions) {
  OutputBuffer buf(100, OverflowPolicy::kBlock);
  ReadCursor c = buf.OldestCursor();
  ASSERT_TRUE(buf.Append("hello ").ok());
  ASSERT_TRUE(buf.Append("world").ok());
  auto records = buf.Read(&c, 8);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].position, (Position{1, 0}));
  EXPECT_EQ(records[0].data, "hello wo");
  records = buf.Read(&c, 100);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].position, (Position{1, 8}));
  EXPECT_EQ(records[0].data, "rld");
  EXPECT_TRUE(buf.Read(&c, 100).empty());
}

TEST(OutputBufferTest, BlockNeverEvictsBytesNoReaderWasHanded) {
  OutputBuffer buf(10, OverflowPolicy::kBlock);
  ASSERT_TRUE(buf.Append("0123456789").ok());
  EXPECT_EQ(buf.Space(), 0u);
  EXPECT_TRUE(buf.stalled());
  EXPECT_EQ(buf.Append("x").code(), absl::StatusCode::kFailedPrecondition);
  ReadCursor c = buf.OldestCursor();
  EXPECT_EQ(DataOf(buf.Read(&c, 4)), "0123");
  EXPECT_EQ(buf.Space(), 4u);  // handed bytes may now be evicted
  ASSERT_TRUE(buf.Append("abcd").ok());
  EXPECT_EQ(buf.bytes_dropped(), 0u);
  EXPECT_EQ(buf.earliest(), (Position{1, 4}));
  EXPECT_EQ(DataOf(buf.Read(&c, 100)), "456789abcd");
}

TEST(OutputBufferTest, SlowObserverUnderBlockSeesAGapButTheFastReaderDoesNot) {
  OutputBuffer buf(4, OverflowPolicy::kBlock);
  ReadCursor fast = buf.OldestCursor();
  ReadCursor slow = buf.OldestCursor();
  ASSERT_TRUE(buf.Append("abcd").ok());
  EXPECT_EQ(DataOf(buf.Read(&fast, 4)), "abcd");
  ASSERT_TRUE(buf.Append("ef").ok());
  auto records = buf.Read(&slow, 100);
  ASSERT_GE(records.size(), 2u);
  EXPECT_EQ(records[0].kind, Kind::kGap);
  EXPECT_EQ(records[0].position, (Position{1, 0}));
  EXPECT_EQ(records[0].lost, 2u);
  EXPECT_EQ(DataOf(records), "cdef");
  EXPECT_EQ(DataOf(buf.Read(&fast, 100)), "ef");
  EXPECT_EQ(buf.bytes_dropped(), 0u);  // every evicted byte had reached a reader
}

TEST(OutputBufferTest, DropOldestReportsExactLoss) {
  OutputBuffer buf(5, OverflowPolicy::kDropOldest);
  ReadCursor c = buf.OldestCursor();
  ASSERT_TRUE(buf.Append("0123456789").ok());  // more than the limit at once
  ASSERT_TRUE(buf.Append("ab").ok());
  EXPECT_EQ(buf.bytes_dropped(), 7u);
  auto records = buf.Read(&c, 100);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].kind, Kind::kGap);
  EXPECT_EQ(records[0].lost, 7u);
  EXPECT_EQ(records[1].position, (Position{1, 7}));
  EXPECT_EQ(records[1].data, "789ab");
}

TEST(OutputBufferTest, EpochsRestartOffsetsAndAreAnnounced) {
  OutputBuffer buf(100, OverflowPolicy::kBlock);
  ReadCursor c = buf.OldestCursor();
  ASSERT_TRUE(buf.Append("old").ok());
  EXPECT_EQ(buf.NewEpoch(), 2u);
  auto records = buf.Read(&c, 100);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].data, "old");
  EXPECT_EQ(records[1].kind, Kind::kEpoch);  // announced before any new data
  EXPECT_EQ(records[1].position, (Position{2, 0}));
  ASSERT_TRUE(buf.Append("new").ok());
  records = buf.Read(&c, 100);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].position, (Position{2, 0}));
  EXPECT_EQ(records[0].data, "new");
}

TEST(OutputBufferTest, ResumeFromRetainedOffsetAndRefuseEvictedOnes) {
  OutputBuffer buf(6, OverflowPolicy::kDropOldest);
  ASSERT_TRUE(buf.Append("abcdef").ok());
  auto cursor = buf.CursorAt({1, 2});
  ASSERT_TRUE(cursor.ok());
  EXPECT_EQ(DataOf(buf.Read(&*cursor, 100)), "cdef");
  ASSERT_TRUE(buf.Append("gh").ok());
  auto evicted = buf.CursorAt({1, 1});
  EXPECT_EQ(evicted.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(evicted.status().message().find("earliest retained is 1:2"), std::string::npos)
      << evicted.status();
  EXPECT_EQ(buf.CursorAt({1, 9}).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(buf.CursorAt({7, 0}).status().code(), absl::StatusCode::kNotFound);
}

TEST(OutputBufferTest, ResumeAcrossEpochs) {
  OutputBuffer buf(100, OverflowPolicy::kBlock);
  ASSERT_TRUE(buf.Append("one").ok());
  buf.NewEpoch();
  ASSERT_TRUE(buf.Append("two").ok());
  auto cursor = buf.CursorAt({1, 1});
  ASSERT_TRUE(cursor.ok());
  auto records = buf.Read(&*cursor, 100);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].data, "ne");
  EXPECT_EQ(records[1].kind, Kind::kEpoch);
  EXPECT_EQ(records[2].position, (Position{2, 0}));
  EXPECT_EQ(records[2].data, "two");
}

TEST(OutputBufferTest, MemoryStaysWithinTheLimitUnderAFlood) {
  OutputBuffer buf(1024, OverflowPolicy::kDropOldest);
  const std::string chunk(700, 'z');
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(buf.Append(chunk).ok());
    ASSERT_LE(buf.retained_bytes(), 1024u);
    if (i % 100 == 0) buf.NewEpoch();
  }
  EXPECT_EQ(buf.bytes_dropped(), 700u * 1000 - buf.retained_bytes());
}

TEST(OutputBufferTest, GrowingTheLimitUnderBlockGivesSpaceAtOnce) {
  OutputBuffer buf(10, OverflowPolicy::kBlock);
  ASSERT_TRUE(buf.Append("0123456789").ok());
  EXPECT_TRUE(buf.stalled());
  EXPECT_EQ(buf.SetLimit(16), 0u);
  EXPECT_EQ(buf.limit(), 16u);
  EXPECT_FALSE(buf.stalled());
  EXPECT_EQ(buf.Space(), 6u);
  ASSERT_TRUE(buf.Append("abcdef").ok());
  EXPECT_EQ(buf.bytes_dropped(), 0u);
  ReadCursor c = buf.OldestCursor();
  EXPECT_EQ(DataOf(buf.Read(&c, 100)), "0123456789abcdef");
}

TEST(OutputBufferTest, ShrinkingTheLimitEvictsTheOldestBytesWithAGap) {
  OutputBuffer buf(10, OverflowPolicy::kBlock);
  ReadCursor fast = buf.OldestCursor();
  ReadCursor slow = buf.OldestCursor();
  ASSERT_TRUE(buf.Append("0123456789").ok());
  EXPECT_EQ(DataOf(buf.Read(&fast, 2)), "01");
  EXPECT_EQ(buf.SetLimit(4), 6u);
  EXPECT_EQ(buf.retained_bytes(), 4u);
  EXPECT_EQ(buf.earliest(), (Position{1, 6}));
  // Only the bytes no reader had been handed count as dropped.
  EXPECT_EQ(buf.bytes_dropped(), 4u);
  auto records = buf.Read(&slow, 100);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].kind, Kind::kGap);
  EXPECT_EQ(records[0].lost, 6u);
  EXPECT_EQ(records[1].data, "6789");
  EXPECT_EQ(buf.SetLimit(0), 3u);  // at least one byte
  EXPECT_EQ(buf.limit(), 1u);
}

TEST(OutputBufferTest, SwitchingBlockToDropOldestEndsTheStall) {
  OutputBuffer buf(4, OverflowPolicy::kBlock);
  ASSERT_TRUE(buf.Append("abcd").ok());
  EXPECT_TRUE(buf.stalled());
  buf.SetPolicy(OverflowPolicy::kDropOldest);
  EXPECT_EQ(buf.policy(), OverflowPolicy::kDropOldest);
  EXPECT_FALSE(buf.stalled());
  ASSERT_TRUE(buf.Append("ef").ok());
  EXPECT_EQ(buf.bytes_dropped(), 2u);
  buf.SetPolicy(OverflowPolicy::kBlock);
  EXPECT_TRUE(buf.stalled());
  EXPECT_EQ(buf.Append("g").code(), absl::StatusCode::kFailedPrecondition);
}

// Replay against a model of every byte the guest ever wrote, under random
// appends (2 KiB ring drains and larger), reads, trims and limit changes
// that move the front across the buffer's 4 KiB chunks: every data record
// holds exactly the model's bytes at its position, and every evicted byte a
// reader missed is reported in a gap.
TEST(OutputBufferTest, ReplayMatchesAModelAcrossChunks) {
  for (OverflowPolicy policy : {OverflowPolicy::kDropOldest, OverflowPolicy::kBlock}) {
    std::mt19937 rng(policy == OverflowPolicy::kBlock ? 7 : 11);
    auto uniform = [&rng](size_t bound) {
      return std::uniform_int_distribution<size_t>(0, bound - 1)(rng);
    };
    OutputBuffer buf(10000, policy);
    std::string model;  // every byte appended, by sequence number
    ReadCursor fast = buf.OldestCursor();
    ReadCursor slow = buf.OldestCursor();
    uint64_t fast_seq = 0;
    uint64_t slow_seq = 0;
    auto read = [&](ReadCursor* cursor, uint64_t* seq, size_t max) {
      for (const OutputRecord& r : buf.Read(cursor, max)) {
        ASSERT_EQ(r.position.offset, *seq);
        if (r.kind == Kind::kGap) {
          *seq += r.lost;
        } else {
          ASSERT_EQ(r.kind, Kind::kData);
          ASSERT_EQ(r.data, model.substr(*seq, r.data.size())) << "at " << *seq;
          *seq += r.data.size();
        }
      }
    };
    for (int step = 0; step < 3000; ++step) {
      switch (uniform(6)) {
        case 0:
        case 1: {
          size_t n = uniform(4) == 0 ? uniform(20000) : uniform(2049);
          if (policy == OverflowPolicy::kBlock) n = std::min(n, buf.Space());
          std::string data(n, '\0');
          for (char& c : data) c = static_cast<char>(rng());
          ASSERT_TRUE(buf.Append(data).ok());
          model += data;
          break;
        }
        case 2:
          read(&fast, &fast_seq, uniform(9000));
          break;
        case 3:
          read(&slow, &slow_seq, uniform(300));
          break;
        case 4:
          buf.TrimHanded(uniform(5000));
          break;
        default:
          if (uniform(10) == 0) buf.SetLimit(1 + uniform(20000));
          break;
      }
      ASSERT_EQ(buf.end().offset, model.size());
      ASSERT_EQ(buf.end().offset - buf.earliest().offset, buf.retained_bytes());
      ASSERT_LE(buf.retained_bytes(), buf.limit());
    }
    read(&fast, &fast_seq, model.size());
    read(&slow, &slow_seq, model.size());
    EXPECT_EQ(fast_seq, model.size());
    EXPECT_EQ(slow_seq, model.size());
  }
}

}  // namespace
}  // namespace xenchan
