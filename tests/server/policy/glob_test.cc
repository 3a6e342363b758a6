// Tests of the policy globs: syntax, errors with offsets, and matching
// (including hostile patterns that would be exponential with naive
// backtracking).
#include "server/policy/glob.h"

#include <string>

#include "gtest/gtest.h"

namespace xenchan {
namespace server {
namespace policy {
namespace {

bool Match(const std::string& pattern, const std::string& subject) {
  absl::StatusOr<Glob> glob = Glob::Compile(pattern);
  EXPECT_TRUE(glob.ok()) << pattern << ": " << glob.status();
  return glob.ok() && glob->Matches(subject);
}

TEST(GlobTest, LiteralMatchesOnlyItself) {
  absl::StatusOr<Glob> glob = Glob::Compile("org.example.agent");
  ASSERT_TRUE(glob.ok());
  EXPECT_TRUE(glob->is_literal());
  EXPECT_FALSE(glob->matches_everything());
  EXPECT_TRUE(glob->Matches("org.example.agent"));
  EXPECT_FALSE(glob->Matches("org.example.agent2"));
  EXPECT_FALSE(glob->Matches("org.example.agen"));
  EXPECT_FALSE(glob->Matches(""));
}

TEST(GlobTest, EmptyPatternMatchesEmptyOnly) {
  EXPECT_TRUE(Match("", ""));
  EXPECT_FALSE(Match("", "a"));
}

TEST(GlobTest, Star) {
  EXPECT_TRUE(Match("*", ""));
  EXPECT_TRUE(Match("*", "anything/at.all"));
  EXPECT_TRUE(Match("***", "x"));
  EXPECT_TRUE(Glob::Compile("**")->matches_everything());
  EXPECT_TRUE(Match("org.example.*", "org.example.agent.v1"));
  EXPECT_TRUE(Match("org.example.*", "org.example."));
  EXPECT_FALSE(Match("org.example.*", "org.example"));
  EXPECT_TRUE(Match("*.v1", "org.example.v1"));
  EXPECT_FALSE(Match("*.v1", "org.example.v10"));
  EXPECT_TRUE(Match("a*b*c", "abc"));
  EXPECT_TRUE(Match("a*b*c", "aXbYbZc"));
  EXPECT_FALSE(Match("a*b*c", "aXbYbZ"));
  // Star crosses `/` and `.`: globs are on bytes.
  EXPECT_TRUE(Match("spiffe://example.org/*", "spiffe://example.org/ns/a/b"));
}

TEST(GlobTest, QuestionMarkIsOneByte) {
  EXPECT_TRUE(Match("web-?", "web-1"));
  EXPECT_FALSE(Match("web-?", "web-"));
  EXPECT_FALSE(Match("web-?", "web-12"));
  EXPECT_TRUE(Match("??", "\xc3\xa9"));  // one two-byte character
}

TEST(GlobTest, Sets) {
  EXPECT_TRUE(Match("web-[0-9]", "web-7"));
  EXPECT_FALSE(Match("web-[0-9]", "web-x"));
  EXPECT_TRUE(Match("[abc]x", "bx"));
  EXPECT_FALSE(Match("[abc]x", "dx"));
  EXPECT_TRUE(Match("[!abc]x", "dx"));
  EXPECT_FALSE(Match("[!abc]x", "ax"));
  EXPECT_TRUE(Match("[^a]", "b"));
  EXPECT_TRUE(Match("[a-]", "-"));
  EXPECT_TRUE(Match("[\\]]", "]"));
  EXPECT_TRUE(Match("[a-cx-z]", "y"));
  EXPECT_FALSE(Match("[a-cx-z]", "d"));
}

TEST(GlobTest, Escapes) {
  EXPECT_TRUE(Match("a\\*", "a*"));
  EXPECT_FALSE(Match("a\\*", "ab"));
  EXPECT_TRUE(Match("\\?", "?"));
  EXPECT_FALSE(Match("\\?", "x"));
  EXPECT_FALSE(Glob::Compile("a\\*")->is_literal());
}

TEST(GlobTest, ErrorsCarryOffsets) {
  size_t offset = 99;
  absl::StatusOr<Glob> g = Glob::Compile("ab[cd", &offset);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("unterminated"), absl::string_view::npos);
  EXPECT_EQ(offset, 2u);

  g = Glob::Compile("x[]", &offset);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("empty"), absl::string_view::npos);
  EXPECT_EQ(offset, 1u);

  g = Glob::Compile("[z-a]", &offset);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("reversed"), absl::string_view::npos);
  EXPECT_EQ(offset, 1u);

  g = Glob::Compile("abc\\", &offset);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(offset, 3u);

  g = Glob::Compile("[ab\\", &offset);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(offset, 0u);
}

TEST(GlobTest, HostilePatternIsPolynomial) {
  // Naive recursive matching takes exponential time on this pair.
  const std::string pattern = "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
  const std::string subject(5000, 'a');
  EXPECT_FALSE(Match(pattern, subject));
  EXPECT_TRUE(Match(pattern, subject + "b"));
}

}  // namespace
}  // namespace policy
}  // namespace server
}  // namespace xenchan
