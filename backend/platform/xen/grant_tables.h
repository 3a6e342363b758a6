// GrantTables over libxengnttab, for a real Xen host.
#ifndef XENCHAN_BACKEND_PLATFORM_XEN_GRANT_TABLES_H_
#define XENCHAN_BACKEND_PLATFORM_XEN_GRANT_TABLES_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "backend/platform/grant_tables.h"

namespace xenchan {

namespace xen_internal {
struct GnttabHandle;
}  // namespace xen_internal

// One xengnttab handle (/dev/xen/gntdev). Each mapping holds a reference to
// the handle, so the handle is closed only after this object and every
// mapping are gone. Status codes as GrantTables documents, plus
// RESOURCE_EXHAUSTED when more than `max_grants` pages are mapped and
// UNAVAILABLE when the device cannot be opened (not running on Xen).
// Thread-safe: calls on the handle are serialised by a mutex; a mapping is
// used by one thread. Must not be used in a forked child.
class XenGrantTables : public GrantTables {
 public:
  // Opens the device and sets the handle's limit to `max_grants` mapped
  // pages. UNAVAILABLE with the errno text if it cannot be opened.
  static absl::StatusOr<std::unique_ptr<XenGrantTables>> Create(uint32_t max_grants = 1024);

  absl::StatusOr<std::unique_ptr<GrantMapping>> Map(uint32_t domid, uint32_t ref,
                                                    bool writable) override;

 private:
  explicit XenGrantTables(std::shared_ptr<xen_internal::GnttabHandle> handle)
      : handle_(std::move(handle)) {}
  const std::shared_ptr<xen_internal::GnttabHandle> handle_;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_XEN_GRANT_TABLES_H_
