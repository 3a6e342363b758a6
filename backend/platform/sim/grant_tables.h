// GrantTables over xensim's simulated hypervisor (backend/sim/hv).
#ifndef XENCHAN_BACKEND_PLATFORM_SIM_GRANT_TABLES_H_
#define XENCHAN_BACKEND_PLATFORM_SIM_GRANT_TABLES_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "backend/platform/grant_tables.h"
#include "backend/sim/hv/client.h"

namespace xenchan {

// Maps pages that simulated guests granted, through one connection to the
// hypervisor (acting as the domain that owns `hypervisor_socket`). A
// mapping is a real MAP_SHARED mmap of the guest's page; it keeps the
// connection alive, so it may outlive this object. Status codes as
// GrantTables documents: NOT_FOUND (no such live domain), INVALID_ARGUMENT
// (no such grant), PERMISSION_DENIED (grant not for us, or read-only when
// `writable`), UNAVAILABLE (hypervisor gone). Thread-safe; Map blocks for one
// round trip.
class SimGrantTables : public GrantTables {
 public:
  // UNAVAILABLE if no hypervisor listens at `hypervisor_socket`.
  static absl::StatusOr<std::unique_ptr<SimGrantTables>> Create(std::string hypervisor_socket);

  absl::StatusOr<std::unique_ptr<GrantMapping>> Map(uint32_t domid, uint32_t ref,
                                                    bool writable) override;

 private:
  explicit SimGrantTables(std::unique_ptr<sim::hv::HvConnection> conn) : conn_(std::move(conn)) {}
  const std::unique_ptr<sim::hv::HvConnection> conn_;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_SIM_GRANT_TABLES_H_
