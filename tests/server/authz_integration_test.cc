// xenchand's authorization end to end: the real binary with a policy file,
// callers identified by mTLS client certificates (a test PKI made with
// openssl) and by SO_PEERCRED on the Unix socket. For every RPC an allowed
// and a denied call; listing and watching filtered; PERMISSION_DENIED that
// does not reveal whether a resource exists; unauthenticated plaintext;
// policy reload on file change and on SIGHUP, a malformed policy refused with
// the old one in force; audit lines with their fields, and audit log
// rotation on SIGHUP.
//
// Identities (tests/server/make_test_certs.sh) and what the policy grants:
//   Unix socket, our uid        everything (the fixture's administrator)
//   uri: spiffe://xenchan.test/ctl   read,write,call,manage on guest1's
//                               org.example.* (no admin, nothing on guest2)
//   dns: dns:ctl.example.org    read on org.example.open of every domain
//   cn:  cn:provisioner         call on guest1's org.example.open
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "clients/lib/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/common/io.h"
#include "tests/common/xenchan_integration_test.h"
#include "tests/server/test_pki.h"

namespace xenchan {
namespace {

using client::Client;
using client::MetadataOf;
using client::ReasonOf;
using servertest::TestPki;
using testcommon::ReadFileOrEmpty;
using testcommon::WriteFileAtomically;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

std::string PolicyText(const std::string& extra = "") {
  return absl::StrCat(
      "[identity unix:uid=", getuid(), "]\n",
      "allow verbs=* domain=* channel=*\n"
      "[identity spiffe://xenchan.test/ctl]\n"
      "allow verbs=read,write,call,manage domain=name:guest1 channel=org.example.*\n"
      "[identity dns:ctl.example.org]\n"
      "allow verbs=read domain=* channel=org.example.open\n",
      extra,
      "[identity cn:provisioner]\n"
      "allow verbs=call domain=name:guest1 channel=org.example.open\n");
}

// client_ is the admin: the test's own uid on the Unix socket, granted
// everything by the policy.
class AuthzTest : public testcommon::XenchanIntegrationTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartXensim({"guest1", "guest2"}));
    auto pki = servertest::MakeTestPki(sim_->scratch_dir() + "/pki");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    const std::string dir = sim_->scratch_dir() + "/etc";
    ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
    policy_path_ = dir + "/policy.conf";
    audit_path_ = sim_->scratch_dir() + "/audit.log";
    ASSERT_TRUE(WriteFileAtomically(policy_path_, PolicyText()));
    std::vector<std::string> flags = pki_.ServerFlags();
    flags.push_back("--policy=" + policy_path_);
    flags.push_back("--audit-log=" + audit_path_);
    flags.push_back("--audit-fsync-interval=0s");
    flags.push_back("--listen=insecure-tcp://127.0.0.1:0");
    ASSERT_NO_FATAL_FAILURE(StartServer(flags, "127.0.0.1:0", WithTimeouts({})));
    ctl_ = Connect(server_->tcp_target(), pki_.ClientOptions("uri"));
    reader_ = Connect(server_->tcp_target(), pki_.ClientOptions("dns"));
    prov_ = Connect(server_->tcp_target(), pki_.ClientOptions("cn"));
    ASSERT_TRUE(ctl_ && reader_ && prov_);
    for (const auto& [guest, id] :
         std::vector<std::pair<std::string, std::string>>{{"guest1", "org.example.open"},
                                                          {"guest1", "org.example.secret"},
                                                          {"guest2", "org.example.open"}}) {
      CreateConnectedChannel(guest, id);
      ASSERT_FALSE(HasFailure());
    }
  }

  void TearDown() override {
    ctl_.reset();
    reader_.reset();
    prov_.reset();
    XenchanIntegrationTest::TearDown();
  }

  static client::ConnectOptions WithTimeouts(client::ConnectOptions options) {
    options.unary_timeout = absl::Seconds(20);
    options.stream_timeout = absl::Seconds(30);
    return options;
  }

  std::unique_ptr<Client> Connect(const std::string& target, client::ConnectOptions options) {
    return XenchanIntegrationTest::Connect(target, WithTimeouts(options));
  }

  static void ExpectDenied(const absl::Status& s, const std::string& verb,
                           const std::string& what) {
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << what << ": " << s;
    EXPECT_EQ(ReasonOf(s), "PERMISSION_DENIED") << what;
    EXPECT_EQ(MetadataOf(s)["verb"], verb) << what;
  }

  // Opens an Attach stream and returns the first response's status: OK once
  // `opened` arrives, else the stream's error.
  absl::Status AttachOpen(Client& c, const std::string& name, v1::SessionRole role,
                          bool takeover = false) {
    auto stream = c.Attach(absl::Seconds(20));
    v1::AttachRequest open;
    open.mutable_open()->set_channel(name);
    open.mutable_open()->set_role(role);
    open.mutable_open()->set_takeover(takeover);
    stream->Send(open);
    v1::AttachResponse first;
    if (stream->Receive(&first) && first.has_opened()) {
      stream->HalfClose();
      while (stream->Receive(&first)) {
      }
      absl::Status end = stream->Finish();
      return end.ok() ? absl::OkStatus() : end;
    }
    return stream->Finish();
  }

  absl::StatusOr<v1::WriteResponse> WriteOnce(Client& c, const std::string& name,
                                              const std::string& data, bool takeover = false) {
    v1::WriteRequest first;
    first.set_channel(name);
    first.set_data(data);
    first.set_takeover(takeover);
    return c.Write(
        first, [](std::string*) { return false; }, absl::Seconds(20));
  }

  absl::Status ReadOnce(Client& c, const std::string& name) {
    v1::ReadRequest req;
    req.set_channel(name);
    return c.Read(req, [](const v1::ReadResponse&) { return true; });
  }

  std::vector<std::string> ChannelNames(const absl::StatusOr<std::vector<v1::Channel>>& list) {
    std::vector<std::string> out;
    if (!list.ok()) return out;
    for (const v1::Channel& c : *list)
      out.push_back("domains/" + c.domain_uuid() + "/" + c.channel_id());
    return out;
  }

  // Waits until the audit log holds a line containing every one of `parts`.
  std::string AwaitAuditLine(const std::vector<std::string>& parts, const std::string& path = "") {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    do {
      for (absl::string_view line :
           absl::StrSplit(ReadFileOrEmpty(path.empty() ? audit_path_ : path), '\n')) {
        bool all = true;
        for (const std::string& p : parts) all = all && absl::StrContains(line, p);
        if (all) return std::string(line);
      }
      absl::SleepFor(absl::Milliseconds(20));  // polling a file; bounded by the deadline
    } while (absl::Now() < deadline);
    return "";
  }

  TestPki pki_;
  std::string policy_path_;
  std::string audit_path_;
  std::unique_ptr<Client> ctl_, reader_, prov_;
};

