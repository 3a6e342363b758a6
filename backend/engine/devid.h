// Which devid a new ring channel gets (XEN-CHANNELS §2.5, §6.1), and the
// devids unplugs released lately, which must not be handed out again yet.
//
// ChooseDevid is a pure function of what the create transaction read; the
// engine persists releases itself (engine_hotplug.cc, engine_recovery.cc),
// ReleasedDevids only remembers them.
#ifndef XENCHAN_BACKEND_ENGINE_DEVID_H_
#define XENCHAN_BACKEND_ENGINE_DEVID_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace xenchan {

// Devids of console devices besides the primary console (0) that a guest
// can tell apart: hvc_xen names them by their last character (§6.1).
inline constexpr uint32_t kMaxRingDevid = 9;

// The entries of one domain's console directories, in the order xenstore
// listed them (a directory that could not be read is empty).
struct ConsoleDirectories {
  std::vector<std::string> frontend;  // FrontendDir(D): every console the guest sees
  std::vector<std::string> libxl;     // LibxlConsoleDir(D): the toolstack's own
  std::vector<std::string> backend;   // our BackendDomainDir(B, type, D)
};

// The devid for a new ring channel of a domain: the lowest of 1..9 that
//  - no entry of `dirs` uses, whoever's it is (a frontend, libxl's record of
//    an xl.cfg channel, or one of our backends whose frontend is gone);
//  - is not the last digit of such an entry either (hvc_xen takes the devid
//    from the last character, §6.1, so 13 would clash with 3);
//  - is not in `recently_released` (§2.5: the guest may not have noticed the
//    old device go yet).
// Devid 0 is the primary console (xenconsoled's, or QEMU's under xl): it is
// never chosen and does not count towards the limit. Entries that are not
// decimal numbers (like our xenchan-released directory) are ignored.
// RESOURCE_EXHAUSTED if the frontend directory already lists
// `max_channels_per_domain` consoles besides devid 0, or if no devid 1..9 is
// free. `domain_name` only goes into the messages. `preferred` (a durable
// channel's devid in the domain's previous incarnation) is taken instead of
// the lowest when it is free by the same rules.
absl::StatusOr<uint32_t> ChooseDevid(const ConsoleDirectories& dirs,
                                     const std::set<uint32_t>& recently_released,
                                     uint32_t max_channels_per_domain,
                                     absl::string_view domain_name,
                                     std::optional<uint32_t> preferred = std::nullopt);

// Devids released by unplugs, per domain, with the time of their release. A
// released devid is blocked for `reuse_delay` after it. The engine persists
// each release under ReleasedDevidsDir so that the delay holds across
// restarts; this class only remembers them.
//
// Not thread-safe: the engine thread owns it.
class ReleasedDevids {
 public:
  explicit ReleasedDevids(absl::Duration reuse_delay) : reuse_delay_(reuse_delay) {}

  // True if a devid released `at` may be reused at `now`.
  bool Expired(absl::Time at, absl::Time now) const { return now - at >= reuse_delay_; }
  // `devid` of `domid` was released at `at` (replaces an earlier release).
  void Record(uint32_t domid, uint32_t devid, absl::Time at);
  // Forgets the releases of `domid` that have expired at `now` and returns
  // their devids (so that the caller can remove their persisted records).
  std::vector<uint32_t> Expire(uint32_t domid, absl::Time now);
  // Devids of `domid` released and not yet forgotten.
  std::set<uint32_t> Blocked(uint32_t domid) const;
  // The domain is gone: forget all of its releases.
  void ForgetDomain(uint32_t domid) { released_.erase(domid); }

 private:
  const absl::Duration reuse_delay_;
  // domid -> devid -> released at
  std::map<uint32_t, std::map<uint32_t, absl::Time>> released_;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_DEVID_H_
