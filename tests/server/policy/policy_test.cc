// Tests of the policy file: parsing, deny-by-default checks for every verb
// and identity kind, listing helpers, every class of error with its
// line:column, and the shipped example (deploy/policy.example).
#include "server/policy/policy.h"

#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"

namespace xenchan {
namespace server {
namespace policy {
namespace {

using ::testing::HasSubstr;

constexpr char kUuid[] = "6f1c0e4a-3b2d-4c5e-8f70-123456789abc";
constexpr char kOtherUuid[] = "00000000-1111-2222-3333-444444444444";

Policy MustParse(const std::string& text) {
  absl::StatusOr<Policy> policy = Policy::Parse(text, "test.policy");
  EXPECT_TRUE(policy.ok()) << policy.status();
  if (!policy.ok()) std::abort();
  return *std::move(policy);
}

// The error message of parsing `text`, which must fail with INVALID_ARGUMENT.
std::string ParseError(const std::string& text) {
  absl::StatusOr<Policy> policy = Policy::Parse(text, "p");
  EXPECT_FALSE(policy.ok()) << "parsed: " << text;
  if (policy.ok()) return "";
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(policy.status().message());
}

Identity Spiffe(const std::string& uri) { return Identity::FromCertificate({uri}, {}, ""); }
Identity Dns(const std::string& name) { return Identity::FromCertificate({}, {name}, ""); }
Identity Cn(const std::string& cn) { return Identity::FromCertificate({}, {}, cn); }
DomainRef Domain(const std::string& name, const std::string& uuid = "") { return {uuid, name}; }

TEST(PolicyTest, EmptyPolicyDeniesEverything) {
  Policy policy = MustParse("# nothing\n\n");
  EXPECT_EQ(policy.section_count(), 0u);
  for (Verb verb : kAllVerbs) {
    EXPECT_FALSE(policy.Allows(Identity::FromUnixPeer(0, {0}), Domain("web-1", kUuid), "c", verb));
  }
  EXPECT_FALSE(policy.CanSeeDomain(Identity::FromUnixPeer(0, {0}), Domain("web-1")));
}

TEST(PolicyTest, GrantsExactlyTheListedVerbs) {
  Policy policy = MustParse(
      "[identity spiffe://example.org/controller]\n"
      "allow verbs=read,call domain=* channel=org.example.*\n");
  const Identity ctl = Spiffe("spiffe://example.org/controller");
  const DomainRef dom = Domain("web-1", kUuid);
  EXPECT_TRUE(policy.Allows(ctl, dom, "org.example.agent", Verb::kRead));
  EXPECT_TRUE(policy.Allows(ctl, dom, "org.example.agent", Verb::kCall));
  EXPECT_FALSE(policy.Allows(ctl, dom, "org.example.agent", Verb::kWrite));
  EXPECT_FALSE(policy.Allows(ctl, dom, "org.example.agent", Verb::kManage));
  EXPECT_FALSE(policy.Allows(ctl, dom, "org.example.agent", Verb::kAdmin));
  // Channel outside the pattern.
  EXPECT_FALSE(policy.Allows(ctl, dom, "com.other.agent", Verb::kRead));
  // Another identity.
  EXPECT_FALSE(
      policy.Allows(Spiffe("spiffe://example.org/other"), dom, "org.example.agent", Verb::kRead));
  // Unauthenticated.
  EXPECT_FALSE(policy.Allows(Identity{}, dom, "org.example.agent", Verb::kRead));
  EXPECT_EQ(policy.VerbsOn(ctl, dom, "org.example.agent").ToString(), "read,call");
  EXPECT_TRUE(policy.VerbsOn(ctl, dom, "com.other").empty());
}

TEST(PolicyTest, DomainsByUuidNameAndGlob) {
  Policy policy =
      MustParse(absl::StrCat("[identity cn:ops]\n"
                             "allow verbs=read domain=uuid:",
                             absl::AsciiStrToUpper(kUuid), " channel=*\n",
                             "allow verbs=write domain=name:web-[0-9]* channel=*\n"
                             "allow verbs=manage domain=name:db channel=*\n"));
  const Identity ops = Cn("ops");
  EXPECT_TRUE(policy.Allows(ops, Domain("anything", kUuid), "c", Verb::kRead));
  EXPECT_FALSE(policy.Allows(ops, Domain("anything", kOtherUuid), "c", Verb::kRead));
  EXPECT_FALSE(policy.Allows(ops, Domain("anything"), "c", Verb::kRead));  // UUID unknown
  EXPECT_TRUE(policy.Allows(ops, Domain("web-12"), "c", Verb::kWrite));
  EXPECT_FALSE(policy.Allows(ops, Domain("web-x"), "c", Verb::kWrite));
  EXPECT_TRUE(policy.Allows(ops, Domain("db"), "c", Verb::kManage));
  EXPECT_FALSE(policy.Allows(ops, Domain("db2"), "c", Verb::kManage));
  EXPECT_FALSE(policy.Allows(ops, Domain(""), "c", Verb::kManage));  // name unknown
}

TEST(PolicyTest, UnionOverSectionsAndPrincipals) {
  Policy policy = MustParse(
      "[identity unix:uid=1000]\n"
      "allow verbs=read domain=* channel=*\n"
      "[identity unix:gid=27]\n"
      "allow verbs=write domain=* channel=*\n"
      "[identity *]\n"
      "allow verbs=call domain=name:public channel=*\n");
  const Identity user = Identity::FromUnixPeer(1000, {1000, 27});
  EXPECT_EQ(policy.VerbsOn(user, Domain("x"), "c").ToString(), "read,write");
  EXPECT_EQ(policy.VerbsOn(user, Domain("public"), "c").ToString(), "read,write,call");
  const Identity other = Identity::FromUnixPeer(1001, {1001});
  EXPECT_EQ(policy.VerbsOn(other, Domain("public"), "c").ToString(), "call");
  EXPECT_TRUE(policy.VerbsOn(other, Domain("x"), "c").empty());
  // `*` still needs an authenticated caller.
  EXPECT_TRUE(policy.VerbsOn(Identity{}, Domain("public"), "c").empty());
}

TEST(PolicyTest, PrincipalKindsDoNotMix) {
  Policy policy = MustParse(
      "[identity unix:uid=0]\n"
      "allow verbs=* domain=* channel=*\n"
      "[identity dns:ctl.example.org]\n"
      "allow verbs=read domain=* channel=*\n");
  // A certificate whose URI SAN or CN reads like a unix principal gets nothing.
  EXPECT_FALSE(policy.Allows(Spiffe("unix:uid=0"), Domain("d"), "c", Verb::kRead));
  EXPECT_FALSE(policy.Allows(Cn("unix:uid=0"), Domain("d"), "c", Verb::kRead));
  EXPECT_FALSE(policy.Allows(Cn("ctl.example.org"), Domain("d"), "c", Verb::kRead));
  EXPECT_TRUE(policy.Allows(Dns("CTL.example.org"), Domain("d"), "c", Verb::kRead));
  EXPECT_TRUE(policy.Allows(Identity::FromUnixPeer(0, {}), Domain("d"), "c", Verb::kAdmin));
  // uid 0 and gid 0 are different things.
  Policy gid = MustParse("[identity unix:gid=0]\nallow verbs=read domain=* channel=*\n");
  EXPECT_FALSE(gid.Allows(Identity::FromUnixPeer(0, {5}), Domain("d"), "c", Verb::kRead));
  EXPECT_TRUE(gid.Allows(Identity::FromUnixPeer(5, {0}), Domain("d"), "c", Verb::kRead));
}

TEST(PolicyTest, IdentityGlobs) {
  Policy policy = MustParse(
      "[identity spiffe://example.org/ns/prod/*]\n"
      "allow verbs=read domain=* channel=*\n"
      "[identity \"dns:*.MON.example.org\"]\n"
      "allow verbs=call domain=* channel=*\n"
      "[identity uri:urn:example:*]\n"
      "allow verbs=write domain=* channel=*\n"
      "[identity cn:prov-?]\n"
      "allow verbs=manage domain=* channel=*\n");
  const DomainRef d = Domain("d");
  EXPECT_TRUE(policy.Allows(Spiffe("spiffe://example.org/ns/prod/sa/x"), d, "c", Verb::kRead));
  EXPECT_FALSE(policy.Allows(Spiffe("spiffe://example.org/ns/dev/sa/x"), d, "c", Verb::kRead));
  EXPECT_TRUE(policy.Allows(Dns("a.mon.example.org"), d, "c", Verb::kCall));
  EXPECT_FALSE(policy.Allows(Dns("mon.example.org"), d, "c", Verb::kCall));
  EXPECT_TRUE(policy.Allows(Spiffe("urn:example:ctl"), d, "c", Verb::kWrite));
  EXPECT_TRUE(policy.Allows(Cn("prov-1"), d, "c", Verb::kManage));
  EXPECT_FALSE(policy.Allows(Cn("prov-12"), d, "c", Verb::kManage));
}

TEST(PolicyTest, ListingHelpers) {
  Policy policy = MustParse(
      "[identity cn:a]\n"
      "allow verbs=call domain=name:web-1 channel=org.example.agent\n");
  const Identity a = Cn("a");
  EXPECT_TRUE(policy.CanSee(a, Domain("web-1"), "org.example.agent"));
  EXPECT_FALSE(policy.CanSee(a, Domain("web-1"), "org.example.other"));
  EXPECT_FALSE(policy.CanSee(a, Domain("web-2"), "org.example.agent"));
  EXPECT_TRUE(policy.CanSeeDomain(a, Domain("web-1")));
  EXPECT_FALSE(policy.CanSeeDomain(a, Domain("web-2")));
  EXPECT_EQ(policy.VerbsOnDomain(a, Domain("web-1")).ToString(), "call");
}

TEST(PolicyTest, CheckExplains) {
  Policy policy = MustParse(
      "# header\n"
      "[identity cn:a]\n"
      "allow verbs=read domain=* channel=*\n");
  Decision d = policy.Check(Cn("a"), Domain("x"), "c", Verb::kRead);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.line, 3);
  EXPECT_THAT(d.reason, HasSubstr("test.policy:3"));
  EXPECT_THAT(d.reason, HasSubstr("cn:a"));
  d = policy.Check(Cn("a"), Domain("x"), "c", Verb::kWrite);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.line, 0);
  EXPECT_THAT(d.reason, HasSubstr("no rule"));
  EXPECT_THAT(d.reason, HasSubstr("`write`"));
  d = policy.Check(Cn("b"), Domain("x"), "c", Verb::kRead);
  EXPECT_FALSE(d.allowed);
  EXPECT_THAT(d.reason, HasSubstr("no section"));
  EXPECT_THAT(d.reason, HasSubstr("cn:b"));
  d = policy.Check(Identity{}, Domain("x"), "c", Verb::kRead);
  EXPECT_FALSE(d.allowed);
  EXPECT_THAT(d.reason, HasSubstr("not authenticated"));
}

TEST(PolicyTest, SyntaxNiceties) {
  Policy policy = MustParse(
      "  # indented comment\r\n"
      "\t[ identity   \"cn:with space\" ]   # trailing comment\r\n"
      "  allow   channel=\"org.x\"\tverbs=read   domain=\"name:a b\"  # comment\n"
      "allow verbs=write domain=* channel=\"org.\\\\*\"\n");  // "org.\\*": a literal star
  EXPECT_EQ(policy.section_count(), 1u);
  EXPECT_EQ(policy.rule_count(), 2u);
  EXPECT_TRUE(policy.Allows(Cn("with space"), Domain("a b"), "org.x", Verb::kRead));
  EXPECT_FALSE(policy.Allows(Cn("with space"), Domain("a b"), "org.y", Verb::kRead));
  EXPECT_TRUE(policy.Allows(Cn("with space"), Domain("z"), "org.*", Verb::kWrite));
  EXPECT_FALSE(policy.Allows(Cn("with space"), Domain("z"), "org.a", Verb::kWrite));
}

TEST(PolicyErrorTest, UnknownVerb) {
  EXPECT_EQ(ParseError("[identity cn:a]\nallow verbs=read,wrte domain=* channel=*\n"),
            "p:2:18: unknown verb `wrte` (expected read, write, call, manage, admin, or * for "
            "all)");
}

TEST(PolicyErrorTest, DuplicateVerbAndEmptyVerb) {
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs=read,read domain=* channel=*\n"),
              HasSubstr("p:2:18: verb `read` listed twice"));
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs=read,,call domain=* channel=*\n"),
              HasSubstr("p:2:18: empty verb"));
}

