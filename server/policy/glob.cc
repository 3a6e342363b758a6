// Glob compilation and matching; see glob.h for the syntax.
#include "server/policy/glob.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace xenchan {
namespace server {
namespace policy {
namespace {

absl::Status GlobError(size_t offset, size_t* error_offset, absl::string_view message) {
  if (error_offset != nullptr) *error_offset = offset;
  return absl::InvalidArgumentError(message);
}

}  // namespace

absl::StatusOr<Glob> Glob::Compile(absl::string_view pattern, size_t* error_offset) {
  Glob glob;
  glob.pattern_ = std::string(pattern);
  bool literal = true;
  bool everything = true;
  size_t i = 0;
  while (i < pattern.size()) {
    const unsigned char c = static_cast<unsigned char>(pattern[i]);
    Token token;
    if (c == '*') {
      literal = false;
      token.star = true;
      // Consecutive stars are one star.
      if (!glob.tokens_.empty() && glob.tokens_.back().star) {
        ++i;
        continue;
      }
      ++i;
    } else if (c == '?') {
      literal = false;
      everything = false;
      token.bytes.set();
      ++i;
    } else if (c == '\\') {
      literal = false;
      everything = false;
      if (i + 1 >= pattern.size()) {
        return GlobError(i, error_offset, "`\\` at the end of a pattern escapes nothing");
      }
      token.bytes.set(static_cast<unsigned char>(pattern[i + 1]));
      i += 2;
    } else if (c == '[') {
      literal = false;
      everything = false;
      const size_t open = i;
      ++i;
      bool negate = false;
      if (i < pattern.size() && (pattern[i] == '!' || pattern[i] == '^')) {
        negate = true;
        ++i;
      }
      bool closed = false;
      bool any = false;
      while (i < pattern.size()) {
        unsigned char lo = static_cast<unsigned char>(pattern[i]);
        const size_t lo_offset = i;
        if (lo == ']') {
          closed = true;
          ++i;
          break;
        }
        if (lo == '\\') {
          if (i + 1 >= pattern.size()) break;  // reported as unterminated
          lo = static_cast<unsigned char>(pattern[i + 1]);
          i += 2;
        } else {
          ++i;
        }
        unsigned char hi = lo;
        // A range `a-z`; a `-` right before `]` is a literal dash.
        if (i + 1 < pattern.size() && pattern[i] == '-' && pattern[i + 1] != ']') {
          ++i;
          hi = static_cast<unsigned char>(pattern[i]);
          if (hi == '\\') {
            if (i + 1 >= pattern.size()) break;
            hi = static_cast<unsigned char>(pattern[i + 1]);
            ++i;
          }
          ++i;
          if (hi < lo) {
            return GlobError(
                lo_offset, error_offset,
                absl::StrCat("reversed range in `[...]` set of pattern `", pattern, "`"));
          }
        }
        for (unsigned int b = lo; b <= hi; ++b) token.bytes.set(b);
        any = true;
      }
      if (!closed) {
        return GlobError(open, error_offset,
                         absl::StrCat("unterminated `[` set in pattern `", pattern, "`"));
      }
      if (!any) {
        return GlobError(open, error_offset,
                         absl::StrCat("empty `[]` set in pattern `", pattern, "`"));
      }
      if (negate) token.bytes.flip();
    } else {
      everything = false;
      token.bytes.set(c);
      ++i;
    }
    glob.tokens_.push_back(std::move(token));
  }
  glob.literal_ = literal;
  glob.everything_ = everything && !glob.tokens_.empty();
  return glob;
}

bool Glob::Matches(absl::string_view subject) const {
  if (literal_) return subject == pattern_;
  if (everything_) return true;
  // Classic two-pointer matching with one backtrack point: after a star, a
  // mismatch retries with the star swallowing one more byte. Each star
  // supersedes the previous one, so the cost is O(|pattern| * |subject|).
  const size_t m = tokens_.size();
  size_t p = 0;
  size_t s = 0;
  size_t star_p = m;  // none yet
  size_t star_s = 0;
  while (s < subject.size()) {
    if (p < m && tokens_[p].star) {
      star_p = p++;
      star_s = s;
      continue;
    }
    if (p < m && tokens_[p].bytes.test(static_cast<unsigned char>(subject[s]))) {
      ++p;
      ++s;
      continue;
    }
    if (star_p == m) return false;
    p = star_p + 1;
    s = ++star_s;
  }
  while (p < m && tokens_[p].star) ++p;
  return p == m;
}

}  // namespace policy
}  // namespace server
}  // namespace xenchan
