// FakeEventChannels: a thin handle over FakeHypervisor.
#include "backend/platform/fake/event_channels.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

namespace xenchan {

absl::StatusOr<std::unique_ptr<FakeEventChannels>> FakeEventChannels::Create(
    std::shared_ptr<FakeHypervisor> hypervisor, uint32_t domid) {
  const int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return absl::InternalError("eventfd failed");
  absl::StatusOr<FakeHypervisor::HandleId> handle = hypervisor->OpenHandle(domid, fd);
  if (!handle.ok()) {
    close(fd);
    return handle.status();
  }
  return std::unique_ptr<FakeEventChannels>(
      new FakeEventChannels(std::move(hypervisor), domid, fd, *handle));
}

FakeEventChannels::~FakeEventChannels() {
  hypervisor_->CloseHandle(handle_);
  close(fd_);
}

absl::StatusOr<EvtchnPort> FakeEventChannels::BindInterdomain(uint32_t domid,
                                                              EvtchnPort remote_port) {
  return hypervisor_->BindInterdomain(handle_, domid, remote_port);
}

absl::Status FakeEventChannels::Unbind(EvtchnPort port) {
  return hypervisor_->Unbind(handle_, port);
}

absl::Status FakeEventChannels::Notify(EvtchnPort port) {
  return hypervisor_->Notify(handle_, port);
}

absl::StatusOr<std::optional<EvtchnPort>> FakeEventChannels::Pending() {
  return hypervisor_->Pending(handle_);
}

absl::Status FakeEventChannels::Unmask(EvtchnPort port) {
  return hypervisor_->Unmask(handle_, port);
}

absl::StatusOr<EvtchnPort> FakeEventChannels::AllocUnbound(uint32_t remote_domid) {
  return hypervisor_->AllocUnbound(handle_, remote_domid);
}

}  // namespace xenchan
