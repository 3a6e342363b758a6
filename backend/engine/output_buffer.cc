// OutputBuffer: the bounded, replayable guest-to-host byte store.
#include "backend/engine/output_buffer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace xenchan {

OutputBuffer::OutputBuffer(size_t limit, OverflowPolicy policy, uint64_t first_epoch)
    : limit_(std::max<size_t>(limit, 1)), policy_(policy) {
  epochs_.push_back({first_epoch, 0});
}

uint64_t OutputBuffer::NewEpoch() { return StartEpoch(epochs_.back().epoch + 1); }

uint64_t OutputBuffer::StartEpoch(uint64_t epoch) {
  const uint64_t next = std::max(epoch, epochs_.back().epoch + 1);
  if (epochs_.back().start_seq == end_seq_) {
    epochs_.back() = {next, end_seq_};  // the previous epoch never held a byte
  } else {
    epochs_.push_back({next, end_seq_});
  }
  return next;
}

size_t OutputBuffer::Space(size_t capacity) const {
  if (policy_ == OverflowPolicy::kDropOldest) return limit_;
  const size_t limit = std::min(limit_, capacity);
  const uint64_t unhanded = end_seq_ - std::max(handed_seq_, start_seq_);
  return unhanded >= limit ? 0 : limit - unhanded;
}

absl::Status OutputBuffer::Append(absl::string_view data, size_t capacity) {
  if (policy_ == OverflowPolicy::kBlock && data.size() > Space(capacity)) {
    return absl::FailedPreconditionError(
        absl::StrCat("append of ", data.size(), " bytes exceeds the ", Space(capacity),
                     " bytes of space left under the BLOCK policy"));
  }
  const size_t limit = std::min(limit_, capacity);
  if (data.size() > limit) {  // DROP_OLDEST: only the newest `limit` bytes can be kept
    const size_t skip = data.size() - limit;
    Evict(retained_bytes());
    const uint64_t unreached = skip;  // never retained, so no reader reached them
    bytes_dropped_ += unreached;
    start_seq_ += skip;
    end_seq_ += skip;
    data.remove_prefix(skip);
  }
  const size_t target = retained_bytes() + data.size();
  if (target > limit) Evict(target - limit);
  bytes_.Append(data);
  end_seq_ += data.size();
  return absl::OkStatus();
}

size_t OutputBuffer::TrimHanded(size_t max) {
  const uint64_t handed =
      handed_seq_ > start_seq_ ? std::min(handed_seq_, end_seq_) - start_seq_ : 0;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(handed, max));
  Evict(n);
  bytes_.ReleaseSpare();  // memory is wanted back (the budget's reclaim)
  return n;
}

size_t OutputBuffer::SetLimit(size_t limit) {
  limit_ = std::max<size_t>(limit, 1);
  const size_t excess = retained_bytes() > limit_ ? retained_bytes() - limit_ : 0;
  Evict(excess);
  return excess;
}

void OutputBuffer::Evict(size_t n) {
  n = std::min(n, retained_bytes());
  if (n == 0) return;
  const uint64_t new_start = start_seq_ + n;
  // Bytes beyond what any reader was handed are lost to every reader.
  if (new_start > handed_seq_) {
    bytes_dropped_ += new_start - std::max(handed_seq_, start_seq_);
  }
  bytes_.DropFront(n);
  start_seq_ = new_start;
  PruneEpochs();
}

void OutputBuffer::PruneEpochs() {
  size_t keep_from = 0;
  while (keep_from + 1 < epochs_.size() && epochs_[keep_from + 1].start_seq <= start_seq_) {
    ++keep_from;
  }
  if (keep_from > 0) epochs_.erase(epochs_.begin(), epochs_.begin() + keep_from);
}

const OutputBuffer::EpochStart& OutputBuffer::EpochOf(uint64_t seq) const {
  auto it = std::upper_bound(epochs_.begin(), epochs_.end(), seq,
                             [](uint64_t s, const EpochStart& e) { return s < e.start_seq; });
  return it == epochs_.begin() ? epochs_.front() : *(it - 1);
}

