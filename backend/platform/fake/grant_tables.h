// FakeGrantTables: GrantTables over the in-memory FakeHypervisor: a backend
// domain maps heap pages that a scripted guest granted to it.
#ifndef XENCHAN_BACKEND_PLATFORM_FAKE_GRANT_TABLES_H_
#define XENCHAN_BACKEND_PLATFORM_FAKE_GRANT_TABLES_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "backend/platform/fake/hypervisor.h"
#include "backend/platform/grant_tables.h"

namespace xenchan {

// Maps grants made to `domid`. A mapping shares the guest's page (the same
// bytes the guest sees, no copy) and counts as a mapping of the grant until
// it is destroyed, so a destroyed guest stays a dying domain until then; it
// may outlive this object. Status codes as GrantTables documents: NOT_FOUND
// (no such live domain), INVALID_ARGUMENT (no such grant), PERMISSION_DENIED
// (not granted to us, or read-only when `writable`). Thread-safe; Map never
// blocks beyond the hypervisor's short lock.
class FakeGrantTables : public GrantTables {
 public:
  FakeGrantTables(std::shared_ptr<FakeHypervisor> hypervisor, uint32_t domid)
      : hypervisor_(std::move(hypervisor)), domid_(domid) {}

  absl::StatusOr<std::unique_ptr<GrantMapping>> Map(uint32_t domid, uint32_t ref,
                                                    bool writable) override;

 private:
  const std::shared_ptr<FakeHypervisor> hypervisor_;
  const uint32_t domid_;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_FAKE_GRANT_TABLES_H_
