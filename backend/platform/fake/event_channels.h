// FakeEventChannels: EventChannels over the in-memory FakeHypervisor, for
// tests that run the engine (dom0's handle) and scripted guests (a guest's
// handle) in one process.
#ifndef XENCHAN_BACKEND_PLATFORM_FAKE_EVENT_CHANNELS_H_
#define XENCHAN_BACKEND_PLATFORM_FAKE_EVENT_CHANNELS_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backend/platform/event_channels.h"
#include "backend/platform/fake/hypervisor.h"

namespace xenchan {

// One event-channel handle acting as one domain. Semantics and status codes
// as EventChannels documents (see FakeHypervisor for the details); the fd is
// an eventfd, readable while Pending() has a fired port to return. The
// handle's ports close when it is destroyed, so the remote ends revert to
// unbound, as when a backend process exits.
//
// Ownership: owns its eventfd; shares the hypervisor. Thread safety: safer
// than EventChannels asks, every call is thread-safe (the hypervisor's lock
// serialises them); blocking: never (no call waits for a peer).
class FakeEventChannels : public EventChannels {
 public:
  // NOT_FOUND if `domid` is not a live domain; INTERNAL if no eventfd.
  static absl::StatusOr<std::unique_ptr<FakeEventChannels>> Create(
      std::shared_ptr<FakeHypervisor> hypervisor, uint32_t domid);
  ~FakeEventChannels() override;
  FakeEventChannels(const FakeEventChannels&) = delete;
  FakeEventChannels& operator=(const FakeEventChannels&) = delete;

  int fd() const override { return fd_; }
  absl::StatusOr<EvtchnPort> BindInterdomain(uint32_t domid, EvtchnPort remote_port) override;
  absl::Status Unbind(EvtchnPort port) override;
  absl::Status Notify(EvtchnPort port) override;
  absl::StatusOr<std::optional<EvtchnPort>> Pending() override;
  absl::Status Unmask(EvtchnPort port) override;

  // The guest's side: a new port, unbound and earmarked for `remote_domid`
  // (EVTCHNOP_alloc_unbound).
  absl::StatusOr<EvtchnPort> AllocUnbound(uint32_t remote_domid);

  uint32_t domid() const { return domid_; }

 private:
  FakeEventChannels(std::shared_ptr<FakeHypervisor> hypervisor, uint32_t domid, int fd,
                    FakeHypervisor::HandleId handle)
      : hypervisor_(std::move(hypervisor)), domid_(domid), fd_(fd), handle_(handle) {}

  const std::shared_ptr<FakeHypervisor> hypervisor_;
  const uint32_t domid_;
  const int fd_;
  const FakeHypervisor::HandleId handle_;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_FAKE_EVENT_CHANNELS_H_