TEST(PolicyErrorTest, BadGlobs) {
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs=read domain=name:web-[0-9 channel=*\n"),
              HasSubstr("p:2:34: bad domain name pattern: unterminated `[`"));
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs=read domain=* channel=a[z-b]\n"),
              HasSubstr("p:2:37: bad channel pattern: reversed range"));
  EXPECT_THAT(ParseError("[identity \"cn:x\\\\\"]\n"), HasSubstr("p:1:16: bad identity pattern"));
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs=read domain=* channel=org/x\n"),
              HasSubstr("p:2:38: channel pattern `org/x` holds `/`"));
}

TEST(PolicyErrorTest, DuplicateSections) {
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs=read domain=* channel=*\n"
                         "\n[identity cn:a]\n"),
              HasSubstr("p:4:1: duplicate section [identity cn:a]: it was already opened at "
                        "line 1"));
  // The same pattern spelt differently is still a duplicate.
  EXPECT_THAT(ParseError("[identity dns:A.example]\n[identity \"dns:a.EXAMPLE\"]\n"),
              HasSubstr("p:2:1: duplicate section"));
  EXPECT_THAT(ParseError("[identity spiffe://x/y]\n[identity uri:spiffe://x/y]\n"),
              HasSubstr("p:2:1: duplicate section"));
}

