// The simulated guest's saved state: what of a Linux guest's memory matters
// to its console devices when the toolstack saves it (`xl save`, the
// migration stream) and a new domain later resumes it. Written by the guest
// process on `save` (guest_save.cc) into the save image the toolstack
// writes, read back by the guest process the restoring toolstack starts.
//
// What is kept, per xenbus device the guest knows (drivers/xen/xenbus keeps
// its device list in memory across suspend, see xenbus_dev_resume): its
// nodename, type, registration order, whether a driver is bound, the
// console's vtermno, hvc tty line and byte counters, and the 4 KiB ring page
// (guest memory; xencons_resume zeroes it for every device it resumes, so
// its contents only survive for a device whose resume fails). Event-channel
// ports and grant references are not kept: they belonged to the old domain.
// Guest-wide: the boot id (new on every boot, kept across save/restore) and
// how many times the guest has resumed.
//
// Encoding: text lines, versioned ("xensim-guest-state 1"); strings and the
// page are hex. Pure functions, thread-safe.
#ifndef XENCHAN_BACKEND_SIM_GUEST_GUEST_STATE_H_
#define XENCHAN_BACKEND_SIM_GUEST_GUEST_STATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace xenchan {
namespace sim {
namespace guest {

struct SavedDevice {
  std::string nodename;  // "device/console/N"
  std::string type;      // "console"
  uint64_t seq = 0;
  bool bound = false;
  int vtermno = 0;     // meaningful when bound
  int hvc_index = -1;  // tty line, -1 if the device had no tty
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  std::string page;  // kSavedPageSize bytes when bound, else empty
};

struct SavedGuest {
  std::string boot_id;
  uint64_t resumes = 0;
  std::vector<SavedDevice> devices;  // in registration (seq) order
};

inline constexpr size_t kSavedPageSize = 4096;
inline constexpr size_t kMaxSavedDevices = 256;

std::string EncodeSavedGuest(const SavedGuest& state);
// INVALID_ARGUMENT naming the problem for anything malformed (wrong version,
// bad line, page of the wrong size, too many devices).
absl::StatusOr<SavedGuest> DecodeSavedGuest(absl::string_view text);

}  // namespace guest
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_GUEST_GUEST_STATE_H_
