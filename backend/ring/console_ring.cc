// ConsoleRing: hostile-safe backend ring operations (see the header).
#include "backend/ring/console_ring.h"

#include <xen/io/console.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace xenchan {
namespace {

static_assert(sizeof(xencons_interface::in) == ConsoleRing::kInSize, "in ring size");
static_assert(sizeof(xencons_interface::out) == ConsoleRing::kOutSize, "out ring size");
static_assert(offsetof(xencons_interface, in_cons) == 3072, "ring layout");

constexpr size_t kInOffset = offsetof(xencons_interface, in);
constexpr size_t kOutOffset = offsetof(xencons_interface, out);

// Indices are read and written once each, as atomics with acquire/release on
// top of the explicit fences below: the same instructions on x86, and the
// only ordering ThreadSanitizer understands (it does not model fences).
inline uint32_t LoadIndex(const unsigned char* page, size_t offset) {
  return __atomic_load_n(reinterpret_cast<const uint32_t*>(page + offset), __ATOMIC_ACQUIRE);
}
inline void StoreIndex(unsigned char* page, size_t offset, uint32_t value) {
  __atomic_store_n(reinterpret_cast<uint32_t*>(page + offset), value, __ATOMIC_RELEASE);
}

absl::Status Corrupt(const char* ring, uint32_t cons, uint32_t prod) {
  return absl::DataLossError(
      absl::StrCat("inconsistent ", ring, " ring indices: cons=", cons, " prod=", prod));
}

}  // namespace

ConsoleRing::ConsoleRing(void* page) : page_(static_cast<unsigned char*>(page)) {
  out_cons_ = LoadIndex(page_, offsetof(xencons_interface, out_cons));
  in_prod_ = LoadIndex(page_, offsetof(xencons_interface, in_prod));
  in_cons_at_attach_ = LoadIndex(page_, offsetof(xencons_interface, in_cons));
  // Bytes already in `in` at attach were produced by an earlier backend; count
  // them as produced so that consumption is measured consistently.
  const uint32_t used = in_prod_ - in_cons_at_attach_;
  if (used <= kInSize) {
    in_produced_ = used;
  } else {
    in_cons_at_attach_ = in_prod_;  // garbage: measure from here
  }
}

ConsoleRing::Snapshot ConsoleRing::SnapOut() const {
  Snapshot s{out_cons_, LoadIndex(page_, offsetof(xencons_interface, out_prod))};
  std::atomic_thread_fence(std::memory_order_seq_cst);  // indices before data
  return s;
}

ConsoleRing::Snapshot ConsoleRing::SnapIn() const {
  Snapshot s{LoadIndex(page_, offsetof(xencons_interface, in_cons)), in_prod_};
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return s;
}

absl::StatusOr<size_t> ConsoleRing::OutAvailable() const {
  const Snapshot s = SnapOut();
  const uint32_t n = s.prod - s.cons;
  if (n > kOutSize) return Corrupt("out", s.cons, s.prod);
  return n;
}

absl::StatusOr<size_t> ConsoleRing::DrainOut(char* dst, size_t max) {
  const Snapshot s = SnapOut();
  const uint32_t avail = s.prod - s.cons;
  out_was_full_ = false;
  if (avail > kOutSize) return Corrupt("out", s.cons, s.prod);
  const uint32_t n = static_cast<uint32_t>(std::min<size_t>(avail, max));
  if (n == 0) return 0;
  const uint32_t start = s.cons & (kOutSize - 1);
  const uint32_t first = std::min(n, kOutSize - start);
  std::memcpy(dst, page_ + kOutOffset + start, first);
  std::memcpy(dst + first, page_ + kOutOffset, n - first);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // data read before space is freed
  out_cons_ = s.cons + n;
  StoreIndex(page_, offsetof(xencons_interface, out_cons), out_cons_);
  out_consumed_ += n;
  // Did the guest find no room before it saw the space freed here? It may
  // have filled the ring after our snapshot, against the old out_cons, and
  // wait now. Its out_prod, read again after publishing (the fence pairs
  // with the guest's between writing out_prod and reading out_cons), says:
  // full against the old out_cons means it may wait. A hint only, never an
  // index we access data by: a lying guest gains or loses its own wake-up.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint32_t prod_now = LoadIndex(page_, offsetof(xencons_interface, out_prod));
  out_was_full_ = prod_now - s.cons >= kOutSize;
  return n;
}

absl::StatusOr<size_t> ConsoleRing::InFree() const {
  const Snapshot s = SnapIn();
  const uint32_t used = s.prod - s.cons;
  if (used > kInSize) return Corrupt("in", s.cons, s.prod);
  return kInSize - used;
}

absl::StatusOr<size_t> ConsoleRing::FillIn(const char* src, size_t len) {
  const Snapshot s = SnapIn();
  const uint32_t used = s.prod - s.cons;
  if (used > kInSize) return Corrupt("in", s.cons, s.prod);
  const uint32_t n = static_cast<uint32_t>(std::min<size_t>(kInSize - used, len));
  if (n == 0) return 0;
  const uint32_t start = s.prod & (kInSize - 1);
  const uint32_t first = std::min(n, kInSize - start);
  std::memcpy(page_ + kInOffset + start, src, first);
  std::memcpy(page_ + kInOffset, src + first, n - first);
  std::atomic_thread_fence(std::memory_order_release);  // data written before in_prod
  in_prod_ = s.prod + n;
  StoreIndex(page_, offsetof(xencons_interface, in_prod), in_prod_);
  in_produced_ += n;
  return n;
}

absl::StatusOr<uint64_t> ConsoleRing::InConsumed() {
  const Snapshot s = SnapIn();
  const uint32_t used = s.prod - s.cons;
  if (used > kInSize) return Corrupt("in", s.cons, s.prod);
  // `used` is what the guest claims it has not read yet. Only a guest that
  // moved in_cons backwards can claim more than we produced since attach, or
  // less progress than it claimed before: keep the high-water mark.
  if (used <= in_produced_) in_consumed_ = std::max(in_consumed_, in_produced_ - used);
  return in_consumed_;
}

}  // namespace xenchan
