// Unit tests of the engine <-> proto conversions (server/convert.h): times
// that have not happened yet stay unset, as the API promises; every value of
// the state, reason and lifetime enums maps both ways; a channel's config is
// reported with its defaults filled in.
#include "server/convert.h"

#include <optional>
#include <set>

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

TEST(ConvertTest, EveryChannelStateMapsBothWays) {
  for (int v = v1::ChannelState_MIN; v <= v1::ChannelState_MAX; ++v) {
    if (!v1::ChannelState_IsValid(v) || v == v1::CHANNEL_STATE_UNSPECIFIED) continue;
    const auto proto = static_cast<v1::ChannelState>(v);
    std::optional<ChannelState> engine = FromProto(proto);
    ASSERT_TRUE(engine.has_value()) << v1::ChannelState_Name(proto);
    EXPECT_EQ(ToProto(*engine), proto) << v1::ChannelState_Name(proto);
  }
  EXPECT_EQ(ToProto(ChannelState::kDomainDown), v1::CHANNEL_STATE_DOMAIN_DOWN);
  EXPECT_EQ(FromProto(v1::CHANNEL_STATE_DOMAIN_DOWN), ChannelState::kDomainDown);
  EXPECT_FALSE(FromProto(v1::CHANNEL_STATE_UNSPECIFIED).has_value());
  EXPECT_FALSE(FromProto(static_cast<v1::ChannelState>(99)).has_value());
}

TEST(ConvertTest, EveryDomainStateIsReported) {
  EXPECT_EQ(ToProto(DomainState::kRunning), v1::DOMAIN_STATE_RUNNING);
  EXPECT_EQ(ToProto(DomainState::kDying), v1::DOMAIN_STATE_DYING);
  EXPECT_EQ(ToProto(DomainState::kNotRunning), v1::DOMAIN_STATE_NOT_RUNNING);
  std::set<int> reported;
  for (DomainState s : {DomainState::kRunning, DomainState::kDying, DomainState::kNotRunning}) {
    reported.insert(ToProto(s));
  }
  for (int v = v1::DomainState_MIN; v <= v1::DomainState_MAX; ++v) {
    if (!v1::DomainState_IsValid(v) || v == v1::DOMAIN_STATE_UNSPECIFIED) continue;
    EXPECT_EQ(reported.count(v), 1u) << v1::DomainState_Name(static_cast<v1::DomainState>(v));
  }
}

TEST(ConvertTest, DomainNotRunningKeepsItsUuidAndLastName) {
  DomainInfo info;
  info.uuid = "6f1a3c52-8a55-4d2e-9b7e-0123456789ab";
  info.name = "web1";
  info.domid = 0;
  info.state = DomainState::kNotRunning;
  info.channel_count = 2;
  v1::Domain out;
  ToProto(info, &out);
  EXPECT_EQ(out.name(), "domains/6f1a3c52-8a55-4d2e-9b7e-0123456789ab");
  EXPECT_EQ(out.display_name(), "web1");
  EXPECT_EQ(out.domid(), 0u);
  EXPECT_EQ(out.state(), v1::DOMAIN_STATE_NOT_RUNNING);
  EXPECT_EQ(out.channel_count(), 2u);
}

TEST(ConvertTest, EveryEpochChangeReasonIsReported) {
  EXPECT_EQ(ToProto(EpochChangeReason::kUnspecified), v1::EPOCH_CHANGE_REASON_UNSPECIFIED);
  EXPECT_EQ(ToProto(EpochChangeReason::kGuestConnected), v1::EPOCH_CHANGE_REASON_GUEST_CONNECTED);
  EXPECT_EQ(ToProto(EpochChangeReason::kGuestResumed), v1::EPOCH_CHANGE_REASON_GUEST_RESUMED);
  EXPECT_EQ(ToProto(EpochChangeReason::kTransportReopened),
            v1::EPOCH_CHANGE_REASON_TRANSPORT_REOPENED);
  EXPECT_EQ(ToProto(EpochChangeReason::kServerRestarted), v1::EPOCH_CHANGE_REASON_SERVER_RESTARTED);
  EXPECT_EQ(ToProto(EpochChangeReason::kDomainRebooted), v1::EPOCH_CHANGE_REASON_DOMAIN_REBOOTED);
  EXPECT_EQ(ToProto(EpochChangeReason::kDomainRestored), v1::EPOCH_CHANGE_REASON_DOMAIN_RESTORED);
  EXPECT_EQ(ToProto(EpochChangeReason::kDomainMigrated), v1::EPOCH_CHANGE_REASON_DOMAIN_MIGRATED);

  // Each proto reason is reported for exactly one engine reason.
  std::set<int> reported;
  for (EpochChangeReason r :
       {EpochChangeReason::kUnspecified, EpochChangeReason::kGuestConnected,
        EpochChangeReason::kGuestResumed, EpochChangeReason::kTransportReopened,
        EpochChangeReason::kServerRestarted, EpochChangeReason::kDomainRebooted,
        EpochChangeReason::kDomainRestored, EpochChangeReason::kDomainMigrated}) {
    EXPECT_TRUE(reported.insert(ToProto(r)).second) << static_cast<int>(r);
  }
  for (int v = v1::EpochChangeReason_MIN; v <= v1::EpochChangeReason_MAX; ++v) {
    if (!v1::EpochChangeReason_IsValid(v)) continue;
    EXPECT_EQ(reported.count(v), 1u)
        << v1::EpochChangeReason_Name(static_cast<v1::EpochChangeReason>(v));
  }

  EpochChange change;
  change.previous_epoch = 3;
  change.epoch = 4;
  change.previous_end_offset = 120;
  change.reason = EpochChangeReason::kDomainRestored;
  v1::EpochChange out;
  ToProto(change, &out);
  EXPECT_EQ(out.reason(), v1::EPOCH_CHANGE_REASON_DOMAIN_RESTORED);
  EXPECT_EQ(out.previous_end_offset(), 120u);
}

