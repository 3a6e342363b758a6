// The floor of a channel's data path on the simulated host: the same
// simulated guest, its pty and the same ring page and event channel, served
// by the least a backend must do (map the grant, bind the port, then drain,
// fill, notify and unmask; a notify after a drain only if the ring was
// full, as nothing else waits for room) with no engine: no buffers, sessions, locks,
// budgets or rate limits. ring_bench's composite floor and e2e_bench's
// sim-floor echo measure through it, so the engine's figures are compared
// with what the rest of the path costs on its own.
//
// It serves a channel the engine connected and then let go (an engine that
// stops unbinds its port and unmaps, and leaves xenstore as it is): the
// guest keeps its ring and port and the floor takes the backend's place.
#ifndef XENCHAN_TESTS_BENCH_SIM_FLOOR_H_
#define XENCHAN_TESTS_BENCH_SIM_FLOOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/platform/event_channels.h"
#include "backend/platform/grant_tables.h"
#include "backend/platform/xenstore.h"
#include "backend/ring/console_ring.h"

namespace xenchan {
namespace bench {

// Ownership: owns its event-channel handle and the mapping. Thread safety:
// one thread drives it. Blocking: each call waits for the guest, up to
// `timeout` in all.
class SimFloor {
 public:
  // Reads the frontend's ring-ref and port, maps and binds them.
  static absl::StatusOr<std::unique_ptr<SimFloor>> Attach(XenStore& xs,
                                                          std::unique_ptr<EventChannels> evtchn,
                                                          GrantTables& gnttab, uint32_t domid,
                                                          uint32_t devid);
  ~SimFloor();

  // Guest to host: drains `out` until `total` bytes came; the bytes drained.
  size_t Drain(size_t total, absl::Duration timeout = absl::Seconds(60));
  // Host to guest: writes `total` bytes of `byte` into `in` as room frees up;
  // the bytes written.
  size_t Fill(size_t total, char byte, absl::Duration timeout = absl::Seconds(60));
  // One round trip through an echoing agent: `message` into `in`, then
  // drains `out` until as many bytes came back; true if they are the same.
  bool Echo(const std::string& message, absl::Duration timeout = absl::Seconds(10));

  // Events the guest sent us so far.
  uint64_t events() const { return events_; }

 private:
  SimFloor(std::unique_ptr<EventChannels> evtchn, std::unique_ptr<GrantMapping> mapping,
           EvtchnPort port);
  // Waits for the guest's event (up to `until`), unmasking it; false on
  // timeout.
  bool WaitEvent(absl::Time until);

  std::unique_ptr<EventChannels> evtchn_;
  std::unique_ptr<GrantMapping> mapping_;
  ConsoleRing ring_;
  EvtchnPort port_;
  uint64_t events_ = 0;
};

}  // namespace bench
}  // namespace xenchan

#endif  // XENCHAN_TESTS_BENCH_SIM_FLOOR_H_
