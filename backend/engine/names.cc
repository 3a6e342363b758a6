// Strict parsing of names and guest-written values.
#include "backend/engine/names.h"

namespace xenchan {

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

const char* ToString(ChannelState state) {
  switch (state) {
    case ChannelState::kCreating:
      return "CREATING";
    case ChannelState::kWaitingForGuest:
      return "WAITING_FOR_GUEST";
    case ChannelState::kConnected:
      return "CONNECTED";
    case ChannelState::kDisconnected:
      return "DISCONNECTED";
    case ChannelState::kClosing:
      return "CLOSING";
    case ChannelState::kClosed:
      return "CLOSED";
    case ChannelState::kFailed:
      return "FAILED";
    case ChannelState::kDomainDown:
      return "DOMAIN_DOWN";
  }
  return "?";
}

const char* ToString(ChannelEventType type) {
  switch (type) {
    case ChannelEventType::kAppeared:
      return "APPEARED";
    case ChannelEventType::kRemoved:
      return "REMOVED";
    case ChannelEventType::kConnected:
      return "CONNECTED";
    case ChannelEventType::kDisconnected:
      return "DISCONNECTED";
    case ChannelEventType::kEpochChanged:
      return "EPOCH_CHANGED";
    case ChannelEventType::kStateChanged:
      return "STATE_CHANGED";
    case ChannelEventType::kStalled:
      return "STALLED";
    case ChannelEventType::kUnstalled:
      return "UNSTALLED";
    case ChannelEventType::kLeaseChanged:
      return "LEASE_CHANGED";
    case ChannelEventType::kGap:
      return "GAP";
  }
  return "?";
}

const char* ToString(Transport transport) {
  switch (transport) {
    case Transport::kRing:
      return "RING";
    case Transport::kToolstackSocket:
      return "TOOLSTACK_SOCKET";
    case Transport::kToolstackPty:
      return "TOOLSTACK_PTY";
  }
  return "?";
}

}  // namespace xenchan
