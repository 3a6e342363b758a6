// Deterministic byte patterns for tests that move data through channels, and
// helpers to check what arrived. A pattern's bytes depend on the seed and on
// their position, so lost, repeated or misplaced bytes show as a mismatch.
// Plain functions; thread-safe.
#ifndef XENCHAN_TESTS_COMMON_BYTES_H_
#define XENCHAN_TESTS_COMMON_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace xenchan {
namespace testcommon {

// Which bytes a pattern is made of. Neither includes a newline, a space or a
// control character, so a pattern never completes a line or a frame early.
enum class PatternAlphabet {
  kLowercase,  // 'a'..'z'
  kPrintable,  // '!'..'z' (90 characters)
};

// `n` bytes of the pattern `seed` (a pseudo-random walk; the same arguments
// always give the same bytes).
std::string Pattern(size_t n, uint32_t seed = 0,
                    PatternAlphabet alphabet = PatternAlphabet::kLowercase);

// `n` bytes of an endless stream `seed` from `offset`, lowercase: every byte
// is a function of (seed, offset + i) alone, so any slice of the stream can
// be produced and checked on its own.
std::string PatternAt(uint32_t seed, uint64_t offset, size_t n);

// The offset of the first byte where `got` and `want` differ (the shorter
// length if one is a prefix of the other); std::string::npos if equal.
size_t FirstMismatch(const std::string& got, const std::string& want);

// "" if `got` == `want`, else a short description for a failure message:
// both sizes, the first differing offset and a few bytes of each around it
// (patterns are too long to print whole).
std::string DescribeMismatch(const std::string& got, const std::string& want);

}  // namespace testcommon
}  // namespace xenchan

#endif  // XENCHAN_TESTS_COMMON_BYTES_H_
