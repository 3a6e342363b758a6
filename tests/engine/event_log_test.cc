// Unit tests of EventLog: revisions, retention and subscribers.
#include "backend/engine/event_log.h"

#include <atomic>

#include "gtest/gtest.h"

namespace xenchan {
namespace {

ChannelEvent Ev(ChannelEventType type) {
  ChannelEvent e;
  e.type = type;
  return e;
}

TEST(EventLog, RevisionsIncreaseFromTheBase) {
  EventLog log(1000, 10);
  EXPECT_EQ(log.revision(), 1000u);
  EXPECT_EQ(log.Append(Ev(ChannelEventType::kAppeared)), 1001u);
  EXPECT_EQ(log.Append(Ev(ChannelEventType::kConnected)), 1002u);
  auto all = log.After(1000, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].type, ChannelEventType::kAppeared);
  EXPECT_EQ((*all)[1].revision, 1002u);
  auto none = log.After(1002, 100);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(log.After(1003, 1).status().code(), absl::StatusCode::kOutOfRange);
  auto one = log.After(1000, 1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
}

TEST(EventLog, OldRevisionsAgeOut) {
  EventLog log(0, 3);
  for (int i = 0; i < 5; ++i) log.Append(Ev(ChannelEventType::kStateChanged));
  EXPECT_EQ(log.After(1, 10).status().code(), absl::StatusCode::kOutOfRange);
  auto kept = log.After(2, 10);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->size(), 3u);
}

TEST(EventLog, SubscribersAreToldUntilUnsubscribed) {
  EventLog log(0, 3);
  std::atomic<int> calls{0};
  const uint64_t id = log.Subscribe([&] { ++calls; });
  log.Append(Ev(ChannelEventType::kGap));
  log.Append(Ev(ChannelEventType::kGap));
  EXPECT_EQ(calls.load(), 2);
  log.Unsubscribe(id);
  log.Append(Ev(ChannelEventType::kGap));
  EXPECT_EQ(calls.load(), 2);
}

}  // namespace
}  // namespace xenchan
