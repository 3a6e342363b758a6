// Private to //server/policy:policy. The policy file parser behind
// Policy::Parse(): policy_parser.cc reads the line structure (sections,
// `allow` rules and their key=value pairs, quoted and bare values) and
// policy_values.cc checks and compiles each value (identity patterns, verbs,
// domains, channel patterns). The format is described in policy.h.
#ifndef XENCHAN_SERVER_POLICY_POLICY_PARSER_H_
#define XENCHAN_SERVER_POLICY_POLICY_PARSER_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/policy/glob.h"
#include "server/policy/policy.h"

namespace xenchan {
namespace server {
namespace policy {
namespace internal {

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

}  // namespace internal

// Parses one policy text, line by line, into a Policy. Every error is
// INVALID_ARGUMENT naming `source:line:column`.
//
// Ownership: borrows `text` and `source`, which must outlive it. Thread
// safety: none; one Parser per Parse() call.
class Policy::Parser {
 public:
  using Token = internal::Token;

  Parser(absl::string_view text, absl::string_view source) : text_(text), source_(source) {}

  absl::StatusOr<Policy> Run();

 private:
  // Line structure and values (policy_parser.cc).
  absl::Status Error(int column, absl::string_view message) const;
  bool AtEnd() const { return pos_ >= line_text_.size() || line_text_[pos_] == '#'; }
  int Column() const { return static_cast<int>(pos_) + 1; }
  void SkipSpace();
  // Control characters other than tab have no business in a policy file;
  // refusing them keeps what an operator sees equal to what is enforced.
  absl::Status CheckBytes() const;
  // A run of bytes up to white space (used for the directive word).
  absl::string_view Word();
  // A value at pos_: quoted, or bare up to white space or any of `stop`.
  absl::StatusOr<Token> Value(absl::string_view stop);
  absl::StatusOr<Glob> CompileGlob(const Token& token, size_t skip, absl::string_view what);
  // `[identity PATTERN]`
  absl::StatusOr<Section> ParseSectionHeader();
  absl::StatusOr<Rule> ParseRule(int rule_column);

  // The forms of values (policy_values.cc).
  absl::StatusOr<IdentityMatcher> ParseIdentity(const Token& token);
  absl::Status ParseVerbs(const Token& token, VerbSet* verbs);
  absl::Status ParseDomain(const Token& token, DomainMatcher* domain);
  absl::Status ParseChannel(const Token& token, std::optional<Glob>* channel);

  absl::string_view text_;
  absl::string_view source_;
  int line_ = 0;
  absl::string_view line_text_;
  size_t pos_ = 0;
};

}  // namespace policy
}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_POLICY_POLICY_PARSER_H_
