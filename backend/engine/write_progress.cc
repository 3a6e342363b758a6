// WriteProgressTracker: see write_progress.h.
#include "backend/engine/write_progress.h"

#include <algorithm>

namespace xenchan {

void WriteProgressTracker::Accepted(uint64_t epoch, uint64_t start, uint64_t n) {
  if (accepted_ == 0) {
    epoch_ = epoch;
    start_ = start;
  }
  accepted_ += n;
}

WriteProgressTracker::Figures WriteProgressTracker::Observe(const WriteStatus& ws) {
  Figures f;
  if (accepted_ == 0) return f;
  auto part = [&](uint64_t offset) -> uint64_t {
    if (ws.epoch != epoch_ || offset <= start_) return 0;
    return std::min<uint64_t>(offset - start_, accepted_);
  };
  delivered_ = std::max(delivered_, part(ws.delivered_offset));
  consumed_ = std::max(consumed_, part(ws.consumed_offset));
  f.epoch = epoch_;
  f.start_offset = start_;
  f.accepted = accepted_;
  f.delivered = delivered_;
  f.consumed = consumed_;
  return f;
}

uint64_t WriteProgressTracker::BytesAt(const Figures& figures, AckLevel level) {
  switch (level) {
    case AckLevel::kConsumed:
      return figures.consumed;
    case AckLevel::kDelivered:
      return figures.delivered;
    default:
      return figures.accepted;
  }
}

}  // namespace xenchan
