// Policy parsing and checks; the format is described in policy.h.
#include "server/policy/policy.h"

#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace xenchan {
namespace policy {

absl::string_view VerbName(Verb verb) {
  switch (verb) {
    case Verb::kRead:
      return "read";
    case Verb::kWrite:
      return "write";
    case Verb::kCall:
      return "call";
    case Verb::kManage:
      return "manage";
    case Verb::kAdmin:
      return "admin";
  }
  return "unknown";
}

std::optional<Verb> ParseVerb(absl::string_view name) {
  for (Verb verb : kAllVerbs) {
    if (name == VerbName(verb)) return verb;
  }
  return std::nullopt;
}

VerbSet VerbSet::All() {
  VerbSet set;
  for (Verb verb : kAllVerbs) set.Add(verb);
  return set;
}

std::string VerbSet::ToString() const {
  std::vector<absl::string_view> names;
  for (Verb verb : kAllVerbs) {
    if (Contains(verb)) names.push_back(VerbName(verb));
  }
  return absl::StrJoin(names, ",");
}

// ---------------------------------------------------------------------------
// Parsing.

namespace {

// One value on a line: its decoded text and, for each decoded byte, the
// 1-based column it came from (for error positions inside values).
struct Token {
  std::string text;
  std::vector<int> columns;
  int column = 0;  // where the token starts
  bool quoted = false;
  int ColumnAt(size_t offset) const {
    if (offset < columns.size()) return columns[offset];
    return columns.empty() ? column : columns.back() + 1;
  }
};

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

bool IsChannelByte(unsigned char c) {
  return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
}

bool IsUuid(absl::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!absl::ascii_isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
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

class Policy::Parser {
 public:
  Parser(absl::string_view text, absl::string_view source) : text_(text), source_(source) {}

  absl::StatusOr<Policy> Run() {
    Policy policy;
    policy.source_ = std::string(source_);
    if (text_.size() > kMaxBytes) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: policy is %d bytes, more than the limit of %d", source_, text_.size(), kMaxBytes));
    }
    std::map<std::string, int> section_lines;  // canonical pattern -> line
    int line_no = 0;
    for (absl::string_view line : absl::StrSplit(text_, '\n')) {
      ++line_no;
      line_ = line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      line_text_ = line;
      pos_ = 0;
      if (absl::Status s = CheckBytes(); !s.ok()) return s;
      SkipSpace();
      if (AtEnd()) continue;
      if (line_text_[pos_] == '[') {
        absl::StatusOr<Section> section = ParseSectionHeader();
        if (!section.ok()) return section.status();
        auto [it, inserted] = section_lines.emplace(section->identity.text, line_no);
        if (!inserted) {
          return Error(1, absl::StrFormat(
                              "duplicate section [identity %s]: it was already opened at line %d "
                              "(put all rules of one identity pattern in one section)",
                              section->identity.text, it->second));
        }
        policy.sections_.push_back(*std::move(section));
        continue;
      }
      const int word_column = Column();
      absl::string_view word = Word();
      if (word != "allow") {
        return Error(word_column,
                     absl::StrFormat("unknown directive `%s` (expected `[identity ...]` or "
                                     "`allow verbs=... domain=... channel=...`)",
                                     absl::CHexEscape(word)));
      }
      if (policy.sections_.empty()) {
        return Error(word_column,
                     "rule outside a section: start one with `[identity PATTERN]` first");
      }
      absl::StatusOr<Rule> rule = ParseRule(word_column);
      if (!rule.ok()) return rule.status();
      policy.sections_.back().rules.push_back(*std::move(rule));
    }
    return policy;
  }

 private:
  absl::Status Error(int column, absl::string_view message) const {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s:%d:%d: %s", source_, line_, column, message));
  }

  bool AtEnd() const { return pos_ >= line_text_.size() || line_text_[pos_] == '#'; }
  int Column() const { return static_cast<int>(pos_) + 1; }
  void SkipSpace() {
    while (pos_ < line_text_.size() && IsSpace(line_text_[pos_])) ++pos_;
  }

  // Control characters other than tab have no business in a policy file;
  // refusing them keeps what an operator sees equal to what is enforced.
  absl::Status CheckBytes() const {
    for (size_t i = 0; i < line_text_.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(line_text_[i]);
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        return Error(static_cast<int>(i) + 1,
                     absl::StrFormat("control character 0x%02x is not allowed", c));
      }
    }
    return absl::OkStatus();
  }

  // A run of bytes up to white space (used for the directive word).
  absl::string_view Word() {
    const size_t start = pos_;
    while (pos_ < line_text_.size() && !IsSpace(line_text_[pos_])) ++pos_;
    return line_text_.substr(start, pos_ - start);
  }

