// Waiting until the host end of a Xen channel is connected, from inside the
// guest, without writing to the channel and without polling.
//
// Why: Linux creates /dev/hvcM when it probes the device, before any backend
// has mapped the ring (XEN-CHANNELS §6 pitfall 4). Bytes written then fill
// the 2 KiB out ring and the next write spins the guest vCPU in the kernel
// (§5.3). So the agent must not write before the backend is connected.
//
// How, on a real guest (sysfs has /sys/bus/xen/devices):
//   1. Find the xenbus device of the channel BY NAME: for each
//      <root>/sys/bus/xen/devices/console-N, read its `nodename` attribute
//      ("device/console/N") and read `<nodename>/name` from xenstore (the
//      guest's own frontend directory, readable by the guest); the device
//      whose name equals the channel name is ours. This is exact for the
//      device; which /dev/hvcM tty belongs to it is the udev helper's
//      heuristic (deploy/guest), since sysfs has no link between console-N
//      and hvcM.
//   2. Watch `<nodename>/state` in xenstore and return once the frontend is
//      Connected: xenstore `state` reads "4" or the sysfs `state` attribute
//      reads "Connected". hvc_xen switches the frontend to Connected when the
//      backend does, and the watch fires on that write, so nothing polls.
//      (Both are checked because Linux writes xenstore before updating the
//      in-kernel state that sysfs shows.)
// Everywhere else (no xen bus in sysfs, no matching device, xenstore not
// reachable, e.g. a simulated guest whose --root is a directory): there is
// nothing to wait on, and the agent relies on the application-level hello
// instead: it writes nothing until it has received its first request, and a
// request can only arrive over a connected channel.
//
// libxenstore honours XENSTORED_PATH (as in tests against xensim); on a real
// guest it uses /dev/xen/xenbus.
//
// Thread safety: thread-compatible.
#ifndef XENCHAN_CLIENTS_AGENT_CONNECTION_H_
#define XENCHAN_CLIENTS_AGENT_CONNECTION_H_

#include <functional>
#include <string>

#include "absl/status/status.h"

namespace xenchan {
namespace agent {

struct ConnectionWaitResult {
  // True if a xenbus device was found and its Connected state was seen;
  // false if the agent falls back to the hello (see above).
  bool waited = false;
  // Human-readable: which device, or why there was nothing to wait on.
  std::string detail;
};

// Waits as described above. Returns early with CANCELLED when `stop_fd`
// becomes readable. Blocks until the channel is connected; never fails
// otherwise (problems are reported in `detail` and mean "fall back").
// `log` is told once when a real wait begins.
absl::Status WaitUntilConnected(const std::string& root, const std::string& channel, int stop_fd,
                                const std::function<void(const std::string&)>& log,
                                ConnectionWaitResult* result);

}  // namespace agent
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_AGENT_CONNECTION_H_
