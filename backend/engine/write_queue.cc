// WriteQueue: bounded host-to-guest queue with three acknowledgement levels.
#include "backend/engine/write_queue.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace xenchan {

uint64_t WriteQueue::Reset(uint64_t epoch) {
  const uint64_t discarded = bytes_.size();
  bytes_.Clear();
  epoch_ = epoch;
  accepted_ = delivered_ = consumed_ = 0;
  return discarded;
}

uint64_t WriteQueue::DiscardQueued() {
  const uint64_t discarded = bytes_.size();
  bytes_.Clear();
  // accepted_ stays ahead of delivered_: those bytes were accepted and will
  // never be delivered. No write is accepted again before the next Reset.
  return discarded;
}

absl::StatusOr<WriteQueue::Range> WriteQueue::Append(absl::string_view data) {
  if (data.size() > room()) {
    return absl::ResourceExhaustedError(absl::StrCat("write of ", data.size(),
                                                     " bytes does not fit in the ", room(),
                                                     " bytes left in the write queue"));
  }
  Range r{epoch_, accepted_, accepted_ + data.size()};
  bytes_.Append(data);
  accepted_ = r.end;
  return r;
}

size_t WriteQueue::Peek(char* dst, size_t max) const { return bytes_.CopyOut(0, max, dst); }

void WriteQueue::MarkDelivered(size_t n) { delivered_ += bytes_.DropFront(n); }

void WriteQueue::SetConsumed(uint64_t offset) {
  consumed_ = std::max(consumed_, std::min(offset, delivered_));
}

}  // namespace xenchan
