// Unit tests of the engine -> proto conversions (server/convert.h) where the
// API promises presence: times that have not happened yet stay unset.
#include "server/convert.h"

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace server {
namespace {

TEST(ConvertTest, ChannelThatNeverConnectedHasNoConnectTime) {
  ChannelInfo info;  // as validate_only answers and fresh channels report it
  info.create_time = absl::FromUnixSeconds(1700000000);
  v1::Channel out;
  ToProto(info, &out);
  EXPECT_FALSE(out.has_connect_time());
  EXPECT_TRUE(out.has_create_time());
  EXPECT_EQ(out.create_time().seconds(), 1700000000);
  EXPECT_FALSE(out.has_last_error());
}

TEST(ConvertTest, ConnectedChannelReportsItsConnectTime) {
  ChannelInfo info;
  info.connect_time = absl::FromUnixMillis(1700000000250);
  v1::Channel out;
  ToProto(info, &out);
  ASSERT_TRUE(out.has_connect_time());
  EXPECT_EQ(out.connect_time().seconds(), 1700000000);
  EXPECT_EQ(out.connect_time().nanos(), 250000000);
}

TEST(ConvertTest, UnknownTimesLeaveEveryOptionalTimestampUnset) {
  LeaseHolder holder;
  holder.acquire_time = absl::InfinitePast();
  v1::LeaseHolder lease;
  ToProto(holder, &lease);
  EXPECT_FALSE(lease.has_acquire_time());

  EpochChange change;
  change.time = absl::InfinitePast();
  v1::EpochChange epoch;
  ToProto(change, &epoch);
  EXPECT_FALSE(epoch.has_time());

  v1::Channel channel;
  SetTimeIfKnown(absl::InfiniteFuture(), &channel, &v1::Channel::mutable_connect_time);
  EXPECT_FALSE(channel.has_connect_time());
}

TEST(ConvertTest, TimesBeforeTheEpochKeepNanosInRange) {
  v1::Channel channel;
  SetTimeIfKnown(absl::FromUnixMillis(-1500), &channel, &v1::Channel::mutable_create_time);
  ASSERT_TRUE(channel.has_create_time());
  EXPECT_EQ(channel.create_time().seconds(), -2);
  EXPECT_EQ(channel.create_time().nanos(), 500000000);
}

}  // namespace
}  // namespace server
}  // namespace xenchan
