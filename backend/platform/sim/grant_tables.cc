#include "backend/platform/sim/grant_tables.h"

#include <utility>

namespace xenchan {
namespace {

class SimGrantMapping : public GrantMapping {
 public:
  explicit SimGrantMapping(std::unique_ptr<sim::hv::HvMapping> mapping)
      : mapping_(std::move(mapping)) {}
  void* data() const override { return mapping_->data(); }

 private:
  const std::unique_ptr<sim::hv::HvMapping> mapping_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SimGrantTables>> SimGrantTables::Create(
    std::string hypervisor_socket) {
  auto conn = sim::hv::HvConnection::Connect(hypervisor_socket);
  if (!conn.ok()) return conn.status();
  return std::unique_ptr<SimGrantTables>(new SimGrantTables(*std::move(conn)));
}

absl::StatusOr<std::unique_ptr<GrantMapping>> SimGrantTables::Map(uint32_t domid, uint32_t ref,
                                                                  bool writable) {
  auto mapping = conn_->MapGrant(domid, ref, writable);
  if (!mapping.ok()) return mapping.status();
  return std::unique_ptr<GrantMapping>(new SimGrantMapping(*std::move(mapping)));
}

}  // namespace xenchan