TEST(PolicyErrorTest, BadIdentityForms) {
  EXPECT_THAT(ParseError("[identity ctl.example.org]\n"),
              HasSubstr("p:1:11: unknown identity form `ctl.example.org`"));
  EXPECT_THAT(ParseError("[identity unix:user=root]\n"), HasSubstr("p:1:11: bad unix identity"));
  EXPECT_THAT(ParseError("[identity unix:uid=abc]\n"),
              HasSubstr("p:1:20: bad unix identity `unix:uid=abc`: the id must be a decimal"));
  EXPECT_THAT(ParseError("[identity unix:uid=4294967296]\n"), HasSubstr("p:1:20:"));
  EXPECT_THAT(ParseError("[identity unix:uid=007]\n"), HasSubstr("p:1:20:"));
  EXPECT_THAT(ParseError("[identity cn:]\n"), HasSubstr("p:1:11: identity pattern `cn:` has "
                                                        "nothing after its prefix"));
  EXPECT_THAT(ParseError("[identity spiffe://]\n"), HasSubstr("nothing after `://`"));
  EXPECT_THAT(ParseError("[identity]\n"), HasSubstr("p:1:10: missing identity pattern"));
  EXPECT_THAT(ParseError("[identity cn:a\n"), HasSubstr("p:1:15: expected `]`"));
  EXPECT_THAT(ParseError("[identity cn:a] extra\n"), HasSubstr("p:1:17: unexpected text"));
  EXPECT_THAT(ParseError("[domain x]\n"), HasSubstr("p:1:2: unknown section `[domain ...]`"));
}

