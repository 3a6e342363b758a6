// The simulated guest's shared declarations: the Guest object behind
// RunGuestWith, its per-device state and the constants its parts share. Not
// part of the API (guest.h is); only the guest's own sources include it.
//
// Guest's methods are defined in one file per Linux file they imitate:
//   xenbus_frontend.cc  drivers/xen/xenbus (the frontend bus: probe, watches,
//                       otherend, switch_state, dev_error / dev_fatal)
//   hvc_xen.cc          drivers/tty/hvc/hvc_xen.c (the console ring page, its
//                       event channel and grant, backend_changed)
//   hvc_console.cc      drivers/tty/hvc/hvc_console.c (the tty side: ptys the
//                       in-guest programs open, hvc_poll, the primary console)
//   guest_control.cc    the control socket that drives the guest process
//   guest_save.cc       save into and resume from a save image (the
//                       suspend/resume path of drivers/xen/manage.c)
//   guest.cc            set-up, teardown and the poll loop
#ifndef XENCHAN_BACKEND_SIM_GUEST_GUEST_INTERNAL_H_
#define XENCHAN_BACKEND_SIM_GUEST_GUEST_INTERNAL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/platform/xenstore.h"
#include "backend/sim/guest/frontend_ring.h"
#include "backend/sim/guest/guest.h"
#include "backend/sim/guest/hypercalls.h"
#include "backend/sim/guest/pty.h"
#include "backend/sim/guest/xenbus_text.h"

namespace xenchan {
namespace sim {
namespace guest {

inline constexpr int kHvcCookie = 0x58656e;  // "Xen": hvc_xen's vtermno base
inline constexpr int kHvcTtyAdapters = 8;    // HVC_ALLOC_TTY_ADAPTERS
inline constexpr size_t kPageSize = 4096;
inline constexpr absl::Duration kShutdownTimeout = absl::Seconds(5);
inline constexpr char kFrontendWatchToken[] = "xenbus-fe";
inline constexpr char kOtherendTokenPrefix[] = "otherend:";
inline constexpr size_t kMaxControlLine = 4096;
inline constexpr size_t kMaxControlClients = 16;

// The errno a Linux xenbus call would have returned for `s`.
int StatusToErrno(const absl::Status& s);

// One hvc tty (hvc_struct): an index among the tty lines, the vtermno its
// put_chars/get_chars go to, and the pty standing in for it.
struct Hvc {
  int index = -1;
  int vtermno = 0;
  std::unique_ptr<Pty> pty;
  std::string link;             // <root>/dev/hvcM
  std::string name_link;        // <root>/dev/xen-channel/<name>, or empty
  bool output_blocked = false;  // out ring full: not reading the pty
  bool input_blocked = false;   // pty would not take more ring input
  bool reported_illegal = false;
  // Open file descriptions of the slave held by in-guest programs (the
  // guest's own is not counted), tracked with inotify. hvc_poll reads the in
  // ring only while the tty is open.
  int open_count = 0;
  int inotify_wd = -1;
};

// hvc_xen's xencons_info.
struct ConsInfo {
  int vtermno = 0;
  int memfd = -1;
  xencons_interface* intf = nullptr;
  std::optional<uint32_t> evtchn;
  std::optional<uint32_t> gntref;
  std::unique_ptr<Hvc> hvc;
  uint64_t bytes_in = 0;   // backend -> guest, delivered to the tty
  uint64_t bytes_out = 0;  // guest -> backend, put in the out ring
};

// A xenbus_device of the frontend bus.
struct XenbusDevice {
  std::string nodename;            // "device/console/N"
  std::string type;                // "console"
  uint64_t seq = 0;                // registration order
  int state = kStateInitialising;  // dev->state (the last state switched to)
  bool bound = false;              // the driver's probe succeeded
  uint32_t otherend_id = 0;
  std::string otherend;        // backend path, empty when not read
  std::string otherend_watch;  // the watched <otherend>/state, or empty
  std::unique_ptr<ConsInfo> info;
  bool down = false;  // dev->down completed (xenbus_frontend_closed)
};

struct ControlClient {
  int fd = -1;
  std::string in;
};

// One simulated guest: owns the xenstore connection, the hypercall handle,
// every device, page and pty, and the control socket. Everything runs on the
// thread that calls Run() (one poll loop, as xenconsoled), so nothing is
// locked; the object is not thread-safe.
class Guest {
 public:
  Guest(const GuestOptions& options, std::unique_ptr<XenStore> xs,
        std::unique_ptr<GuestHypercalls> hv)
      : options_(options), xs_(std::move(xs)), hv_(std::move(hv)) {
    hvc_slots_.fill(nullptr);
  }
  ~Guest();
  Guest(const Guest&) = delete;
  Guest& operator=(const Guest&) = delete;

