// Unit tests for the Call framings.
#include "backend/framing/framing.h"

#include <string>

#include "gtest/gtest.h"

namespace xenchan {
namespace {

Framing Newline() { return Framing{}; }
Framing Delim(std::string d) { return Framing{Framing::Kind::kDelimiter, std::move(d)}; }
Framing Prefix() { return Framing{Framing::Kind::kLengthPrefix, ""}; }
Framing Qga() { return Framing{Framing::Kind::kQemuGuestAgent, ""}; }

// Feeds `input` one byte at a time, the hardest split for a decoder.
absl::StatusOr<std::optional<std::string>> FeedBytewise(ResponseDecoder& d,
                                                        const std::string& input) {
  absl::StatusOr<std::optional<std::string>> last = std::nullopt;
  for (char c : input) {
    last = d.Feed(std::string(1, c));
    if (!last.ok() || last->has_value()) return last;
  }
  return last;
}

TEST(FramingTest, NewlineRequestAndCookedResponse) {
  EXPECT_EQ(EncodeCallRequest(Newline(), "ping", 0)->request, "ping\n");
  EXPECT_EQ(EncodeCallRequest(Newline(), "ping\n", 0)->request, "ping\n");
  auto d = NewResponseDecoder(Newline(), 0);
  auto r = FeedBytewise(*d, "pong\r\nextra");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, "pong");  // one CR from a cooked tty is dropped
}

TEST(FramingTest, DelimiterSplitAcrossFeeds) {
  EXPECT_EQ(EncodeCallRequest(Delim("<END>"), "a", 0)->request, "a<END>");
  auto d = NewResponseDecoder(Delim("<END>"), 0);
  EXPECT_FALSE(d->Feed("resp<E")->has_value());
  EXPECT_EQ(d->Partial(), "resp<E");
  auto r = d->Feed("ND>tail");
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ(**r, "resp");
}

TEST(FramingTest, DelimiterMustBeOneToSixteenBytes) {
  EXPECT_EQ(ValidateFraming(Delim("")).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateFraming(Delim(std::string(17, 'x'))).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateFraming(Delim(std::string(16, 'x'))).ok());
}

TEST(FramingTest, LengthPrefixRoundTrip) {
  const std::string body(300, 'b');
  const std::string wire = EncodeCallRequest(Prefix(), body, 0)->request;
  ASSERT_EQ(wire.size(), 304u);
  EXPECT_EQ(wire.substr(0, 4), std::string("\x00\x00\x01\x2c", 4));
  auto d = NewResponseDecoder(Prefix(), 0);
  auto r = FeedBytewise(*d, wire);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, body);
}

TEST(FramingTest, LengthPrefixRefusesHugeLengths) {
  auto d = NewResponseDecoder(Prefix(), 0);
  EXPECT_EQ(d->Feed(std::string("\x7f\xff\xff\xff", 4)).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(FramingTest, RequestSizeIsBounded) {
  EXPECT_EQ(
      EncodeCallRequest(Newline(), std::string(kMaxCallRequestBytes + 1, 'x'), 0).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(FramingTest, NewlineResponseIsBounded) {
  auto d = NewResponseDecoder(Newline(), 0);
  const std::string chunk(64 * 1024, 'x');
  absl::Status last;
  for (int i = 0; i < 20 && last.ok(); ++i) last = d->Feed(chunk).status();
  EXPECT_EQ(last.code(), absl::StatusCode::kResourceExhausted);
}

TEST(FramingTest, QemuGuestAgentResynchronises) {
  const auto call = EncodeCallRequest(Qga(), "{\"execute\":\"guest-ping\"}", 4242);
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->preamble,
            "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":4242}}\n");
  // Nothing after the closing brace: see EncodeCallRequest.
  EXPECT_EQ(call->request, "{\"execute\":\"guest-ping\"}");
  auto d = NewResponseDecoder(Qga(), 4242);
  // Stale output from an earlier command, an old sync reply, then ours: the
  // request may go only once ours is in.
  EXPECT_FALSE(d->ReadyForRequest());
  EXPECT_FALSE(d->Feed("{\"return\": {}}\n\xff{\"return\": 17}\n\xff{\"return\": 42")->has_value());
  EXPECT_FALSE(d->ReadyForRequest());
  EXPECT_FALSE(d->Feed("42}\n")->has_value());
  EXPECT_TRUE(d->ReadyForRequest());
  const std::string guest = "{\"return\": {\"version\": \"7.2\", \"s\": \"}\\\"{\"}}\n";
  auto r = FeedBytewise(*d, guest);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, "{\"return\": {\"version\": \"7.2\", \"s\": \"}\\\"{\"}}");
}

TEST(FramingTest, QemuGuestAgentErrorRepliesAreResponses) {
  auto d = NewResponseDecoder(Qga(), 1);
  auto r = d->Feed("\xff{\"return\":1}{\"error\": {\"class\": \"CommandNotFound\"}}");
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ(**r, "{\"error\": {\"class\": \"CommandNotFound\"}}");
}

TEST(FramingTest, QemuGuestAgentRequestEndsAtItsLastToken) {
  // Trailing whitespace would wait unread in the agent's buffer while it
  // answers (and lose the answer); a request that is no object still needs a
  // newline to end its last token.
  EXPECT_EQ(EncodeCallRequest(Qga(), "{\"execute\":\"guest-ping\"} \r\n", 1)->request,
            "{\"execute\":\"guest-ping\"}");
  EXPECT_EQ(EncodeCallRequest(Qga(), "garbage\n\n", 1)->request, "garbage\n");
}

TEST(FramingTest, OtherFramingsHaveNoPreamble) {
  for (const Framing& f : {Newline(), Prefix(), Delim("\r\n")}) {
    EXPECT_EQ(EncodeCallRequest(f, "x", 1)->preamble, "") << FramingSpec(f);
    EXPECT_TRUE(NewResponseDecoder(f, 1)->ReadyForRequest()) << FramingSpec(f);
  }
}

TEST(FramingTest, QemuGuestAgentRejectsEmptyCommand) {
  EXPECT_EQ(EncodeCallRequest(Qga(), "  \n", 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FramingTest, SpecRoundTripsEveryKind) {
  for (const Framing& f :
       {Newline(), Prefix(), Qga(), Delim("\r\n"), Delim(std::string("\0\xff", 2))}) {
    const std::string spec = FramingSpec(f);
    auto back = ParseFramingSpec(spec);
    ASSERT_TRUE(back.ok()) << spec << ": " << back.status();
    EXPECT_EQ(back->kind, f.kind) << spec;
    EXPECT_EQ(back->delimiter, f.delimiter) << spec;
  }
  EXPECT_EQ(FramingSpec(Qga()), "qemu-guest-agent");
  EXPECT_EQ(FramingSpec(Delim("\r\n")), "delimiter:0d0a");
}

TEST(FramingTest, SpecParserRefusesAnythingElse) {
  for (const char* bad :
       {"", "Newline", "newline ", "qga", "delimiter:", "delimiter:0", "delimiter:0D",
        "delimiter:zz", "delimiter:00112233445566778899aabbccddeeff00"}) {
    EXPECT_EQ(ParseFramingSpec(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace xenchan