  // A value at pos_: quoted, or bare up to white space or any of `stop`.
  absl::StatusOr<Token> Value(absl::string_view stop) {
    Token token;
    token.column = Column();
    if (pos_ < line_text_.size() && line_text_[pos_] == '"') {
      token.quoted = true;
      ++pos_;
      while (true) {
        if (pos_ >= line_text_.size()) {
          return Error(token.column, "unterminated quoted string");
        }
        const char c = line_text_[pos_];
        if (c == '"') {
          ++pos_;
          break;
        }
        if (c == '\\' && pos_ + 1 < line_text_.size() &&
            (line_text_[pos_ + 1] == '"' || line_text_[pos_ + 1] == '\\')) {
          token.text.push_back(line_text_[pos_ + 1]);
          token.columns.push_back(Column());
          pos_ += 2;
          continue;
        }
        token.text.push_back(c);
        token.columns.push_back(Column());
        ++pos_;
      }
      if (pos_ < line_text_.size() && !IsSpace(line_text_[pos_]) &&
          stop.find(line_text_[pos_]) == absl::string_view::npos) {
        return Error(Column(), "expected white space after a quoted string");
      }
      return token;
    }
    while (pos_ < line_text_.size() && !IsSpace(line_text_[pos_]) &&
           stop.find(line_text_[pos_]) == absl::string_view::npos) {
      const char c = line_text_[pos_];
      if (c == '"' || c == '#') {
        return Error(Column(), absl::StrFormat("`%c` inside an unquoted value: quote the value "
                                               "(\"...\")",
                                               c));
      }
      token.text.push_back(c);
      token.columns.push_back(Column());
      ++pos_;
    }
    return token;
  }

  absl::StatusOr<Glob> CompileGlob(const Token& token, size_t skip, absl::string_view what) {
    size_t offset = 0;
    absl::StatusOr<Glob> glob = Glob::Compile(absl::string_view(token.text).substr(skip), &offset);
    if (!glob.ok()) {
      return Error(token.ColumnAt(skip + offset),
                   absl::StrCat("bad ", what, ": ", glob.status().message()));
    }
    return glob;
  }

  // `[identity PATTERN]`
  absl::StatusOr<Section> ParseSectionHeader() {
    Section section;
    section.line = line_;
    ++pos_;  // '['
    SkipSpace();
    const int kind_column = Column();
    size_t start = pos_;
    while (pos_ < line_text_.size() && absl::ascii_isalpha(static_cast<unsigned char>(
                                           line_text_[pos_]))) {
      ++pos_;
    }
    absl::string_view kind = line_text_.substr(start, pos_ - start);
    if (kind != "identity") {
      return Error(kind_column,
                   absl::StrFormat("unknown section `[%s ...]` (the only section is "
                                   "`[identity PATTERN]`)",
                                   absl::CHexEscape(kind)));
    }
    SkipSpace();
    if (pos_ >= line_text_.size() || line_text_[pos_] == ']') {
      return Error(Column(), "missing identity pattern in `[identity PATTERN]`");
    }
    absl::StatusOr<Token> pattern = Value("]");
    if (!pattern.ok()) return pattern.status();
    SkipSpace();
    if (pos_ >= line_text_.size() || line_text_[pos_] != ']') {
      return Error(Column(), "expected `]` to close `[identity PATTERN]` (quote patterns that "
                             "contain white space or `]`)");
    }
    ++pos_;
    SkipSpace();
    if (!AtEnd()) return Error(Column(), "unexpected text after `]`");
    absl::StatusOr<IdentityMatcher> matcher = ParseIdentity(*pattern);
    if (!matcher.ok()) return matcher.status();
    section.identity = *std::move(matcher);
    return section;
  }