TEST_F(AuthzTest, ListDomainsShowsDomainsWithAnyVerbAndGetDomainChecksIt) {
  auto names = [](const absl::StatusOr<std::vector<v1::Domain>>& d) {
    std::vector<std::string> out;
    if (d.ok()) {
      for (const auto& x : *d) out.push_back(x.display_name());
    }
    return out;
  };
  EXPECT_THAT(names(client_->ListDomains()), UnorderedElementsAre("guest1", "guest2"));
  EXPECT_THAT(names(reader_->ListDomains()), UnorderedElementsAre("guest1", "guest2"));
  EXPECT_THAT(names(ctl_->ListDomains()), UnorderedElementsAre("guest1"));
  EXPECT_THAT(names(prov_->ListDomains()), UnorderedElementsAre("guest1"));

  EXPECT_TRUE(ctl_->GetDomain("domains/guest1").ok());
  ExpectDenied(ctl_->GetDomain("domains/guest2").status(), "any", "ctl GetDomain guest2");
  // Denied the same way whether or not the domain exists.
  ExpectDenied(ctl_->GetDomain("domains/nope").status(), "any", "ctl GetDomain nope");
  // A caller whose rules cover any domain learns that it does not exist.
  EXPECT_EQ(ReasonOf(reader_->GetDomain("domains/nope").status()), "DOMAIN_NOT_FOUND");
}

