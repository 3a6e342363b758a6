// Unit tests of the agent protocol handler: every op, the stable error codes,
// id echo, and provisioning into a temporary target root (files with modes,
// SSH keys for root and for a user from the target's /etc/passwd, hostname),
// with escape attempts refused and invalid requests writing nothing; the
// provisioned record a spec_id leaves, reported by facts.
#include "clients/agent/handler.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/escaping.h"
#include "clients/agent/json.h"
#include "clients/agent/provision_record.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"

namespace xenchan {
namespace agent {
namespace {

using json::Value;

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

int CountFiles(const std::string& dir) {
  int n = 0;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    ++n;
    if (e->d_type == DT_DIR) n += CountFiles(dir + "/" + name);
  }
  closedir(d);
  return n;
}

class HandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = testcommon::MakeTempDir("handler");
    ASSERT_FALSE(base_.empty());
    root_ = base_ + "/guest";
    target_ = base_ + "/target";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root_ + "/etc").c_str(), 0755), 0);
    ASSERT_EQ(mkdir(target_.c_str(), 0755), 0);
    WriteText(root_ + "/etc/os-release",
              "# comment\nNAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID='12'\n"
              "PRETTY_NAME=\"Debian \\\"bookworm\\\"\"\nBROKEN=\"unterminated\n");
    Handler::Options o;
    o.root = root_;
    o.target_root = target_;
    o.max_line_bytes = 4096;
    o.now = [] { return absl::FromUnixSeconds(1714564800); };  // 2024-05-01T12:00:00Z
    auto h = Handler::Create(o);
    ASSERT_TRUE(h.ok()) << h.status();
    handler_ = *std::move(h);
  }

  Value Call(const std::string& line) {
    const std::string reply = handler_->HandleLine(line);
    EXPECT_EQ(reply.find('\n'), std::string::npos) << reply;
    absl::StatusOr<Value> v = json::Parse(reply);
    EXPECT_TRUE(v.ok()) << reply;
    return v.ok() ? *v : Value();
  }

  static std::string ErrorCode(const Value& reply) {
    const Value* ok = reply.Find("ok");
    if (ok == nullptr || ok->bool_value()) return "<ok>";
    return reply.Find("error")->Find("code")->string_value();
  }

  std::string base_, root_, target_;
  std::unique_ptr<Handler> handler_;
};

TEST_F(HandlerTest, PingHelloAndIdEcho) {
  Value pong = Call(R"({"op":"ping"})");
  EXPECT_EQ(json::Serialize(pong),
            std::string("{\"ok\":true,\"op\":\"pong\",\"agent\":\"xenchan-agent\",\"version\":\"") +
                kAgentVersion + "\"}");
  Value with_id = Call(R"({"id":{"n":[7]},"op":"ping"})");
  EXPECT_EQ(json::Serialize(*with_id.Find("id")), "{\"n\":[7]}");
  Value hello = Call(R"({"op":"hello"})");
  EXPECT_TRUE(hello.Find("ok")->bool_value());
  EXPECT_EQ(hello.Find("op")->string_value(), "hello");
  EXPECT_EQ(hello.Find("protocol")->int_value(), kProtocolVersion);
  EXPECT_EQ(hello.Find("max_line_bytes")->int_value(), 4096);
  EXPECT_EQ(hello.Find("ops")->array().size(), 4u);
}

TEST_F(HandlerTest, FactsReportOsReleaseKernelAndUptime) {
  Value facts = Call(R"({"op":"facts"})");
  ASSERT_TRUE(facts.Find("ok")->bool_value()) << json::Serialize(facts);
  const Value* os = facts.Find("os");
  ASSERT_TRUE(os != nullptr && os->is_object());
  EXPECT_EQ(os->Find("id")->string_value(), "debian");
  EXPECT_EQ(os->Find("name")->string_value(), "Debian GNU/Linux");
  EXPECT_EQ(os->Find("version_id")->string_value(), "12");
  EXPECT_EQ(os->Find("pretty_name")->string_value(), "Debian \"bookworm\"");
  EXPECT_FALSE(facts.Find("hostname")->string_value().empty());
  EXPECT_EQ(facts.Find("kernel")->Find("sysname")->string_value(), "Linux");
  EXPECT_GT(facts.Find("uptime_seconds")->number_value(), 0);
}

TEST_F(HandlerTest, FactsWithoutOsReleaseSayNull) {
  ASSERT_EQ(unlink((root_ + "/etc/os-release").c_str()), 0);
  EXPECT_TRUE(Call(R"({"op":"facts"})").Find("os")->is_null());
}

