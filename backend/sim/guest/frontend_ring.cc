#include "backend/sim/guest/frontend_ring.h"

#include <atomic>

#include "absl/status/status.h"

namespace xenchan {
namespace sim {
namespace guest {
namespace {

// One read of an index the peer may change concurrently.
// Acquire/release on the indices as well as the fences: same code on x86,
// and it lets ThreadSanitizer see the hand-off (TSan does not model fences).
uint32_t LoadIndex(const XENCONS_RING_IDX* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void StoreIndex(XENCONS_RING_IDX* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

uint32_t MaskIn(uint32_t idx) { return idx & (kInRingSize - 1); }
uint32_t MaskOut(uint32_t idx) { return idx & (kOutRingSize - 1); }

absl::Status IllegalIndices() { return absl::InvalidArgumentError("illegal ring page indices"); }

}  // namespace

static_assert((kInRingSize & (kInRingSize - 1)) == 0, "in ring size must be a power of two");
static_assert((kOutRingSize & (kOutRingSize - 1)) == 0, "out ring size must be a power of two");

absl::StatusOr<size_t> OutRingFree(const xencons_interface* intf) {
  const uint32_t cons = LoadIndex(&intf->out_cons);
  const uint32_t prod = LoadIndex(&intf->out_prod);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint32_t used = prod - cons;
  if (used > kOutRingSize) return IllegalIndices();
  return kOutRingSize - used;
}

absl::StatusOr<size_t> WriteOutRing(xencons_interface* intf, const char* data, size_t len) {
  const uint32_t cons = LoadIndex(&intf->out_cons);
  uint32_t prod = LoadIndex(&intf->out_prod);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // indices before data
  if (prod - cons > kOutRingSize) return IllegalIndices();
  size_t sent = 0;
  while (sent < len && prod - cons < kOutRingSize) {
    intf->out[MaskOut(prod++)] = data[sent++];
  }
  std::atomic_thread_fence(std::memory_order_release);  // data before out_prod
  StoreIndex(&intf->out_prod, prod);
  return sent;
}

absl::StatusOr<InRingView> PeekInRing(const xencons_interface* intf) {
  InRingView view;
  view.cons = LoadIndex(&intf->in_cons);
  const uint32_t prod = LoadIndex(&intf->in_prod);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // indices before data
  const uint32_t avail = prod - view.cons;
  if (avail > kInRingSize) return IllegalIndices();
  view.available = avail;
  return view;
}

size_t CopyFromInRing(const xencons_interface* intf, const InRingView& view, size_t offset,
                      char* buf, size_t max) {
  size_t n = 0;
  while (offset + n < view.available && n < max) {
    buf[n] = intf->in[MaskIn(view.cons + static_cast<uint32_t>(offset + n))];
    ++n;
  }
  return n;
}

void ConsumeInRing(xencons_interface* intf, const InRingView& view, size_t consumed) {
  if (consumed > view.available) consumed = view.available;
  std::atomic_thread_fence(std::memory_order_seq_cst);  // data read before in_cons
  StoreIndex(&intf->in_cons, view.cons + static_cast<uint32_t>(consumed));
}

}  // namespace guest
}  // namespace sim
}  // namespace xenchan
