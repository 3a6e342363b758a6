// Strict parsing of names and guest-written values.
#include "backend/engine/names.h"

#include <cstdio>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace xenchan {

absl::Status ValidateChannelId(absl::string_view id) {
  if (id.empty() || id.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("channel id must be 1 to 64 bytes, got ", id.size()));
  }
  if (!absl::ascii_isalnum(static_cast<unsigned char>(id[0]))) {
    return absl::InvalidArgumentError("channel id must start with a letter or digit");
  }
  for (char c : id) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (!absl::ascii_isalnum(u) && c != '.' && c != '_' && c != '-') {
      return absl::InvalidArgumentError("channel id may only contain [A-Za-z0-9._-]");
    }
  }
  return absl::OkStatus();
}

std::optional<uint32_t> ParseDecimal(absl::string_view text, uint32_t max) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > max) return std::nullopt;
  return static_cast<uint32_t>(value);
}

std::optional<XenbusState> ParseXenbusState(absl::string_view text) {
  std::optional<uint32_t> v = ParseDecimal(text, 8);
  if (!v.has_value()) return std::nullopt;
  return static_cast<XenbusState>(*v);
}

std::string NewUuid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t hi = rng();
  const uint64_t lo = rng();
  // Version 4, variant 10.
  const uint64_t h = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  const uint64_t l = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", h >> 32, (h >> 16) & 0xffff, h & 0xffff,
                         l >> 48, l & 0xffffffffffffULL);
}

std::string StableUuid(absl::string_view key) {
  // Two FNV-1a 64 hashes with different offsets; version 8 (custom), variant 10.
  auto fnv = [&](uint64_t h) {
    for (unsigned char c : key) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
    return h;
  };
  const uint64_t h = (fnv(0xcbf29ce484222325ULL) & 0xffffffffffff0fffULL) | 0x8000ULL;
  const uint64_t l = (fnv(0x84222325cbf29ce4ULL) & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", h >> 32, (h >> 16) & 0xffff, h & 0xffff,
                         l >> 48, l & 0xffffffffffffULL);
}

bool LooksLikeUuid(absl::string_view text) {
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

const char* ToString(ChannelState state) {
  switch (state) {
    case ChannelState::kCreating: return "CREATING";
    case ChannelState::kWaitingForGuest: return "WAITING_FOR_GUEST";
    case ChannelState::kConnected: return "CONNECTED";
    case ChannelState::kDisconnected: return "DISCONNECTED";
    case ChannelState::kClosing: return "CLOSING";
    case ChannelState::kClosed: return "CLOSED";
    case ChannelState::kFailed: return "FAILED";
  }
  return "?";
}

const char* ToString(ChannelEventType type) {
  switch (type) {
    case ChannelEventType::kAppeared: return "APPEARED";
    case ChannelEventType::kRemoved: return "REMOVED";
    case ChannelEventType::kConnected: return "CONNECTED";
    case ChannelEventType::kDisconnected: return "DISCONNECTED";
    case ChannelEventType::kEpochChanged: return "EPOCH_CHANGED";
    case ChannelEventType::kStateChanged: return "STATE_CHANGED";
    case ChannelEventType::kStalled: return "STALLED";
    case ChannelEventType::kUnstalled: return "UNSTALLED";
    case ChannelEventType::kLeaseChanged: return "LEASE_CHANGED";
    case ChannelEventType::kGap: return "GAP";
  }
  return "?";
}

const char* ToString(Transport transport) {
  switch (transport) {
    case Transport::kRing: return "RING";
    case Transport::kToolstackSocket: return "TOOLSTACK_SOCKET";
    case Transport::kToolstackPty: return "TOOLSTACK_PTY";
  }
  return "?";
}

}  // namespace xenchan