TEST_F(HandlerTest, ProtocolErrorsHaveStableCodes) {
  EXPECT_EQ(ErrorCode(Call("not json")), kParseError);
  EXPECT_EQ(ErrorCode(Call("{\"op\":\"ping\"")), kParseError);
  EXPECT_EQ(ErrorCode(Call("[1,2]")), kInvalidRequest);
  EXPECT_EQ(ErrorCode(Call("{}")), kInvalidRequest);
  EXPECT_EQ(ErrorCode(Call(R"({"op":7})")), kInvalidRequest);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"ping","extra":1})")), kInvalidRequest);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"reboot","id":3})")), kUnknownOp);
  EXPECT_EQ(Call(R"({"op":"reboot","id":3})").Find("id")->int_value(), 3);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","hostnme":"x"})")), kInvalidRequest);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","hostname":"bad_name"})")), kInvalidArgument);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","hostname":"-a"})")), kInvalidArgument);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","hostname":5})")), kInvalidRequest);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","ssh_authorized_keys":"k"})")), kInvalidRequest);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","ssh_authorized_keys":["a\nb"]})")),
            kInvalidArgument);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","user":"root"})")), kInvalidRequest);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","spec_id":7})")), kInvalidRequest);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","spec_id":""})")), kInvalidArgument);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","spec_id":"a b"})")), kInvalidArgument);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","spec_id":"a\u0001"})")), kInvalidArgument);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","spec_id":")" + std::string(129, 'x') + "\"}")),
            kInvalidArgument);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","spec_id":"ok","hostname":"-bad"})")),
            kInvalidArgument);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","files":[{"path":"/a","content":"***"}]})")),
            kInvalidArgument);
  EXPECT_EQ(
      ErrorCode(Call(R"({"op":"provision","files":[{"path":"/a","content":"","mode":"0999"}]})")),
      kInvalidArgument);
  EXPECT_EQ(
      ErrorCode(Call(R"({"op":"provision","files":[{"path":"/a","content":"","mode":2541}]})")),
      kInvalidArgument);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","files":[{"path":"/a","content":"","owner":0}]})")),
            kInvalidRequest);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","files":[{"path":"","content":""}]})")),
            kInvalidArgument);
  EXPECT_EQ(
      ErrorCode(Call(R"({"op":"provision","ssh_authorized_keys":["k"],"user":"nobody-here"})")),
      kUserNotFound);
  // None of that wrote anything.
  EXPECT_EQ(CountFiles(target_), 0);
}

TEST_F(HandlerTest, ProvisionWritesFilesKeysAndHostname) {
  const std::string content = "hello\nworld\n";
  Value reply =
      Call(std::string(R"({"op":"provision","id":"p1","hostname":"web-1.example",)") +
           R"("ssh_authorized_keys":["ssh-ed25519 AAAAC3 alice@x"," ssh-rsa AAAAB3 bob "],)" +
           R"("files":[{"path":"/etc/motd","content":")" + absl::Base64Escape(content) +
           R"(","mode":"0640"},{"path":"opt/app/run.sh","content":"IyEvYmluL3NoCg==",)" +
           R"("mode":493}]})");
  ASSERT_TRUE(reply.Find("ok")->bool_value()) << json::Serialize(reply);
  EXPECT_EQ(reply.Find("op")->string_value(), "provisioned");
  EXPECT_EQ(reply.Find("id")->string_value(), "p1");
  EXPECT_EQ(json::Serialize(*reply.Find("written")),
            R"(["/etc/motd","/opt/app/run.sh","/root/.ssh/authorized_keys","/etc/hostname"])");
  EXPECT_EQ(testcommon::ReadFileOrEmpty(target_ + "/etc/motd"), content);
  EXPECT_EQ(ModeOf(target_ + "/etc/motd"), 0640u);
  EXPECT_EQ(testcommon::ReadFileOrEmpty(target_ + "/opt/app/run.sh"), "#!/bin/sh\n");
  EXPECT_EQ(ModeOf(target_ + "/opt/app/run.sh"), 0755u);
  EXPECT_EQ(testcommon::ReadFileOrEmpty(target_ + "/root/.ssh/authorized_keys"),
            "ssh-ed25519 AAAAC3 alice@x\nssh-rsa AAAAB3 bob\n");
  EXPECT_EQ(ModeOf(target_ + "/root/.ssh/authorized_keys"), 0600u);
  EXPECT_EQ(ModeOf(target_ + "/root/.ssh"), 0700u);
  EXPECT_EQ(testcommon::ReadFileOrEmpty(target_ + "/etc/hostname"), "web-1.example\n");
  EXPECT_EQ(ModeOf(target_ + "/etc/hostname"), 0644u);
}

