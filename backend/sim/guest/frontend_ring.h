// The guest (frontend) half of the console ring data path, as hvc_xen's
// __write_console and domU_read_console run it over `struct xencons_interface`
// (xen/io/console.h), XEN-CHANNELS §3.
//
// The page is shared with a backend in another process that may write
// anything into it at any time, so every index is read exactly once into a
// local, sanity-checked (out: prod - cons <= 2048, in: prod - cons <= 1024)
// and masked on every access. Barriers: a full fence after reading indices,
// a release fence before publishing out_prod, a full fence before publishing
// in_cons.
//
// Thread safety: a ring has one frontend producer/consumer; these functions
// must not run concurrently on the same page in one process.
#ifndef XENCHAN_BACKEND_SIM_GUEST_FRONTEND_RING_H_
#define XENCHAN_BACKEND_SIM_GUEST_FRONTEND_RING_H_

#include <cstddef>
#include <cstdint>

// console.h uses uint32_t without including anything.
#include <xen/io/console.h>

#include "absl/status/statusor.h"

namespace xenchan {
namespace sim {
namespace guest {

inline constexpr size_t kInRingSize = sizeof(static_cast<xencons_interface*>(nullptr)->in);
inline constexpr size_t kOutRingSize = sizeof(static_cast<xencons_interface*>(nullptr)->out);

// Free bytes in the out ring (guest -> backend). INVALID_ARGUMENT ("illegal
// ring page indices") when out_prod - out_cons exceeds the ring size.
absl::StatusOr<size_t> OutRingFree(const xencons_interface* intf);

// Copies as much of data[0..len) as fits into the out ring and publishes
// out_prod. Returns the bytes written (0 when full). The caller notifies the
// backend when the result is non-zero. INVALID_ARGUMENT on illegal indices
// (nothing is written).
absl::StatusOr<size_t> WriteOutRing(xencons_interface* intf, const char* data, size_t len);

// A snapshot of the in ring (backend -> guest).
struct InRingView {
  uint32_t cons = 0;     // in_cons as read
  size_t available = 0;  // in_prod - in_cons, <= kInRingSize
};

// Reads the in-ring indices once. INVALID_ARGUMENT on illegal indices.
absl::StatusOr<InRingView> PeekInRing(const xencons_interface* intf);

// Copies up to `max` bytes starting `offset` bytes past view.cons into `buf`
// without consuming them. Returns the bytes copied.
size_t CopyFromInRing(const xencons_interface* intf, const InRingView& view, size_t offset,
                      char* buf, size_t max);

// Publishes in_cons = view.cons + consumed (consumed <= view.available) after
// a full fence. The caller notifies the backend when consumed is non-zero.
void ConsumeInRing(xencons_interface* intf, const InRingView& view, size_t consumed);

}  // namespace guest
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_GUEST_FRONTEND_RING_H_