TEST_F(AuthzTest, ListChannelsAndGetChannelNeedRead) {
  auto guest1 = client_->GetDomain("domains/guest1");
  auto guest2 = client_->GetDomain("domains/guest2");
  ASSERT_TRUE(guest1.ok() && guest2.ok());
  const std::string g1 = "domains/" + guest1->uuid(), g2 = "domains/" + guest2->uuid();
  v1::ListChannelsRequest all;
  all.set_parent("domains/-");
  EXPECT_THAT(ChannelNames(client_->ListChannels(all)),
              UnorderedElementsAre(g1 + "/org.example.open", g1 + "/org.example.secret",
                                   g2 + "/org.example.open"));
  EXPECT_THAT(ChannelNames(reader_->ListChannels(all)),
              UnorderedElementsAre(g1 + "/org.example.open", g2 + "/org.example.open"));
  EXPECT_THAT(ChannelNames(ctl_->ListChannels(all)),
              UnorderedElementsAre(g1 + "/org.example.open", g1 + "/org.example.secret"));
  EXPECT_THAT(ChannelNames(prov_->ListChannels(all)), ::testing::IsEmpty());
  v1::ListChannelsRequest one;
  one.set_parent("domains/guest1");
  EXPECT_THAT(ChannelNames(reader_->ListChannels(one)),
              UnorderedElementsAre(g1 + "/org.example.open"));
  ExpectDenied(prov_->ListChannels(one).status(), "read", "prov ListChannels guest1");
  one.set_parent("domains/guest2");
  ExpectDenied(ctl_->ListChannels(one).status(), "read", "ctl ListChannels guest2");

  EXPECT_TRUE(reader_->GetChannel(ChannelName("guest2", "org.example.open")).ok());
  ExpectDenied(reader_->GetChannel(ChannelName("guest1", "org.example.secret")).status(), "read",
               "reader GetChannel secret");
  // Existing and missing channels the caller may not read answer alike.
  ExpectDenied(reader_->GetChannel(ChannelName("guest1", "org.example.missing")).status(), "read",
               "reader GetChannel missing");
  ExpectDenied(prov_->GetChannel(ChannelName("guest1", "org.example.open")).status(), "read",
               "prov GetChannel open");
  // Where the caller may read, a missing channel is NOT_FOUND.
  EXPECT_EQ(ReasonOf(ctl_->GetChannel(ChannelName("guest1", "org.example.missing")).status()),
            "CHANNEL_NOT_FOUND");
}

