// Host-to-guest write queue of one channel (DESIGN §4 "Host to guest").
//
// Callers append bytes; the engine moves them into the guest's `in` ring as
// space frees. Offsets count from 0 in each epoch, and every byte passes
// three acknowledgement levels:
//   accepted  - appended here (accepted_offset()),
//   delivered - copied into the ring (delivered_offset()),
//   consumed  - the guest moved in_cons past it (consumed_offset()).
// The queue holds only accepted-but-undelivered bytes and is bounded by
// `limit` (a write either fits entirely or is refused). A new epoch discards
// what was never delivered.
#ifndef XENCHAN_BACKEND_ENGINE_WRITE_QUEUE_H_
#define XENCHAN_BACKEND_ENGINE_WRITE_QUEUE_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/engine/byte_chunks.h"

namespace xenchan {

// Thread safety: none; the channel's lock serialises access.
class WriteQueue {
 public:
  // The byte range a write occupies in its epoch: [start, end).
  struct Range {
    uint64_t epoch = 0;
    uint64_t start = 0;
    uint64_t end = 0;
  };

  explicit WriteQueue(size_t limit) : limit_(limit) {}

  // Starts epoch `epoch` at offset 0. Returns the number of undelivered
  // bytes discarded.
  uint64_t Reset(uint64_t epoch);
  // Discards undelivered bytes without starting a new epoch (the channel
  // left CONNECTED): accepted_offset() stays beyond delivered_offset(), so
  // writes ending past delivered_offset() are known to be lost. Returns the
  // number discarded.
  uint64_t DiscardQueued();

  // Appends `data` whole. RESOURCE_EXHAUSTED if it does not fit in the room
  // left (limit minus queued bytes); nothing is appended then.
  absl::StatusOr<Range> Append(absl::string_view data);

  // Copies up to `max` undelivered bytes (oldest first) into `dst`.
  size_t Peek(char* dst, size_t max) const;
  // Marks the first `n` undelivered bytes delivered (n <= queued()).
  void MarkDelivered(size_t n);
  // Records that the guest consumed up to `offset` of this epoch (clamped to
  // delivered_offset(); never moves backwards).
  void SetConsumed(uint64_t offset);

  uint64_t epoch() const { return epoch_; }
  uint64_t accepted_offset() const { return accepted_; }
  uint64_t delivered_offset() const { return delivered_; }
  uint64_t consumed_offset() const { return consumed_; }
  size_t queued() const { return bytes_.size(); }
  size_t room() const { return queued() >= limit_ ? 0 : limit_ - queued(); }
  size_t limit() const { return limit_; }
  // Changes the limit for the writes that follow (UpdateChannel). Below
  // queued() nothing is dropped (the queue never drops bytes it accepted):
  // it has no room until the guest has taken the excess.
  void SetLimit(size_t limit) { limit_ = limit; }

 private:
  size_t limit_;
  ByteChunks bytes_;  // the undelivered bytes, from delivered_offset() on
  uint64_t epoch_ = 0;
  uint64_t accepted_ = 0;
  uint64_t delivered_ = 0;
  uint64_t consumed_ = 0;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_WRITE_QUEUE_H_
