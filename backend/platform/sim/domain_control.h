// DomainControl over xensim's simulated hypervisor (backend/sim/hv).
#ifndef XENCHAN_BACKEND_PLATFORM_SIM_DOMAIN_CONTROL_H_
#define XENCHAN_BACKEND_PLATFORM_SIM_DOMAIN_CONTROL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backend/platform/domain_control.h"
#include "backend/sim/hv/client.h"

namespace xenchan {

// Pauses simulated domains through one connection to the hypervisor's dom0
// socket (kPauseDomain/kUnpauseDomain: a paused domain's guest process is
// stopped). Status codes as DomainControl documents, plus UNAVAILABLE when
// the hypervisor is gone. Thread-safe; each call blocks for one round trip.
class SimDomainControl : public DomainControl {
 public:
  // UNAVAILABLE if no hypervisor listens at `hypervisor_socket`.
  static absl::StatusOr<std::unique_ptr<SimDomainControl>> Create(
      const std::string& hypervisor_socket);

  absl::Status Pause(uint32_t domid) override { return conn_->PauseDomain(domid); }
  absl::Status Unpause(uint32_t domid) override { return conn_->UnpauseDomain(domid); }

 private:
  explicit SimDomainControl(std::unique_ptr<sim::hv::HvConnection> conn) : conn_(std::move(conn)) {}
  const std::unique_ptr<sim::hv::HvConnection> conn_;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_SIM_DOMAIN_CONTROL_H_
