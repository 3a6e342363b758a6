// UUID text forms and generators; see uuid.h.
#include "backend/util/uuid.h"

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"

namespace xenchan {
namespace {

constexpr uint64_t kVersionMask = 0xffffffffffff0fffULL;  // bits 48..51 of the UUID
constexpr uint64_t kVariantMask = 0x3fffffffffffffffULL;  // bits 64..65
constexpr uint64_t kRfcVariant = 0x8000000000000000ULL;   // variant 10

uint64_t WithVersion(uint64_t high, uint64_t version) {
  return (high & kVersionMask) | (version << 12);
}

uint64_t WithRfcVariant(uint64_t low) { return (low & kVariantMask) | kRfcVariant; }

uint64_t Fnv1a64(absl::string_view key, uint64_t offset_basis) {
  uint64_t h = offset_basis;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

bool IsUuid(absl::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return false;
    } else if (!absl::ascii_isxdigit(static_cast<unsigned char>(text[i]))) {
      return false;
    }
  }
  return true;
}

std::optional<std::string> CanonicalUuid(absl::string_view text) {
  if (!IsUuid(text)) return std::nullopt;
  return absl::AsciiStrToLower(text);
}

std::string FormatUuid(uint64_t high, uint64_t low) {
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", high >> 32, (high >> 16) & 0xffff,
                         high & 0xffff, low >> 48, low & 0xffffffffffffULL);
}

std::string NewUuid() {
  // One generator per thread, seeded with 128 bits from the OS.
  static thread_local std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  const uint64_t high = rng();
  const uint64_t low = rng();
  return FormatUuid(WithVersion(high, 4), WithRfcVariant(low));
}

std::string StableUuid(absl::string_view key) {
  // Two FNV-1a 64 hashes with different offsets; version 8 (custom), variant 10.
  const uint64_t high = WithVersion(Fnv1a64(key, 0xcbf29ce484222325ULL), 8);
  const uint64_t low = WithRfcVariant(Fnv1a64(key, 0x84222325cbf29ce4ULL));
  return FormatUuid(high, low);
}

}  // namespace xenchan
