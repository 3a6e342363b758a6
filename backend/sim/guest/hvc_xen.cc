// The simulated guest's console frontend driver, as Linux's
// drivers/tty/hvc/hvc_xen.c runs it for `device/console/N`: xencons_probe
// (zeroed page, unbound port, the tty, grant, ring-ref and port in one
// transaction, Initialised), xencons_disconnect_backend, xencons_resume's
// reconnect and xencons_backend_changed. The ring data path itself
// (__write_console, domU_read_console) is in frontend_ring.cc, driven by
// hvc_poll in hvc_console.cc. See guest.h for the behaviour.
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "backend/platform/xenstore.h"
#include "backend/sim/guest/guest_internal.h"
#include "backend/sim/guest/xenbus_text.h"

namespace xenchan {
namespace sim {
namespace guest {

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

}  // namespace guest
}  // namespace sim
}  // namespace xenchan
