#include "backend/platform/sim/event_channels.h"

#include <utility>

namespace xenchan {

absl::StatusOr<std::unique_ptr<SimEventChannels>> SimEventChannels::Create(
    std::string hypervisor_socket) {
  auto handle = sim::hv::HvEvtchn::Open(hypervisor_socket);
  if (!handle.ok()) return handle.status();
  return std::unique_ptr<SimEventChannels>(new SimEventChannels(*std::move(handle)));
}

int SimEventChannels::fd() const { return handle_->fd(); }

absl::StatusOr<EvtchnPort> SimEventChannels::BindInterdomain(uint32_t domid,
                                                             EvtchnPort remote_port) {
  return handle_->BindInterdomain(domid, remote_port);
}

absl::Status SimEventChannels::Unbind(EvtchnPort port) { return handle_->Unbind(port); }

absl::Status SimEventChannels::Notify(EvtchnPort port) { return handle_->Notify(port); }

absl::StatusOr<std::optional<EvtchnPort>> SimEventChannels::Pending() { return handle_->Pending(); }

absl::Status SimEventChannels::Unmask(EvtchnPort port) { return handle_->Unmask(port); }

}  // namespace xenchan