TEST(ConvertTest, LifetimeMapsBothWays) {
  EXPECT_EQ(ToProto(ChannelLifetime::kIncarnation), v1::CHANNEL_LIFETIME_INCARNATION);
  EXPECT_EQ(ToProto(ChannelLifetime::kDurable), v1::CHANNEL_LIFETIME_DURABLE);
  EXPECT_EQ(FromProto(v1::CHANNEL_LIFETIME_INCARNATION), ChannelLifetime::kIncarnation);
  EXPECT_EQ(FromProto(v1::CHANNEL_LIFETIME_DURABLE), ChannelLifetime::kDurable);
  // UNSPECIFIED leaves the engine default (INCARNATION) to apply.
  EXPECT_FALSE(FromProto(v1::CHANNEL_LIFETIME_UNSPECIFIED).has_value());
  EXPECT_FALSE(FromProto(static_cast<v1::ChannelLifetime>(99)).has_value());
}

TEST(ConvertTest, RequestConfigBecomesEngineConfig) {
  v1::ChannelConfig proto;
  proto.set_buffer_limit_bytes(65536);
  proto.set_overflow_policy(v1::OVERFLOW_POLICY_DROP_OLDEST);
  proto.set_write_queue_limit_bytes(131072);
  proto.mutable_default_framing()->mutable_length_prefix();
  proto.set_lifetime(v1::CHANNEL_LIFETIME_DURABLE);
  ChannelConfig c = FromProto(proto);
  EXPECT_EQ(c.buffer_limit_bytes, 65536u);
  EXPECT_EQ(c.overflow_policy, OverflowPolicy::kDropOldest);
  EXPECT_EQ(c.write_queue_limit_bytes, 131072u);
  ASSERT_TRUE(c.default_framing.has_value());
  EXPECT_EQ(c.default_framing->kind, Framing::Kind::kLengthPrefix);
  EXPECT_EQ(c.lifetime, ChannelLifetime::kDurable);

  proto.set_lifetime(v1::CHANNEL_LIFETIME_INCARNATION);
  EXPECT_EQ(FromProto(proto).lifetime, ChannelLifetime::kIncarnation);

  // Proto defaults leave every engine field unset, so the engine's apply.
  ChannelConfig defaults = FromProto(v1::ChannelConfig());
  EXPECT_EQ(defaults.buffer_limit_bytes, 0u);
  EXPECT_FALSE(defaults.overflow_policy.has_value());
  EXPECT_EQ(defaults.write_queue_limit_bytes, 0u);
  EXPECT_FALSE(defaults.default_framing.has_value());
  EXPECT_FALSE(defaults.lifetime.has_value());
}

TEST(ConvertTest, ChannelReportsItsEffectiveConfig) {
  ChannelInfo info;  // nothing set: every default is reported, never UNSPECIFIED
  v1::Channel out;
  ToProto(info, &out);
  EXPECT_EQ(out.config().overflow_policy(), v1::OVERFLOW_POLICY_BLOCK);
  EXPECT_TRUE(out.config().default_framing().has_newline());
  EXPECT_EQ(out.config().lifetime(), v1::CHANNEL_LIFETIME_INCARNATION);

  info.config.lifetime = ChannelLifetime::kDurable;
  info.state = ChannelState::kDomainDown;
  info.uid = "0d7c2b9e-4a1f-4c3e-8e5d-abcdefabcdef";
  ToProto(info, &out);
  EXPECT_EQ(out.config().lifetime(), v1::CHANNEL_LIFETIME_DURABLE);
  EXPECT_EQ(out.state(), v1::CHANNEL_STATE_DOMAIN_DOWN);
  EXPECT_EQ(out.uid(), "0d7c2b9e-4a1f-4c3e-8e5d-abcdefabcdef");
}

}  // namespace
}  // namespace server
}  // namespace xenchan