TEST_F(AuthzTest, ListingPagesOverTheFilteredSet) {
  v1::ListChannelsRequest req;
  req.set_parent("domains/-");
  req.set_page_size(1);
  std::vector<std::string> seen;
  for (int i = 0; i < 5; ++i) {
    v1::ListChannelsResponse resp;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    ASSERT_TRUE(reader_->stub().ListChannels(&context, req, &resp).ok());
    for (const auto& c : resp.channels()) seen.push_back(c.domain_uuid() + "/" + c.channel_id());
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(seen.size(), 2u);
  for (const std::string& s : seen) EXPECT_THAT(s, HasSubstr("/org.example.open"));
}

TEST_F(AuthzTest, CreateAndDeleteNeedManage) {
  v1::CreateChannelRequest req;
  req.set_parent("domains/guest1");
  req.set_channel_id("org.example.new");
  ExpectDenied(reader_->CreateChannel(req).status(), "manage", "reader create");
  ExpectDenied(prov_->CreateChannel(req).status(), "manage", "prov create");
  auto created = ctl_->CreateChannel(req);
  ASSERT_TRUE(created.ok()) << created.status();
  req.set_parent("domains/guest2");
  ExpectDenied(ctl_->CreateChannel(req).status(), "manage", "ctl create on guest2");
  req.set_parent("domains/guest1");
  req.set_channel_id("com.other.x");
  ExpectDenied(ctl_->CreateChannel(req).status(), "manage", "ctl create outside its pattern");

  v1::DeleteChannelRequest del;
  del.set_name(ChannelName("guest1", "org.example.new"));
  ExpectDenied(reader_->DeleteChannel(del).status(), "manage", "reader delete");
  auto deleted = ctl_->DeleteChannel(del, absl::Seconds(20));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  del.set_name(ChannelName("guest2", "org.example.open"));
  ExpectDenied(ctl_->DeleteChannel(del).status(), "manage", "ctl delete on guest2");

  // Lifecycle lines name who did it.
  EXPECT_THAT(AwaitAuditLine({"\"event\":\"lifecycle\"", "org.example.new", "\"created\"",
                              "spiffe://xenchan.test/ctl"}),
              Not(::testing::IsEmpty()));
  EXPECT_THAT(AwaitAuditLine({"\"event\":\"lifecycle\"", "org.example.new", "\"deleted\""}),
              Not(::testing::IsEmpty()));
}

TEST_F(AuthzTest, WatchShowsOnlyReadableChannels) {
  auto guest1 = client_->GetDomain("domains/guest1");
  auto guest2 = client_->GetDomain("domains/guest2");
  ASSERT_TRUE(guest1.ok() && guest2.ok());
  grpc::ClientContext context;
  std::vector<v1::WatchChannelsResponse> events;
  std::thread changes;
  bool started = false;
  v1::WatchChannelsRequest req;
  req.set_parent("domains/-");
  absl::Status s = reader_->Watch(
      req,
      [&](const v1::WatchChannelsResponse& e) {
        events.push_back(e);
        if (e.type() == v1::CHANNEL_EVENT_TYPE_SYNCED && !started) {
          started = true;
          // A channel the reader may not see appears, then one it may see
          // goes away.
          changes = std::thread([this] {
            CreateConnectedChannel("guest1", "org.example.hidden");
            v1::DeleteChannelRequest del;
            del.set_name(ChannelName("guest2", "org.example.open"));
            EXPECT_TRUE(client_->DeleteChannel(del, absl::Seconds(20)).ok());
          });
        }
        return !(e.type() == v1::CHANNEL_EVENT_TYPE_REMOVED);
      },
      &context);
  if (changes.joinable()) changes.join();
  EXPECT_TRUE(s.ok()) << s;
  std::set<std::string> existing;
  for (const auto& e : events) {
    EXPECT_NE(e.channel().channel_id(), "org.example.hidden");
    EXPECT_NE(e.channel().channel_id(), "org.example.secret");
    if (e.type() == v1::CHANNEL_EVENT_TYPE_EXISTING) {
      existing.insert(e.channel().domain_uuid() + "/" + e.channel().channel_id());
    }
  }
  EXPECT_THAT(existing, UnorderedElementsAre(guest1->uuid() + "/org.example.open",
                                             guest2->uuid() + "/org.example.open"));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type(), v1::CHANNEL_EVENT_TYPE_REMOVED);
  EXPECT_EQ(events.back().channel().domain_uuid(), guest2->uuid());

  v1::WatchChannelsRequest one;
  one.set_parent("domains/guest1");
  ExpectDenied(prov_->Watch(one, [](const v1::WatchChannelsResponse&) { return false; }), "read",
               "prov watch guest1");
}

