// Whether this build runs under a sanitizer, for tests that scale their
// sizes and iteration counts down there (ASan and TSan make every byte and
// lock several times slower and inflate resident memory). Detection works
// for clang (__has_feature) and gcc (__SANITIZE_*__).
#ifndef XENCHAN_TESTS_COMMON_SANITIZERS_H_
#define XENCHAN_TESTS_COMMON_SANITIZERS_H_

namespace xenchan {
namespace testcommon {

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XENCHAN_TESTS_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define XENCHAN_TESTS_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define XENCHAN_TESTS_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define XENCHAN_TESTS_TSAN 1
#endif

#ifdef XENCHAN_TESTS_ASAN
inline constexpr bool kAsan = true;
#else
inline constexpr bool kAsan = false;
#endif
#ifdef XENCHAN_TESTS_TSAN
inline constexpr bool kTsan = true;
#else
inline constexpr bool kTsan = false;
#endif
#undef XENCHAN_TESTS_ASAN
#undef XENCHAN_TESTS_TSAN

// True under ASan or TSan.
inline constexpr bool kAnySanitizer = kAsan || kTsan;

// `normal` in a plain build, `sanitized` under ASan or TSan: a size or an
// iteration count that a test scales down there, e.g.
//   constexpr size_t kTotal = SanitizerScaled<size_t>(32 << 20, 8 << 20);
template <class T>
constexpr T SanitizerScaled(T normal, T sanitized) {
  return kAnySanitizer ? sanitized : normal;
}

}  // namespace testcommon
}  // namespace xenchan

#endif  // XENCHAN_TESTS_COMMON_SANITIZERS_H_
