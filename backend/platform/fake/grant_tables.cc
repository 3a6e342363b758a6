// FakeGrantTables: mappings of FakeHypervisor grants.
#include "backend/platform/fake/grant_tables.h"

#include <utility>

namespace xenchan {
namespace {

// One live mapping; releases it in the hypervisor when destroyed.
class FakeGrantMapping : public GrantMapping {
 public:
  FakeGrantMapping(std::shared_ptr<FakeHypervisor> hypervisor, uint32_t mapper, uint32_t domid,
                   uint32_t ref, std::shared_ptr<FakePage> page)
      : hypervisor_(std::move(hypervisor)),
        mapper_(mapper),
        domid_(domid),
        ref_(ref),
        page_(std::move(page)) {}
  ~FakeGrantMapping() override { hypervisor_->UnmapGrant(mapper_, domid_, ref_); }

  void* data() const override { return page_->bytes; }

 private:
  const std::shared_ptr<FakeHypervisor> hypervisor_;
  const uint32_t mapper_;
  const uint32_t domid_;
  const uint32_t ref_;
  const std::shared_ptr<FakePage> page_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<GrantMapping>> FakeGrantTables::Map(uint32_t domid, uint32_t ref,
                                                                   bool writable) {
  absl::StatusOr<std::shared_ptr<FakePage>> page =
      hypervisor_->MapGrant(domid_, domid, ref, writable);
  if (!page.ok()) return page.status();
  return std::unique_ptr<GrantMapping>(
      new FakeGrantMapping(hypervisor_, domid_, domid, ref, *std::move(page)));
}

}  // namespace xenchan
