// The simulated guest's xenbus frontend bus, as Linux's drivers/xen/xenbus
// runs it (xenbus_probe.c, xenbus_probe_frontend.c, xenbus_client.c): device
// enumeration and the `device` watch (xenbus_dev_changed), probe and remove,
// the other end's details and its state watch, __xenbus_switch_state,
// xenbus_dev_error / xenbus_dev_fatal and xenbus_dev_resume. The console
// driver it binds devices to is in hvc_xen.cc. See guest.h for the behaviour.
#include <errno.h>
#include <string.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backend/platform/xenstore.h"
#include "backend/sim/guest/guest_internal.h"
#include "backend/sim/guest/xenbus_text.h"

namespace xenchan {
namespace sim {
namespace guest {

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
  if (!s.ok())
    Log(absl::StrCat("failed to write error node for ", dev->nodename, ": ", s.ToString()));
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

}  // namespace guest
}  // namespace sim
}  // namespace xenchan
