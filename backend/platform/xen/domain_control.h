// DomainControl over libxenctrl, for a real Xen host.
#ifndef XENCHAN_BACKEND_PLATFORM_XEN_DOMAIN_CONTROL_H_
#define XENCHAN_BACKEND_PLATFORM_XEN_DOMAIN_CONTROL_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backend/platform/domain_control.h"

namespace xenchan {

namespace xen_internal {
struct XcHandle;
}  // namespace xen_internal

// One xenctrl handle (/dev/xen/privcmd), whose library calls are
// thread-safe. Status codes as DomainControl documents (ESRCH -> NOT_FOUND,
// EINVAL -> INVALID_ARGUMENT, EOVERFLOW -> OUT_OF_RANGE, EPERM/EACCES ->
// PERMISSION_DENIED), plus UNAVAILABLE when the interface cannot be opened
// (not running on Xen, or no access to /dev/xen/privcmd). libxenctrl's own
// log messages below "critical" are dropped: every failure is returned.
// Must not be used in a forked child.
class XenDomainControl : public DomainControl {
 public:
  static absl::StatusOr<std::unique_ptr<XenDomainControl>> Create();
  ~XenDomainControl() override;

  absl::Status Pause(uint32_t domid) override;
  absl::Status Unpause(uint32_t domid) override;

 private:
  explicit XenDomainControl(std::unique_ptr<xen_internal::XcHandle> handle);
  const std::unique_ptr<xen_internal::XcHandle> handle_;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_XEN_DOMAIN_CONTROL_H_
