// Bounded line splitting for the agent protocol (see line_buffer.h).
#include "clients/agent/line_buffer.h"

namespace xenchan {
namespace agent {

void LineBuffer::Append(absl::string_view data, std::vector<Event>* out) {
  while (!data.empty()) {
    const size_t nl = data.find('\n');
    const absl::string_view chunk = data.substr(0, nl);
    if (discarding_) {
      if (nl == absl::string_view::npos) return;
      discarding_ = false;
    } else if (partial_.size() + chunk.size() > max_) {
      // Over the limit.
      partial_.clear();
      out->push_back({Event::Kind::kTooLong, {}});
      discarding_ = nl == absl::string_view::npos;
    } else {
      partial_.append(chunk.data(), chunk.size());
      if (nl == absl::string_view::npos) return;
      if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
      if (!partial_.empty()) out->push_back({Event::Kind::kLine, std::move(partial_)});
      partial_.clear();
    }
    if (nl == absl::string_view::npos) return;
    data.remove_prefix(nl + 1);
  }
}

void LineBuffer::Reset() {
  partial_.clear();
  discarding_ = false;
}

}  // namespace agent
}  // namespace xenchan
