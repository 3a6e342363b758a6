// xensim's domain manager: the simulated host's toolstack (what xl/libxl do
// on a real Xen host), behind `xensim serve`.
//
// A Host owns the simulated xenstored (<state_dir>/xenstored.sock), the
// simulated hypervisor (<state_dir>/hypervisor.sock, per-domain sockets under
// <state_dir>/domains/<domid>/), and the child processes of every domain: the
// simulated guest (`xensim guest ...`) and, for a domain with xl.cfg
// channels, its simulated QEMU (`xensim qemu ...`).
//
// Domain create, in libxl's order (XEN-CHANNELS §1.5, libxl_create.c):
//  1. one transaction (libxl__domain_make): /local/domain/D [0:none, D:read]
//     with `vm`, `name`, the dom0-owned `cpu`, `memory`, `device`, `control`
//     dirs, the guest-owned `control/shutdown`, `control/feature-*`,
//     `control/sysrq`, `device/suspend/event-channel`, `data`, `drivers`,
//     `feature`, `attr`, `error` [D:none];
//     `control/platform-feature-*`=1; /vm/<uuid> [0:none, D:read] with
//     `uuid` and `name`; /libxl/D and /libxl/D/device [0:none], `type`=pv;
//  2. hypervisor CreateDomain(D); libxl__build_post's `memory/static-max`,
//     `memory/target` (256 MiB), `domid`, `store/port` (1), `store/ring-ref`
//     (0), `cpu/0/availability`; `/libxl/D/dm-version`;
//  3. XS_INTRODUCE (fires @introduceDomain; xenstored opens the domain's
//     socket);
//  4. per channel (devid = index + 1; Debian's xl 4.17 devid quirk is not
//     reproduced), one transaction as libxl__device_generic_add: frontend
//     device/console/N [D:none, 0:read] with `backend`, `backend-id`,
//     `state`=1, `protocol`=vt100, and [0:none, D:read] `name`,
//     `limit`=1048576, `type`=ioemu, `output` (pty or
//     chardev:libxl-channel<N>), `tty`=""; backend
//     /local/domain/0/backend/console/D/N [0:none, D:read] with `frontend`,
//     `frontend-id`, `online`=1, `state`=1, `protocol`, `name`,
//     `connection`, `path` (socket only); /libxl/D/device/console/N with
//     `frontend`, `backend` and a copy of the backend keys;
//  5. the simulated QEMU, waited for until every channel's backend is in
//     state 2 (as libxl waits for its device model);
//  6. the guest process (root <state_dir>/guests/<name>/root, with dev/).
//
// Domain destroy (libxl__destroy_domid): SIGKILL the guest (no clean
// shutdown), stop QEMU, remove the frontend, backend and /libxl copies of the
// devices listed in /libxl/D/device (other backends' directories are left to
// their owners), remove /local/domain/D, /vm/<uuid>, /libxl/D, hypervisor
// DestroyDomain, XS_RELEASE (fires @releaseDomain). A domain whose pages are
// still mapped by someone stays in the list as `dying` until the hypervisor
// reports it gone.
//
// Life cycle (host_lifecycle.cc; libxl_domain.c, xl_saverestore.c,
// xl_migrate.c):
//  * reboot: as `xl reboot` (libxl_domain_reboot, then xl's restart on
//    SHUTDOWN_reboot): a running guest shuts its devices down as for
//    poweroff, the domain is destroyed as above, and a new incarnation is
//    created from the domain's own configuration (name, UUID, xl.cfg
//    channels; devices others hot-added are not re-created) with a new
//    domid; the guest boots afresh (new boot id, new ttys).
//  * save: the guest is suspended and hands over its state (guest.h), the
//    image (save_image.h: configuration + guest state) is written, and the
//    domain is destroyed. A failure before the image is written resumes the
//    guest and leaves the domain running.
//  * restore: as libxl's domain_create with a restore stream: the image is
//    read and checked first (libxl reads the memory stream into the paused
//    domain after libxl__build_pre, before libxl__build_post and any device:
//    domcreate_bootloader_done -> domcreate_stream_done ->
//    domcreate_rebuild_done), then the domain is created with a new domid
//    and the saved UUID and name, paused (no guest process yet), the
//    devices of its own configuration are added in the create order above,
//    and the guest is unpaused with its saved state and resumes (it does
//    not boot). Returns once the guest runs.
//  * migrate: to another xensim host (its state dir) on this machine, as
//    `xl migrate`: the receiver is contacted first (UNAVAILABLE, nothing
//    changed, if it does not answer); the domain is saved into an image
//    the receiver restores (new domid there, same UUID); only then is the
//    source destroyed. If the receiver fails, the source guest is resumed
//    and keeps running here. The source holds its lock while the receiver
//    restores: two hosts migrating to each other at once both fail after
//    the control timeout (2 min) and keep their domains.
//
// States: running; suspended (after `suspend`, until `resume`); crashed (the
// guest process died without a shutdown: `kill` or a crash; the domain stays
// until destroyed, as with on_crash=preserve); shutdown (after a graceful
// `shutdown`; stays until destroyed, as with on_poweroff=preserve); dying.
//
// Child processes: each gets SIGKILL if the thread that created it exits
// (PR_SET_PDEATHSIG), so a serve process that dies leaves no guests behind;
// call CreateDomain from a thread that lives as long as the Host. A child
// that ignores SIGTERM for 5 s on destroy is SIGKILLed.
//
// Thread safety: all public methods are thread-safe; one mutex serialises
// whole operations (they block on xenstore round trips and child processes).
#ifndef XENCHAN_BACKEND_SIM_HOST_H_
#define XENCHAN_BACKEND_SIM_HOST_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "backend/sim/channel_spec.h"
#include "backend/sim/control.h"
#include "backend/sim/hv/hypervisor.h"
#include "backend/sim/save_image.h"
#include "backend/sim/xenstore/server.h"
#include "backend/util/mutex.h"

