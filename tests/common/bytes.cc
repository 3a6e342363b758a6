// Deterministic byte patterns and their checks (see bytes.h).
#include "tests/common/bytes.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace xenchan {
namespace testcommon {

std::string Pattern(size_t n, uint32_t seed, PatternAlphabet alphabet) {
  const char first = alphabet == PatternAlphabet::kLowercase ? 'a' : '!';
  const uint32_t size = alphabet == PatternAlphabet::kLowercase ? 26 : 90;
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 12345;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345;
    s[i] = static_cast<char>(first + (x >> 16) % size);
  }
  return s;
}

std::string PatternAt(uint32_t seed, uint64_t offset, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    uint64_t x = (offset + i) * 0x9E3779B97F4A7C15ull ^ (seed + 1) * 0xC2B2AE3D27D4EB4Full;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    s[i] = static_cast<char>('a' + x % 26);
  }
  return s;
}

size_t FirstMismatch(const std::string& got, const std::string& want) {
  const size_t common = std::min(got.size(), want.size());
  const auto diff = std::mismatch(got.begin(), got.begin() + common, want.begin());
  const size_t at = static_cast<size_t>(diff.first - got.begin());
  if (at < common) return at;
  return got.size() == want.size() ? std::string::npos : common;
}

std::string DescribeMismatch(const std::string& got, const std::string& want) {
  const size_t at = FirstMismatch(got, want);
  if (at == std::string::npos) return "";
  constexpr size_t kContext = 16;
  const size_t from = at > kContext ? at - kContext : 0;
  auto around = [&](const std::string& s) {
    return from >= s.size() ? std::string() : absl::CHexEscape(s.substr(from, 2 * kContext));
  };
  return absl::StrCat("got ", got.size(), " bytes, want ", want.size(),
                      "; first difference at offset ", at, ": got \"", around(got), "\", want \"",
                      around(want), "\" (from offset ", from, ")");
}

}  // namespace testcommon
}  // namespace xenchan
