// AckTracker and WriteProgressTracker: cumulative acknowledgements per level,
// rejections grouped by cause, and levels that survive an epoch change.
#include "backend/engine/ack_tracker.h"

#include "backend/engine/write_progress.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace {

WriteStatus Status(uint64_t epoch, uint64_t delivered, uint64_t consumed, bool connected = true) {
  WriteStatus ws;
  ws.connected = connected;
  ws.epoch = epoch;
  ws.accepted_offset = std::max(delivered, consumed);
  ws.delivered_offset = delivered;
  ws.consumed_offset = consumed;
  return ws;
}

TEST(ReachedLevelTest, ComparesOffsetsOfTheSameEpochOnly) {
  EXPECT_EQ(ReachedLevel(Status(1, 0, 0), 1, 10), AckLevel::kAccepted);
  EXPECT_EQ(ReachedLevel(Status(1, 10, 0), 1, 10), AckLevel::kDelivered);
  EXPECT_EQ(ReachedLevel(Status(1, 10, 10), 1, 10), AckLevel::kConsumed);
  EXPECT_EQ(ReachedLevel(Status(1, 9, 9), 1, 10), AckLevel::kAccepted);
  EXPECT_EQ(ReachedLevel(Status(2, 100, 100), 1, 10), AckLevel::kAccepted);
}

TEST(AckTrackerTest, NothingPendingGivesNothing) {
  AckTracker t(AckLevel::kConsumed);
  EXPECT_TRUE(t.empty());
  const auto u = t.Observe(Status(1, 0, 0));
  EXPECT_TRUE(u.acks.empty());
  EXPECT_TRUE(u.rejections.empty());
}

TEST(AckTrackerTest, AcceptedLevelIsAcknowledgedAtOnce) {
  AckTracker t(AckLevel::kAccepted);
  t.Add(1, 1, 10);
  t.Add(2, 1, 20);
  const auto u = t.Observe(Status(1, 0, 0));
  ASSERT_EQ(u.acks.size(), 1u);
  EXPECT_EQ(u.acks[0].sequence_id, 2u);
  EXPECT_EQ(u.acks[0].level, AckLevel::kAccepted);
  EXPECT_EQ(u.acks[0].epoch, 1u);
  EXPECT_EQ(u.acks[0].end_offset, 20u);
  EXPECT_TRUE(t.empty());
}

TEST(AckTrackerTest, AcknowledgesEachLevelCumulativelyAndOnlyOnce) {
  AckTracker t(AckLevel::kConsumed);
  t.Add(1, 1, 10);
  t.Add(2, 1, 20);
  t.Add(3, 1, 30);
  auto u = t.Observe(Status(1, 20, 10));
  ASSERT_EQ(u.acks.size(), 3u);
  EXPECT_EQ(u.acks[0].level, AckLevel::kAccepted);
  EXPECT_EQ(u.acks[0].sequence_id, 3u);
  EXPECT_EQ(u.acks[1].level, AckLevel::kDelivered);
  EXPECT_EQ(u.acks[1].sequence_id, 2u);
  EXPECT_EQ(u.acks[1].end_offset, 20u);
  EXPECT_EQ(u.acks[2].level, AckLevel::kConsumed);
  EXPECT_EQ(u.acks[2].sequence_id, 1u);
  EXPECT_FALSE(t.empty());
  // Nothing moved: nothing new.
  u = t.Observe(Status(1, 20, 10));
  EXPECT_TRUE(u.acks.empty());
  u = t.Observe(Status(1, 30, 30));
  ASSERT_EQ(u.acks.size(), 2u);
  EXPECT_EQ(u.acks[0].level, AckLevel::kDelivered);
  EXPECT_EQ(u.acks[0].sequence_id, 3u);
  EXPECT_EQ(u.acks[1].level, AckLevel::kConsumed);
  EXPECT_EQ(u.acks[1].sequence_id, 3u);
  EXPECT_TRUE(t.empty());
}

TEST(AckTrackerTest, AnUnreachedWriteBlocksLaterOnesAtThatLevel) {
  AckTracker t(AckLevel::kDelivered);
  t.Add(1, 1, 10);
  t.Add(2, 2, 5);  // accepted in a later epoch than the status reports
  t.Add(3, 1, 30);
  // Write 2 is of another epoch: it fails; 1 and 3 are delivered.
  const auto u = t.Observe(Status(1, 30, 0));
  ASSERT_EQ(u.rejections.size(), 1u);
  EXPECT_EQ(u.rejections[0].first_sequence_id, 2u);
  EXPECT_TRUE(u.rejections[0].epoch_changed);
  ASSERT_EQ(u.acks.size(), 2u);
  EXPECT_EQ(u.acks[1].level, AckLevel::kDelivered);
  EXPECT_EQ(u.acks[1].sequence_id, 3u);
}

TEST(AckTrackerTest, LeavingConnectedRejectsWritesShortOfTheLevel) {
  AckTracker t(AckLevel::kDelivered);
  t.Add(1, 1, 10);
  t.Add(2, 1, 20);
  t.Add(3, 1, 30);
  const auto u = t.Observe(Status(1, 10, 0, /*connected=*/false));
  ASSERT_EQ(u.acks.size(), 2u);
  EXPECT_EQ(u.acks[1].sequence_id, 1u);
  ASSERT_EQ(u.rejections.size(), 1u);
  EXPECT_EQ(u.rejections[0].first_sequence_id, 2u);
  EXPECT_EQ(u.rejections[0].last_sequence_id, 3u);
  EXPECT_EQ(u.rejections[0].reached, AckLevel::kAccepted);
  EXPECT_FALSE(u.rejections[0].epoch_changed);
  EXPECT_TRUE(t.empty());
}