namespace xenchan {
namespace sim {

struct HostOptions {
  // Created if missing. Holds every socket, guests/<name>/root, domains/.
  std::string state_dir;
  // The xensim binary to run for `guest` and `qemu` children.
  std::string xensim_binary;
};

// What `domain list` shows of one channel.
struct ChannelStatus {
  uint32_t devid = 0;
  std::string name;
  std::string connection;     // "pty" or "socket"
  std::string path;           // socket path, or "" for pty
  std::string tty;            // pty slave QEMU published, or ""
  std::string backend_state;  // backend `state` node, "" if absent
};

// What `domain list` shows of one domain.
struct DomainStatus {
  uint32_t domid = 0;
  std::string name;
  std::string uuid;
  std::string state;  // running, suspended, crashed, shutdown, dying
  std::vector<ChannelStatus> channels;
};

class Host {
 public:
  // Creates the state directory, starts xenstored and the hypervisor, and
  // writes dom0's entries as xen-init-dom0 does (/local/domain/0/domid = 0,
  // /local/domain/0/name = Domain-0, /local/pool/0/name = Pool-0 for the one
  // cpupool). Errors of the servers as they report
  // them; INVALID_ARGUMENT for a state dir whose socket paths are too long.
  static absl::StatusOr<std::unique_ptr<Host>> Create(HostOptions options);
  // Destroys every domain, then stops the servers.
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // Creates and starts a domain (see the file comment). `uuid` may be empty
  // (a random one is made). INVALID_ARGUMENT for a bad name, uuid or channel
  // spec, duplicate channel names or socket paths; ALREADY_EXISTS if the
  // name or uuid is taken; UNAVAILABLE/INTERNAL if a step fails (what was
  // done is undone).
  absl::StatusOr<DomainStatus> CreateDomain(const std::string& name, const std::string& uuid,
                                            const std::vector<std::string>& channel_specs)
      ABSL_LOCKS_EXCLUDED(mu_);

  // `domain` is a name or a decimal domid. NOT_FOUND if no such live domain.
  absl::Status DestroyDomain(const std::string& domain) ABSL_LOCKS_EXCLUDED(mu_);
  // Sends `suspend` / `resume` to the guest's control socket.
  // FAILED_PRECONDITION if the guest is not running (or not suspended).
  absl::Status SuspendDomain(const std::string& domain) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status ResumeDomain(const std::string& domain) ABSL_LOCKS_EXCLUDED(mu_);
  // Graceful shutdown through the guest (frontends close, up to 5 s each);
  // waits for the guest process to exit.
  absl::Status ShutdownDomain(const std::string& domain) ABSL_LOCKS_EXCLUDED(mu_);
  // SIGKILLs the guest process; the domain becomes `crashed`.
  absl::Status KillDomain(const std::string& domain) ABSL_LOCKS_EXCLUDED(mu_);

  // See "Life cycle" above. `file`/`dest_state_dir` are paths on this
  // machine. NOT_FOUND for an unknown domain; FAILED_PRECONDITION for one
  // that is suspended (or, for save and migrate, not running);
  // INVALID_ARGUMENT for a file that is not a save image; ALREADY_EXISTS
  // when restoring a name or UUID that is in use; UNAVAILABLE when the
  // destination host does not answer.
  absl::StatusOr<DomainStatus> RebootDomain(const std::string& domain) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status SaveDomain(const std::string& domain, const std::string& file)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<DomainStatus> RestoreDomain(const std::string& file) ABSL_LOCKS_EXCLUDED(mu_);
  // Returns the destination's reply (the new domid there, "\n"-terminated).
  absl::StatusOr<std::string> MigrateDomain(const std::string& domain,
                                            const std::string& dest_state_dir)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Domain-0 first, then the guests by domid (including dying ones).
  std::vector<DomainStatus> ListDomains() ABSL_LOCKS_EXCLUDED(mu_);

