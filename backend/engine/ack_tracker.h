// AckTracker: acknowledgement bookkeeping of one writer stream (Attach in
// the writer role). Each accepted write occupies host-to-guest offsets that
// end at `end` in the epoch it was accepted in; as the channel's WriteStatus
// moves on, the write reaches DELIVERED and then CONSUMED. The tracker turns
// successive WriteStatus observations into
//  - cumulative acknowledgements, one per level up to the requested one: the
//    highest sequence id such that it and every earlier write reached that
//    level (a write that has not reached a level blocks later writes from
//    being acknowledged at it, so an ack at level L covers everything before);
//  - rejections of writes that can no longer reach the requested level,
//    because the epoch changed (the guest reconnected; its undelivered bytes
//    were discarded) or the channel left CONNECTED. Consecutive rejected
//    writes with the same cause and reached level are grouped into one range.
//
// `reached` of a rejection is the highest level the write was ever seen to
// reach: a write seen DELIVERED in the old epoch stays DELIVERED after the
// epoch changed (the new epoch's offsets say nothing about the old bytes).
//
// Thread safety: none; the owner serialises calls (the stream's lock).
#ifndef XENCHAN_BACKEND_ENGINE_ACK_TRACKER_H_
#define XENCHAN_BACKEND_ENGINE_ACK_TRACKER_H_

#include <array>
#include <cstdint>
#include <deque>
#include <vector>

#include "backend/engine/session.h"
#include "backend/engine/types.h"

namespace xenchan {

// The level a write ending at host-to-guest offset `end` of `epoch` has
// reached according to `ws` (at least kAccepted: it was accepted). Offsets of
// another epoch say nothing, so then the answer is kAccepted.
AckLevel ReachedLevel(const WriteStatus& ws, uint64_t epoch, uint64_t end);

class AckTracker {
 public:
  // An acknowledgement: every write up to `sequence_id` reached `level`;
  // `epoch` and `end_offset` are those of the write `sequence_id`.
  struct Ack {
    uint64_t sequence_id = 0;
    AckLevel level = AckLevel::kAccepted;
    uint64_t epoch = 0;
    uint64_t end_offset = 0;
  };
  // Writes first..last (consecutive pending writes) will never reach the
  // requested level. `epoch` is that of the first write.
  struct Rejection {
    uint64_t first_sequence_id = 0;
    uint64_t last_sequence_id = 0;
    AckLevel reached = AckLevel::kAccepted;  // highest level they reached
    uint64_t epoch = 0;
    bool epoch_changed = false;  // else: the channel left CONNECTED
  };
  struct Update {
    std::vector<Ack> acks;              // by level, lowest first; only advances
    std::vector<Rejection> rejections;  // in sequence order
  };

  // `requested` is the level writes are acknowledged up to (kAccepted,
  // kDelivered or kConsumed).
  explicit AckTracker(AckLevel requested);

  // Records an accepted write. Sequence ids must increase.
  void Add(uint64_t sequence_id, uint64_t epoch, uint64_t end);

  // Applies the channel's write status now: returns the acknowledgements
  // that advanced since the last call and the writes that failed. Writes
  // that reached the requested level or failed are forgotten.
  Update Observe(const WriteStatus& ws);

  // True when no accepted write awaits its requested level.
  bool empty() const { return pending_.empty(); }

  // The progress the next acknowledgement waits for, as of the last
  // Observe: in `epoch`, the end offset of the oldest write not yet seen
  // DELIVERED and of the oldest not yet seen CONSUMED, for the levels up to
  // the requested one (0: nothing to wait for at that level; all 0 when
  // empty or the requested level is ACCEPTED). For Session::WakeOnProgress.
  struct Wanted {
    uint64_t epoch = 0;
    uint64_t delivered = 0;
    uint64_t consumed = 0;
  };
  Wanted NextProgress() const;

 private:
  struct Pending {
    uint64_t seq;
    uint64_t epoch;
    uint64_t end;
    AckLevel reached;  // highest level seen so far
  };

  const int top_;  // the requested level as a number (1..3)
  std::deque<Pending> pending_;
  std::array<uint64_t, 4> acked_ = {0, 0, 0, 0};  // highest acked seq per level
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_ACK_TRACKER_H_
