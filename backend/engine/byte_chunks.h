// ByteChunks: the byte storage behind the engine's per-channel byte buffers
// (OutputBuffer, guest to host; WriteQueue, host to guest).
//
// A FIFO of bytes kept in fixed-size chunks: appends go to the back, readers
// copy from any offset, the oldest bytes are dropped from the front. Every
// copy is memcpy over contiguous spans (at most one per chunk touched), where
// the std::deque<char> it replaces copied byte by byte.
//
// Chunk size: 4 KiB. The guest's `out` ring is 2 KiB, so one drain (one
// append of at most 2 KiB) lands in at most two chunks and needs a new
// chunk at most once every other full-ring drain; the `in` ring is 1 KiB,
// so filling it copies from at most two chunks. A reader's batch (tens of
// KiB) is a handful of memcpy calls.
//
// Memory: chunks are allocated as the bytes arrive and freed as the front
// passes them, so what is held follows size(). One emptied chunk is kept as a
// spare (never more) and reused by the next append that needs a chunk: a
// steady stream, including one that empties the store at every event, does
// not allocate per event, and an idle store holds at most that one chunk.
// Clear() and ReleaseSpare() give the spare back too. Beyond size(), at most
// the unused parts of the first and last chunks plus the spare are held: less
// than 3 chunks (12 KiB). The memory budget (memory_budget.h) charges the
// owners' payload bytes (retained, queued), not this slack; against the
// default limits (1 MiB retained, 256 KiB queued) it is at most 1.2% and
// 4.7%, and allocated_bytes() reports it exactly (the vector of chunk
// pointers adds 8 bytes per chunk).
//
// Ownership: owns its chunks. Thread safety: none; the owner serialises
// access (OutputBuffer and WriteQueue are guarded by their channel's lock).
#ifndef XENCHAN_BACKEND_ENGINE_BYTE_CHUNKS_H_
#define XENCHAN_BACKEND_ENGINE_BYTE_CHUNKS_H_

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/strings/string_view.h"

namespace xenchan {

class ByteChunks {
 public:
  static constexpr size_t kChunkSize = 4096;

  ByteChunks() = default;
  // Copies hold the same bytes in chunks of their own (no spare); a
  // moved-from store is empty. (OutputBuffer and WriteQueue stay values.)
  ByteChunks(const ByteChunks& other);
  ByteChunks& operator=(const ByteChunks& other);
  ByteChunks(ByteChunks&& other) noexcept;
  ByteChunks& operator=(ByteChunks&& other) noexcept;
  ~ByteChunks() = default;

  // Bytes stored.
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Appends `data` at the back.
  void Append(absl::string_view data);

  // Copies up to `max` bytes, starting `offset` bytes after the front, into
  // `dst`. Returns the number copied: min(max, size() - offset). An offset
  // at or past size() copies nothing and returns 0.
  size_t CopyOut(size_t offset, size_t max, char* dst) const;

  // Drops up to `n` bytes from the front. Returns the number dropped
  // (min(n, size())).
  size_t DropFront(size_t n);

  // Drops every byte and frees every chunk, the spare included.
  void Clear();

  // Frees the spare chunk, if any (memory is wanted back now).
  void ReleaseSpare() { spare_.reset(); }

  // Bytes of chunk memory held: chunks in use plus the spare.
  size_t allocated_bytes() const {
    return (chunks_.size() - first_ + (spare_ ? 1 : 0)) * kChunkSize;
  }

 private:
  using Chunk = std::unique_ptr<char[]>;

  // A chunk for the back: the spare if there is one, else a new one.
  Chunk TakeChunk();
  // Frees the chunk at the front (all its bytes were dropped), keeping it as
  // the spare if there is none.
  void RetireFront();

  // Chunks in use are chunks_[first_..]: retired chunks leave null slots at
  // the front, compacted away once they are half the vector, so that
  // dropping from the front stays O(1) amortised.
  std::vector<Chunk> chunks_;
  size_t first_ = 0;
  size_t head_ = 0;  // offset of the first byte in chunks_[first_]
  size_t size_ = 0;
  Chunk spare_;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_BYTE_CHUNKS_H_