TEST(PolicyErrorTest, BadDomainForms) {
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs=read domain=web-1 channel=*\n"),
              HasSubstr("p:2:25: bad domain `web-1`: expected `*`, `uuid:UUID` or `name:GLOB`"));
  EXPECT_THAT(
      ParseError(absl::StrCat("[identity cn:a]\nallow verbs=read domain=", kUuid, " channel=*\n")),
      HasSubstr("did you mean `uuid:"));
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs=read domain=uuid:1234 channel=*\n"),
              HasSubstr("p:2:30: bad domain UUID `1234`"));
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs=read domain=name: channel=*\n"),
              HasSubstr("p:2:25: empty domain name pattern"));
}

TEST(PolicyErrorTest, RuleShape) {
  EXPECT_THAT(ParseError("allow verbs=read domain=* channel=*\n"),
              HasSubstr("p:1:1: rule outside a section"));
  EXPECT_THAT(ParseError("[identity cn:a]\n  permit verbs=read\n"),
              HasSubstr("p:2:3: unknown directive `permit`"));
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs=read domain=*\n"),
              HasSubstr("p:2:1: rule lacks channel"));
  EXPECT_THAT(ParseError("[identity cn:a]\nallow\n"),
              HasSubstr("p:2:1: rule lacks verbs, domain, channel"));
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs=read verbs=call domain=* channel=*\n"),
              HasSubstr("p:2:18: `verbs` given twice"));
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verb=read domain=* channel=*\n"),
              HasSubstr("p:2:7: unknown key `verb`"));
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs domain=* channel=*\n"),
              HasSubstr("p:2:7: expected `key=value`"));
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs= domain=* channel=*\n"),
              HasSubstr("p:2:13: empty value for `verbs`"));
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs=read domain=name:a#b channel=*\n"),
              HasSubstr("p:2:31: `#` inside an unquoted value"));
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs=read domain=\"name:a channel=*\n"),
              HasSubstr("p:2:25: unterminated quoted string"));
  EXPECT_THAT(ParseError("[identity cn:a]\nallow verbs=read domain=\"*\"x channel=*\n"),
              HasSubstr("p:2:28: expected white space after a quoted string"));
}

