// Unit tests of xenchanctl's argument parsing (//clients/cli:args): the
// command line split, the global options with their environment fallbacks,
// and the flag value parsers, good and bad.
#include "clients/cli/args.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace cli {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// An environment holding exactly `vars`.
Getenv FakeEnv(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

Args MustParse(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = ParseArgs(argv);
  EXPECT_TRUE(args.ok()) << args.status();
  return args.ok() ? *args : Args{};
}

TEST(ParseArgsTest, SplitsPositionalsFromFlagsInAnyOrder) {
  Args args = MustParse(
      {"--output", "json", "create", "guest1", "--wait", "org.example.cli", "--buffer-limit=4096"});
  EXPECT_THAT(args.positional, ElementsAre("create", "guest1", "org.example.cli"));
  EXPECT_THAT(args.flags, UnorderedElementsAre(Pair("output", "json"), Pair("wait", "true"),
                                               Pair("buffer-limit", "4096")));
}

TEST(ParseArgsTest, EmptyCommandLine) {
  Args args = MustParse({});
  EXPECT_TRUE(args.positional.empty());
  EXPECT_TRUE(args.flags.empty());
}

TEST(ParseArgsTest, SwitchesTakeNoValue) {
  for (const char* name : {"domains", "wait", "validate-only", "observer", "takeover", "follow",
                           "fail-fast", "durable", "help"}) {
    EXPECT_TRUE(IsSwitch(name)) << name;
    Args args = MustParse({std::string("--") + name, "next"});
    EXPECT_EQ(args.Get(name), "true") << name;
    EXPECT_THAT(args.positional, ElementsAre("next")) << name;
  }
  EXPECT_FALSE(IsSwitch("from"));
  EXPECT_FALSE(IsSwitch("server"));
}

TEST(ParseArgsTest, ValueFlagTakesTheNextArgumentEvenIfItLooksLikeAFlag) {
  Args args = MustParse({"write", "g/c", "--data", "--follow"});
  EXPECT_EQ(args.Get("data"), "--follow");
  EXPECT_FALSE(args.Has("follow"));
}

TEST(ParseArgsTest, EqualsFormKeepsEmptyValuesAndLaterEquals) {
  Args args = MustParse({"--data=", "--framing=delimiter:a=b"});
  EXPECT_TRUE(args.Has("data"));
  EXPECT_EQ(args.Get("data", "unset"), "");
  EXPECT_EQ(args.Get("framing"), "delimiter:a=b");
}

TEST(ParseArgsTest, RepeatedFlagsKeepEveryValueInOrder) {
  Args args = MustParse({"list", "--state", "connected", "--state=stalled"});
  EXPECT_THAT(args.All("state"), ElementsAre("connected", "stalled"));
  EXPECT_EQ(args.Get("state"), "connected");
  EXPECT_THAT(args.All("prefix"), ElementsAre());
  EXPECT_EQ(args.Get("prefix", "none"), "none");
}

TEST(ParseArgsTest, SingleDashesAndBareDoubleDashArePositional) {
  Args args = MustParse({"-x", "--", "-"});
  EXPECT_THAT(args.positional, ElementsAre("-x", "--", "-"));
  EXPECT_TRUE(args.flags.empty());
}

TEST(ParseArgsTest, ValueFlagAtTheEndIsAnError) {
  absl::StatusOr<Args> args = ParseArgs({"read", "g/c", "--from"});
  EXPECT_EQ(args.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(args.status().message(), "--from needs a value");
}

TEST(ParseChannelUpdateTest, TheMaskNamesExactlyTheFlagsGiven) {
  v1::UpdateChannelRequest req;
  ASSERT_TRUE(ParseChannelUpdate(MustParse({"update", "vm/c", "--overflow", "drop-oldest",
                                            "--buffer-limit", "65536", "--incarnation"}),
                                 &req)
                  .ok());
  EXPECT_THAT(req.update_mask().paths(), ElementsAre("config.buffer_limit_bytes",
                                                     "config.overflow_policy", "config.lifetime"));
  EXPECT_EQ(req.channel().config().buffer_limit_bytes(), 65536u);
  EXPECT_EQ(req.channel().config().overflow_policy(), v1::OVERFLOW_POLICY_DROP_OLDEST);
  EXPECT_EQ(req.channel().config().lifetime(), v1::CHANNEL_LIFETIME_INCARNATION);
  EXPECT_EQ(req.channel().config().write_queue_limit_bytes(), 0u);

  v1::UpdateChannelRequest framing;
  ASSERT_TRUE(ParseChannelUpdate(MustParse({"update", "vm/c", "--framing", "length-prefix",
                                            "--write-queue-limit", "70000", "--durable"}),
                                 &framing)
                  .ok());
  EXPECT_THAT(
      framing.update_mask().paths(),
      ElementsAre("config.write_queue_limit_bytes", "config.default_framing", "config.lifetime"));
  EXPECT_EQ(framing.channel().config().lifetime(), v1::CHANNEL_LIFETIME_DURABLE);
}

TEST(ParseChannelUpdateTest, RefusesNothingToChangeConflictsAndBadValues) {
  v1::UpdateChannelRequest req;
  EXPECT_EQ(ParseChannelUpdate(MustParse({"update", "vm/c"}), &req).code(),
            absl::StatusCode::kInvalidArgument);
  v1::UpdateChannelRequest both;
  EXPECT_EQ(
      ParseChannelUpdate(MustParse({"update", "vm/c", "--durable", "--incarnation"}), &both).code(),
      absl::StatusCode::kInvalidArgument);
  v1::UpdateChannelRequest bad;
  const absl::Status s =
      ParseChannelUpdate(MustParse({"update", "vm/c", "--buffer-limit", "lots"}), &bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "bad --buffer-limit");
}

TEST(GlobalOptionsTest, Defaults) {
  absl::StatusOr<GlobalOptions> options = ParseGlobalOptions(MustParse({"list"}), FakeEnv({}));
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->server, kDefaultServer);
  EXPECT_FALSE(options->json);
  EXPECT_EQ(options->timeout, absl::Seconds(30));
  EXPECT_EQ(options->tls_ca_file, "");
  EXPECT_EQ(options->tls_cert_file, "");
  EXPECT_EQ(options->tls_key_file, "");
  EXPECT_EQ(options->tls_server_name, "");
}

TEST(GlobalOptionsTest, EnvironmentFillsWhatFlagsLeaveUnset) {
  Getenv env = FakeEnv({{"XENCHAN_SERVER", "unix:///tmp/x.sock"},
                        {"XENCHAN_CA", "/env/ca.pem"},
                        {"XENCHAN_CERT", "/env/cert.pem"},
                        {"XENCHAN_KEY", "/env/key.pem"}});
  absl::StatusOr<GlobalOptions> options = ParseGlobalOptions(MustParse({"list"}), env);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->server, "unix:///tmp/x.sock");
  EXPECT_EQ(options->tls_ca_file, "/env/ca.pem");
  EXPECT_EQ(options->tls_cert_file, "/env/cert.pem");
  EXPECT_EQ(options->tls_key_file, "/env/key.pem");

  options = ParseGlobalOptions(
      MustParse({"list", "--server", "host:7000", "--ca", "/f/ca.pem", "--cert=", "--key",
                 "/f/key.pem", "--server-name", "xenchan.example.org"}),
      env);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->server, "host:7000");
  EXPECT_EQ(options->tls_ca_file, "/f/ca.pem");
  EXPECT_EQ(options->tls_cert_file, "");  // An explicit empty flag wins.
  EXPECT_EQ(options->tls_key_file, "/f/key.pem");
  EXPECT_EQ(options->tls_server_name, "xenchan.example.org");
}

