// Unit tests of the xenstored wire framing and payload helpers.
#include "backend/sim/xenstore/wire.h"

#include <errno.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace xenchan::sim::xenstore {
namespace {

using ::testing::ElementsAre;

TEST(WireTest, EncodesTheXsdSockmsgLayout) {
  const std::string frame = EncodeMessage(XS_READ, 7, 3, std::string("/a\0", 3));
  ASSERT_EQ(frame.size(), kHeaderSize + 3);
  xsd_sockmsg hdr;
  memcpy(&hdr, frame.data(), sizeof(hdr));
  EXPECT_EQ(hdr.type, uint32_t{XS_READ});
  EXPECT_EQ(hdr.req_id, 7u);
  EXPECT_EQ(hdr.tx_id, 3u);
  EXPECT_EQ(hdr.len, 3u);
  EXPECT_EQ(frame.substr(kHeaderSize), std::string("/a\0", 3));
}

TEST(WireTest, ParsesByteByByteAndBackToBack) {
  const std::string a = EncodeMessage(XS_WRITE, 1, 0, std::string("/x\0v", 4));
  const std::string b = EncodeMessage(XS_DIRECTORY, 2, 5, "");
  const std::string both = a + b;
  FrameParser parser;
  std::vector<Message> got;
  for (char ch : both) {
    parser.Append(absl::string_view(&ch, 1));
    while (true) {
      auto next = parser.Next();
      ASSERT_TRUE(next.ok());
      if (!next->has_value()) break;
      got.push_back(**next);
    }
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].type, uint32_t{XS_WRITE});
  EXPECT_EQ(got[0].payload, std::string("/x\0v", 4));
  EXPECT_EQ(got[1].tx_id, 5u);
  EXPECT_EQ(got[1].payload, "");
  EXPECT_EQ(parser.buffered(), 0u);
}

TEST(WireTest, OversizedHeaderIsAnErrorAndMaxIsFine) {
  FrameParser ok;
  ok.Append(EncodeMessage(XS_WRITE, 1, 0, std::string(kPayloadMax, 'a')));
  auto msg = ok.Next();
  ASSERT_TRUE(msg.ok());
  ASSERT_TRUE(msg->has_value());
  xsd_sockmsg hdr{XS_WRITE, 1, 0, kPayloadMax + 1};
  FrameParser bad;
  bad.Append(absl::string_view(reinterpret_cast<char*>(&hdr), sizeof(hdr)));
  EXPECT_FALSE(bad.Next().ok());
}

TEST(WireTest, SplitsNulTerminatedStrings) {
  const std::string payload("a\0bc\0rest", 9);  // Views point into it.
  SplitPayload s = SplitStrings(payload);
  EXPECT_THAT(s.strings, ElementsAre("a", "bc"));
  EXPECT_EQ(s.rest, "rest");
  EXPECT_TRUE(SplitStrings("").strings.empty());
  const std::string nul(1, '\0');
  EXPECT_THAT(SplitStrings(nul).strings, ElementsAre(""));
  const std::string one("/a\0", 3);
  EXPECT_EQ(OneArg(one).value_or("?"), "/a");
  EXPECT_FALSE(OneArg("/a").has_value());
  EXPECT_FALSE(OneArg(std::string("/a\0b\0", 5)).has_value());
  EXPECT_FALSE(OneArg("").has_value());
}

TEST(WireTest, ErrorNamesComeFromXsdErrors) {
  EXPECT_EQ(ErrnoName(ENOENT), "ENOENT");
  EXPECT_EQ(ErrnoName(EAGAIN), "EAGAIN");
  EXPECT_EQ(ErrnoName(12345), "EINVAL");
  EXPECT_EQ(ErrnoFromName("EACCES").value_or(0), EACCES);
  auto err = DecodeMessage(EncodeError(4, 2, E2BIG));
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(err->type, uint32_t{XS_ERROR});
  EXPECT_EQ(err->req_id, 4u);
  EXPECT_EQ(err->payload, std::string("E2BIG\0", 6));
}

TEST(WireTest, AtoiLikeMatchesCAtoi) {
  EXPECT_EQ(AtoiLike("42"), 42);
  EXPECT_EQ(AtoiLike(" 7x"), 7);
  EXPECT_EQ(AtoiLike("-3"), -3);
  EXPECT_EQ(AtoiLike("abc"), 0);
  EXPECT_EQ(AtoiLike(""), 0);
}

}  // namespace
}  // namespace xenchan::sim::xenstore