TEST_F(HandlerTest, ProvisionKeysForUserFromTargetPasswd) {
  ASSERT_EQ(mkdir((target_ + "/etc").c_str(), 0755), 0);
  // The test's own uid and gid, so that the chown a root agent does works
  // here too (tests may run as root in a user namespace without uid 1000).
  const std::string ids = std::to_string(getuid()) + ":" + std::to_string(getgid());
  WriteText(target_ + "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\ndeploy:x:" + ids + ":Deploy:/home/deploy:/bin/sh\n");
  Value reply =
      Call(R"({"op":"provision","user":"deploy","ssh_authorized_keys":["ssh-ed25519 K d"]})");
  ASSERT_TRUE(reply.Find("ok")->bool_value()) << json::Serialize(reply);
  EXPECT_EQ(json::Serialize(*reply.Find("written")), R"(["/home/deploy/.ssh/authorized_keys"])");
  EXPECT_EQ(testcommon::ReadFileOrEmpty(target_ + "/home/deploy/.ssh/authorized_keys"),
            "ssh-ed25519 K d\n");
  EXPECT_EQ(ModeOf(target_ + "/home/deploy/.ssh"), 0700u);
  EXPECT_EQ(ModeOf(target_ + "/home/deploy/.ssh/authorized_keys"), 0600u);
  EXPECT_EQ(ModeOf(target_ + "/home"), 0755u);
  struct stat st;
  ASSERT_EQ(stat((target_ + "/home/deploy/.ssh/authorized_keys").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, getuid());
}

TEST_F(HandlerTest, ProvisionEscapesAreRefused) {
  const std::string outside = base_ + "/outside";
  ASSERT_EQ(mkdir(outside.c_str(), 0755), 0);
  ASSERT_EQ(symlink(outside.c_str(), (target_ + "/etc").c_str()), 0);
  // "..", a symlinked directory (also for the hostname and SSH keys).
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","files":[{"path":"../outside/x","content":""}]})")),
            kPathNotAllowed);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","files":[{"path":"/a/../../x","content":""}]})")),
            kPathNotAllowed);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","files":[{"path":"/etc/x","content":""}]})")),
            kPathNotAllowed);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","hostname":"h"})")), kPathNotAllowed);
  ASSERT_EQ(symlink(outside.c_str(), (target_ + "/root").c_str()), 0);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","ssh_authorized_keys":["k"]})")), kPathNotAllowed);
  EXPECT_EQ(CountFiles(outside), 0);
}

TEST_F(HandlerTest, SpecIdIsRecordedAfterSuccessAndReportedByFacts) {
  EXPECT_TRUE(Call(R"({"op":"facts"})").Find("provisioned")->is_null());
  Value reply = Call(R"({"op":"provision","id":1,"spec_id":"sha:abc","hostname":"h1"})");
  ASSERT_TRUE(reply.Find("ok")->bool_value()) << json::Serialize(reply);
  EXPECT_EQ(json::Serialize(*reply.Find("provisioned")),
            R"({"spec_id":"sha:abc","at":"2024-05-01T12:00:00Z"})");
  EXPECT_EQ(json::Serialize(*reply.Find("written")), R"(["/etc/hostname"])");
  EXPECT_EQ(json::Serialize(*Call(R"({"op":"facts"})").Find("provisioned")),
            R"({"spec_id":"sha:abc","at":"2024-05-01T12:00:00Z"})");
  EXPECT_EQ(ModeOf(target_ + kProvisionRecordPath), 0644u);
  // A provision without a spec_id removes the record: what is applied is no
  // longer what the id names.
  ASSERT_TRUE(Call(R"({"op":"provision","hostname":"h2"})").Find("ok")->bool_value());
  EXPECT_TRUE(Call(R"({"op":"facts"})").Find("provisioned")->is_null());
  EXPECT_EQ(testcommon::ReadFileOrEmpty(target_ + "/etc/hostname"), "h2\n");
}

TEST_F(HandlerTest, FailedProvisionLeavesNoRecord) {
  ASSERT_TRUE(
      Call(R"({"op":"provision","spec_id":"v1","hostname":"h1"})").Find("ok")->bool_value());
  // The hostname's directory becomes a link out of the target: writing
  // fails after validation, and the old record must not survive it.
  const std::string outside = base_ + "/outside";
  ASSERT_EQ(mkdir(outside.c_str(), 0755), 0);
  ASSERT_EQ(rename((target_ + "/etc").c_str(), (base_ + "/old-etc").c_str()), 0);
  ASSERT_EQ(symlink(outside.c_str(), (target_ + "/etc").c_str()), 0);
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","spec_id":"v2","hostname":"h2"})")),
            kPathNotAllowed);
  EXPECT_TRUE(Call(R"({"op":"facts"})").Find("provisioned")->is_null());
  // A tampered record reads as none.
  ASSERT_EQ(unlink((target_ + "/etc").c_str()), 0);
  ASSERT_TRUE(testcommon::WriteFileAtomically(target_ + kProvisionRecordPath,
                                              R"({"spec_id":"v 1","at":"now"})"));
  EXPECT_TRUE(Call(R"({"op":"facts"})").Find("provisioned")->is_null());
}

TEST(HandlerHelpersTest, Hostnames) {
  EXPECT_TRUE(IsValidHostname("a"));
  EXPECT_TRUE(IsValidHostname("web-1.example.com"));
  EXPECT_FALSE(IsValidHostname(""));
  EXPECT_FALSE(IsValidHostname("a..b"));
  EXPECT_FALSE(IsValidHostname("a.-b"));
  EXPECT_FALSE(IsValidHostname(std::string(64, 'a')));
  EXPECT_FALSE(IsValidHostname("a b"));
}

TEST(HandlerHelpersTest, ErrorReplyShape) {
  EXPECT_EQ(ErrorReply(kLineTooLong, "too long"),
            R"({"ok":false,"error":{"code":"LINE_TOO_LONG","message":"too long"}})");
}

}  // namespace
}  // namespace agent
}  // namespace xenchan
