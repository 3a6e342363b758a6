#include "backend/sim/guest/xenbus_text.h"

#include <climits>

#include "absl/strings/str_cat.h"

namespace xenchan {
namespace sim {
namespace guest {

std::optional<int> ScanStateValue(const std::string& value) {
  size_t i = 0;
  while (i < value.size() && (value[i] == ' ' || (value[i] >= '\t' && value[i] <= '\r'))) ++i;
  bool negative = false;
  if (i < value.size() && (value[i] == '+' || value[i] == '-')) {
    negative = value[i] == '-';
    ++i;
  }
  if (i >= value.size() || value[i] < '0' || value[i] > '9') return std::nullopt;
  long long n = 0;
  for (; i < value.size() && value[i] >= '0' && value[i] <= '9'; ++i) {
    n = n * 10 + (value[i] - '0');
    if (n > static_cast<long long>(INT_MAX) + 1) return std::nullopt;
  }
  if (negative) n = -n;
  if (n > INT_MAX || n < INT_MIN) return std::nullopt;
  return static_cast<int>(n);
}

std::optional<int> DevidFromNodename(const std::string& nodename) {
  if (nodename.empty()) return std::nullopt;
  return static_cast<int>(static_cast<signed char>(nodename.back())) - '0';
}

std::optional<uint32_t> ParseBackendId(const std::string& value) {
  if (value.empty() || value.size() > 5) return std::nullopt;
  uint32_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value.size() > 1 && value[0] == '0') return std::nullopt;
  if (n >= 0x7FF0) return std::nullopt;
  return n;
}

bool IsSaneBackendPath(const std::string& path) {
  if (path.size() < 2 || path.size() > 3072 || path[0] != '/' || path.back() == '/') {
    return false;
  }
  char prev = 0;
  for (char c : path) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '/' || c == '_' || c == '@';
    if (!ok) return false;
    if (c == '/' && prev == '/') return false;
    prev = c;
  }
  return true;
}

bool IsValidChannelName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string XenbusErrorText(int errno_value, const std::string& message) {
  return absl::StrCat(errno_value, " ", message);
}

}  // namespace guest
}  // namespace sim
}  // namespace xenchan
