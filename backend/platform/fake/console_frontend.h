// FakeConsoleFrontend: a scripted, in-process guest console frontend on a
// FakeHost, for engine tests. It plays what Linux's hvc_xen and xenbus
// frontend do for one `device/console/N` (XEN-CHANNELS §2.2-2.5, §3), one
// step at a time as the test calls it, and lets the test misbehave on
// purpose (scribble on the ring page, rewrite or delete its nodes, storm its
// port with events).
//
// What each step does, as Linux does it:
//  * Probe (xencons_probe + talk_to_otherend): reads `backend-id` and
//    `backend`, allocates a zeroed page and an unbound port for backend-id,
//    grants the page read-write to backend-id, writes `ring-ref` and `port`
//    in one transaction (retried on conflicts), then `state` = 3; watches
//    the backend's `state` and its own directory.
//  * Follow (xencons_backend_changed, xenbus_dev_changed), acting only on a
//    backend state that changed since the last look: backend 4 ->
//    frontend 4; backend 5, or 6 while the frontend is not 6 -> frontend 6
//    (grant and port kept); frontend directory gone -> the device goes: its
//    port is closed and the page dropped, the grant left as it is (hvc_xen
//    ends no grant access, §2.3).
//  * Resume (xencons_resume): the page zeroed, old port closed and old grant
//    ended (unless still mapped), a new port and grant, `ring-ref`/`port`
//    rewritten in one transaction, `state` = 3.
//  * Ring I/O over the guest half of the ring (backend/sim/guest/
//    frontend_ring.h): Write fills `out` as far as it has room and notifies;
//    Read drains `in` and notifies when it consumed anything.
//
// Ownership: owns the guest domain's xenstore connection and event-channel
// handle (its ports close when it is destroyed, as when the guest's kernel
// goes) and shares its ring page with whoever maps the grant. Thread safety:
// not thread-safe; one thread at a time drives a frontend (a test may hand
// it to a guest thread and take it back after joining). Blocking: only the
// *Until / WaitEvent / WriteAll / ReadExactly helpers wait, each up to its
// timeout, on the event-channel or watch fd.
#ifndef XENCHAN_BACKEND_PLATFORM_FAKE_CONSOLE_FRONTEND_H_
#define XENCHAN_BACKEND_PLATFORM_FAKE_CONSOLE_FRONTEND_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

// console.h uses uint32_t without including anything.
#include <stdint.h>
#include <xen/io/console.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backend/platform/fake/event_channels.h"
#include "backend/platform/fake/host.h"
#include "backend/platform/fake/xenstore.h"

namespace xenchan {

class FakeConsoleFrontend {
 public:
  // Xenbus states as written in xenstore (xen/io/xenbus.h).
  enum State : int {
    kUnknown = 0,
    kInitialising = 1,
    kInitWait = 2,
    kInitialised = 3,
    kConnected = 4,
    kClosing = 5,
    kClosed = 6,
  };

  // A frontend for /local/domain/<domid>/device/console/<devid>, acting as
  // domain `domid` (unprivileged). NOT_FOUND if the domain is not live.
  static absl::StatusOr<std::unique_ptr<FakeConsoleFrontend>> Create(FakeHost& host, uint32_t domid,
                                                                     uint32_t devid);
  ~FakeConsoleFrontend();
  FakeConsoleFrontend(const FakeConsoleFrontend&) = delete;
  FakeConsoleFrontend& operator=(const FakeConsoleFrontend&) = delete;

  // --- xenbus. Errors are the xenstore's or the hypervisor's. ---
  absl::Status Probe();
  absl::Status Resume();
  // Writes our `state` node.
  absl::Status SetState(int state);
  // The backend's `state` (kUnknown if missing or not a number).
  int BackendState();
  // One pass of the reactions above; returns the backend state it saw.
  int Follow();
  // Follows until the backend's state is `state`; DEADLINE_EXCEEDED after
  // `timeout`.
  absl::Status FollowUntil(int state, absl::Duration timeout = absl::Seconds(10));
  // Follows until `done()` holds (checked after every pass), waking on
  // watch events and at least every 10 ms; DEADLINE_EXCEEDED after
  // `timeout`. For waiting on something else while the guest keeps
  // answering its backend (an unplug the engine runs, say).
  absl::Status FollowUntil(const std::function<bool()>& done,
                           absl::Duration timeout = absl::Seconds(10));