TEST(GlobalOptionsTest, EmptyServerFallsBack) {
  absl::StatusOr<GlobalOptions> options =
      ParseGlobalOptions(MustParse({"list", "--server="}), FakeEnv({{"XENCHAN_SERVER", ""}}));
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->server, kDefaultServer);
}

TEST(GlobalOptionsTest, OutputAndTimeout) {
  absl::StatusOr<GlobalOptions> options = ParseGlobalOptions(
      MustParse({"list", "--output", "json", "--timeout", "1m30s"}), FakeEnv({}));
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_TRUE(options->json);
  EXPECT_EQ(options->timeout, absl::Seconds(90));

  options = ParseGlobalOptions(MustParse({"list", "--output=human", "--timeout=0"}), FakeEnv({}));
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_FALSE(options->json);
  EXPECT_EQ(options->timeout, absl::ZeroDuration());
}

TEST(GlobalOptionsTest, BadOutputOrTimeoutIsAnError) {
  absl::StatusOr<GlobalOptions> options =
      ParseGlobalOptions(MustParse({"list", "--output", "yaml"}), FakeEnv({}));
  EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(options.status().message(), "--output must be human or json");

  options = ParseGlobalOptions(MustParse({"list", "--timeout", "soon"}), FakeEnv({}));
  EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(options.status().message(), "bad --timeout");

  // The output is checked first.
  options = ParseGlobalOptions(MustParse({"list", "--timeout=x", "--output=x"}), FakeEnv({}));
  EXPECT_EQ(options.status().message(), "--output must be human or json");
}

