// The policy file's line structure: sections, `allow` rules and their
// key=value pairs, quoted and bare values with their columns, and the
// errors that name where a line went wrong. The values' own forms are
// checked in policy_values.cc; the format is described in policy.h.
#include "server/policy/policy_parser.h"

#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace xenchan {
namespace server {
namespace policy {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

}  // namespace

absl::StatusOr<Policy> Policy::Parse(absl::string_view text, absl::string_view source) {
  return Parser(text, source).Run();
}

absl::StatusOr<Policy> Policy::Parser::Run() {
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
        return Error(
            1, absl::StrFormat("duplicate section [identity %s]: it was already opened at line %d "
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

absl::Status Policy::Parser::Error(int column, absl::string_view message) const {
  return absl::InvalidArgumentError(
      absl::StrFormat("%s:%d:%d: %s", source_, line_, column, message));
}

void Policy::Parser::SkipSpace() {
  while (pos_ < line_text_.size() && IsSpace(line_text_[pos_])) ++pos_;
}

absl::Status Policy::Parser::CheckBytes() const {
  for (size_t i = 0; i < line_text_.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(line_text_[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return Error(static_cast<int>(i) + 1,
                   absl::StrFormat("control character 0x%02x is not allowed", c));
    }
  }
  return absl::OkStatus();
}

absl::string_view Policy::Parser::Word() {
  const size_t start = pos_;
  while (pos_ < line_text_.size() && !IsSpace(line_text_[pos_])) ++pos_;
  return line_text_.substr(start, pos_ - start);
}

absl::StatusOr<Policy::Parser::Token> Policy::Parser::Value(absl::string_view stop) {
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

absl::StatusOr<Glob> Policy::Parser::CompileGlob(const Token& token, size_t skip,
                                                 absl::string_view what) {
  size_t offset = 0;
  absl::StatusOr<Glob> glob = Glob::Compile(absl::string_view(token.text).substr(skip), &offset);
  if (!glob.ok()) {
    return Error(token.ColumnAt(skip + offset),
                 absl::StrCat("bad ", what, ": ", glob.status().message()));
  }
  return glob;
}

absl::StatusOr<Policy::Section> Policy::Parser::ParseSectionHeader() {
  Section section;
  section.line = line_;
  ++pos_;  // '['
  SkipSpace();
  const int kind_column = Column();
  size_t start = pos_;
  while (pos_ < line_text_.size() &&
         absl::ascii_isalpha(static_cast<unsigned char>(line_text_[pos_]))) {
    ++pos_;
  }
  absl::string_view kind = line_text_.substr(start, pos_ - start);
  if (kind != "identity") {
    return Error(kind_column, absl::StrFormat("unknown section `[%s ...]` (the only section is "
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
    return Error(Column(),
                 "expected `]` to close `[identity PATTERN]` (quote patterns that "
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

absl::StatusOr<Policy::Rule> Policy::Parser::ParseRule(int rule_column) {
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
      return Error(key_column,
                   absl::StrFormat("expected `key=value`, got `%s`", absl::CHexEscape(key)));
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
}  // namespace policy
}  // namespace server
}  // namespace xenchan
