// Tests of the xensim control protocol: codecs and a real socket round trip.
#include "backend/sim/control.h"

#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace xenchan {
namespace sim {
namespace {

TEST(ControlTest, PercentRoundTrip) {
  static const char kRaw[] = "a b\nc%d\x01\xff=,/";
  const std::string raw(kRaw, sizeof(kRaw) - 1);
  const std::string enc = PercentEncode(raw);
  EXPECT_EQ(enc.find(' '), std::string::npos);
  EXPECT_EQ(enc.find('\n'), std::string::npos);
  auto dec = PercentDecode(enc);
  ASSERT_TRUE(dec.ok());
  EXPECT_EQ(*dec, raw);
  EXPECT_FALSE(PercentDecode("%4").ok());
  EXPECT_FALSE(PercentDecode("%").ok());
  EXPECT_FALSE(PercentDecode("%zz").ok());
}

TEST(ControlTest, RequestRoundTrip) {
  ControlRequest req{"create",
                     {{"name", "vm 1"}, {"channel", "name=a,connection=pty"}, {"channel", "x"}}};
  auto back = DecodeRequest(EncodeRequest(req));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->verb, "create");
  EXPECT_EQ(back->Get("name").value(), "vm 1");
  EXPECT_EQ(back->GetAll("channel").size(), 2u);
  EXPECT_FALSE(back->Get("uuid").has_value());
  EXPECT_FALSE(DecodeRequest("").ok());
  EXPECT_FALSE(DecodeRequest("Create").ok());
  EXPECT_FALSE(DecodeRequest("create name").ok());
}

TEST(ControlTest, ReplyRoundTrip) {
  auto ok = DecodeReply(EncodeReply(std::string("3\nline two")));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "3\nline two");
  auto err = DecodeReply(EncodeReply(absl::NotFoundError("no domain 'x y'")));
  EXPECT_EQ(err.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(err.status().message(), "no domain 'x y'");
  EXPECT_EQ(DecodeReply("garbage").status().code(), absl::StatusCode::kInternal);
}

TEST(ControlTest, ServerRoundTrip) {
  // TEST_TMPDIR is usually too long for sun_path; use a fresh short dir.
  char dir[] = "/tmp/xensim-control-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/control.sock";
  auto server =
      ControlServer::Create(path, [](const ControlRequest& r) -> absl::StatusOr<std::string> {
        if (r.verb == "echo") return r.Get("text").value_or("");
        return absl::InvalidArgumentError("unknown verb " + r.verb);
      });
  ASSERT_TRUE(server.ok()) << server.status();
  auto reply = CallControl(path, {"echo", {{"text", "hello world\n"}}}, absl::Seconds(10));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "hello world\n");
  auto bad = CallControl(path, {"nope", {}}, absl::Seconds(10));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  server->reset();
  auto gone = CallControl(path, {"echo", {}}, absl::Seconds(10));
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kUnavailable);
  rmdir(dir);
}

}  // namespace
}  // namespace sim
}  // namespace xenchan