TEST_F(AuthzTest, ReadAttachWriteAndCallCheckTheirVerbs) {
  const std::string open1 = ChannelName("guest1", "org.example.open");
  const std::string secret = ChannelName("guest1", "org.example.secret");
  // Read: read.
  EXPECT_TRUE(ReadOnce(*reader_, open1).ok());
  ExpectDenied(ReadOnce(*reader_, secret), "read", "reader Read secret");
  ExpectDenied(ReadOnce(*prov_, open1), "read", "prov Read");
  // Attach: observers read, writers read+write, takeover admin.
  EXPECT_TRUE(AttachOpen(*reader_, open1, v1::SESSION_ROLE_OBSERVER).ok());
  ExpectDenied(AttachOpen(*reader_, open1, v1::SESSION_ROLE_WRITER), "write", "reader writer");
  ExpectDenied(AttachOpen(*prov_, open1, v1::SESSION_ROLE_OBSERVER), "read", "prov observer");
  EXPECT_TRUE(AttachOpen(*ctl_, open1, v1::SESSION_ROLE_WRITER).ok());
  ExpectDenied(AttachOpen(*ctl_, open1, v1::SESSION_ROLE_WRITER, /*takeover=*/true), "admin",
               "ctl takeover");
  EXPECT_TRUE(AttachOpen(*client_, open1, v1::SESSION_ROLE_WRITER, /*takeover=*/true).ok());
  // Write: write (takeover: admin).
  auto written = WriteOnce(*ctl_, open1, "hello\n");
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->progress().accepted_bytes(), 6u);
  ExpectDenied(WriteOnce(*reader_, open1, "x").status(), "write", "reader Write");
  ExpectDenied(WriteOnce(*ctl_, open1, "x", /*takeover=*/true).status(), "admin",
               "ctl Write takeover");
  // Call: call. A guest agent answers one line.
  const int tty = testcommon::OpenGuestTty(TtyPath("guest1", "org.example.open"));
  ASSERT_GE(tty, 0);
  testcommon::ReadUntil(tty, "hello\n");
  std::thread agent([tty] { testcommon::AnswerOneLine(tty, "re:"); });
  v1::CallRequest call;
  call.set_channel(open1);
  call.set_request("ping");
  call.mutable_framing()->mutable_newline();
  auto answer = prov_->Call(call, absl::Seconds(20));
  agent.join();
  close(tty);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->response(), "re:ping");
  ExpectDenied(reader_->Call(call, absl::Seconds(20)).status(), "call", "reader Call");
  call.set_channel(ChannelName("guest2", "org.example.open"));
  ExpectDenied(prov_->Call(call, absl::Seconds(20)).status(), "call", "prov Call guest2");

  // Audit: decisions with who, from where, what, verb and outcome; sessions
  // with byte counts.
  const std::string denied = AwaitAuditLine(
      {"\"event\":\"authz\"", "\"identity\":\"dns:ctl.example.org\"", "\"decision\":\"denied\"",
       "/xenchan.v1.ChannelService/Read", "org.example.secret", "\"verb\":\"read\""});
  ASSERT_FALSE(denied.empty());
  EXPECT_THAT(denied, HasSubstr("\"peer\":\"ipv4:127.0.0.1:"));
  EXPECT_THAT(denied, HasSubstr("\"reason\":"));
  EXPECT_THAT(AwaitAuditLine({"\"event\":\"authz\"", "\"identity\":\"cn:provisioner\"",
                              "\"decision\":\"allowed\"", "\"verb\":\"call\""}),
              Not(::testing::IsEmpty()));
  const std::string write_open = AwaitAuditLine(
      {"\"event\":\"session_open\"", "spiffe://xenchan.test/ctl", "ChannelService/Write"});
  EXPECT_THAT(write_open, HasSubstr("\"role\":\"writer\""));
  const std::string write_close =
      AwaitAuditLine({"\"event\":\"session_close\"", "spiffe://xenchan.test/ctl",
                      "ChannelService/Write", "\"bytes_in\":6"});
  EXPECT_THAT(write_close, HasSubstr("\"status\":\"OK\""));
  EXPECT_THAT(AwaitAuditLine({"\"event\":\"session_close\"", "cn:provisioner",
                              "ChannelService/Call", "\"bytes_in\":5", "\"bytes_out\":7"}),
              Not(::testing::IsEmpty()));
  EXPECT_THAT(AwaitAuditLine({"\"event\":\"session_close\"", "unix:uid=", "ChannelService/Attach"}),
              Not(::testing::IsEmpty()));
}