  absl::StatusOr<IdentityMatcher> ParseIdentity(const Token& token) {
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
        return Error(token.column,
                     absl::StrFormat("bad unix identity `%s` (expected `unix:uid=N` or "
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

  absl::StatusOr<Rule> ParseRule(int rule_column) {
    Rule rule;
    rule.line = line_;
    bool have_verbs = false;
    bool have_domain = false;
    bool have_channel = false;
    while (true) {
      SkipSpace();
      if (AtEnd()) break;
      const int key_column = Column();
      const size_t start = pos_;
      while (pos_ < line_text_.size() && line_text_[pos_] != '=' && !IsSpace(line_text_[pos_])) {
        ++pos_;
      }
      absl::string_view key = line_text_.substr(start, pos_ - start);
      if (pos_ >= line_text_.size() || line_text_[pos_] != '=') {
        return Error(key_column, absl::StrFormat("expected `key=value`, got `%s`",
                                                 absl::CHexEscape(key)));
      }
      ++pos_;  // '='
      absl::StatusOr<Token> value = Value("");
      if (!value.ok()) return value.status();
      if (value->text.empty()) {
        return Error(value->column, absl::StrFormat("empty value for `%s`", key));
      }
      bool* seen = nullptr;
      if (key == "verbs") {
        seen = &have_verbs;
      } else if (key == "domain") {
        seen = &have_domain;
      } else if (key == "channel") {
        seen = &have_channel;
      } else {
        return Error(key_column,
                     absl::StrFormat("unknown key `%s` (expected verbs, domain or channel)",
                                     absl::CHexEscape(key)));
      }
      if (*seen) return Error(key_column, absl::StrFormat("`%s` given twice in one rule", key));
      *seen = true;
      absl::Status s;
      if (key == "verbs") {
        s = ParseVerbs(*value, &rule.verbs);
      } else if (key == "domain") {
        s = ParseDomain(*value, &rule.domain);
      } else {
        s = ParseChannel(*value, &rule.channel);
      }
      if (!s.ok()) return s;
    }
    std::vector<absl::string_view> missing;
    if (!have_verbs) missing.push_back("verbs");
    if (!have_domain) missing.push_back("domain");
    if (!have_channel) missing.push_back("channel");
    if (!missing.empty()) {
      return Error(rule_column, absl::StrFormat("rule lacks %s (every rule needs verbs=, domain= "
                                                "and channel=)",
                                                absl::StrJoin(missing, ", ")));
    }
    return rule;
  }

  absl::Status ParseVerbs(const Token& token, VerbSet* verbs) {
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

  absl::Status ParseDomain(const Token& token, DomainMatcher* domain) {
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

  absl::Status ParseChannel(const Token& token, std::optional<Glob>* channel) {
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

  absl::string_view text_;
  absl::string_view source_;
  int line_ = 0;
  absl::string_view line_text_;
  size_t pos_ = 0;
};

absl::StatusOr<Policy> Policy::Parse(absl::string_view text, absl::string_view source) {
  return Parser(text, source).Run();
}

// ---------------------------------------------------------------------------
// Checks.

bool Policy::IdentityMatcher::Matches(const Principal& principal) const {
  if (any_kind) return true;
  return principal.kind == kind && value.has_value() && value->Matches(principal.value);
}

bool Policy::DomainMatcher::Matches(const DomainRef& domain) const {
  switch (kind) {
    case Kind::kAny:
      return true;
    case Kind::kUuid:
      return !domain.uuid.empty() && absl::EqualsIgnoreCase(domain.uuid, uuid);
    case Kind::kName:
      return !domain.name.empty() && name.has_value() && name->Matches(domain.name);
  }
  return false;
}

bool Policy::SectionApplies(const Section& section, const Identity& identity) const {
  for (const Principal& principal : identity.principals) {
    if (section.identity.Matches(principal)) return true;
  }
  return false;
}

const Policy::Rule* Policy::FindRule(const Identity& identity, const DomainRef& domain,
                                     absl::string_view channel_id, Verb verb,
                                     const Section** section_out) const {
  for (const Section& section : sections_) {
    if (!SectionApplies(section, identity)) continue;
    for (const Rule& rule : section.rules) {
      if (rule.verbs.Contains(verb) && rule.domain.Matches(domain) &&
          rule.channel->Matches(channel_id)) {
        if (section_out != nullptr) *section_out = &section;
        return &rule;
      }
    }
  }
  return nullptr;
}

bool Policy::Allows(const Identity& identity, const DomainRef& domain,
                    absl::string_view channel_id, Verb verb) const {
  return FindRule(identity, domain, channel_id, verb, nullptr) != nullptr;
}

Decision Policy::Check(const Identity& identity, const DomainRef& domain,
                       absl::string_view channel_id, Verb verb) const {
  Decision decision;
  const Section* section = nullptr;
  if (const Rule* rule = FindRule(identity, domain, channel_id, verb, &section)) {
    decision.allowed = true;
    decision.line = rule->line;
    decision.reason = absl::StrFormat("allowed by %s:%d ([identity %s])", source_, rule->line,
                                      section->identity.text);
    return decision;
  }
  if (!identity.authenticated()) {
    decision.reason = "denied: the caller is not authenticated";
    return decision;
  }
  bool any_section = false;
  for (const Section& s : sections_) any_section = any_section || SectionApplies(s, identity);
  if (!any_section) {
    decision.reason = absl::StrFormat("denied: no section of %s matches identity %s", source_,
                                      identity.ToString());
  } else {
    decision.reason = absl::StrFormat("denied: no rule of %s grants `%s` on this domain and "
                                      "channel to %s",
                                      source_, VerbName(verb), identity.ToString());
  }
  return decision;
}

VerbSet Policy::VerbsOn(const Identity& identity, const DomainRef& domain,
                        absl::string_view channel_id) const {
  VerbSet verbs;
  for (const Section& section : sections_) {
    if (!SectionApplies(section, identity)) continue;
    for (const Rule& rule : section.rules) {
      if (rule.domain.Matches(domain) && rule.channel->Matches(channel_id)) {
        verbs.AddAll(rule.verbs);
      }
    }
  }
  return verbs;
}

VerbSet Policy::VerbsOnDomain(const Identity& identity, const DomainRef& domain) const {
  VerbSet verbs;
  for (const Section& section : sections_) {
    if (!SectionApplies(section, identity)) continue;
    for (const Rule& rule : section.rules) {
      if (rule.domain.Matches(domain)) verbs.AddAll(rule.verbs);
    }
  }
  return verbs;
}

size_t Policy::rule_count() const {
  size_t n = 0;
  for (const Section& section : sections_) n += section.rules.size();
  return n;
}

}  // namespace policy
}  // namespace xenchan
