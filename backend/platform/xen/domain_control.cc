#include "backend/platform/xen/domain_control.h"

#include <errno.h>
#include <stdio.h>

#include <utility>
// The Xen library headers have no C++ linkage guard.
extern "C" {
#include <xenctrl.h>
#include <xentoollog.h>
}

#include "absl/strings/str_cat.h"
#include "backend/platform/xen/errors.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace xen_internal {

// The open interface and the quiet logger it writes to.
struct XcHandle {
  XcHandle(xentoollog_logger_stdiostream* l, xc_interface* h) : logger(l), xch(h) {}
  ~XcHandle() {
    if (xch != nullptr) xc_interface_close(xch);
    if (logger != nullptr) xtl_logger_destroy(reinterpret_cast<xentoollog_logger*>(logger));
  }
  xentoollog_logger_stdiostream* const logger;
  xc_interface* const xch;
};

}  // namespace xen_internal

using xen_internal::XenErrnoToStatus;

absl::StatusOr<std::unique_ptr<XenDomainControl>> XenDomainControl::Create() {
  xentoollog_logger_stdiostream* logger = xtl_createlogger_stdiostream(stderr, XTL_CRITICAL, 0);
  if (logger == nullptr) return absl::ResourceExhaustedError("cannot create a xentoollog logger");
  xc_interface* xch =
      xc_interface_open(reinterpret_cast<xentoollog_logger*>(logger),
                        reinterpret_cast<xentoollog_logger*>(logger), /*open_flags=*/0);
  if (xch == nullptr) {
    const int err = errno;
    xtl_logger_destroy(reinterpret_cast<xentoollog_logger*>(logger));
    return absl::UnavailableError(ErrnoMessage(err, "xc_interface_open"));
  }
  return std::unique_ptr<XenDomainControl>(
      new XenDomainControl(std::make_unique<xen_internal::XcHandle>(logger, xch)));
}

XenDomainControl::XenDomainControl(std::unique_ptr<xen_internal::XcHandle> handle)
    : handle_(std::move(handle)) {}

XenDomainControl::~XenDomainControl() = default;

absl::Status XenDomainControl::Pause(uint32_t domid) {
  if (xc_domain_pause(handle_->xch, domid) == 0) return absl::OkStatus();
  return XenErrnoToStatus(errno, absl::StrCat("xc_domain_pause ", domid));
}

absl::Status XenDomainControl::Unpause(uint32_t domid) {
  if (xc_domain_unpause(handle_->xch, domid) == 0) return absl::OkStatus();
  return XenErrnoToStatus(errno, absl::StrCat("xc_domain_unpause ", domid));
}

}  // namespace xenchan
