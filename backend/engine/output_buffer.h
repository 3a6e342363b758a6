// Guest-to-host byte store of one channel (DESIGN §4 "Guest to host").
//
// The engine drains the guest's `out` ring into this buffer promptly and
// readers take bytes from it at their own pace. Positions are (epoch,
// offset): offsets count from 0 in each epoch, and the epoch changes whenever
// the frontend reconnects with a new ring. Internally every byte has a global
// sequence number that never resets, so several epochs can be retained side
// by side and a position converts to a sequence number and back.
//
// Memory is bounded by `limit` bytes of retained data. What happens when a
// new byte does not fit is the overflow policy:
//  - BLOCK (lossless): bytes that no reader has been handed yet are never
//    evicted. Space() tells the engine how much it may drain; when it is 0 the
//    engine stops draining and the guest stalls. Bytes that some reader has
//    been handed are evicted oldest first to make room (they remain available
//    for replay until then). A reader slower than the fastest one can thus
//    still fall behind and see a gap; the fastest reader never does.
//  - DROP_OLDEST: Space() is always the full ring, the oldest bytes are
//    evicted, and readers that had not reached them get a Gap record with the
//    exact number of bytes lost. Nothing is discarded silently: every evicted
//    byte no reader had reached is counted in bytes_dropped().
//
// A memory budget (memory_budget.h) can hold a buffer below its `limit`: the
// capacity-taking overloads of Space() and Append() treat
// min(limit, capacity) as the limit for that call, with the same policy:
// under BLOCK the guest stalls, under DROP_OLDEST the oldest bytes (and if
// even nothing retained leaves room, the new ones) are dropped and counted.
// TrimHanded() gives back bytes that only serve replay.
//
// Thread safety: none; the engine serialises access (it owns the buffer on
// its thread or under the channel's lock).
#ifndef XENCHAN_BACKEND_ENGINE_OUTPUT_BUFFER_H_
#define XENCHAN_BACKEND_ENGINE_OUTPUT_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/engine/byte_chunks.h"

namespace xenchan {

enum class OverflowPolicy { kBlock, kDropOldest };

// A place in the guest's output: byte `offset` of epoch `epoch`.
struct Position {
  uint64_t epoch = 0;
  uint64_t offset = 0;
  friend bool operator==(const Position& a, const Position& b) {
    return a.epoch == b.epoch && a.offset == b.offset;
  }
};

// One item handed to a reader.
struct OutputRecord {
  enum class Kind {
    kData,   // `data` starts at `position`
    kGap,    // `lost` bytes starting at `position` were evicted before the reader got them
    kEpoch,  // a new epoch begins at `position` (offset 0); earlier epochs are complete
  };
  Kind kind = Kind::kData;
  Position position;
  std::string data;
  uint64_t lost = 0;
  // kEpoch: the epoch the reader was in before, and its length (the offset
  // one past its last byte).
  uint64_t previous_epoch = 0;
  uint64_t previous_end_offset = 0;
};

// A reader's cursor: opaque, owned by the reader, advanced by Read().
struct ReadCursor {
  uint64_t seq = 0;              // next byte to hand out
  uint64_t epoch = 0;            // epoch the reader was last told about
  uint64_t epoch_start_seq = 0;  // where that epoch began
};

class OutputBuffer {
 public:
  // `limit` is the most bytes retained (DESIGN default 1 MiB), at least 1.
  // `first_epoch` exists from construction (the engine uses 0 for "not
  // connected yet").
  OutputBuffer(size_t limit, OverflowPolicy policy, uint64_t first_epoch = 1);

  // Starts a new epoch at the current end (the frontend reconnected with a
  // new ring), numbered one more than the current. Returns it.
  uint64_t NewEpoch();
  // As NewEpoch, numbered `epoch`, which must be greater than epoch()
  // (otherwise epoch() + 1 is used). Returns the number used.
  uint64_t StartEpoch(uint64_t epoch);
  uint64_t epoch() const { return epochs_.back().epoch; }

  // How many bytes Append may take now without breaking the policy.
  size_t Space() const { return Space(limit_); }
  // As Space(), with at most `capacity` bytes retained afterwards. Under
  // DROP_OLDEST still the full limit: the policy drops instead of stalling.
  size_t Space(size_t capacity) const;
  // Appends guest output. Under BLOCK the caller must not exceed Space();
  // excess bytes are refused (FAILED_PRECONDITION, nothing appended).
  absl::Status Append(absl::string_view data) { return Append(data, limit_); }
  // As Append(), retaining at most `capacity` bytes afterwards (under BLOCK
  // the caller must not exceed Space(capacity)).
  absl::Status Append(absl::string_view data, size_t capacity);
  // Evicts up to `max` of the oldest bytes that some reader has already been
  // handed (replay-only data; a slower reader gets a gap for them). Returns
  // the number evicted.
  size_t TrimHanded(size_t max);
  // Changes the limit (at least 1) at once (UpdateChannel). Below the bytes
  // retained, the oldest are evicted as DROP_OLDEST evicts them: readers
  // that had not reached them get a gap and they count in bytes_dropped().
  // Returns the number evicted.
  size_t SetLimit(size_t limit);
  // Changes the overflow policy for the appends that follow.
  void SetPolicy(OverflowPolicy policy) { policy_ = policy; }

  // Where a reader starting "now" or "from the oldest retained byte" stands.
  ReadCursor TailCursor() const;
  ReadCursor OldestCursor() const;
  // A cursor at `from`. OUT_OF_RANGE if that position is no longer (or not
  // yet) retained; the message names the earliest retained position.
  // NOT_FOUND if the epoch is unknown.
  absl::StatusOr<ReadCursor> CursorAt(const Position& from) const;

  // Hands the reader up to `max_bytes` of data (and any gap and epoch
  // records before it) and advances its cursor. Empty when caught up.
  std::vector<OutputRecord> Read(ReadCursor* cursor, size_t max_bytes);

  // Where a cursor stands, as a position.
  static Position PositionOfCursor(const ReadCursor& c) {
    return {c.epoch, c.seq - c.epoch_start_seq};
  }

  Position earliest() const { return PositionOf(start_seq_); }
  Position end() const { return PositionOf(end_seq_); }
  size_t retained_bytes() const { return end_seq_ - start_seq_; }
  size_t limit() const { return limit_; }
  OverflowPolicy policy() const { return policy_; }
  // Bytes no reader had reached when they were evicted (DROP_OLDEST).
  uint64_t bytes_dropped() const { return bytes_dropped_; }
  // True when Space() is 0 under BLOCK: the guest is stalled on us.
  bool stalled() const { return stalled(limit_); }
  bool stalled(size_t capacity) const {
    return policy_ == OverflowPolicy::kBlock && Space(capacity) == 0;
  }

 private:
  struct EpochStart {
    uint64_t epoch;
    uint64_t start_seq;
  };
  Position PositionOf(uint64_t seq) const;
  // The epoch containing `seq` (the last one starting at or before it).
  const EpochStart& EpochOf(uint64_t seq) const;
  void Evict(size_t n);
  // Forgets epochs that ended before the oldest retained byte.
  void PruneEpochs();

  size_t limit_;
  OverflowPolicy policy_;
  ByteChunks bytes_;  // bytes [start_seq_, end_seq_)
  uint64_t start_seq_ = 0;
  uint64_t end_seq_ = 0;
  uint64_t handed_seq_ = 0;  // highest seq handed to any reader
  uint64_t bytes_dropped_ = 0;
  std::vector<EpochStart> epochs_;  // ascending; first is epoch 1 at seq 0
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_OUTPUT_BUFFER_H_
