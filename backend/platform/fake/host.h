// FakeHost: an in-memory Xen host for fast engine tests: one xenstored
// (FakeXenStoreHub), one hypervisor (FakeHypervisor), the trace they share,
// and the toolstack's domain lifecycle. Tests open platform objects on it
// (for the engine as dom0, for scripted guests as their domain) and run
// everything in one process: no sockets, no child processes.
//
// Domain create, in libxl's order (a subset of backend/sim/host.h, which
// cites libxl_create.c): one transaction makes /local/domain/D [0:none,
// D:read] with `vm`, `name`, `domid`, the dom0-owned `device`, `control`,
// `memory` dirs [0:none, D:read] and the guest-owned `data`, `error`,
// `drivers`, `feature`, `attr`, `control/shutdown` [D:none]; /vm/<uuid>
// [0:none, D:read] with `uuid` and `name`; /libxl/D and /libxl/D/device
// [0:none]; then the hypervisor domain (created paused); then XS_INTRODUCE
// (fires @introduceDomain); then the toolstack's unpause, unless the test
// plays a toolstack that is still building the domain (`paused`).
//
// Domain destroy (libxl__destroy_domid, as xensim's host does it): remove
// the devices libxl recorded under /libxl/D/device (none here: channels the
// engine hot-adds are not libxl's, §2.3), remove /local/domain/D, /vm/<uuid>
// and /libxl/D, destroy the hypervisor domain (it stays dying while dom0
// still maps one of its pages), XS_RELEASE (fires @releaseDomain).
#ifndef XENCHAN_BACKEND_PLATFORM_FAKE_HOST_H_
#define XENCHAN_BACKEND_PLATFORM_FAKE_HOST_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backend/platform/fake/domain_control.h"
#include "backend/platform/fake/event_channels.h"
#include "backend/platform/fake/grant_tables.h"
#include "backend/platform/fake/hypervisor.h"
#include "backend/platform/fake/trace.h"
#include "backend/platform/fake/xenstore.h"
#include "backend/platform/fake/xenstore_hub.h"
#include "backend/util/mutex.h"

namespace xenchan {

// Ownership: owns (shares with the platform objects it opens) the hub, the
// hypervisor and the trace; platform objects may outlive the host. Thread
// safety: every method is thread-safe; domain operations are serialised by
// one mutex and never block on anything else.
class FakeHost {
 public:
  struct Domain {
    uint32_t domid = 0;
    std::string name;
    std::string uuid;  // lower-case, 8-4-4-4-12
  };

  // Writes dom0's entries as xen-init-dom0 does (/local/domain/0/domid,
  // /local/domain/0/name = Domain-0). INTERNAL if that fails.
  static absl::StatusOr<std::unique_ptr<FakeHost>> Create();

  // Creates and introduces a domain (see the file comment); domids count up
  // from 1 and are never reused. `uuid` empty: one is derived from the
  // domid (StableUuid), so runs are repeatable.
  // INVALID_ARGUMENT for an empty name or a malformed uuid; ALREADY_EXISTS
  // for a live domain's name.
  // `paused`: the toolstack's unpause is left to the test
  // (hypervisor().Unpause), as while libxl adds devices to a restored domain.
  absl::StatusOr<Domain> CreateDomain(const std::string& name, const std::string& uuid = "",
                                      bool paused = false) ABSL_LOCKS_EXCLUDED(mu_);
  // Destroys and releases a domain. NOT_FOUND if no such live domain.
  absl::Status DestroyDomain(uint32_t domid) ABSL_LOCKS_EXCLUDED(mu_);

  // Platform objects acting as `domid` (0: dom0, privileged xenstore).
  absl::StatusOr<std::unique_ptr<FakeXenStore>> OpenXenStore(uint32_t domid);
  // NOT_FOUND if `domid` is not a live domain.
  absl::StatusOr<std::unique_ptr<FakeEventChannels>> OpenEventChannels(uint32_t domid);
  std::unique_ptr<FakeGrantTables> OpenGrantTables(uint32_t domid);
  // dom0's domain control (pause and unpause).
  std::unique_ptr<FakeDomainControl> OpenDomainControl();

  // dom0's connection for the toolstack and for tests' own reads.
  FakeXenStore& xs() { return *xs_; }
  FakeHypervisor& hypervisor() { return *hypervisor_; }
  const std::shared_ptr<FakeHypervisor>& shared_hypervisor() const { return hypervisor_; }
  FakeXenStoreHub& hub() { return *hub_; }
  FakeTrace& trace() { return *trace_; }

 private:
  FakeHost();
  absl::Status WriteDomainEntries(const Domain& d);

  const std::shared_ptr<FakeTrace> trace_;
  const std::shared_ptr<FakeXenStoreHub> hub_;
  const std::shared_ptr<FakeHypervisor> hypervisor_;
  std::unique_ptr<FakeXenStore> xs_;

  Mutex mu_;
  std::map<uint32_t, Domain> domains_ ABSL_GUARDED_BY(mu_);
  uint32_t next_domid_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_FAKE_HOST_H_
