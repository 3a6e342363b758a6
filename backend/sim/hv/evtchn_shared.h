// The memory the two peers of one bound interdomain event channel share in
// xensim (protocol.h, "Event channels"): the pending and mask bits of each
// end, as Xen keeps them in each domain's shared_info page, and the flag the
// hypervisor raises when it ends the binding. The hypervisor creates one such
// page per bound pair; both peers and the hypervisor map it read-write.
//
// Nothing here is trusted. Either peer may write any word at any time, so
// every reader takes a word as a hint only: "pending" means "this end may
// have fired" (the owner re-checks its rings), "mask" lets a notifier skip
// a wake-up the owner does not want yet (a notifier that ignores it only
// wakes the owner, whose own mask state is private), "closed" sends a
// notifier back to the hypervisor, which decides. Every access is one
// sequentially consistent atomic load, store or exchange of an aligned word,
// which cannot fault or tear whatever the peer does (the page is sealed
// against resizing).
#ifndef XENCHAN_BACKEND_SIM_HV_EVTCHN_SHARED_H_
#define XENCHAN_BACKEND_SIM_HV_EVTCHN_SHARED_H_

#include <cstdint>

namespace xenchan {
namespace sim {
namespace hv {

// Index of an end in a pair: side 0 is the port that was allocated unbound
// (kAllocUnbound), side 1 the port made by kBindInterdomain.
inline constexpr uint32_t kSideUnbound = 0;
inline constexpr uint32_t kSideBinder = 1;

struct EvtchnSharedWords {
  uint32_t pending[2];  // [side]: set by the peer's notify; cleared by the side's owner
  uint32_t mask[2];     // [side]: 1 while the side's owner does not want wake-ups
  uint32_t closed;      // set by the hypervisor once the binding has ended
};

inline uint32_t LoadWord(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
inline void StoreWord(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
inline uint32_t ExchangeWord(uint32_t* p, uint32_t v) {
  return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}

}  // namespace hv
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_HV_EVTCHN_SHARED_H_
