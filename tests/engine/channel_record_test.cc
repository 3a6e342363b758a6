// Unit tests of a ring channel's recorded settings
// (backend/engine/channel_record.h): what a hot-add writes, recovery reads.
#include "backend/engine/channel_record.h"

#include <map>
#include <string>

#include "backend/engine/xenstore_layout.h"
#include "backend/util/api_limits.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace {

std::map<std::string, std::string> AsMap(const std::vector<XsNode>& nodes) {
  return std::map<std::string, std::string>(nodes.begin(), nodes.end());
}

ChannelConfig Parse(const std::map<std::string, std::string>& nodes) {
  return ParseChannelConfigNodes([&](absl::string_view node) {
    auto it = nodes.find(std::string(node));
    return it == nodes.end() ? std::string() : it->second;
  });
}

TEST(ChannelRecord, WritesOurPrivateNodes) {
  ChannelConfig config;
  config.buffer_limit_bytes = 4096;
  config.overflow_policy = OverflowPolicy::kDropOldest;
  config.write_queue_limit_bytes = 8192;
  config.default_framing = Framing{};
  const std::vector<XsNode> nodes = ChannelConfigNodes(config);
  ASSERT_EQ(nodes.size(), 4u);
  EXPECT_EQ(nodes[0], XsNode(kBufferLimitNode, "4096"));
  EXPECT_EQ(nodes[1], XsNode(kOverflowNode, "drop-oldest"));
  EXPECT_EQ(nodes[2], XsNode(kWriteQueueLimitNode, "8192"));
  EXPECT_EQ(nodes[3].first, kFramingNode);
  EXPECT_EQ(nodes[3].second, FramingSpec(Framing{}));
}

TEST(ChannelRecord, RoundTrips) {
  for (OverflowPolicy policy : {OverflowPolicy::kBlock, OverflowPolicy::kDropOldest}) {
    ChannelConfig config;
    config.buffer_limit_bytes = kMaxBufferLimitBytes;
    config.write_queue_limit_bytes = kMaxWriteQueueLimitBytes;
    config.overflow_policy = policy;
    Framing framing;
    if (policy == OverflowPolicy::kDropOldest) framing.kind = Framing::Kind::kQemuGuestAgent;
    config.default_framing = framing;
    const ChannelConfig back = Parse(AsMap(ChannelConfigNodes(config)));
    EXPECT_EQ(back.buffer_limit_bytes, config.buffer_limit_bytes);
    EXPECT_EQ(back.overflow_policy, config.overflow_policy);
    EXPECT_EQ(back.write_queue_limit_bytes, config.write_queue_limit_bytes);
    ASSERT_TRUE(back.default_framing.has_value());
    EXPECT_EQ(FramingSpec(*back.default_framing), FramingSpec(*config.default_framing));
  }
}

TEST(ChannelRecord, AWriteQueueLimitAboveTheApiLimitTakesTheDefault) {
  const ChannelConfig back =
      Parse({{kWriteQueueLimitNode, std::to_string(kMaxWriteQueueLimitBytes + 1)}});
  EXPECT_EQ(back.write_queue_limit_bytes, 0u);
}

TEST(ChannelRecord, MissingNodesTakeTheDefaults) {
  const ChannelConfig back = Parse({});
  EXPECT_EQ(back.buffer_limit_bytes, 0u);
  EXPECT_FALSE(back.overflow_policy.has_value());
  EXPECT_EQ(back.write_queue_limit_bytes, 0u);
  EXPECT_FALSE(back.default_framing.has_value());
}

TEST(ChannelRecord, GarbageAndOverLimitValuesTakeTheDefaults) {
  const ChannelConfig back = Parse({{kBufferLimitNode, std::to_string(kMaxBufferLimitBytes + 1)},
                                    {kWriteQueueLimitNode, "-5"},
                                    {kOverflowNode, "Block"},
                                    {kFramingNode, "no such framing"}});
  EXPECT_EQ(back.buffer_limit_bytes, 0u);
  EXPECT_EQ(back.write_queue_limit_bytes, 0u);
  EXPECT_FALSE(back.overflow_policy.has_value());
  EXPECT_FALSE(back.default_framing.has_value());
}

}  // namespace
}  // namespace xenchan
