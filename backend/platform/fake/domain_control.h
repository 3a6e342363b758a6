// FakeDomainControl: DomainControl over the in-memory FakeHypervisor, as
// dom0: pauses and unpauses are counted (and traced) there.
#ifndef XENCHAN_BACKEND_PLATFORM_FAKE_DOMAIN_CONTROL_H_
#define XENCHAN_BACKEND_PLATFORM_FAKE_DOMAIN_CONTROL_H_

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "backend/platform/domain_control.h"
#include "backend/platform/fake/hypervisor.h"

namespace xenchan {

// Status codes as DomainControl documents. Thread-safe; never blocks beyond
// the hypervisor's short lock. May outlive the host that opened it.
class FakeDomainControl : public DomainControl {
 public:
  explicit FakeDomainControl(std::shared_ptr<FakeHypervisor> hypervisor)
      : hypervisor_(std::move(hypervisor)) {}

  absl::Status Pause(uint32_t domid) override { return hypervisor_->Pause(domid); }
  absl::Status Unpause(uint32_t domid) override { return hypervisor_->Unpause(domid); }

 private:
  const std::shared_ptr<FakeHypervisor> hypervisor_;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_FAKE_DOMAIN_CONTROL_H_
