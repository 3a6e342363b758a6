// Glob: the wildcard patterns of the policy file (identity, domain name and
// channel-id patterns), compiled once and matched against byte strings.
//
// Syntax (bytes, not characters; no special meaning for `/` or `.`):
//   *        any run of bytes, including none
//   ?        exactly one byte
//   [abc]    one byte of the set; ranges `[a-z0-9]`; `[!abc]` or `[^abc]`
//            negates the set; inside a set `\` escapes the next byte
//   \x       the byte x literally (so `\*` matches a star)
//   anything else matches itself.
// Errors (INVALID_ARGUMENT, with the byte offset of the culprit): an
// unterminated or empty set, a reversed range (`[z-a]`), a trailing `\`.
//
// Matching is linear in the product of the pattern and subject lengths (no
// exponential backtracking), so hostile patterns or subjects are harmless.
//
// Thread safety: a compiled Glob is immutable; const methods are thread-safe.
#ifndef XENCHAN_SERVER_POLICY_GLOB_H_
#define XENCHAN_SERVER_POLICY_GLOB_H_

#include <bitset>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace xenchan {
namespace server {
namespace policy {

class Glob {
 public:
  // Compiles `pattern`. On INVALID_ARGUMENT, `*error_offset` (if not null)
  // receives the 0-based byte offset in `pattern` the error is about.
  static absl::StatusOr<Glob> Compile(absl::string_view pattern, size_t* error_offset = nullptr);

  // True if the whole of `subject` matches the pattern.
  bool Matches(absl::string_view subject) const;

  // The pattern as written.
  const std::string& pattern() const { return pattern_; }
  // True if the pattern has no wildcard, set or escape: it matches exactly
  // the string pattern() and nothing else.
  bool is_literal() const { return literal_; }
  // True if the pattern matches every string (it is made of stars only).
  bool matches_everything() const { return everything_; }

 private:
  // One pattern element: a star, or a set of bytes matching one byte (a
  // literal byte is a set of one, `?` is the full set).
  struct Token {
    bool star = false;
    std::bitset<256> bytes;
  };

  Glob() = default;

  std::string pattern_;
  std::vector<Token> tokens_;
  bool literal_ = false;
  bool everything_ = false;
};

}  // namespace policy
}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_POLICY_GLOB_H_
