// xenchan_load's clock and open-loop scheduler: CLOCK_MONOTONIC in ns (the
// guests' source records carry the same clock) and the Pacer that spaces one
// stream's messages on a fixed schedule.
#ifndef XENCHAN_TESTS_LOAD_LOAD_PACER_H_
#define XENCHAN_TESTS_LOAD_LOAD_PACER_H_

#include <stdint.h>

#include <atomic>

namespace xenchan {
namespace load {

// CLOCK_MONOTONIC now, in nanoseconds.
uint64_t MonoNs();

// The open-loop schedule of one stream: message i is due at
// start + phase + i * interval (CLOCK_MONOTONIC ns).
class Pacer {
 public:
  Pacer(uint64_t start_ns, uint64_t phase_ns, uint64_t interval_ns)
      : next_(start_ns + phase_ns), interval_(interval_ns) {}
  // Waits until the next message is due (or `stop`); returns when it was due.
  uint64_t Wait(const std::atomic<bool>& stop);

 private:
  uint64_t next_;
  const uint64_t interval_;
};

}  // namespace load
}  // namespace xenchan

#endif  // XENCHAN_TESTS_LOAD_LOAD_PACER_H_
