// RunGuest: the simulated guest over xensim's real transports, libxenstore
// (LibXenStore) on the guest's xenstored socket and the hypervisor client on
// its hypervisor socket.
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "backend/sim/guest/guest.h"
#include "backend/sim/guest/hypercalls.h"
#include "backend/sim/hv/client.h"

namespace xenchan {
namespace sim {
namespace guest {
namespace {

// GuestHypercalls over one grant connection and one event-channel handle.
class HvClientHypercalls final : public GuestHypercalls {
 public:
  HvClientHypercalls(std::unique_ptr<hv::HvConnection> grants, std::unique_ptr<hv::HvEvtchn> evtchn)
      : grants_(std::move(grants)), evtchn_(std::move(evtchn)) {}

  absl::StatusOr<uint32_t> GrantPage(int memfd, uint32_t to_domid, bool readonly) override {
    return grants_->GrantPage(memfd, to_domid, readonly);
  }
  absl::Status EndAccess(uint32_t ref) override { return grants_->EndAccess(ref); }
  absl::StatusOr<uint32_t> AllocUnbound(uint32_t remote_domid) override {
    return evtchn_->AllocUnbound(remote_domid);
  }
  absl::Status Notify(uint32_t port) override { return evtchn_->Notify(port); }
  absl::Status Unbind(uint32_t port) override { return evtchn_->Unbind(port); }
  int EventFd() const override { return evtchn_->fd(); }
  absl::StatusOr<std::optional<uint32_t>> Pending() override { return evtchn_->Pending(); }
  absl::Status Unmask(uint32_t port) override { return evtchn_->Unmask(port); }

 private:
  std::unique_ptr<hv::HvConnection> grants_;
  std::unique_ptr<hv::HvEvtchn> evtchn_;
};

}  // namespace
}  // namespace guest
}  // namespace sim

absl::Status RunGuest(const GuestOptions& options) {
  absl::StatusOr<std::unique_ptr<LibXenStore>> xs = LibXenStore::Open(options.xenstore_socket);
  if (!xs.ok()) return xs.status();
  absl::StatusOr<std::unique_ptr<sim::hv::HvConnection>> grants =
      sim::hv::HvConnection::Connect(options.hypervisor_socket);
  if (!grants.ok()) return grants.status();
  absl::StatusOr<std::unique_ptr<sim::hv::HvEvtchn>> evtchn =
      sim::hv::HvEvtchn::Open(options.hypervisor_socket);
  if (!evtchn.ok()) return evtchn.status();
  return sim::guest::RunGuestWith(
      options, *std::move(xs),
      std::make_unique<sim::guest::HvClientHypercalls>(*std::move(grants), *std::move(evtchn)));
}

}  // namespace xenchan
