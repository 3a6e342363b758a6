// Devid choice for new ring channels and the record of released devids.
#include "backend/engine/devid.h"

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backend/engine/names.h"

namespace xenchan {
namespace {

// Console directory entries above this are not devids anyone uses.
constexpr uint32_t kMaxListedDevid = 1000000;

}  // namespace

absl::StatusOr<uint32_t> ChooseDevid(const ConsoleDirectories& dirs,
                                     const std::set<uint32_t>& recently_released,
                                     uint32_t max_channels_per_domain,
                                     absl::string_view domain_name,
                                     std::optional<uint32_t> preferred) {
  std::set<uint32_t> used;
  size_t consoles = 0;
  for (const std::vector<std::string>* dir : {&dirs.frontend, &dirs.libxl, &dirs.backend}) {
    for (const std::string& e : *dir) {
      std::optional<uint32_t> n = ParseDecimal(e, kMaxListedDevid);
      if (!n.has_value()) continue;
      if (used.insert(*n).second && *n != 0 && dir == &dirs.frontend) ++consoles;
      // hvc_xen takes the devid from the last character (§6.1).
      used.insert(*n % 10);
    }
  }
  if (consoles >= max_channels_per_domain) {
    return absl::ResourceExhaustedError(absl::StrCat("domain ", domain_name, " already has ",
                                                     consoles, " console devices (the limit)"));
  }
  auto free = [&](uint32_t n) { return used.count(n) == 0 && recently_released.count(n) == 0; };
  if (preferred.has_value() && *preferred >= 1 && *preferred <= kMaxRingDevid && free(*preferred)) {
    return *preferred;
  }
  for (uint32_t n = 1; n <= kMaxRingDevid; ++n) {
    if (free(n)) return n;
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("no free console devid 1..9 in domain ", domain_name));
}

void ReleasedDevids::Record(uint32_t domid, uint32_t devid, absl::Time at) {
  released_[domid][devid] = at;
}

std::vector<uint32_t> ReleasedDevids::Expire(uint32_t domid, absl::Time now) {
  std::vector<uint32_t> expired;
  auto dom = released_.find(domid);
  if (dom == released_.end()) return expired;
  for (auto it = dom->second.begin(); it != dom->second.end();) {
    if (!Expired(it->second, now)) {
      ++it;
      continue;
    }
    expired.push_back(it->first);
    it = dom->second.erase(it);
  }
  return expired;
}

std::set<uint32_t> ReleasedDevids::Blocked(uint32_t domid) const {
  std::set<uint32_t> blocked;
  auto dom = released_.find(domid);
  if (dom == released_.end()) return blocked;
  for (const auto& [devid, at] : dom->second) blocked.insert(devid);
  return blocked;
}

}  // namespace xenchan