TEST(AckTrackerTest, EpochChangeKeepsTheLevelWritesHadReached) {
  AckTracker t(AckLevel::kConsumed);
  t.Add(1, 1, 10);
  t.Add(2, 1, 20);
  t.Add(3, 1, 30);
  auto u = t.Observe(Status(1, 20, 0));  // 1 and 2 delivered
  ASSERT_EQ(u.acks.size(), 2u);
  EXPECT_EQ(u.acks[1].level, AckLevel::kDelivered);
  EXPECT_EQ(u.acks[1].sequence_id, 2u);
  // The guest reconnects: epoch 2, whose offsets say nothing of epoch 1.
  u = t.Observe(Status(2, 0, 0));
  EXPECT_TRUE(u.acks.empty());
  ASSERT_EQ(u.rejections.size(), 2u);
  EXPECT_EQ(u.rejections[0].first_sequence_id, 1u);
  EXPECT_EQ(u.rejections[0].last_sequence_id, 2u);
  EXPECT_EQ(u.rejections[0].reached, AckLevel::kDelivered);
  EXPECT_TRUE(u.rejections[0].epoch_changed);
  EXPECT_EQ(u.rejections[0].epoch, 1u);
  EXPECT_EQ(u.rejections[1].first_sequence_id, 3u);
  EXPECT_EQ(u.rejections[1].last_sequence_id, 3u);
  EXPECT_EQ(u.rejections[1].reached, AckLevel::kAccepted);
  EXPECT_TRUE(t.empty());
}

TEST(WriteProgressTrackerTest, NothingAcceptedIsAllZero) {
  WriteProgressTracker p;
  const auto f = p.Observe(Status(3, 100, 100));
  EXPECT_EQ(f.epoch, 0u);
  EXPECT_EQ(f.accepted, 0u);
  EXPECT_EQ(f.delivered, 0u);
}

TEST(WriteProgressTrackerTest, CountsOnlyTheStreamsOwnBytes) {
  WriteProgressTracker p;
  p.Accepted(1, 100, 10);
  p.Accepted(1, 110, 10);
  auto f = p.Observe(Status(1, 90, 50));  // before our first byte
  EXPECT_EQ(f.start_offset, 100u);
  EXPECT_EQ(f.accepted, 20u);
  EXPECT_EQ(f.delivered, 0u);
  f = p.Observe(Status(1, 105, 100));
  EXPECT_EQ(f.delivered, 5u);
  EXPECT_EQ(f.consumed, 0u);
  f = p.Observe(Status(1, 500, 500));  // others' bytes after ours
  EXPECT_EQ(f.delivered, 20u);
  EXPECT_EQ(f.consumed, 20u);
  EXPECT_EQ(WriteProgressTracker::BytesAt(f, AckLevel::kAccepted), 20u);
}

TEST(WriteProgressTrackerTest, KeepsWhatWasSeenAcrossAnEpochChange) {
  WriteProgressTracker p;
  p.Accepted(1, 0, 100);
  auto f = p.Observe(Status(1, 60, 30));
  EXPECT_EQ(f.delivered, 60u);
  f = p.Observe(Status(2, 0, 0));
  EXPECT_EQ(f.epoch, 1u);
  EXPECT_EQ(f.delivered, 60u);
  EXPECT_EQ(f.consumed, 30u);
  EXPECT_EQ(WriteProgressTracker::BytesAt(f, AckLevel::kDelivered), 60u);
  EXPECT_EQ(WriteProgressTracker::BytesAt(f, AckLevel::kConsumed), 30u);
}

TEST(AckTrackerTest, NextProgressNamesTheOldestWriteBelowEachLevel) {
  AckTracker accepted(AckLevel::kAccepted);
  accepted.Add(1, 1, 10);
  EXPECT_EQ(accepted.NextProgress().delivered, 0u);
  EXPECT_EQ(accepted.NextProgress().consumed, 0u);

  AckTracker delivered(AckLevel::kDelivered);
  delivered.Add(1, 1, 10);
  delivered.Add(2, 1, 20);
  AckTracker::Wanted w = delivered.NextProgress();
  EXPECT_EQ(w.epoch, 1u);
  EXPECT_EQ(w.delivered, 10u);
  EXPECT_EQ(w.consumed, 0u);
  delivered.Observe(Status(1, 12, 0));
  EXPECT_EQ(delivered.NextProgress().delivered, 20u);
  delivered.Observe(Status(1, 20, 0));
  EXPECT_TRUE(delivered.empty());
  EXPECT_EQ(delivered.NextProgress().delivered, 0u);

  AckTracker consumed(AckLevel::kConsumed);
  consumed.Add(1, 2, 10);
  consumed.Add(2, 2, 20);
  consumed.Observe(Status(2, 15, 5));
  w = consumed.NextProgress();
  EXPECT_EQ(w.epoch, 2u);
  EXPECT_EQ(w.delivered, 20u);
  EXPECT_EQ(w.consumed, 10u);
  consumed.Observe(Status(2, 20, 10));
  w = consumed.NextProgress();
  EXPECT_EQ(w.delivered, 0u);  // both delivered: only consumption is awaited
  EXPECT_EQ(w.consumed, 20u);
}

}  // namespace
}  // namespace xenchan