TEST(ParseFramingTest, KnownFramings) {
  v1::Framing f;
  ASSERT_TRUE(ParseFraming("newline", &f).ok());
  EXPECT_TRUE(f.has_newline());
  f.Clear();
  ASSERT_TRUE(ParseFraming("length-prefix", &f).ok());
  EXPECT_TRUE(f.has_length_prefix());
  for (const char* qga : {"qemu-guest-agent", "qga"}) {
    f.Clear();
    ASSERT_TRUE(ParseFraming(qga, &f).ok()) << qga;
    EXPECT_TRUE(f.has_qemu_guest_agent()) << qga;
  }
  f.Clear();
  ASSERT_TRUE(ParseFraming("delimiter:\r\n", &f).ok());
  EXPECT_EQ(f.delimiter().delimiter(), "\r\n");
}

TEST(ParseFramingTest, UnknownFramingIsNamed) {
  v1::Framing f;
  absl::Status s = ParseFraming("json-lines", &f);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "unknown framing 'json-lines'");
  EXPECT_FALSE(ParseFraming("", &f).ok());
  EXPECT_FALSE(ParseFraming("Newline", &f).ok());
}

TEST(ParseStartTest, AnchorsAndPositions) {
  v1::ReadStart start;
  EXPECT_TRUE(ParseStart("", &start));
  EXPECT_FALSE(start.has_position());
  EXPECT_EQ(start.anchor(), v1::START_ANCHOR_UNSPECIFIED);

  EXPECT_TRUE(ParseStart("earliest", &start));
  EXPECT_EQ(start.anchor(), v1::START_ANCHOR_EARLIEST);
  start.Clear();
  EXPECT_TRUE(ParseStart("next", &start));
  EXPECT_EQ(start.anchor(), v1::START_ANCHOR_NEXT);
  start.Clear();
  EXPECT_TRUE(ParseStart("3:18446744073709551615", &start));
  EXPECT_EQ(start.position().epoch(), 3u);
  EXPECT_EQ(start.position().offset(), 18446744073709551615u);
}

TEST(ParseStartTest, MalformedPositions) {
  for (const char* bad :
       {"latest", "3", "3:", ":4", "3:4:5", "-1:4", "a:b", "3:18446744073709551616"}) {
    v1::ReadStart start;
    EXPECT_FALSE(ParseStart(bad, &start)) << bad;
  }
}

TEST(ParseChannelStateTest, AnyCaseWithoutPrefix) {
  absl::StatusOr<v1::ChannelState> state = ParseChannelState("connected");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, v1::CHANNEL_STATE_CONNECTED);
  state = ParseChannelState("Connected");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, v1::CHANNEL_STATE_CONNECTED);
}

