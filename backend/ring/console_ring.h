// The backend's half of a PV console ring (struct xencons_interface from
// xen/io/console.h): drain the guest's `out` ring, fill its `in` ring.
//
// The page is shared with an untrusted guest that may rewrite any byte at any
// moment (XEN-CHANNELS §3.5). Every operation therefore:
//  - reads each guest-owned index exactly once into a local (no double fetch);
//  - keeps the indices the backend owns (out_cons, in_prod) in private
//    shadows, so a guest scribbling on them cannot steer our accesses;
//  - checks `prod - cons` against the ring size before touching data, and
//    masks every data access, so no access can leave the page;
//  - orders index and data accesses with the fences of §3.3.
// A ring whose indices are inconsistent is reported as DATA_LOSS and left
// untouched; the caller decides what to do (count it, ignore the round).
#ifndef XENCHAN_BACKEND_RING_CONSOLE_RING_H_
#define XENCHAN_BACKEND_RING_CONSOLE_RING_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"

namespace xenchan {

class ConsoleRing {
 public:
  static constexpr uint32_t kInSize = 1024;   // host -> guest
  static constexpr uint32_t kOutSize = 2048;  // guest -> host

  // Attaches to a mapped ring page (kXenPageSize bytes). The backend-owned
  // indices are adopted from the page as they are now: after a restart this
  // resumes exactly where the previous backend process stopped, losing
  // nothing still in either ring. Not thread-safe: one thread owns a ring.
  explicit ConsoleRing(void* page);

  // Guest -> host: bytes waiting in `out`. DATA_LOSS if the indices are
  // inconsistent (more than kOutSize apart).
  absl::StatusOr<size_t> OutAvailable() const;
  // Copies up to `max` waiting bytes into `dst` and releases their space to
  // the guest (publishes out_cons). Returns the number copied (0 if none).
  // The caller notifies the guest if out_was_full(): a frontend writes what
  // fits and waits for an event only when it found no room at all (Linux's
  // hvc_xen, the simulated guest), so freeing part of a ring that was not
  // full wakes nobody who waits.
  absl::StatusOr<size_t> DrainOut(char* dst, size_t max);
  // Whether the guest may have found `out` full before the last DrainOut
  // that moved bytes freed their space: it was full at the drain, or the
  // guest filled it against the old out_cons meanwhile (out_prod is read
  // again after publishing out_cons). Guest-controlled, so it decides only
  // whether to notify: a lying guest gains an event or loses its own.
  bool out_was_full() const { return out_was_full_; }

  // Host -> guest: free space in `in`. DATA_LOSS if inconsistent.
  absl::StatusOr<size_t> InFree() const;
  // Copies up to `len` bytes from `src` into free space and publishes in_prod.
  // Returns the number written. The caller notifies if non-zero.
  absl::StatusOr<size_t> FillIn(const char* src, size_t len);
  // Total bytes ever published into `in` by this ring object, counted from
  // attach, and the total the guest has consumed (moved in_cons past): the
  // basis for "delivered" and "consumed" acknowledgements.
  uint64_t in_produced() const { return in_produced_; }
  // Contract: never more than in_produced() and never less than an earlier
  // result. A guest that moves in_cons backwards (or indices that were
  // garbage at attach) cannot make it go back or past what was produced:
  // consumption already reported stays reported. DATA_LOSS if inconsistent.
  absl::StatusOr<uint64_t> InConsumed();

  // Total bytes drained from `out` since attach.
  uint64_t out_consumed() const { return out_consumed_; }

 private:
  struct Snapshot {
    uint32_t cons;
    uint32_t prod;
  };
  Snapshot SnapOut() const;
  Snapshot SnapIn() const;

  unsigned char* const page_;
  uint32_t out_cons_;  // our shadow of out_cons
  uint32_t in_prod_;   // our shadow of in_prod
  uint32_t in_cons_at_attach_;
  uint64_t in_produced_ = 0;
  uint64_t in_consumed_ = 0;  // high-water mark of InConsumed()
  uint64_t out_consumed_ = 0;
  bool out_was_full_ = false;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_RING_CONSOLE_RING_H_
