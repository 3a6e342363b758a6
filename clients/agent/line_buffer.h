// LineBuffer: cuts the agent's input byte stream into request lines with a
// bounded line length, and resynchronises after an oversize line.
//
// Lines end with "\n"; a "\r" right before it is dropped (a host that sends
// "\r\n" works). Empty lines are skipped. A line longer than the limit is
// not kept: its bytes are discarded up to and including the next "\n", and
// one kTooLong event is reported for it (as soon as the limit is crossed, so
// the caller can answer at once), after which parsing continues with the next
// line. The limit counts every byte before the "\n" (a "\r" included).
// Memory use is bounded by the limit.
//
// Thread safety: thread-compatible.
#ifndef XENCHAN_CLIENTS_AGENT_LINE_BUFFER_H_
#define XENCHAN_CLIENTS_AGENT_LINE_BUFFER_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace xenchan {
namespace agent {

class LineBuffer {
 public:
  struct Event {
    enum class Kind { kLine, kTooLong };
    Kind kind;
    std::string line;  // kLine: the line without "\r\n"
  };

  explicit LineBuffer(size_t max_line_bytes) : max_(max_line_bytes) {}

  // Feeds `data`; appends the complete lines and oversize reports to `out`.
  void Append(absl::string_view data, std::vector<Event>* out);
  // Forgets a partial line (after the channel hung up).
  void Reset();
  // Bytes of the current partial line held.
  size_t pending() const { return partial_.size(); }

 private:
  size_t max_;
  std::string partial_;
  bool discarding_ = false;
};

}  // namespace agent
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_AGENT_LINE_BUFFER_H_