TEST(ParseChannelStateTest, UnknownStateIsNamed) {
  absl::StatusOr<v1::ChannelState> state = ParseChannelState("asleep");
  EXPECT_EQ(state.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(state.status().message(), "unknown state 'asleep'");
  EXPECT_FALSE(ParseChannelState("CHANNEL_STATE_CONNECTED").ok());
}

TEST(ParseChannelStateTest, DomainDown) {
  EXPECT_EQ(*ParseChannelState("domain_down"), v1::CHANNEL_STATE_DOMAIN_DOWN);
}

TEST(ParseChannelConfigTest, NoFlagsLeaveEverythingUnset) {
  v1::ChannelConfig config;
  ASSERT_TRUE(ParseChannelConfig(MustParse({"create", "guest1", "org.example.cli"}), &config).ok());
  EXPECT_EQ(config.ByteSizeLong(), 0u);
  EXPECT_EQ(config.lifetime(), v1::CHANNEL_LIFETIME_UNSPECIFIED);  // the server's INCARNATION
}

TEST(ParseChannelConfigTest, EveryFlag) {
  v1::ChannelConfig config;
  ASSERT_TRUE(ParseChannelConfig(MustParse({"create", "guest1", "org.example.cli", "--durable",
                                            "--buffer-limit", "65536", "--write-queue-limit=131072",
                                            "--overflow", "drop-oldest", "--framing", "qga"}),
                                 &config)
                  .ok());
  EXPECT_EQ(config.lifetime(), v1::CHANNEL_LIFETIME_DURABLE);
  EXPECT_EQ(config.buffer_limit_bytes(), 65536u);
  EXPECT_EQ(config.write_queue_limit_bytes(), 131072u);
  EXPECT_EQ(config.overflow_policy(), v1::OVERFLOW_POLICY_DROP_OLDEST);
  EXPECT_TRUE(config.default_framing().has_qemu_guest_agent());
}

TEST(ParseChannelConfigTest, DurableIsASwitch) {
  // `--durable` takes no value: the channel id after it stays positional.
  Args args = MustParse({"create", "guest1", "--durable", "org.example.cli"});
  EXPECT_THAT(args.positional, ElementsAre("create", "guest1", "org.example.cli"));
  v1::ChannelConfig config;
  ASSERT_TRUE(ParseChannelConfig(args, &config).ok());
  EXPECT_EQ(config.lifetime(), v1::CHANNEL_LIFETIME_DURABLE);
}

TEST(ParseChannelConfigTest, MalformedFlagsAreNamed) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--buffer-limit", "1MiB"}, "bad --buffer-limit"},
      {{"--write-queue-limit", "-1"}, "bad --write-queue-limit"},
      {{"--overflow", "drop-newest"}, "bad --overflow"},
      {{"--framing", "xml"}, "bad --framing"},
  };
  for (const auto& [flags, message] : cases) {
    std::vector<std::string> argv = {"create", "guest1", "org.example.cli"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    v1::ChannelConfig config;
    absl::Status s = ParseChannelConfig(MustParse(argv), &config);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << message;
    EXPECT_EQ(s.message(), message);
  }
}

TEST(ParseOverflowPolicyTest, GoodAndBad) {
  EXPECT_EQ(*ParseOverflowPolicy("block"), v1::OVERFLOW_POLICY_BLOCK);
  EXPECT_EQ(*ParseOverflowPolicy("drop-oldest"), v1::OVERFLOW_POLICY_DROP_OLDEST);
  absl::StatusOr<v1::OverflowPolicy> bad = ParseOverflowPolicy("drop-newest");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "bad --overflow");
}

TEST(ParseAckLevelTest, GoodAndBad) {
  EXPECT_EQ(*ParseAckLevel("accepted"), v1::ACK_LEVEL_ACCEPTED);
  EXPECT_EQ(*ParseAckLevel("delivered"), v1::ACK_LEVEL_DELIVERED);
  EXPECT_EQ(*ParseAckLevel("consumed"), v1::ACK_LEVEL_CONSUMED);
  absl::StatusOr<v1::AckLevel> bad = ParseAckLevel("read");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "bad --ack");
}

}  // namespace
}  // namespace cli
}  // namespace xenchan
