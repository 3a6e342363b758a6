// EventChannels over xensim's simulated hypervisor (backend/sim/hv).
#ifndef XENCHAN_BACKEND_PLATFORM_SIM_EVENT_CHANNELS_H_
#define XENCHAN_BACKEND_PLATFORM_SIM_EVENT_CHANNELS_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backend/platform/event_channels.h"
#include "backend/sim/hv/client.h"

namespace xenchan {

// One simulated event-channel handle: its own connection to the hypervisor,
// acting as the domain that owns `hypervisor_socket`. A thin adapter over
// sim::hv::HvEvtchn; semantics and status codes as EventChannels documents
// (NOT_FOUND for an unknown domain, INVALID_ARGUMENT for a port that is not
// unbound/earmarked for us or not ours, UNAVAILABLE once the hypervisor is
// gone). Blocking: BindInterdomain and Unbind are one round trip to the
// hypervisor; Notify, Pending and Unmask are local (the binding's shared
// pending/mask words and wake-up sockets, backend/sim/hv/protocol.h), and
// Pending returns a port whose wake-up fired, never trusting the guest's
// words beyond "may be pending". Thread safety: as EventChannels (the
// underlying handle is in fact thread-safe).
class SimEventChannels : public EventChannels {
 public:
  // UNAVAILABLE if no hypervisor listens at `hypervisor_socket`.
  static absl::StatusOr<std::unique_ptr<SimEventChannels>> Create(std::string hypervisor_socket);

  int fd() const override;
  absl::StatusOr<EvtchnPort> BindInterdomain(uint32_t domid, EvtchnPort remote_port) override;
  absl::Status Unbind(EvtchnPort port) override;
  absl::Status Notify(EvtchnPort port) override;
  absl::StatusOr<std::optional<EvtchnPort>> Pending() override;
  absl::Status Unmask(EvtchnPort port) override;

 private:
  explicit SimEventChannels(std::unique_ptr<sim::hv::HvEvtchn> handle)
      : handle_(std::move(handle)) {}
  const std::unique_ptr<sim::hv::HvEvtchn> handle_;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_SIM_EVENT_CHANNELS_H_
