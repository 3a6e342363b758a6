// The forms of the policy file's values, checked and compiled for the
// parser: identity patterns (the principal forms of identity.h), verb lists,
// domains (`*`, `uuid:`, `name:`) and channel patterns. The format is
// described in policy.h.
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "backend/util/uuid.h"
#include "server/policy/policy_parser.h"

namespace xenchan {
namespace server {
namespace policy {
namespace {

bool IsChannelByte(unsigned char c) {
  return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
}

// A URI scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986).
bool IsScheme(absl::string_view s) {
  if (s.empty() || !absl::ascii_isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<Policy::IdentityMatcher> Policy::Parser::ParseIdentity(const Token& token) {
  IdentityMatcher m;
  const std::string& p = token.text;
  auto glob_after = [&](Principal::Kind kind, size_t prefix,
                        bool lower) -> absl::StatusOr<IdentityMatcher> {
    m.kind = kind;
    if (p.size() == prefix) {
      return Error(token.column,
                   absl::StrFormat("identity pattern `%s` has nothing after its prefix",
                                   absl::CHexEscape(p)));
    }
    Token value = token;
    if (lower) value.text = absl::AsciiStrToLower(value.text);
    absl::StatusOr<Glob> glob = CompileGlob(value, prefix, "identity pattern");
    if (!glob.ok()) return glob.status();
    m.value = *std::move(glob);
    m.text = absl::StrCat(value.text.substr(0, prefix), m.value->pattern());
    return m;
  };
  if (p == "*") {
    m.any_kind = true;
    m.text = "*";
    return m;
  }
  if (absl::StartsWith(p, "dns:")) return glob_after(Principal::Kind::kDns, 4, true);
  if (absl::StartsWith(p, "cn:")) return glob_after(Principal::Kind::kCommonName, 3, false);
  if (absl::StartsWith(p, "uri:")) {
    absl::StatusOr<IdentityMatcher> r = glob_after(Principal::Kind::kUri, 4, false);
    // `uri:spiffe://x` and `spiffe://x` are the same pattern.
    if (r.ok() && absl::StrContains(r->text.substr(4), "://")) r->text = r->text.substr(4);
    return r;
  }
  if (absl::StartsWith(p, "unix:")) {
    absl::string_view rest = absl::string_view(p).substr(5);
    Principal::Kind kind;
    if (absl::ConsumePrefix(&rest, "uid=")) {
      kind = Principal::Kind::kUnixUid;
    } else if (absl::ConsumePrefix(&rest, "gid=")) {
      kind = Principal::Kind::kUnixGid;
    } else {
      return Error(token.column, absl::StrFormat("bad unix identity `%s` (expected `unix:uid=N` or "
                                                 "`unix:gid=N`)",
                                                 absl::CHexEscape(p)));
    }
    uint32_t id = 0;
    bool digits = !rest.empty() && rest.size() <= 10;
    for (char c : rest) digits = digits && absl::ascii_isdigit(static_cast<unsigned char>(c));
    if (!digits || !absl::SimpleAtoi(rest, &id) || (rest.size() > 1 && rest[0] == '0')) {
      return Error(token.ColumnAt(9),
                   absl::StrFormat("bad unix identity `%s`: the id must be a decimal number "
                                   "from 0 to 4294967295",
                                   absl::CHexEscape(p)));
    }
    m.kind = kind;
    absl::StatusOr<Glob> exact = Glob::Compile(absl::StrCat(id));
    m.value = *std::move(exact);
    m.text = p;
    return m;
  }
  const size_t sep = p.find("://");
  if (sep != std::string::npos && IsScheme(absl::string_view(p).substr(0, sep))) {
    if (sep + 3 == p.size()) {
      return Error(token.column, absl::StrFormat("identity pattern `%s` has nothing after `://`",
                                                 absl::CHexEscape(p)));
    }
    m.kind = Principal::Kind::kUri;
    absl::StatusOr<Glob> glob = CompileGlob(token, 0, "identity pattern");
    if (!glob.ok()) return glob.status();
    m.value = *std::move(glob);
    m.text = p;
    return m;
  }
  return Error(token.column,
               absl::StrFormat("unknown identity form `%s` (expected `*`, `scheme://...`, "
                               "`uri:...`, `dns:...`, `cn:...`, `unix:uid=N` or `unix:gid=N`)",
                               absl::CHexEscape(p)));
}

absl::Status Policy::Parser::ParseVerbs(const Token& token, VerbSet* verbs) {
  if (token.text == "*") {
    *verbs = VerbSet::All();
    return absl::OkStatus();
  }
  size_t offset = 0;
  for (absl::string_view name : absl::StrSplit(token.text, ',')) {
    const int column = token.ColumnAt(offset);
    offset += name.size() + 1;
    if (name.empty()) return Error(column, "empty verb in list");
    std::optional<Verb> verb = ParseVerb(name);
    if (!verb) {
      return Error(column, absl::StrFormat("unknown verb `%s` (expected read, write, call, "
                                           "manage, admin, or * for all)",
                                           absl::CHexEscape(name)));
    }
    if (verbs->Contains(*verb)) {
      return Error(column, absl::StrFormat("verb `%s` listed twice", name));
    }
    verbs->Add(*verb);
  }
  return absl::OkStatus();
}

absl::Status Policy::Parser::ParseDomain(const Token& token, DomainMatcher* domain) {
  const std::string& d = token.text;
  if (d == "*") {
    domain->kind = DomainMatcher::Kind::kAny;
    return absl::OkStatus();
  }
  if (absl::StartsWith(d, "uuid:")) {
    absl::string_view uuid = absl::string_view(d).substr(5);
    if (!IsUuid(uuid)) {
      return Error(token.ColumnAt(5),
                   absl::StrFormat("bad domain UUID `%s` (expected "
                                   "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx in hex)",
                                   absl::CHexEscape(uuid)));
    }
    domain->kind = DomainMatcher::Kind::kUuid;
    domain->uuid = absl::AsciiStrToLower(uuid);
    return absl::OkStatus();
  }
  if (absl::StartsWith(d, "name:")) {
    if (d.size() == 5) return Error(token.column, "empty domain name pattern after `name:`");
    absl::StatusOr<Glob> glob = CompileGlob(token, 5, "domain name pattern");
    if (!glob.ok()) return glob.status();
    domain->kind = DomainMatcher::Kind::kName;
    domain->name = *std::move(glob);
    return absl::OkStatus();
  }
  std::string hint;
  if (IsUuid(d)) hint = absl::StrFormat(" (did you mean `uuid:%s`?)", d);
  return Error(token.column,
               absl::StrFormat("bad domain `%s`: expected `*`, `uuid:UUID` or `name:GLOB`%s",
                               absl::CHexEscape(d), hint));
}

absl::Status Policy::Parser::ParseChannel(const Token& token, std::optional<Glob>* channel) {
  // Outside `[...]` sets, literal bytes must be channel-id bytes, or the
  // pattern could never match (a typo such as `org/example`).
  bool in_set = false;
  for (size_t i = 0; i < token.text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(token.text[i]);
    if (c == '\\' && i + 1 < token.text.size()) {
      ++i;
      continue;
    }
    if (in_set) {
      if (c == ']') in_set = false;
      continue;
    }
    if (c == '[') {
      in_set = true;
      continue;
    }
    if (c == '*' || c == '?' || IsChannelByte(c)) continue;
    return Error(token.ColumnAt(i),
                 absl::StrFormat("channel pattern `%s` holds `%s`, which no channel id can "
                                 "contain (A-Z a-z 0-9 . _ -)",
                                 absl::CHexEscape(token.text),
                                 absl::CHexEscape(absl::string_view(token.text).substr(i, 1))));
  }
  absl::StatusOr<Glob> glob = CompileGlob(token, 0, "channel pattern");
  if (!glob.ok()) return glob.status();
  *channel = *std::move(glob);
  return absl::OkStatus();
}
}  // namespace policy
}  // namespace server
}  // namespace xenchan
