// The simulated guest's event loop: xenbus frontend bus, hvc_xen and the hvc
// ttys. See guest.h for the behaviour; the names of the private methods
// follow the Linux functions they stand for.
#include "backend/sim/guest/guest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/sim/guest/frontend_ring.h"
#include "backend/sim/guest/pty.h"
#include "backend/sim/guest/xenbus_text.h"

namespace xenchan {
namespace guest {
namespace {

constexpr int kHvcCookie = 0x58656e;      // "Xen": hvc_xen's vtermno base
constexpr int kHvcTtyAdapters = 8;        // HVC_ALLOC_TTY_ADAPTERS
constexpr size_t kPageSize = 4096;
constexpr absl::Duration kShutdownTimeout = absl::Seconds(5);
constexpr char kFrontendWatchToken[] = "xenbus-fe";
constexpr char kOtherendTokenPrefix[] = "otherend:";
constexpr size_t kMaxControlLine = 4096;
constexpr size_t kMaxControlClients = 16;

// The errno a Linux xenbus call would have returned for `s`.
int StatusToErrno(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return 0;
    case absl::StatusCode::kNotFound:
      return ENOENT;
    case absl::StatusCode::kPermissionDenied:
      return EACCES;
    case absl::StatusCode::kAborted:
      return EAGAIN;
    case absl::StatusCode::kResourceExhausted:
      return ENOSPC;
    case absl::StatusCode::kInvalidArgument:
      return EINVAL;
    case absl::StatusCode::kAlreadyExists:
      return EEXIST;
    default:
      return EIO;
  }
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// One hvc tty (hvc_struct): an index among the tty lines, the vtermno its
// put_chars/get_chars go to, and the pty standing in for it.
struct Hvc {
  int index = -1;
  int vtermno = 0;
  std::unique_ptr<Pty> pty;
  std::string link;       // <root>/dev/hvcM
  std::string name_link;  // <root>/dev/xen-channel/<name>, or empty
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
  std::string nodename;  // "device/console/N"
  std::string type;      // "console"
  uint64_t seq = 0;      // registration order
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

  absl::Status Run();

 private:
  // --- set-up ---
  absl::Status Setup();
  absl::Status ListenControl();

  // --- xenbus (drivers/xen/xenbus) ---
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

  // --- hvc_xen ---
  int XenconsProbe(XenbusDevice* dev);
  int ConnectBackend(XenbusDevice* dev, ConsInfo* info);
  void DisconnectBackend(ConsInfo* info);
  void FreeInfo(ConsInfo* info);
  void BackendChanged(XenbusDevice* dev, int backend_state);
  ConsInfo* VtermnoToXencons(int vtermno);

  // --- hvc ---
  absl::StatusOr<std::unique_ptr<Hvc>> HvcAlloc(int vtermno, const std::string& nodename);
  void HvcRemove(std::unique_ptr<Hvc>& hvc);
  void PollHvc(Hvc* hvc, bool readable);
  void PollAllHvcs();
  void PollPrimary();
  void HandleTtyOpens();
  void HandleEvents();

  // --- control ---
  void AcceptControl();
  bool ServeControl(ControlClient* client);  // false: close it
  std::string Status();
  std::string Resume();
  std::string Shutdown();

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