  // --- The ring. ---
  // Writes what fits into `out` (0 when full) and notifies if it wrote any.
  // INVALID_ARGUMENT on illegal ring indices.
  absl::StatusOr<size_t> Write(absl::string_view data);
  // Writes all of `data`, waiting for the backend's events as the ring
  // fills; DEADLINE_EXCEEDED with what is left unsent after `timeout`.
  absl::Status WriteAll(absl::string_view data, absl::Duration timeout = absl::Seconds(10));
  // Takes up to `max` bytes from `in` and notifies if it took any.
  absl::StatusOr<std::string> Read(size_t max);
  // Reads until `n` bytes arrived or `timeout` passed; returns what arrived.
  std::string ReadExactly(size_t n, absl::Duration timeout = absl::Seconds(10));
  // Kicks our port (what a guest does after moving an index).
  absl::Status Notify();
  // Waits up to `timeout` for an event from the backend, then takes and
  // unmasks every fired port. False on timeout.
  bool WaitEvent(absl::Duration timeout);
  // The raw shared page, for misbehaving on purpose. Valid after Probe.
  // Scribble on it only through GuestWritePage.
  xencons_interface* ring() const;
  // Writes `len` bytes of `src` at `offset` into the shared page (one
  // kXenPageSize page at `page`) as
  // the guest does: from another domain's CPU, with no lock the backend
  // could take. The engine's defence against such writes is its
  // read-once-then-validate ring protocol (backend/ring), which the hostile
  // tests and fuzzers check; ThreadSanitizer, which would report every such
  // write that meets an engine read, is told so for this function alone
  // (tools/tsan/suppressions.cc). Out-of-page ranges are clipped.
  static void GuestWritePage(void* page, size_t offset, const void* src, size_t len);

  // --- Identity, and xenstore as the guest. ---
  XenStore& xs() { return *xs_; }
  FakeEventChannels& evtchn() { return *evtchn_; }
  const std::string& path() const { return path_; }
  const std::string& backend_path() const { return backend_path_; }
  uint32_t domid() const { return domid_; }
  uint32_t ring_ref() const { return ring_ref_; }
  EvtchnPort port() const { return port_; }
  int state() const { return state_; }
  // The frontend directory went away and the device with it.
  bool removed() const { return removed_; }

 private:
  FakeConsoleFrontend(FakeHost& host, uint32_t domid, uint32_t devid);
  // Allocates a port and a grant and publishes them (probe and resume).
  absl::Status ConnectRing();
  // Reads the frontend's `backend` and `backend-id` as the probe does.
  absl::Status ReadBackend();
  // Waits up to `timeout` for a watch event (drained); false on timeout.
  bool WaitWatch(absl::Duration timeout);
  // Takes and unmasks every fired port; true if any fired.
  bool TakeEvents();

  FakeHost& host_;
  const uint32_t domid_;
  const std::string path_;
  std::unique_ptr<FakeXenStore> xs_;
  std::unique_ptr<FakeEventChannels> evtchn_;
  std::shared_ptr<FakePage> page_;
  std::string backend_path_;
  uint32_t backend_id_ = 0;
  uint32_t ring_ref_ = 0;
  EvtchnPort port_ = 0;
  int state_ = kInitialising;
  // The backend state the last Follow acted on (-1: none yet, so the first
  // look acts, as the otherend watch firing at registration does).
  int last_backend_ = -1;
  bool watching_ = false;
  bool removed_ = false;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_FAKE_CONSOLE_FRONTEND_H_
