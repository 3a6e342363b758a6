// The simulated guest of xensim: one process per guest that runs the guest
// half of Xen PV channels exactly as Linux's xenbus frontend bus and hvc_xen
// do (XEN-CHANNELS §1.2, §1.5, §2.2-2.5, §3, §5.3, §6), with a pty standing in
// for each hvc tty under the guest's root directory.
//
// What the guest does
//   * xenbus: watches `device` (relative, as Linux) and runs Linux's
//     xenbus_dev_changed on every event: a `device/<type>/<id>` node that
//     exists, reads state 1 and has no device yet is probed; a node that is
//     gone takes its device (and everything below it) away. Devices present
//     at start are enumerated as xenbus_probe_devices does, skipping
//     `console/0*` ("buggy device entry").
//   * hvc_xen probe of `device/console/N`: reads `backend-id` and `backend`
//     (missing, unreadable or insane -> xenbus_dev_fatal: an error node at
//     error/device/console/N/error and state 5, as Linux's xenbus_dev_fatal
//     switches to Closing); devid = last character - '0' (0 -> ENODEV, so
//     `10` is refused and `11` shares devid 1's vtermno, as on Linux); zeroed
//     4 KiB page (memfd); unbound port for backend-id; the tty at once; grant
//     (read-write) to backend-id; ring-ref (%d) and port (%u) in one
//     transaction, retried on EAGAIN; state 3; watch <backend>/state.
//     A probe that fails after talking to the other end writes
//     "<errno> xenbus_dev_probe on <nodename>" to the error node and leaves
//     the state alone (modern xenbus_dev_probe); the device stays known, so
//     it is probed again only after its node has gone.
//   * Backend state 4 -> frontend 4; 5, or 6 while the frontend is not 6 ->
//     tty hung up and frontend 6 (grant and port kept); other states ignored.
//     Grant and port are released only when the frontend directory goes.
//   * ttys: hvc0 is the primary console (a pty whose output goes to
//     <state_dir>/guests/<name>/console.log). Channels take the first free
//     hvc index of the 8 tty lines (HVC_ALLOC_TTY_ADAPTERS), so at most 7
//     channels; an 8th probe fails as a failed hvc_alloc does (ENOMEM: error
//     node, state stays 1). <root>/dev/hvcM is a symlink to the pty slave;
//     <root>/dev/xen-channel/<name> -> ../hvcM when the frontend `name` key
//     is valid ([A-Za-z0-9._-]{1,64}). A pty slave starts in cooked mode.
//   * Data: tty output goes into the out ring only as space allows; while the
//     ring is full the guest stops reading the pty, so in-guest writers block.
//     Ring input is read only while an in-guest program has the tty open
//     (hvc_poll skips a tty nobody opened; opens are counted with inotify on
//     the pty slave) and is written to the pty as far as it takes it without
//     blocking; the rest stays in the ring.
//
// Control socket (Unix stream at GuestOptions::control_socket)
//   One command per line; every reply starts with one line "ok ..." or
//   "error <message>".
//     status    -> "ok <n>" followed by n JSON lines, one per console device:
//                  {"nodename":..,"devid":..,"name":..,"bound":..,"state":..,
//                   "hvc":..,"tty":..,"bytes_in":..,"bytes_out":..,
//                   "ring_ref":..,"port":..} (hvc -1, tty "", ring_ref/port
//                  -1 when absent; bytes_in = backend->guest bytes).
//     suspend   -> "ok suspended": all xenbus and data processing pauses.
//     resume    -> "ok resumed <n>": xenbus_dev_resume + xencons_resume for
//                  each of the n bound devices: tty hung up, page zeroed, new
//                  port and grant (old port unbound, old grant ended unless
//                  the backend still maps it; Xen may hand out the same port
//                  number again), ring-ref/port rewritten
//                  in one transaction, state 3, new tty.
//     shutdown  -> xenbus_frontend_dev_shutdown for each Connected device
//                  (state 5, wait up to 5 s for backend 5, which moves the
//                  frontend to 6), then "ok shutdown <nodename>=<closed|
//                  timeout>:<ms> ..." and RunGuest returns OK.
//     info      -> "ok {"boot_id":..,"resumes":..,"restored":..}": the boot
//                  id is new on every boot and survives save/restore.
//     save PATH -> only while suspended: writes the guest's state
//                  (guest_state.h) to PATH, then "ok saved <n>" (n devices).
//                  The guest stays suspended; the toolstack destroys it.
//
// Save and restore (xl save / xl restore, migration; guest_save.cc)
//   A guest started with GuestOptions::restore_state does not boot: it
//   rebuilds the device list it had (each bound console gets its zeroed
//   ring page back from the image and a tty on its old line), then runs
//   xenbus_dev_resume + xencons_resume for each bound device in
//   registration order, as Linux's resume does after the toolstack has
//   re-created the domain's configured devices and unpaused it. A device
//   whose frontend directory the new domain lacks fails talk_to_otherend
//   (xenbus_dev_fatal: error node, a state switch that finds no `state`
//   node and writes nothing) and stays registered with its old tty, ring
//   page and no port or grant; since Linux neither re-enumerates the bus on
//   resume nor probes a node whose device is still registered, such a node
//   written later is not probed until it has first been removed (a watch
//   event that finds it gone unregisters the stale device). Devices the new
//   domain has but the guest never knew are not probed either, until an
//   event under their node arrives. The re-registered `device` watch fires
//   once for the root, which xenbus_dev_changed ignores.
#ifndef XENCHAN_BACKEND_SIM_GUEST_GUEST_H_
#define XENCHAN_BACKEND_SIM_GUEST_GUEST_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "backend/platform/xenstore.h"
#include "backend/sim/guest/hypercalls.h"

namespace xenchan {

struct GuestOptions {
  std::string state_dir;
  uint32_t domid = 0;
  std::string name;
  // <state_dir>/guests/<name>/root; dev/ is created below it.
  std::string root_dir;
  // The guest's own xenstored socket (<state_dir>/domains/<domid>/xenstored.sock).
  std::string xenstore_socket;
  // The guest's own hypervisor socket (<state_dir>/domains/<domid>/hypervisor.sock).
  std::string hypervisor_socket;
  // Where the guest listens for control commands
  // (<state_dir>/domains/<domid>/guest.sock).
  std::string control_socket;
  // Empty: the guest boots (enumerates the devices it finds). Otherwise a
  // file holding the state a `save` wrote (guest_state.h): the guest resumes
  // from it in a new domain instead of booting (see "Save and restore").
  std::string restore_state;
};

// Runs the guest until a `shutdown` command (returns OK) or until xenstored
// or the hypervisor goes away (UNAVAILABLE). Connects to both sockets first
// (UNAVAILABLE when they do not answer). Blocks the calling thread; meant to
// be the whole life of a dedicated process (it installs nothing process-wide
// except ignoring SIGPIPE).
absl::Status RunGuest(const GuestOptions& options);

namespace sim {
namespace guest {

// RunGuest over already-open connections (for callers that bring their own).
absl::Status RunGuestWith(const GuestOptions& options, std::unique_ptr<XenStore> xenstore,
                          std::unique_ptr<GuestHypercalls> hypercalls);

}  // namespace guest
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_GUEST_GUEST_H_