TEST(PolicyErrorTest, ControlCharactersAndSize) {
  EXPECT_THAT(
      ParseError(std::string("[identity cn:a]\nallow verbs=read\0 domain=* channel=*\n", 54)),
      HasSubstr("p:2:17: control character 0x00"));
  EXPECT_THAT(ParseError("[identity cn:a\x1b]\n"), HasSubstr("p:1:15: control character 0x1b"));
  EXPECT_THAT(ParseError(std::string(Policy::kMaxBytes + 1, '#')),
              HasSubstr("more than the limit"));
}

// The shipped example parses and grants what its comments say.
TEST(PolicyExampleTest, DeployExample) {
  ASSERT_NE(std::getenv("TEST_SRCDIR"), nullptr);
  const std::string text =
      testcommon::ReadFileOrEmpty(testcommon::RunfilePath("deploy/policy.example"));
  ASSERT_FALSE(text.empty());
  Policy policy = MustParse(text);
  EXPECT_EQ(policy.section_count(), 5u);

  const Identity ctl = Spiffe("spiffe://example.org/controller");
  EXPECT_EQ(policy.VerbsOn(ctl, Domain("any"), "any.channel").ToString(), "read,write,call,manage");
  EXPECT_EQ(policy.VerbsOn(Identity::FromUnixPeer(0, {0}), Domain("any"), "x").ToString(),
            "read,write,call,manage,admin");
  EXPECT_EQ(policy.VerbsOn(Identity::FromUnixPeer(1000, {1001}), Domain("any"), "x").ToString(),
            "read");
  EXPECT_TRUE(policy.VerbsOn(Identity::FromUnixPeer(1000, {1000}), Domain("any"), "x").empty());
  const Identity prov = Cn("provisioner");
  EXPECT_EQ(policy.VerbsOn(prov, Domain("web-3"), "org.example.provision.v1").ToString(),
            "read,write,call");
  EXPECT_TRUE(policy.VerbsOn(prov, Domain("db-1"), "org.example.provision.v1").empty());
  EXPECT_TRUE(policy.VerbsOn(prov, Domain("web-3"), "org.qemu.guest_agent.0").empty());
  EXPECT_EQ(policy.VerbsOn(prov, Domain("db-1", kUuid), "org.qemu.guest_agent.0").ToString(),
            "read");
  EXPECT_TRUE(
      policy.Allows(Dns("probe1.mon.example.org"), Domain("x"), "org.example.log.v1", Verb::kRead));
  EXPECT_FALSE(
      policy.Allows(Dns("probe1.mon.example.org"), Domain("x"), "org.example.log.v2", Verb::kRead));
}

}  // namespace
}  // namespace policy
}  // namespace server
}  // namespace xenchan
