// ByteChunks: chunked FIFO byte storage, copied with memcpy.
#include "backend/engine/byte_chunks.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace xenchan {

// Invariants: the chunks in use are chunks_[first_..]; when size_ is 0 there
// are none and head_ is 0, otherwise head_ < kChunkSize and there are exactly
// ceil((head_ + size_) / kChunkSize) of them.

ByteChunks::ByteChunks(const ByteChunks& other) : head_(other.head_), size_(other.size_) {
  chunks_.reserve(other.chunks_.size() - other.first_);
  for (size_t i = other.first_; i < other.chunks_.size(); ++i) {
    chunks_.push_back(Chunk(new char[kChunkSize]));
    std::memcpy(chunks_.back().get(), other.chunks_[i].get(), kChunkSize);
  }
}

ByteChunks& ByteChunks::operator=(const ByteChunks& other) {
  if (this != &other) *this = ByteChunks(other);
  return *this;
}

ByteChunks::ByteChunks(ByteChunks&& other) noexcept
    : chunks_(std::move(other.chunks_)),
      first_(other.first_),
      head_(other.head_),
      size_(other.size_),
      spare_(std::move(other.spare_)) {
  other.Clear();
}

ByteChunks& ByteChunks::operator=(ByteChunks&& other) noexcept {
  if (this != &other) {
    chunks_ = std::move(other.chunks_);
    first_ = other.first_;
    head_ = other.head_;
    size_ = other.size_;
    spare_ = std::move(other.spare_);
    other.Clear();
  }
  return *this;
}

void ByteChunks::Append(absl::string_view data) {
  while (!data.empty()) {
    size_t tail = (head_ + size_) % kChunkSize;  // 0: no chunk, or the last one is full
    if (tail == 0) chunks_.push_back(TakeChunk());
    const size_t n = std::min(kChunkSize - tail, data.size());
    std::memcpy(chunks_.back().get() + tail, data.data(), n);
    size_ += n;
    data.remove_prefix(n);
  }
}

size_t ByteChunks::CopyOut(size_t offset, size_t max, char* dst) const {
  if (offset >= size_) return 0;
  const size_t n = std::min(max, size_ - offset);
  const size_t pos = head_ + offset;
  size_t index = first_ + pos / kChunkSize;
  size_t in_chunk = pos % kChunkSize;
  for (size_t left = n; left > 0; ++index, in_chunk = 0) {
    const size_t span = std::min(kChunkSize - in_chunk, left);
    std::memcpy(dst, chunks_[index].get() + in_chunk, span);
    dst += span;
    left -= span;
  }
  return n;
}

size_t ByteChunks::DropFront(size_t n) {
  n = std::min(n, size_);
  if (n == 0) return 0;
  size_ -= n;
  head_ += n;
  while (head_ >= kChunkSize) {
    RetireFront();
    head_ -= kChunkSize;
  }
  if (size_ == 0) {
    if (first_ < chunks_.size()) RetireFront();  // the partly read last chunk
    head_ = 0;
  }
  return n;
}

void ByteChunks::Clear() {
  std::vector<Chunk>().swap(chunks_);
  first_ = head_ = size_ = 0;
  spare_.reset();
}

ByteChunks::Chunk ByteChunks::TakeChunk() {
  if (spare_) return std::move(spare_);
  // Not value-initialised: every byte is written before it is read.
  return Chunk(new char[kChunkSize]);
}

void ByteChunks::RetireFront() {
  Chunk& front = chunks_[first_];
  if (spare_) {
    front.reset();
  } else {
    spare_ = std::move(front);
  }
  ++first_;
  if (first_ == chunks_.size()) {
    chunks_.clear();  // keeps the vector's capacity for the next chunks
    first_ = 0;
  } else if (first_ * 2 >= chunks_.size()) {
    chunks_.erase(chunks_.begin(), chunks_.begin() + first_);
    first_ = 0;
  }
}

}  // namespace xenchan
