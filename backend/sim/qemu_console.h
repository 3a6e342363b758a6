// xensim's simulated QEMU: the dom0 backend of the toolstack channels
// (xl.cfg `channel=`, frontend type "ioemu") of one domain, as QEMU's
// xen_console serves them (XEN-CHANNELS §1.5, §2.3, §5.2).
//
// `xensim qemu --state-dir DIR --domid D` runs RunQemu in its own process;
// the domain manager (host.h) spawns it after writing the channels' xenstore
// entries and kills it (SIGTERM) when the domain is destroyed.
//
// For every devid N under /local/domain/0/backend/console/D (read once at
// start, as QEMU gets its chardevs on its command line):
//  - the chardev: connection=socket -> listen on `path` (an old file there is
//    replaced; one client at a time, further clients wait in the backlog);
//    connection=pty -> a pty in raw mode whose slave path goes into the
//    frontend's `tty` node;
//  - backend `hotplug-status`=connected and `state`=2 (InitWait);
//  - frontend state 3 or 4 -> read `ring-ref`, `port`, `limit` (strict
//    decimal), map the grant read-write, bind the port, backend `state`=4; a
//    frontend back at 3 with a new ring-ref or port (resume) is reconnected
//    and `state`=4 written again;
//  - frontend 5 -> backend 5; frontend 6 or gone -> unmap, unbind, backend 6;
//    frontend 1 while backend is 6 (reset) -> backend 2;
//  - guest -> host: `out` is drained on every event into a buffer, QEMU's
//    policy: it grows up to `limit` (default 1 MiB, clamped to
//    [4 KiB, 16 MiB]) and beyond that the middle is discarded (the bytes just
//    before the newest data). The buffer is written to the client when one is
//    connected; with none it is kept (post-2020 QEMU);
//  - host -> guest: read from the client only while `in` has free space
//    (back-pressure), then notify.
// Ring indices go through backend/ring (index sanity, masking); a ring with
// inconsistent indices is ignored for that round. Not copied from QEMU: no
// rate limiting of events (xenconsoled's 30/200 ms) is applied.
//
// RunQemu blocks SIGTERM and SIGINT and reads them through a signalfd; it
// returns when one arrives, when the domain's backend directory disappears
// (the toolstack destroyed the domain), or on a fatal error (xenstored or the
// hypervisor went away). Single-threaded: one poll loop owns everything.
#ifndef XENCHAN_BACKEND_SIM_QEMU_CONSOLE_H_
#define XENCHAN_BACKEND_SIM_QEMU_CONSOLE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace xenchan {
namespace sim {

struct QemuOptions {
  // The xensim state directory: xenstored.sock and hypervisor.sock (dom0).
  std::string state_dir;
  // The guest whose channels to serve.
  uint32_t domid = 0;
};

// Serves the channels until told to stop (see the file comment). OK on a
// signal or when the domain went away; UNAVAILABLE if xenstored or the
// hypervisor cannot be reached or a chardev cannot be created (e.g. the
// socket's directory does not exist); NOT_FOUND if the domain has no
// channels.
absl::Status RunQemu(const QemuOptions& options);

// QEMU's bounded-buffer policy, exposed for tests: appends `data` to
// `buffer`, then, if the buffer is longer than `limit`, discards the bytes
// just before the newest `data` so that exactly `limit` bytes remain. Returns
// the number of bytes discarded.
size_t AppendDiscardingMiddle(std::string* buffer, const char* data, size_t len, size_t limit);

}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_QEMU_CONSOLE_H_
