#include "backend/platform/xen/grant_tables.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
// The Xen library headers have no C++ linkage guard.
extern "C" {
#include <xengnttab.h>
}

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "backend/platform/xen/errors.h"
#include "backend/util/errno_status.h"
#include "backend/util/mutex.h"

namespace xenchan {
namespace xen_internal {

// The open handle, shared by XenGrantTables and its mappings.
struct GnttabHandle {
  explicit GnttabHandle(xengnttab_handle* h) : xgt(h) {}
  ~GnttabHandle() { xengnttab_close(xgt); }
  Mutex mu;
  xengnttab_handle* const xgt;  // calls on it hold `mu`
};

}  // namespace xen_internal

namespace {

class XenGrantMapping : public GrantMapping {
 public:
  XenGrantMapping(std::shared_ptr<xen_internal::GnttabHandle> handle, void* addr)
      : handle_(std::move(handle)), addr_(addr) {}
  ~XenGrantMapping() override {
    MutexLock lock(&handle_->mu);
    xengnttab_unmap(handle_->xgt, addr_, 1);
  }
  void* data() const override { return addr_; }

 private:
  const std::shared_ptr<xen_internal::GnttabHandle> handle_;
  void* const addr_;
};

}  // namespace

using xen_internal::XenErrnoToStatus;

absl::StatusOr<std::unique_ptr<XenGrantTables>> XenGrantTables::Create(uint32_t max_grants) {
  xengnttab_handle* xgt = xengnttab_open(nullptr, 0);
  if (xgt == nullptr) {
    int err = errno;
    return absl::UnavailableError(ErrnoMessage(err, "xengnttab_open"));
  }
  auto handle = std::make_shared<xen_internal::GnttabHandle>(xgt);
  if (xengnttab_set_max_grants(xgt, max_grants) != 0) {
    return XenErrnoToStatus(errno, "xengnttab_set_max_grants");
  }
  return std::unique_ptr<XenGrantTables>(new XenGrantTables(std::move(handle)));
}

absl::StatusOr<std::unique_ptr<GrantMapping>> XenGrantTables::Map(uint32_t domid, uint32_t ref,
                                                                  bool writable) {
  void* addr;
  int err;
  {
    MutexLock lock(&handle_->mu);
    addr = xengnttab_map_grant_ref(handle_->xgt, domid, ref,
                                   writable ? PROT_READ | PROT_WRITE : PROT_READ);
    err = errno;
  }
  if (addr == nullptr) {
    return XenErrnoToStatus(err, absl::StrCat("map grant ", ref, " of domain ", domid));
  }
  return std::unique_ptr<GrantMapping>(new XenGrantMapping(handle_, addr));
}

}  // namespace xenchan
