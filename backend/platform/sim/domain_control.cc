#include "backend/platform/sim/domain_control.h"

#include <utility>

namespace xenchan {

absl::StatusOr<std::unique_ptr<SimDomainControl>> SimDomainControl::Create(
    const std::string& hypervisor_socket) {
  auto conn = sim::hv::HvConnection::Connect(hypervisor_socket);
  if (!conn.ok()) return conn.status();
  return std::unique_ptr<SimDomainControl>(new SimDomainControl(*std::move(conn)));
}

}  // namespace xenchan
