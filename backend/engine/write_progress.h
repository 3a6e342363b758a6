// WriteProgressTracker: how far the bytes of one Write stream got. The
// stream's bytes occupy host-to-guest offsets [start, start + accepted) of
// the epoch they were accepted in; the channel's WriteStatus says how far
// delivery and consumption went. Delivered and consumed figures only grow:
// once the epoch changes the new epoch's offsets say nothing about the old
// bytes, so the figures last seen in the stream's epoch are kept.
//
// Thread safety: none; the owner serialises calls (the stream's lock).
#ifndef XENCHAN_BACKEND_ENGINE_WRITE_PROGRESS_H_
#define XENCHAN_BACKEND_ENGINE_WRITE_PROGRESS_H_

#include <cstdint>

#include "backend/engine/session.h"
#include "backend/engine/types.h"

namespace xenchan {

class WriteProgressTracker {
 public:
  struct Figures {
    uint64_t epoch = 0;         // 0 while nothing was accepted
    uint64_t start_offset = 0;  // of the stream's first byte
    uint64_t accepted = 0;
    uint64_t delivered = 0;  // <= accepted
    uint64_t consumed = 0;   // <= accepted
  };

  // Records `n` bytes accepted at `start` of `epoch`. The first call fixes
  // the stream's epoch and start offset; later bytes follow on directly.
  void Accepted(uint64_t epoch, uint64_t start, uint64_t n);

  // The figures according to `ws`, remembering delivery and consumption.
  Figures Observe(const WriteStatus& ws);

  // Of `figures`, the bytes that reached `level` (kAccepted: all accepted).
  static uint64_t BytesAt(const Figures& figures, AckLevel level);

  uint64_t accepted() const { return accepted_; }

 private:
  uint64_t epoch_ = 0;
  uint64_t start_ = 0;
  uint64_t accepted_ = 0;
  uint64_t delivered_ = 0;
  uint64_t consumed_ = 0;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_WRITE_PROGRESS_H_
