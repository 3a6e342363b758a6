// The generated C++ API compiles, links and round-trips a message.
#include "gtest/gtest.h"
#include "xenchan/v1/channel_service.grpc.pb.h"

namespace {

TEST(CcApiTest, ServiceAndMessagesAreGenerated) {
  EXPECT_STREQ(xenchan::v1::ChannelService::service_full_name(), "xenchan.v1.ChannelService");
  xenchan::v1::GetChannelRequest request;
  request.set_name("domains/demo/channels/org.example.agent.0");
  xenchan::v1::GetChannelRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(request.SerializeAsString()));
  EXPECT_EQ(parsed.name(), request.name());
}

}  // namespace