  bool suspended_ = false;
  bool shutting_down_ = false;
  bool done_ = false;
};

Guest::~Guest() {
  for (auto& c : control_clients_) close(c.fd);
  if (control_listen_ >= 0) close(control_listen_);
  for (auto& [name, dev] : devices_) {
    if (dev->info != nullptr) {
      if (dev->info->hvc != nullptr) HvcRemove(dev->info->hvc);
      FreeInfo(dev->info.get());
    }
  }
  if (primary_.pty != nullptr) {
    primary_.pty->Hangup();
    unlink(primary_.link.c_str());
  }
  if (console_log_ >= 0) close(console_log_);
  if (inotify_ >= 0) close(inotify_);
}

void Guest::Log(const std::string& message) {
  absl::FPrintF(stderr, "xensim guest %s (domid %d): %s\n", options_.name, options_.domid,
                message);
}

// ---------------------------------------------------------------------------
// Set-up

absl::Status MakeDirs(const std::string& path) {
  std::string prefix;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty()) {
      if (prefix.empty()) prefix = "/";
      continue;
    }
    prefix = (prefix.empty() || prefix == "/") ? absl::StrCat(prefix, part)
                                                : absl::StrCat(prefix, "/", part);
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::InternalError(absl::StrCat("mkdir ", prefix, ": ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

// Points `link` at `target`, replacing whatever was there.
absl::Status ReplaceSymlink(const std::string& target, const std::string& link) {
  const std::string tmp = absl::StrCat(link, ".tmp");
  unlink(tmp.c_str());
  if (symlink(target.c_str(), tmp.c_str()) != 0 || rename(tmp.c_str(), link.c_str()) != 0) {
    const absl::Status s =
        absl::InternalError(absl::StrCat("symlink ", link, " -> ", target, ": ", strerror(errno)));
    unlink(tmp.c_str());
    return s;
  }
  return absl::OkStatus();
}

// Removes `link` only if it still points at `target`.
void RemoveSymlinkIf(const std::string& link, const std::string& target) {
  if (link.empty()) return;
  char buf[4096];
  const ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return;
  if (std::string(buf, static_cast<size_t>(n)) == target) unlink(link.c_str());
}

absl::Status Guest::Setup() {
  const std::string dev_dir = absl::StrCat(options_.root_dir, "/dev");
  if (absl::Status s = MakeDirs(absl::StrCat(dev_dir, "/xen-channel")); !s.ok()) return s;
  const std::string guest_dir = absl::StrCat(options_.state_dir, "/guests/", options_.name);
  if (absl::Status s = MakeDirs(guest_dir); !s.ok()) return s;
  console_log_ = open(absl::StrCat(guest_dir, "/console.log").c_str(),
                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (console_log_ < 0) {
    return absl::InternalError(absl::StrCat("open console.log: ", strerror(errno)));
  }

  // hvc0: the primary console, registered before any channel.
  absl::StatusOr<std::unique_ptr<Pty>> pty = Pty::Open();
  if (!pty.ok()) return pty.status();
  primary_.index = 0;
  primary_.vtermno = kHvcCookie;
  primary_.pty = *std::move(pty);
  primary_.link = absl::StrCat(dev_dir, "/hvc0");
  if (absl::Status s = ReplaceSymlink(primary_.pty->slave_path(), primary_.link); !s.ok()) {
    return s;
  }
  hvc_slots_[0] = &primary_;

  inotify_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_ < 0) return absl::InternalError(absl::StrCat("inotify_init1: ", strerror(errno)));

  if (absl::Status s = ListenControl(); !s.ok()) return s;

  // xenbus_probe_frontend: watch the bus root, then enumerate what is there.
  if (absl::Status s = xs_->Watch("device", kFrontendWatchToken); !s.ok()) return s;
  ProbeDevices();
  return absl::OkStatus();
}

absl::Status Guest::ListenControl() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (options_.control_socket.empty() ||
      options_.control_socket.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad control socket path: '", options_.control_socket, "'"));
  }
  memcpy(addr.sun_path, options_.control_socket.data(), options_.control_socket.size());
  unlink(options_.control_socket.c_str());
  control_listen_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (control_listen_ < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  if (bind(control_listen_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(control_listen_, 8) != 0) {
    return absl::InternalError(
        absl::StrCat("listen on ", options_.control_socket, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// xenbus

XenbusDevice* Guest::FindDevice(const std::string& nodename) {
  auto it = devices_.find(nodename);
  return it == devices_.end() ? nullptr : it->second.get();
}

void Guest::ProbeDevices() {
  absl::StatusOr<std::vector<std::string>> types = xs_->Directory(kNoTransaction, "device");
  if (!types.ok()) return;
  for (const std::string& type : *types) {
    absl::StatusOr<std::vector<std::string>> names =
        xs_->Directory(kNoTransaction, absl::StrCat("device/", type));
    if (!names.ok()) continue;
    for (const std::string& name : *names) {
      // xenbus_probe_frontend: "Ignoring buggy device entry console/0".
      if (type == "console" && absl::StartsWith(name, "0")) {
        Log("ignoring buggy device entry console/" + name);
        continue;
      }
      ProbeNode(type, absl::StrCat("device/", type, "/", name));
    }
  }
}

void Guest::HandleWatch(const XsWatchEvent& event) {
  std::string path = event.path;
  // Events of a relative watch come back relative; accept absolute ones too.
  const std::string domain_prefix = absl::StrCat("/local/domain/", options_.domid, "/");
  if (event.token == kFrontendWatchToken) {
    if (absl::StartsWith(path, domain_prefix)) path = path.substr(domain_prefix.size());
    if (path != "device" && !absl::StartsWith(path, "device/")) return;
    DevChanged(path);
    return;
  }
  if (absl::StartsWith(event.token, kOtherendTokenPrefix)) {
    XenbusDevice* dev = FindDevice(event.token.substr(strlen(kOtherendTokenPrefix)));
    if (dev != nullptr) OtherendChanged(dev, path);
  }
}

// xenbus_dev_changed for the frontend bus (root "device", levels 2).
void Guest::DevChanged(const std::string& node) {
  if (std::count(node.begin(), node.end(), '/') < 2) return;
  absl::StatusOr<std::vector<std::string>> exists = xs_->Directory(kNoTransaction, node);
  if (!exists.ok()) {
    CleanupDevices(node);
    return;
  }
  const std::vector<std::string> parts = absl::StrSplit(node, '/');
  const std::string type = parts[1];
  const std::string root = absl::StrCat(parts[0], "/", parts[1], "/", parts[2]);
  if (FindDevice(root) == nullptr) ProbeNode(type, root);
}

// xenbus_cleanup_devices: unregister the device at `path` or below it.
void Guest::CleanupDevices(const std::string& path) {
  std::vector<std::string> victims;
  for (const auto& [nodename, dev] : devices_) {
    if (nodename == path || absl::StartsWith(nodename, path + "/")) victims.push_back(nodename);
  }
  for (const std::string& nodename : victims) {
    XenbusDevice* dev = FindDevice(nodename);
    Log(absl::StrCat(nodename, ": device removed from xenstore"));
    RemoveDevice(dev);
    devices_.erase(nodename);
  }
}

int Guest::ReadDriverState(const std::string& path) {
  absl::StatusOr<std::string> value = xs_->Read(kNoTransaction, absl::StrCat(path, "/state"));
  if (!value.ok()) return kStateUnknown;
  return ScanStateValue(*value).value_or(kStateUnknown);
}

// xenbus_probe_node + device_register + xenbus_dev_probe.
void Guest::ProbeNode(const std::string& type, const std::string& nodename) {
  if (FindDevice(nodename) != nullptr) return;
  // "Device is not new, so ignore it": only state Initialising is probed.
  if (ReadDriverState(nodename) != kStateInitialising) return;
  auto owned = std::make_unique<XenbusDevice>();
  XenbusDevice* dev = owned.get();
  dev->nodename = nodename;
  dev->type = type;
  dev->seq = next_seq_++;
  dev->state = kStateInitialising;
  devices_[nodename] = std::move(owned);
  if (type != "console") {
    Log("device with no driver: " + nodename);
    return;
  }
  if (TalkToOtherend(dev) != 0) {
    Log("talk_to_otherend on " + nodename + " failed");
    return;
  }
  if (const int err = XenconsProbe(dev); err != 0) {
    DevError(dev, -err, "xenbus_dev_probe on " + nodename);
    return;
  }
  dev->bound = true;
  if (WatchOtherend(dev) != 0) Log("watch_otherend on " + nodename + " failed");
}

// talk_to_otherend / xenbus_read_otherend_details, hardened.
int Guest::TalkToOtherend(XenbusDevice* dev) {
  FreeOtherendWatch(dev);
  dev->otherend.clear();
  absl::StatusOr<std::string> id =
      xs_->Read(kNoTransaction, absl::StrCat(dev->nodename, "/backend-id"));
  absl::StatusOr<std::string> path =
      xs_->Read(kNoTransaction, absl::StrCat(dev->nodename, "/backend"));
  if (!id.ok() || !path.ok()) {
    const int err = StatusToErrno(!id.ok() ? id.status() : path.status());
    DevFatal(dev, err, "reading other end details from " + dev->nodename);
    return -err;
  }
  std::optional<uint32_t> otherend_id = ParseBackendId(*id);
  if (!otherend_id.has_value()) {
    DevFatal(dev, EINVAL, "reading other end details from " + dev->nodename);
    return -EINVAL;
  }
  if (!IsSaneBackendPath(*path) || !xs_->Directory(kNoTransaction, *path).ok()) {
    DevFatal(dev, ENOENT,
             "unable to read other end from " + dev->nodename + ".  missing or inaccessible.");
    return -ENOENT;
  }
  dev->otherend_id = *otherend_id;
  dev->otherend = *path;
  return 0;
}

int Guest::WatchOtherend(XenbusDevice* dev) {
  FreeOtherendWatch(dev);
  const std::string path = absl::StrCat(dev->otherend, "/state");
  absl::Status s = xs_->Watch(path, kOtherendTokenPrefix + dev->nodename);
  if (!s.ok()) {
    DevFatal(dev, StatusToErrno(s), "adding watch on " + path);
    return -StatusToErrno(s);
  }
  dev->otherend_watch = path;
  return 0;
}

void Guest::FreeOtherendWatch(XenbusDevice* dev) {
  if (dev->otherend_watch.empty()) return;
  (void)xs_->Unwatch(dev->otherend_watch, kOtherendTokenPrefix + dev->nodename);
  dev->otherend_watch.clear();
}

// xenbus_otherend_changed (frontend flavour: ignore_on_shutdown).
void Guest::OtherendChanged(XenbusDevice* dev, const std::string& path) {
  // "Protect us against watches firing on old details when the otherend
  // details change, say immediately after a resume."
  if (dev->otherend.empty() || !absl::StartsWith(path, dev->otherend)) return;
  if (dev->otherend_watch.empty()) return;  // stale event after unwatch
  const int state = ReadDriverState(dev->otherend);
  if (shutting_down_) {
    if (state == kStateClosing) FrontendClosed(dev);
    return;
  }
  if (dev->bound) BackendChanged(dev, state);
}

// xenbus_dev_remove: the frontend directory went away.
void Guest::RemoveDevice(XenbusDevice* dev) {
  FreeOtherendWatch(dev);
  if (dev->info != nullptr) {
    ConsInfo* info = dev->info.get();
    DisconnectBackend(info);
    xenconsoles_.erase(std::remove(xenconsoles_.begin(), xenconsoles_.end(), info),
                       xenconsoles_.end());
    FreeInfo(info);
    dev->info.reset();
  }
  dev->otherend.clear();
  // Closed only if the toolstack forced Closing (the node is normally gone,
  // and SwitchState never creates it).
  if (ReadDriverState(dev->nodename) == kStateClosing) SwitchState(dev, kStateClosed);
}

// __xenbus_switch_state: rewrite `state` only if it can be read in the same
// transaction, so a vanished directory is never re-created.
void Guest::SwitchState(XenbusDevice* dev, int state, int depth) {
  if (state == dev->state) return;
  const std::string path = absl::StrCat(dev->nodename, "/state");
  while (true) {
    absl::StatusOr<XsTransaction> t = xs_->StartTransaction();
    if (!t.ok()) {
      DevError(dev, StatusToErrno(t.status()), "starting transaction");
      if (depth == 0) SwitchState(dev, kStateClosing, 1);
      return;
    }
    bool abort = true;
    absl::StatusOr<std::string> current = xs_->Read(*t, path);
    if (current.ok() && ScanStateValue(*current).has_value()) {
      absl::Status w = xs_->Write(*t, path, absl::StrCat(state));
      if (w.ok()) {
        abort = false;
      } else {
        DevError(dev, StatusToErrno(w), "writing new state");
        if (depth == 0) {
          (void)xs_->EndTransaction(*t, false);
          SwitchState(dev, kStateClosing, 1);
          return;
        }
      }
    }
    absl::Status end = xs_->EndTransaction(*t, !abort);
    if (!end.ok()) {
      if (end.code() == absl::StatusCode::kAborted && !abort) continue;
      DevError(dev, StatusToErrno(end), "ending transaction");
      if (depth == 0) SwitchState(dev, kStateClosing, 1);
      return;
    }
    dev->state = state;
    return;
  }
}

void Guest::FrontendClosed(XenbusDevice* dev) {
  SwitchState(dev, kStateClosed);
  dev->down = true;
}

void Guest::DevError(XenbusDevice* dev, int err, const std::string& message) {
  const std::string text = XenbusErrorText(err, message);
  Log(absl::StrCat(dev->nodename, ": ", text));
  absl::Status s =
      xs_->Write(kNoTransaction, absl::StrCat("error/", dev->nodename, "/error"), text);
  if (!s.ok()) Log(absl::StrCat("failed to write error node for ", dev->nodename, ": ", s.ToString()));
}

// xenbus_dev_fatal: the error node, then Closing.
void Guest::DevFatal(XenbusDevice* dev, int err, const std::string& message) {
  DevError(dev, err, message);
  SwitchState(dev, kStateClosing);
}

// xenbus_dev_resume.
int Guest::DevResume(XenbusDevice* dev) {
  if (!dev->bound) return 0;
  if (const int err = TalkToOtherend(dev); err != 0) {
    Log(absl::StrCat("resume (talk_to_otherend) ", dev->nodename, " failed: ", err));
    return err;
  }
  dev->state = kStateInitialising;
  // xencons_resume.
  ConsInfo* info = dev->info.get();
  DisconnectBackend(info);
  memset(info->intf, 0, kPageSize);
  if (const int err = ConnectBackend(dev, info); err != 0) {
    Log(absl::StrCat("resume ", dev->nodename, " failed: ", err));
    return err;
  }
  if (const int err = WatchOtherend(dev); err != 0) return err;
  return 0;
}

// ---------------------------------------------------------------------------
// hvc_xen

ConsInfo* Guest::VtermnoToXencons(int vtermno) {
  for (ConsInfo* info : xenconsoles_) {
    if (info->vtermno == vtermno) return info;
  }
  return nullptr;
}

int Guest::XenconsProbe(XenbusDevice* dev) {
  const std::optional<int> devid = DevidFromNodename(dev->nodename);
  if (!devid.has_value() || *devid == 0) return -ENODEV;
  auto info = std::make_unique<ConsInfo>();
  info->vtermno = *devid + kHvcCookie;
  // __get_free_page(GFP_KERNEL | __GFP_ZERO): a fresh memfd is zero-filled.
  info->memfd = memfd_create("xencons-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  void* page = MAP_FAILED;
  if (info->memfd >= 0 && ftruncate(info->memfd, kPageSize) == 0) {
    page = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, info->memfd, 0);
  }
  if (page == MAP_FAILED) {
    DevFatal(dev, ENOMEM, "allocating device memory");
    FreeInfo(info.get());
    return -ENOMEM;
  }
  info->intf = static_cast<xencons_interface*>(page);
  if (const int err = ConnectBackend(dev, info.get()); err < 0) {
    DisconnectBackend(info.get());
    FreeInfo(info.get());
    return err;
  }
  xenconsoles_.push_back(info.get());
  dev->info = std::move(info);
  return 0;
}

int Guest::ConnectBackend(XenbusDevice* dev, ConsInfo* info) {
  // xenbus_alloc_evtchn (fatal on failure).
  absl::StatusOr<uint32_t> port = hv_->AllocUnbound(dev->otherend_id);
  if (!port.ok()) {
    const int err = StatusToErrno(port.status());
    DevFatal(dev, err, "allocating event channel");
    return -err;
  }
  info->evtchn = *port;
  // hvc_alloc: the tty exists from now on.
  absl::StatusOr<std::unique_ptr<Hvc>> hvc = HvcAlloc(info->vtermno, dev->nodename);
  if (!hvc.ok()) {
    Log(absl::StrCat(dev->nodename, ": hvc_alloc: ", hvc.status().ToString()));
    return -ENOMEM;
  }
  info->hvc = *std::move(hvc);
  // gnttab_grant_foreign_access_ref(..., readonly = 0).
  absl::StatusOr<uint32_t> ref = hv_->GrantPage(info->memfd, dev->otherend_id, false);
  if (!ref.ok()) {
    Log(absl::StrCat(dev->nodename, ": grant: ", ref.status().ToString()));
    return -ENOSPC;
  }
  info->gntref = *ref;

  while (true) {
    absl::StatusOr<XsTransaction> t = xs_->StartTransaction();
    if (!t.ok()) {
      const int err = StatusToErrno(t.status());
      DevFatal(dev, err, "starting transaction");
      return -err;
    }
    absl::Status s = xs_->Write(*t, absl::StrCat(dev->nodename, "/ring-ref"),
                                absl::StrFormat("%d", static_cast<int>(*ref)));
    if (s.ok()) {
      s = xs_->Write(*t, absl::StrCat(dev->nodename, "/port"), absl::StrFormat("%u", *port));
    }
    if (!s.ok()) {
      (void)xs_->EndTransaction(*t, false);
      const int err = StatusToErrno(s);
      DevFatal(dev, err, "writing xenstore");
      return -err;
    }
    s = xs_->EndTransaction(*t, true);
    if (s.ok()) break;
    if (s.code() == absl::StatusCode::kAborted) continue;
    const int err = StatusToErrno(s);
    DevFatal(dev, err, "completing transaction");
    return -err;
  }
  SwitchState(dev, kStateInitialised);
  return 0;
}

void Guest::DisconnectBackend(ConsInfo* info) {
  if (info->hvc != nullptr) HvcRemove(info->hvc);
  if (info->evtchn.has_value()) {
    if (absl::Status s = hv_->Unbind(*info->evtchn); !s.ok()) {
      Log(absl::StrCat("unbind port ", *info->evtchn, ": ", s.ToString()));
    }
    info->evtchn.reset();
  }
  if (info->gntref.has_value()) {
    // Linux only returns the ref to its free list; the simulated guest also
    // ends access, which the hypervisor refuses while the backend still maps
    // the page (the grant then simply stays, as on Linux).
    if (absl::Status s = hv_->EndAccess(*info->gntref); !s.ok()) {
      Log(absl::StrCat("end access to grant ", *info->gntref, ": ", s.ToString()));
    }
    info->gntref.reset();
  }
}

void Guest::FreeInfo(ConsInfo* info) {
  if (info->intf != nullptr) munmap(info->intf, kPageSize);
  info->intf = nullptr;
  if (info->memfd >= 0) close(info->memfd);
  info->memfd = -1;
}

// xencons_backend_changed.
void Guest::BackendChanged(XenbusDevice* dev, int backend_state) {
  switch (backend_state) {
    case kStateConnected:
      SwitchState(dev, kStateConnected);
      break;
    case kStateClosed:
      if (dev->state == kStateClosed) break;
      [[fallthrough]];  // missed the backend's Closing
    case kStateClosing:
      // Stop userspace using the device, but keep port and grant until the
      // other end has disconnected (the directory goes away).
      if (dev->info != nullptr && dev->info->hvc != nullptr) HvcRemove(dev->info->hvc);
      FrontendClosed(dev);
      break;
    default:  // Unknown, Initialising, InitWait, Initialised, Reconfigur*
      break;
  }
}

// ---------------------------------------------------------------------------
// hvc

absl::StatusOr<std::unique_ptr<Hvc>> Guest::HvcAlloc(int vtermno, const std::string& nodename) {
  int index = -1;
  for (int i = 0; i < kHvcTtyAdapters; ++i) {
    if (hvc_slots_[i] == nullptr) {
      index = i;
      break;
    }
  }
  if (index < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("all ", kHvcTtyAdapters, " hvc tty lines are in use"));
  }
  absl::StatusOr<std::unique_ptr<Pty>> pty = Pty::Open();
  if (!pty.ok()) return pty.status();
  auto hvc = std::make_unique<Hvc>();
  hvc->index = index;
  hvc->vtermno = vtermno;
  hvc->pty = *std::move(pty);
  hvc->inotify_wd =
      inotify_add_watch(inotify_, hvc->pty->slave_path().c_str(), IN_OPEN | IN_CLOSE);
  if (hvc->inotify_wd < 0) {
    return absl::InternalError(absl::StrCat("inotify_add_watch ", hvc->pty->slave_path(), ": ",
                                            strerror(errno)));
  }
  const std::string dev_dir = absl::StrCat(options_.root_dir, "/dev");
  hvc->link = absl::StrCat(dev_dir, "/hvc", index);
  if (absl::Status s = ReplaceSymlink(hvc->pty->slave_path(), hvc->link); !s.ok()) {
    inotify_rm_watch(inotify_, hvc->inotify_wd);
    return s;
  }
  // The udev helper: /dev/xen-channel/<name> for a valid frontend `name`.
  absl::StatusOr<std::string> name = xs_->Read(kNoTransaction, absl::StrCat(nodename, "/name"));
  if (name.ok() && IsValidChannelName(*name)) {
    hvc->name_link = absl::StrCat(dev_dir, "/xen-channel/", *name);
    if (absl::Status s = ReplaceSymlink(absl::StrCat("../hvc", index), hvc->name_link); !s.ok()) {
      Log(s.ToString());
      hvc->name_link.clear();
    }
  }
  hvc_slots_[index] = hvc.get();
  return hvc;
}

// hvc_remove: hang up the tty and free its line.
void Guest::HvcRemove(std::unique_ptr<Hvc>& hvc) {
  if (hvc == nullptr) return;
  const std::string slave = hvc->pty->slave_path();
  if (hvc->inotify_wd >= 0) inotify_rm_watch(inotify_, hvc->inotify_wd);
  hvc->pty->Hangup();
  RemoveSymlinkIf(hvc->name_link, absl::StrCat("../hvc", hvc->index));
  RemoveSymlinkIf(hvc->link, slave);
  if (hvc->index >= 0 && hvc->index < kHvcTtyAdapters && hvc_slots_[hvc->index] == hvc.get()) {
    hvc_slots_[hvc->index] = nullptr;
  }
  hvc.reset();
}

// hvc_poll for one channel tty: push tty output into the out ring as space
// allows, deliver ring input to the tty as far as it takes it.
void Guest::PollHvc(Hvc* hvc, bool readable) {
  ConsInfo* info = VtermnoToXencons(hvc->vtermno);
  const int master = hvc->pty->master_fd();
  if (info == nullptr || info->intf == nullptr) {
    // put_chars fails: hvc throws the output away.
    if (readable) {
      char buf[256];
      (void)!read(master, buf, sizeof(buf));
    }
    return;
  }
  bool notify = false;

  // Output: tty -> out ring. Bounded per call; a pty that still has data
  // stays readable, so the loop comes back.
  for (int round = 0; round < 16; ++round) {
    absl::StatusOr<size_t> space = OutRingFree(info->intf);
    if (!space.ok()) {
      // __write_console fails with EINVAL; hvc_push throws the output away.
      if (!hvc->reported_illegal) Log("xencons: Illegal ring page indices");
      hvc->reported_illegal = true;
      hvc->output_blocked = false;
      char buf[256];
      if (read(master, buf, sizeof(buf)) <= 0) break;
      continue;
    }
    if (*space == 0) {
      hvc->output_blocked = true;
      break;
    }
    hvc->output_blocked = false;
    char buf[kOutRingSize];
    const ssize_t n = read(master, buf, std::min(*space, sizeof(buf)));
    if (n <= 0) break;  // EAGAIN, or nothing more
    absl::StatusOr<size_t> sent = WriteOutRing(info->intf, buf, static_cast<size_t>(n));
    if (!sent.ok()) break;  // indices turned illegal under us: output lost, as hvc does
    info->bytes_out += *sent;
    if (*sent > 0) notify = true;
  }

  // Input: in ring -> tty.
  absl::StatusOr<InRingView> view = PeekInRing(info->intf);
  hvc->input_blocked = false;
  if (!view.ok()) {
    if (!hvc->reported_illegal) Log("xencons: Illegal ring page indices");
    hvc->reported_illegal = true;
  } else if (view->available > 0 && hvc->open_count > 0) {
    size_t delivered = 0;
    while (delivered < view->available) {
      char buf[kInRingSize];
      const size_t n = CopyFromInRing(info->intf, *view, delivered, buf, sizeof(buf));
      const ssize_t w = write(master, buf, n);
      if (w <= 0) {
        hvc->input_blocked = true;
        break;
      }
      delivered += static_cast<size_t>(w);
    }
    if (delivered > 0) {
      ConsumeInRing(info->intf, *view, delivered);
      info->bytes_in += delivered;
      notify = true;
    }
  }
  if (notify && info->evtchn.has_value()) (void)hv_->Notify(*info->evtchn);
}

void Guest::PollAllHvcs() {
  for (int i = 1; i < kHvcTtyAdapters; ++i) {
    if (hvc_slots_[i] != nullptr) PollHvc(hvc_slots_[i], false);
  }
}

// hvc0 stays local: its output is the guest's console log.
void Guest::PollPrimary() {
  char buf[4096];
  while (true) {
    const ssize_t n = read(primary_.pty->master_fd(), buf, sizeof(buf));
    if (n <= 0) return;
    (void)!write(console_log_, buf, static_cast<size_t>(n));
  }
}

// Counts opens and closes of the channel ttys; a tty that became open gets
// its pending ring input.
void Guest::HandleTtyOpens() {
  alignas(struct inotify_event) char buf[4096];
  bool overflow = false;
  while (true) {
    const ssize_t n = read(inotify_, buf, sizeof(buf));
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const struct inotify_event*>(buf + off);
      off += sizeof(struct inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) overflow = true;
      for (int i = 1; i < kHvcTtyAdapters; ++i) {
        Hvc* hvc = hvc_slots_[i];
        if (hvc == nullptr || hvc->inotify_wd != ev->wd) continue;
        if (ev->mask & IN_OPEN) ++hvc->open_count;
        if ((ev->mask & IN_CLOSE) && hvc->open_count > 0) --hvc->open_count;
      }
    }
  }
  for (int i = 1; i < kHvcTtyAdapters; ++i) {
    if (hvc_slots_[i] == nullptr) continue;
    // Lost events: assume open rather than strand input.
    if (overflow) hvc_slots_[i]->open_count = std::max(hvc_slots_[i]->open_count, 1);
  }
  PollAllHvcs();
}

void Guest::HandleEvents() {
  // Each fired port is masked until unmasked; take what is queued now.
  std::vector<uint32_t> fired;
  for (int i = 0; i < 64; ++i) {
    absl::StatusOr<std::optional<uint32_t>> p = hv_->Pending();
    if (!p.ok() || !p->has_value()) break;
    fired.push_back(**p);
  }
  PollAllHvcs();
  for (uint32_t port : fired) (void)hv_->Unmask(port);
}

// ---------------------------------------------------------------------------
// Control socket

void Guest::AcceptControl() {
  while (true) {
    const int fd = accept4(control_listen_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    if (control_clients_.size() >= kMaxControlClients) {
      close(fd);
      continue;
    }
    control_clients_.push_back(ControlClient{fd, ""});
  }
}

void SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, 1000) > 0) continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return;
  }
}

bool Guest::ServeControl(ControlClient* client) {
  char buf[1024];
  while (true) {
    const ssize_t n = read(client->fd, buf, sizeof(buf));
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    client->in.append(buf, static_cast<size_t>(n));
    if (client->in.size() > kMaxControlLine && client->in.find('\n') == std::string::npos) {
      SendAll(client->fd, "error line too long\n");
      return false;
    }
  }
  size_t nl;
  while (!done_ && (nl = client->in.find('\n')) != std::string::npos) {
    std::string line = client->in.substr(0, nl);
    client->in.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string reply;
    if (line == "status") {
      reply = Status();
    } else if (line == "suspend") {
      if (suspended_) {
        reply = "error already suspended\n";
      } else {
        suspended_ = true;
        reply = "ok suspended\n";
      }
    } else if (line == "resume") {
      reply = suspended_ ? Resume() : "error not suspended\n";
    } else if (line == "shutdown") {
      reply = Shutdown();
    } else {
      reply = absl::StrCat("error unknown command '", absl::CHexEscape(line), "'\n");
    }
    SendAll(client->fd, reply);
  }
  return true;
}

std::string Guest::Status() {
  std::vector<const XenbusDevice*> devs;
  for (const auto& [nodename, dev] : devices_) {
    if (dev->type == "console") devs.push_back(dev.get());
  }
  std::string out = absl::StrCat("ok ", devs.size(), "\n");
  for (const XenbusDevice* dev : devs) {
    const ConsInfo* info = dev->info.get();
    std::string name;
    if (absl::StatusOr<std::string> n =
            xs_->Read(kNoTransaction, absl::StrCat(dev->nodename, "/name"));
        n.ok()) {
      name = *n;
    }
    const Hvc* hvc = info != nullptr ? info->hvc.get() : nullptr;
    absl::StrAppend(
        &out, "{\"nodename\":", JsonString(dev->nodename),
        ",\"devid\":", DevidFromNodename(dev->nodename).value_or(-1),
        ",\"name\":", JsonString(name), ",\"bound\":", dev->bound ? "true" : "false",
        ",\"state\":", dev->state, ",\"hvc\":", hvc != nullptr ? hvc->index : -1,
        ",\"tty\":", JsonString(hvc != nullptr ? hvc->pty->slave_path() : ""),
        ",\"bytes_in\":", info != nullptr ? info->bytes_in : 0,
        ",\"bytes_out\":", info != nullptr ? info->bytes_out : 0, ",\"ring_ref\":",
        info != nullptr && info->gntref.has_value() ? static_cast<int64_t>(*info->gntref) : -1,
        ",\"port\":",
        info != nullptr && info->evtchn.has_value() ? static_cast<int64_t>(*info->evtchn) : -1,
        "}\n");
  }
  return out;
}

std::string Guest::Resume() {
  suspended_ = false;
  std::vector<XenbusDevice*> devs;
  for (auto& [nodename, dev] : devices_) {
    if (dev->bound) devs.push_back(dev.get());
  }
  std::sort(devs.begin(), devs.end(),
            [](const XenbusDevice* a, const XenbusDevice* b) { return a->seq < b->seq; });
  std::vector<std::string> failed;
  for (XenbusDevice* dev : devs) {
    if (DevResume(dev) != 0) failed.push_back(dev->nodename);
  }
  PollAllHvcs();
  if (!failed.empty()) {
    return absl::StrCat("ok resumed ", devs.size() - failed.size(), " failed ",
                        absl::StrJoin(failed, ","), "\n");
  }
  return absl::StrCat("ok resumed ", devs.size(), "\n");
}

// xenbus_frontend_dev_shutdown for each Connected device, newest first (the
// driver core shuts devices down in reverse order of registration).
std::string Guest::Shutdown() {
  shutting_down_ = true;
  std::vector<XenbusDevice*> devs;
  for (auto& [nodename, dev] : devices_) devs.push_back(dev.get());
  std::sort(devs.begin(), devs.end(),
            [](const XenbusDevice* a, const XenbusDevice* b) { return a->seq > b->seq; });
  std::vector<std::string> report;
  for (XenbusDevice* dev : devs) {
    const std::string nodename = dev->nodename;
    if (dev->state != kStateConnected) continue;  // "!= Connected, skipping"
    const absl::Time start = absl::Now();
    const absl::Time deadline = start + kShutdownTimeout;
    dev->down = false;
    SwitchState(dev, kStateClosing);
    // Serve xenstore watches (only) until the backend answers Closing.
    while (true) {
      XenbusDevice* d = FindDevice(nodename);
      if (d == nullptr || d->down) break;
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      while (std::optional<XsWatchEvent> ev = xs_->ReadWatch()) HandleWatch(*ev);
      d = FindDevice(nodename);
      if (d == nullptr || d->down) break;
      pollfd p{xs_->WatchFd(), POLLIN, 0};
      const int ms = static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left)));
      if (poll(&p, 1, std::min(ms, 1000)) < 0 && errno != EINTR) break;
    }
    XenbusDevice* d = FindDevice(nodename);
    const bool closed = d == nullptr || d->down;
    const int64_t ms = absl::ToInt64Milliseconds(absl::Now() - start);
    if (!closed) Log(nodename + " timeout closing device");
    report.push_back(absl::StrCat(nodename, "=", closed ? "closed" : "timeout", ":", ms));
  }
  done_ = true;
  return absl::StrCat("ok shutdown", report.empty() ? "" : " ", absl::StrJoin(report, " "), "\n");
}

// ---------------------------------------------------------------------------
// The loop

absl::Status Guest::Run() {
  if (absl::Status s = Setup(); !s.ok()) return s;
  Log("running");
  while (!done_) {
    std::vector<pollfd> fds;
    enum Kind { kWatch, kEvents, kListen, kControl, kPrimary, kHvc, kTtyOpens };
    std::vector<std::pair<Kind, int>> what;  // parallel to fds: kind, index
    auto add = [&](int fd, short events, Kind kind, int index) {
      fds.push_back(pollfd{fd, events, 0});
      what.emplace_back(kind, index);
    };
    add(control_listen_, POLLIN, kListen, 0);
    for (size_t i = 0; i < control_clients_.size(); ++i) {
      add(control_clients_[i].fd, POLLIN, kControl, static_cast<int>(i));
    }
    add(primary_.pty->master_fd(), POLLIN, kPrimary, 0);
    add(inotify_, POLLIN, kTtyOpens, 0);
    if (!suspended_) {
      add(xs_->WatchFd(), POLLIN, kWatch, 0);
      add(hv_->EventFd(), POLLIN, kEvents, 0);
      for (int i = 1; i < kHvcTtyAdapters; ++i) {
        Hvc* hvc = hvc_slots_[i];
        if (hvc == nullptr) continue;
        short events = 0;
        if (!hvc->output_blocked) events |= POLLIN;
        if (hvc->input_blocked) events |= POLLOUT;
        if (events != 0) add(hvc->pty->master_fd(), events, kHvc, i);
      }
    }
    // Watch events may already be queued inside the client library; after
    // handling any, rebuild the poll set (ttys may have come or gone).
    if (!suspended_) {
      bool handled = false;
      while (std::optional<XsWatchEvent> ev = xs_->ReadWatch()) {
        HandleWatch(*ev);
        handled = true;
      }
      if (handled) continue;
    }
    const int n = poll(fds.data(), fds.size(), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("poll: ", strerror(errno)));
    }
    std::vector<int> closed_clients;
    for (size_t i = 0; i < fds.size() && !done_; ++i) {
      const short rev = fds[i].revents;
      if (rev == 0) continue;
      const auto [kind, index] = what[i];
      switch (kind) {
        case kWatch:
          if (rev & (POLLERR | POLLNVAL)) return absl::UnavailableError("xenstore connection lost");
          while (std::optional<XsWatchEvent> ev = xs_->ReadWatch()) HandleWatch(*ev);
          break;
        case kEvents:
          if (rev & (POLLHUP | POLLERR | POLLNVAL)) {
            return absl::UnavailableError("hypervisor connection lost");
          }
          HandleEvents();
          break;
        case kListen:
          AcceptControl();
          break;
        case kControl:
          if (!ServeControl(&control_clients_[index])) closed_clients.push_back(index);
          break;
        case kPrimary:
          PollPrimary();
          break;
        case kTtyOpens:
          HandleTtyOpens();
          break;
        case kHvc:
          // The slot may have been freed by an earlier handler this round.
          if (hvc_slots_[index] != nullptr && hvc_slots_[index]->pty->master_fd() == fds[i].fd) {
            PollHvc(hvc_slots_[index], (rev & POLLIN) != 0);
          }
          break;
      }
    }
    std::sort(closed_clients.rbegin(), closed_clients.rend());
    for (int idx : closed_clients) {
      close(control_clients_[idx].fd);
      control_clients_.erase(control_clients_.begin() + idx);
    }
  }
  Log("shut down");
  return absl::OkStatus();
}

}  // namespace

absl::Status RunGuestWith(const GuestOptions& options, std::unique_ptr<XenStore> xenstore,
                          std::unique_ptr<GuestHypercalls> hypercalls) {
  signal(SIGPIPE, SIG_IGN);
  Guest guest(options, std::move(xenstore), std::move(hypercalls));
  return guest.Run();
}

}  // namespace guest
}  // namespace xenchan