Position OutputBuffer::PositionOf(uint64_t seq) const {
  const EpochStart& e = EpochOf(seq);
  return {e.epoch, seq - std::min(seq, e.start_seq)};
}

ReadCursor OutputBuffer::TailCursor() const {
  const EpochStart& e = EpochOf(end_seq_);
  return {end_seq_, e.epoch, e.start_seq};
}

ReadCursor OutputBuffer::OldestCursor() const {
  const EpochStart& e = EpochOf(start_seq_);
  return {start_seq_, e.epoch, e.start_seq};
}

absl::StatusOr<ReadCursor> OutputBuffer::CursorAt(const Position& from) const {
  for (size_t i = 0; i < epochs_.size(); ++i) {
    if (epochs_[i].epoch != from.epoch) continue;
    const uint64_t epoch_end = i + 1 < epochs_.size() ? epochs_[i + 1].start_seq : end_seq_;
    const uint64_t seq = epochs_[i].start_seq + from.offset;
    if (from.offset > epoch_end - epochs_[i].start_seq) {
      return absl::OutOfRangeError(absl::StrCat("offset ", from.offset, " of epoch ", from.epoch,
                                                " has not been written yet"));
    }
    if (seq < start_seq_) break;
    return ReadCursor{seq, from.epoch, epochs_[i].start_seq};
  }
  const Position first = earliest();
  if (from.epoch > epoch()) {
    return absl::NotFoundError(absl::StrCat("epoch ", from.epoch, " does not exist yet"));
  }
  return absl::OutOfRangeError(absl::StrCat("position ", from.epoch, ":", from.offset,
                                            " is no longer retained; earliest retained is ",
                                            first.epoch, ":", first.offset));
}

std::vector<OutputRecord> OutputBuffer::Read(ReadCursor* cursor, size_t max_bytes) {
  std::vector<OutputRecord> out;
  if (cursor->seq < start_seq_) {
    OutputRecord gap;
    gap.kind = OutputRecord::Kind::kGap;
    gap.position = {cursor->epoch, cursor->seq - cursor->epoch_start_seq};
    gap.lost = start_seq_ - cursor->seq;
    out.push_back(std::move(gap));
    cursor->seq = start_seq_;
  }
  while (true) {
    const EpochStart& e = EpochOf(cursor->seq);
    if (e.epoch != cursor->epoch) {
      OutputRecord rec;
      rec.kind = OutputRecord::Kind::kEpoch;
      rec.position = {e.epoch, cursor->seq - e.start_seq};
      rec.previous_epoch = cursor->epoch;
      rec.previous_end_offset = e.start_seq - std::min(e.start_seq, cursor->epoch_start_seq);
      out.push_back(std::move(rec));
      cursor->epoch = e.epoch;
      cursor->epoch_start_seq = e.start_seq;
    }
    if (cursor->seq >= end_seq_ || max_bytes == 0) break;
    // Hand out data up to the end of this epoch, then loop for the next one.
    const auto next =
        std::upper_bound(epochs_.begin(), epochs_.end(), cursor->seq,
                         [](uint64_t s, const EpochStart& ep) { return s < ep.start_seq; });
    const uint64_t epoch_end = next == epochs_.end() ? end_seq_ : next->start_seq;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(epoch_end - cursor->seq, max_bytes));
    OutputRecord rec;
    rec.kind = OutputRecord::Kind::kData;
    rec.position = {e.epoch, cursor->seq - e.start_seq};
    rec.data.resize(n);
    bytes_.CopyOut(static_cast<size_t>(cursor->seq - start_seq_), n, &rec.data[0]);
    out.push_back(std::move(rec));
    cursor->seq += n;
    max_bytes -= n;
    handed_seq_ = std::max(handed_seq_, cursor->seq);
  }
  return out;
}

}  // namespace xenchan