TEST_F(AuthzTest, PlaintextLoopbackCallersAreUnauthenticated) {
  std::string insecure;
  for (absl::string_view line : absl::StrSplit(server_->log(), '\n')) {
    if (absl::StrContains(line, "security=insecure")) {
      const size_t at = line.find("address=");
      absl::string_view rest = line.substr(at + 8);
      insecure = std::string(rest.substr(0, rest.find(' ')));
    }
  }
  ASSERT_FALSE(insecure.empty()) << server_->log();
  auto anon = Connect(insecure, {});
  ASSERT_NE(anon, nullptr);
  for (const absl::Status& s :
       {anon->ListDomains().status(),
        anon->GetChannel(ChannelName("guest1", "org.example.open")).status(),
        ReadOnce(*anon, ChannelName("guest1", "org.example.open"))}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
    EXPECT_EQ(ReasonOf(s), "UNAUTHENTICATED");
  }
  EXPECT_THAT(AwaitAuditLine({"\"event\":\"authz\"", "\"identity\":\"anonymous\"",
                              "\"decision\":\"denied\"", "unauthenticated insecure-tcp"}),
              Not(::testing::IsEmpty()));
}

TEST_F(AuthzTest, PolicyReloadsOnChangeAndSighupAndRefusesBadFiles) {
  const std::string secret = ChannelName("guest1", "org.example.secret");
  ExpectDenied(reader_->GetChannel(secret).status(), "read", "before reload");
  // A change to the file: the reader may now read the secret channel.
  ASSERT_TRUE(WriteFileAtomically(
      policy_path_, PolicyText("allow verbs=read domain=name:guest1 channel=*.secret\n")));
  absl::Status now;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(20); absl::Now() < deadline;) {
    now = reader_->GetChannel(secret).status();
    if (now.ok()) break;
  }
  EXPECT_TRUE(now.ok()) << now;
  // A malformed file is refused and the policy in force stays.
  ASSERT_TRUE(WriteFileAtomically(policy_path_,
                                  "[identity *]\nallow verbs=read domain=* channel=*\n"
                                  "allow verbs=levitate domain=* channel=*\n"));
  EXPECT_TRUE(server_->WaitForLog("levitate")) << server_->log();
  EXPECT_TRUE(reader_->GetChannel(secret).ok());
  ExpectDenied(prov_->GetChannel(secret).status(), "read", "bad file not in force");
  EXPECT_THAT(
      AwaitAuditLine({"\"event\":\"policy_reload\"", "\"outcome\":\"refused\"", "levitate"}),
      Not(::testing::IsEmpty()));
  // SIGHUP re-reads it (still refused), and reopens the audit log after a
  // rotation: the old file keeps what was written, new lines go to the new
  // one.
  const std::string rotated = audit_path_ + ".1";
  ASSERT_EQ(rename(audit_path_.c_str(), rotated.c_str()), 0);
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  EXPECT_TRUE(server_->WaitForLog("SIGHUP: reloading")) << server_->log();
  EXPECT_THAT(AwaitAuditLine({"\"event\":\"policy_reload\"", "\"outcome\":\"refused\""}),
              Not(::testing::IsEmpty()));
  EXPECT_TRUE(reader_->GetChannel(secret).ok());
  EXPECT_THAT(
      AwaitAuditLine({"\"event\":\"authz\"", "dns:ctl.example.org", "\"decision\":\"allowed\""}),
      Not(::testing::IsEmpty()));
  EXPECT_THAT(ReadFileOrEmpty(rotated), HasSubstr("\"event\":\"server_start\""));
  EXPECT_THAT(ReadFileOrEmpty(audit_path_), Not(HasSubstr("\"event\":\"server_start\"")));
  // Back to the original file: the reader loses the secret channel again.
  ASSERT_TRUE(WriteFileAtomically(policy_path_, PolicyText()));
  for (const absl::Time deadline = absl::Now() + absl::Seconds(20); absl::Now() < deadline;) {
    now = reader_->GetChannel(secret).status();
    if (!now.ok()) break;
  }
  ExpectDenied(now, "read", "after the last reload");
  EXPECT_THAT(AwaitAuditLine({"\"event\":\"policy_reload\"", "\"outcome\":\"ok\""}),
              Not(::testing::IsEmpty()));
}

}  // namespace
}  // namespace xenchan