  // Destroys every guest domain (used on SIGTERM before teardown).
  void DestroyAllDomains() ABSL_LOCKS_EXCLUDED(mu_);

  // Serves one control request (control.h verbs) and renders the reply.
  absl::StatusOr<std::string> HandleRequest(const ControlRequest& request) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string& state_dir() const { return options_.state_dir; }

 private:
  // Defined in host.cc (life cycle, lookup, reaping), host_libxl.cc (create
  // and destroy) and host_control.cc (guest commands, status, requests).
  enum class State { kRunning, kSuspended, kCrashed, kShutdown, kDying };
  struct Domain {
    uint32_t domid = 0;
    std::string name;
    std::string uuid;
    std::vector<ChannelSpec> channels;
    std::vector<std::string> channel_texts;  // the xl.cfg specs as given
    pid_t guest_pid = -1;
    pid_t qemu_pid = -1;
    State state = State::kRunning;
  };

  explicit Host(HostOptions options);
  absl::Status Start();

  // Finds a live (not dying) domain by name or domid.
  absl::StatusOr<Domain*> FindLocked(const std::string& domain) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Notices guests that died on their own (reaps them; state crashed).
  void ReapLocked(Domain& d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DestroyLocked(Domain& d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ALREADY_EXISTS if a live domain has `name` or `uuid`.
  absl::Status CheckFreeLocked(const std::string& name, const std::string& uuid)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Creates a domain from validated configuration (the steps of the file
  // comment); with `restore_state` (a file of the guest's saved state) the
  // guest resumes from it instead of booting.
  absl::StatusOr<DomainStatus> CreateLocked(const std::string& name, const std::string& uuid,
                                            const std::vector<ChannelSpec>& specs,
                                            const std::vector<std::string>& channel_texts,
                                            const std::string& restore_state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Suspends the guest and collects the save image; on failure the guest is
  // resumed. The domain is left in place (suspended).
  absl::Status SaveLocked(Domain& d, SaveImage* image) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteDomainEntries(uint32_t domid, const std::string& name, const std::string& uuid);
  absl::Status WriteChannel(uint32_t domid, uint32_t devid, const ChannelSpec& spec);
  // Waits until QEMU has moved every channel's backend out of state 1;
  // UNAVAILABLE at once if QEMU exits first, DEADLINE_EXCEEDED after 20 s.
  absl::Status WaitForBackends(uint32_t domid, size_t channels, pid_t qemu);
  absl::StatusOr<std::string> GuestCommand(const Domain& d, const std::string& command);
  // What libxl writes to the guest's control/shutdown before it asks the
  // guest to act ("reboot", "suspend", "poweroff"); the guest clears it as
  // Linux's shutdown_handler does.
  void WriteShutdownRequest(const Domain& d, const char* request);
  DomainStatus StatusLocked(const Domain& d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Called on the hypervisor's loop thread: only records the domid (taking
  // mu_ there would stall the hypervisor while a long operation, e.g. a
  // reboot waiting for the new QEMU, holds mu_ and needs the hypervisor).
  void OnDomainGone(uint32_t domid) ABSL_LOCKS_EXCLUDED(gone_mu_);
  // Forgets the dying domains the hypervisor has reported gone.
  void SweepGoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) ABSL_LOCKS_EXCLUDED(gone_mu_);

  const HostOptions options_;
  std::unique_ptr<xenstore::XenstoreServer> xenstored_;
  std::unique_ptr<hv::Hypervisor> hypervisor_;
  std::unique_ptr<LibXenStore> xs_;

  Mutex mu_;
  std::map<uint32_t, Domain> domains_ ABSL_GUARDED_BY(mu_);
  uint32_t next_domid_ ABSL_GUARDED_BY(mu_) = 1;

  Mutex gone_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::vector<uint32_t> gone_ ABSL_GUARDED_BY(gone_mu_);
};

// Validates xl.cfg channel specs (INVALID_ARGUMENT naming the bad one,
// duplicate names or socket paths, too many). Pure.
absl::StatusOr<std::vector<ChannelSpec>> ParseChannelSpecs(const std::vector<std::string>& texts);
// Validates a domain name and canonicalises `uuid` (a new random one if
// empty). INVALID_ARGUMENT otherwise.
absl::StatusOr<std::string> CheckNameAndUuid(const std::string& name, const std::string& uuid);

// Text and JSON renderings used by the control replies. Pure.
std::string FormatDomainsText(const std::vector<DomainStatus>& domains);
std::string FormatDomainJson(const DomainStatus& domain);
std::string FormatDomainsJson(const std::vector<DomainStatus>& domains);

}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_HOST_H_