  // See RunGuest in guest.h.
  absl::Status Run();

 private:
  // --- set-up (guest.cc) ---
  absl::Status Setup();

  // --- xenbus (drivers/xen/xenbus; xenbus_frontend.cc) ---
  void ProbeDevices();
  void HandleWatch(const XsWatchEvent& event);
  void DevChanged(const std::string& node);
  void CleanupDevices(const std::string& path);
  void ProbeNode(const std::string& type, const std::string& nodename);
  int TalkToOtherend(XenbusDevice* dev);
  int WatchOtherend(XenbusDevice* dev);
  void FreeOtherendWatch(XenbusDevice* dev);
  void OtherendChanged(XenbusDevice* dev, const std::string& path);
  void RemoveDevice(XenbusDevice* dev);
  int ReadDriverState(const std::string& path);
  void SwitchState(XenbusDevice* dev, int state, int depth = 0);
  void FrontendClosed(XenbusDevice* dev);
  void DevError(XenbusDevice* dev, int err, const std::string& message);
  void DevFatal(XenbusDevice* dev, int err, const std::string& message);
  int DevResume(XenbusDevice* dev);
  XenbusDevice* FindDevice(const std::string& nodename);

  // --- hvc_xen (hvc_xen.cc) ---
  int XenconsProbe(XenbusDevice* dev);
  int ConnectBackend(XenbusDevice* dev, ConsInfo* info);
  void DisconnectBackend(ConsInfo* info);
  void FreeInfo(ConsInfo* info);
  void BackendChanged(XenbusDevice* dev, int backend_state);
  ConsInfo* VtermnoToXencons(int vtermno);

  // --- hvc (hvc_console.cc) ---
  // Opens <guest_dir>/console.log, registers hvc0 (the primary console)
  // before any channel, and starts the inotify instance that counts tty
  // opens.
  absl::Status HvcInit(const std::string& guest_dir);
  // `want_index` >= 0 asks for that tty line (a restored device's old one)
  // when it is free; otherwise the first free line is taken.
  absl::StatusOr<std::unique_ptr<Hvc>> HvcAlloc(int vtermno, const std::string& nodename,
                                                int want_index = -1);
  void HvcRemove(std::unique_ptr<Hvc>& hvc);
  void PollHvc(Hvc* hvc, bool readable);
  void PollAllHvcs();
  void PollPrimary();
  void HandleTtyOpens();
  // Services the ports that fired; UNAVAILABLE once the hypervisor is gone.
  absl::Status HandleEvents();

  // --- control (guest_control.cc) ---
  absl::Status ListenControl();
  void AcceptControl();
  bool ServeControl(ControlClient* client);  // false: close it
  std::string Status();
  std::string Resume();
  std::string Shutdown();
  void AcknowledgeShutdownRequest();
  std::string Info();

  // --- save / restore (guest_save.cc) ---
  std::string Save(const std::string& path);
  // Rebuilds the devices of options_.restore_state and resumes them.
  absl::Status RestoreAndResume();

  void Log(const std::string& message);

  GuestOptions options_;
  std::unique_ptr<XenStore> xs_;
  std::unique_ptr<GuestHypercalls> hv_;

  std::map<std::string, std::unique_ptr<XenbusDevice>> devices_;
  uint64_t next_seq_ = 1;
  std::vector<ConsInfo*> xenconsoles_;  // hvc_xen's list, in probe order
  std::array<Hvc*, kHvcTtyAdapters> hvc_slots_;
  Hvc primary_;
  int console_log_ = -1;
  int inotify_ = -1;  // IN_OPEN / IN_CLOSE on every channel tty's slave

  int control_listen_ = -1;
  std::vector<ControlClient> control_clients_;

  std::string boot_id_;  // new at boot, kept across save/restore
  uint64_t resumes_ = 0;
  bool restored_ = false;
  bool suspended_ = false;
  bool shutting_down_ = false;
  bool done_ = false;
};

}  // namespace guest
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_GUEST_GUEST_INTERNAL_H_
