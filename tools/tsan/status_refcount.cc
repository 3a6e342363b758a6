// Under ThreadSanitizer only: an instrumented definition of the one
// non-inline step of absl::Status's reference counting.
//
// An absl::Status with a message keeps it in a heap rep shared by all its
// copies. Taking a reference is inline (so compiled, and instrumented, into
// our code), but dropping one is Status::UnrefNonInlined in Debian's
// uninstrumented libabsl_status.so. TSan therefore never sees the
// acquire/release decrement that orders one thread's last use of the rep
// before another thread frees it, and reports the free as a race whenever a
// Status crosses threads (the engine answers on its thread, the scheduler
// reads the copy it was handed). Defining the function here, in every binary
// of a TSan build, makes that decrement visible: the free is then ordered,
// and a real race on a Status object itself is still reported.
//
// It does what Abseil 20220623's definition does (status_internal.h declares
// StatusRep); //tests/tools/tsan:status_handoff_test fails without it.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define XENCHAN_TSAN_BUILD 1
#endif
#endif

#ifdef XENCHAN_TSAN_BUILD
#include <atomic>
#include <cstdint>

#include "absl/status/internal/status_internal.h"
#include "absl/status/status.h"

namespace absl {
ABSL_NAMESPACE_BEGIN

void Status::UnrefNonInlined(uintptr_t rep) {
  status_internal::StatusRep* r = RepToPointer(rep);
  // The sole owner frees without a decrement; otherwise the owner whose
  // decrement reaches zero does.
  if (r->ref.load(std::memory_order_acquire) == 1 ||
      r->ref.fetch_sub(1, std::memory_order_acq_rel) - 1 == 0) {
    delete r;
  }
}

ABSL_NAMESPACE_END
}  // namespace absl
#endif  // XENCHAN_TSAN_BUILD
