// The xenstore side of hot-adding a ring channel's console device
// (XEN-CHANNELS §2.5): the devid choice and both ends written in one
// transaction. Used by a create and by the re-creation of a durable channel
// in a new incarnation of its domain.
#ifndef XENCHAN_BACKEND_ENGINE_CONSOLE_DEVICE_H_
#define XENCHAN_BACKEND_ENGINE_CONSOLE_DEVICE_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/engine/types.h"
#include "backend/platform/xenstore.h"

namespace xenchan {

// The console device of a ring channel.
struct NewConsoleDevice {
  uint32_t backend_domid = 0;
  std::string backend_type;
  uint32_t domid = 0;
  uint32_t devid = 0;  // chosen by AddConsoleDevice
  std::string channel_id;
  std::string uid;
  ChannelConfig config;  // every field set (Engine::EffectiveConfig)
  uint64_t epoch = 0;    // the highest epoch the channel has used (backend `xenchan-epoch`)
};

// How AddConsoleDevice chooses the devid (devid.h's ChooseDevid).
struct DevidChoice {
  std::set<uint32_t> recently_released;
  uint32_t max_channels_per_domain = 0;
  std::optional<uint32_t> preferred;
  std::string domain_name;  // for messages
};

// In one transaction, run again on a conflict: checks that the domain is
// still there (UNAVAILABLE if not), chooses the devid (ChooseDevid's errors)
// and, unless `validate_only`, writes both ends of `device` with it (the
// xenstore error). Returns the devid.
absl::StatusOr<uint32_t> AddConsoleDevice(XenStore& xs, const NewConsoleDevice& device,
                                          const DevidChoice& choice, bool validate_only);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_CONSOLE_DEVICE_H_
