// EarliestResumableRevision: see retained_revisions.h.
#include "backend/engine/retained_revisions.h"

namespace xenchan {

uint64_t EarliestResumableRevision(uint64_t current,
                                   absl::FunctionRef<bool(uint64_t revision)> resumable) {
  uint64_t lo = 0, hi = current;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (resumable(mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

}  // namespace xenchan
