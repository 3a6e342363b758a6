// The simulated toolstack's domain create and destroy, in libxl's order
// (libxl_create.c's libxl__domain_make and libxl__build_post,
// libxl__device_generic_add, libxl__destroy_domid and
// libxl__devices_destroy): the xenstore entries of a domain and its
// channels, the hypervisor's domain, and the QEMU and guest processes it
// starts. See host.h for the steps.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "backend/sim/channel_spec.h"
#include "backend/sim/child_process.h"
#include "backend/sim/host.h"
#include "backend/util/make_dirs.h"
#include "backend/util/uuid.h"

namespace xenchan {
namespace sim {
namespace {

constexpr XsPermission::Access kNone = XsPermission::kNone;
constexpr XsPermission::Access kRead = XsPermission::kRead;
constexpr char kLimit[] = "1048576";   // LIBXL_XENCONSOLE_LIMIT
constexpr char kProtocol[] = "vt100";  // LIBXL_XENCONSOLE_PROTOCOL
constexpr size_t kMaxChannels = 64;

bool IgnoreNotFound(const absl::Status& s) { return s.ok() || absl::IsNotFound(s); }

// libxl retries a conflicting transaction (EAGAIN) without a bound; the
// simulated toolstack gives up after this many attempts (RunInTransaction).
constexpr int kTransactionAttempts = 100;

// libxl__xs_mknod: an empty node with explicit permissions.
absl::Status Mknod(XenStore& xs, XsTransaction t, const std::string& path,
                   const std::vector<XsPermission>& perms) {
  if (absl::Status s = xs.Write(t, path, ""); !s.ok()) return s;
  return xs.SetPermissions(t, path, perms);
}

// Writes each key=value under `dir`; with `perms`, sets them on each node.
absl::Status WriteKeys(XenStore& xs, XsTransaction t, const std::string& dir,
                       const std::vector<std::pair<std::string, std::string>>& kvs,
                       const std::vector<XsPermission>* perms = nullptr) {
  for (const auto& [k, v] : kvs) {
    const std::string path = absl::StrCat(dir, "/", k);
    if (absl::Status s = xs.Write(t, path, v); !s.ok()) return s;
    if (perms != nullptr) {
      if (absl::Status s = xs.SetPermissions(t, path, *perms); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

// libxl__xs_path_cleanup: removes `path`, then each ancestor that is left
// empty, stopping at the first one that still has children.
absl::Status PathCleanup(XenStore& xs, XsTransaction t, const std::string& path) {
  absl::Status s = xs.Remove(t, path);
  if (!IgnoreNotFound(s)) return s;
  std::string cur = path;
  while (true) {
    const size_t slash = cur.rfind('/');
    if (slash == std::string::npos || slash == 0) return absl::OkStatus();
    cur = cur.substr(0, slash);
    auto children = xs.Directory(t, cur);
    if (!children.ok() || !children->empty()) return absl::OkStatus();
    s = xs.Remove(t, cur);
    if (!IgnoreNotFound(s)) return s;
  }
}

bool IsValidDomainName(const std::string& name) {
  // xl accepts more; names here become directory names under guests/.
  return IsValidChannelName(name) && name != "." && name != "..";
}

}  // namespace

absl::Status Host::WriteDomainEntries(uint32_t domid, const std::string& name,
                                      const std::string& uuid) {
  const std::string dom = absl::StrCat("/local/domain/", domid);
  const std::string vm = absl::StrCat("/vm/", uuid);
  const std::string libxl = absl::StrCat("/libxl/", domid);
  const std::vector<XsPermission> noperm = {{0, kNone}};
  const std::vector<XsPermission> roperm = {{0, kNone}, {domid, kRead}};
  const std::vector<XsPermission> rwperm = {{domid, kNone}};
  return RunInTransaction(
      *xs_,
      [&](XsTransaction t) -> absl::Status {
        absl::Status s;
        if (!IgnoreNotFound(s = xs_->Remove(t, dom))) return s;
        if (!(s = Mknod(*xs_, t, dom, roperm)).ok()) return s;
        if (!IgnoreNotFound(s = xs_->Remove(t, vm))) return s;
        if (!(s = Mknod(*xs_, t, vm, roperm)).ok()) return s;
        if (!IgnoreNotFound(s = xs_->Remove(t, libxl))) return s;
        if (!(s = Mknod(*xs_, t, libxl, noperm)).ok()) return s;
        if (!(s = Mknod(*xs_, t, libxl + "/device", noperm)).ok()) return s;
        if (!(s = xs_->Write(t, dom + "/vm", vm)).ok()) return s;
        if (!(s = xs_->Write(t, dom + "/name", name)).ok()) return s;
        for (const char* sub : {"cpu", "memory", "device", "control"}) {
          if (!(s = Mknod(*xs_, t, absl::StrCat(dom, "/", sub), roperm)).ok()) return s;
        }
        for (const char* sub :
             {"control/shutdown", "control/feature-poweroff", "control/feature-reboot",
              "control/feature-suspend", "control/sysrq", "device/suspend/event-channel", "data",
              "drivers", "feature", "attr", "error"}) {
          if (!(s = Mknod(*xs_, t, absl::StrCat(dom, "/", sub), rwperm)).ok()) return s;
        }
        if (!(s = xs_->Write(t, vm + "/uuid", uuid)).ok()) return s;
        if (!(s = xs_->Write(t, vm + "/name", name)).ok()) return s;
        if (!(s = xs_->Write(t, dom + "/control/platform-feature-multiprocessor-suspend", "1"))
                 .ok()) {
          return s;
        }
        if (!(s = xs_->Write(t, dom + "/control/platform-feature-xs_reset_watches", "1")).ok()) {
          return s;
        }
        return xs_->Write(t, libxl + "/type", "pv");
      },
      kTransactionAttempts);
}

absl::Status Host::WriteChannel(uint32_t domid, uint32_t devid, const ChannelSpec& spec) {
  const std::string fe = absl::StrCat("/local/domain/", domid, "/device/console/", devid);
  const std::string be = absl::StrCat("/local/domain/0/backend/console/", domid, "/", devid);
  const std::string lx = absl::StrCat("/libxl/", domid, "/device/console/", devid);
  const std::vector<XsPermission> frontend_perms = {{domid, kNone}, {0, kRead}};
  const std::vector<XsPermission> ro_perms = {{0, kNone}, {domid, kRead}};
  const bool socket = spec.connection == ChannelConnection::kSocket;
  const std::vector<std::pair<std::string, std::string>> front = {
      {"backend-id", "0"}, {"state", "1"}, {"protocol", kProtocol}};
  const std::vector<std::pair<std::string, std::string>> ro_front = {
      {"name", spec.name},
      {"limit", kLimit},
      {"type", "ioemu"},
      {"output", socket ? absl::StrCat("chardev:libxl-channel", devid) : "pty"},
      {"tty", ""}};
  std::vector<std::pair<std::string, std::string>> back = {
      {"frontend-id", absl::StrCat(domid)},
      {"online", "1"},
      {"state", "1"},
      {"protocol", kProtocol},
      {"name", spec.name},
      {"connection", ChannelConnectionName(spec.connection)}};
  if (socket) back.emplace_back("path", spec.path);
  return RunInTransaction(
      *xs_,
      [&](XsTransaction t) -> absl::Status {
        absl::Status s;
        // libxl__device_generic_add.
        if (!IgnoreNotFound(s = xs_->Remove(t, lx))) return s;
        if (!(s = WriteKeys(*xs_, t, lx, {{"frontend", fe}, {"backend", be}})).ok()) return s;
        if (!IgnoreNotFound(s = xs_->Remove(t, fe))) return s;
        if (!(s = xs_->Mkdir(t, fe)).ok()) return s;
        if (!(s = xs_->SetPermissions(t, fe, frontend_perms)).ok()) return s;
        if (!(s = xs_->Write(t, fe + "/backend", be)).ok()) return s;
        if (!(s = WriteKeys(*xs_, t, fe, front)).ok()) return s;
        if (!(s = WriteKeys(*xs_, t, fe, ro_front, &ro_perms)).ok()) return s;
        if (!IgnoreNotFound(s = xs_->Remove(t, be))) return s;
        if (!(s = xs_->Mkdir(t, be)).ok()) return s;
        if (!(s = xs_->SetPermissions(t, be, ro_perms)).ok()) return s;
        if (!(s = xs_->Write(t, be + "/frontend", fe)).ok()) return s;
        if (!(s = WriteKeys(*xs_, t, be, back)).ok()) return s;
        return WriteKeys(*xs_, t, lx, back);
      },
      kTransactionAttempts);
}

absl::Status Host::WaitForBackends(uint32_t domid, size_t channels, pid_t qemu) {
  // A private connection so the watch events do not mix with anyone else's.
  auto xs = LibXenStore::Open(options_.state_dir + "/xenstored.sock");
  if (!xs.ok()) return xs.status();
  const std::string root = absl::StrCat("/local/domain/0/backend/console/", domid);
  if (absl::Status s = (*xs)->Watch(root, "wait"); !s.ok()) return s;
  const int qemu_fd = static_cast<int>(syscall(SYS_pidfd_open, qemu, 0));
  struct FdCloser {
    int fd;
    ~FdCloser() {
      if (fd >= 0) close(fd);
    }
  } closer{qemu_fd};
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (true) {
    while ((*xs)->ReadWatch().has_value()) {
    }
    size_t ready = 0;
    for (uint32_t devid = 1; devid <= channels; ++devid) {
      auto state = (*xs)->Read(kNoTransaction, absl::StrCat(root, "/", devid, "/state"));
      if (state.ok() && *state != "1") ++ready;
    }
    if (ready == channels) return absl::OkStatus();
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("the simulated QEMU did not set up its backends");
    }
    // Wake on a watch event or on QEMU's exit (its pidfd turns readable).
    pollfd p[2] = {{(*xs)->WatchFd(), POLLIN, 0}, {qemu_fd, POLLIN, 0}};
    poll(p, qemu_fd >= 0 ? 2 : 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (qemu_fd >= 0 && (p[1].revents & POLLIN)) {
      return absl::UnavailableError(
          absl::StrCat("the simulated QEMU of domain ", domid,
                       " exited during setup (its error is on xensim serve's stderr)"));
    }
  }
}

absl::StatusOr<std::vector<ChannelSpec>> ParseChannelSpecs(const std::vector<std::string>& texts) {
  std::vector<ChannelSpec> specs;
  std::set<std::string> names, paths;
  for (const std::string& text : texts) {
    auto parsed = ParseChannelSpec(text);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("channel '", text, "': ", parsed.status().message()));
    }
    if (!names.insert(parsed->spec.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate channel name ", parsed->spec.name));
    }
    if (!parsed->spec.path.empty() && !paths.insert(parsed->spec.path).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate socket path ", parsed->spec.path));
    }
    specs.push_back(parsed->spec);
  }
  if (specs.size() > kMaxChannels) return absl::InvalidArgumentError("too many channels");
  return specs;
}

absl::StatusOr<std::string> CheckNameAndUuid(const std::string& name, const std::string& uuid_in) {
  if (!IsValidDomainName(name) || name == "Domain-0") {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid domain name '", name, "': want [A-Za-z0-9._-]{1,64}"));
  }
  if (uuid_in.empty()) return NewUuid();
  std::optional<std::string> u = CanonicalUuid(uuid_in);
  if (!u.has_value())
    return absl::InvalidArgumentError(absl::StrCat("invalid uuid '", uuid_in, "'"));
  return *std::move(u);
}

absl::Status Host::CheckFreeLocked(const std::string& name, const std::string& uuid) {
  for (auto& [id, d] : domains_) {
    if (d.state == State::kDying) continue;
    if (d.name == name) return absl::AlreadyExistsError(absl::StrCat("domain ", name, " exists"));
    if (d.uuid == uuid) return absl::AlreadyExistsError(absl::StrCat("uuid ", uuid, " in use"));
  }
  return absl::OkStatus();
}

absl::StatusOr<DomainStatus> Host::CreateDomain(const std::string& name, const std::string& uuid_in,
                                                const std::vector<std::string>& channel_specs) {
  absl::StatusOr<std::string> uuid = CheckNameAndUuid(name, uuid_in);
  if (!uuid.ok()) return uuid.status();
  absl::StatusOr<std::vector<ChannelSpec>> specs = ParseChannelSpecs(channel_specs);
  if (!specs.ok()) return specs.status();
  MutexLock lock(&mu_);
  if (absl::Status s = CheckFreeLocked(name, *uuid); !s.ok()) return s;
  return CreateLocked(name, *uuid, *specs, channel_specs, "");
}

absl::StatusOr<DomainStatus> Host::CreateLocked(const std::string& name, const std::string& uuid,
                                                const std::vector<ChannelSpec>& specs,
                                                const std::vector<std::string>& channel_texts,
                                                const std::string& restore_state) {
  const uint32_t domid = next_domid_++;
  Domain dom;
  dom.domid = domid;
  dom.name = name;
  dom.uuid = uuid;
  dom.channels = specs;
  dom.channel_texts = channel_texts;

  const std::string dom_path = absl::StrCat("/local/domain/", domid);
  absl::Status s = WriteDomainEntries(domid, name, uuid);
  if (s.ok()) {
    s = hypervisor_->CreateDomain(domid);
    if (!s.ok()) {
      (void)xs_->Remove(kNoTransaction, dom_path);
      (void)xs_->Remove(kNoTransaction, absl::StrCat("/vm/", uuid));
      (void)xs_->Remove(kNoTransaction, absl::StrCat("/libxl/", domid));
      return s;
    }
  } else {
    return s;
  }
  domains_[domid] = dom;
  Domain& d = domains_[domid];
  auto fail = [&](absl::Status err) -> absl::Status {
    mu_.AssertHeld();  // the lambda runs within this locked scope
    absl::Status cleanup = DestroyLocked(d);
    if (!cleanup.ok()) {
      std::fprintf(stderr, "xensim: undoing create of %u: %s\n", domid, cleanup.ToString().c_str());
    }
    return err;
  };
  // libxl__build_post, with the simulated host's fixed values: 256 MiB, one
  // vCPU, store port 1 and store ring-ref 0 (the simulated xenstored talks to
  // guests over sockets, not a ring).
  s = RunInTransaction(
      *xs_,
      [&](XsTransaction t) -> absl::Status {
        return WriteKeys(*xs_, t, dom_path,
                         {{"memory/static-max", "262144"},
                          {"memory/target", "262144"},
                          {"domid", absl::StrCat(domid)},
                          {"store/port", "1"},
                          {"store/ring-ref", "0"},
                          {"cpu/0/availability", "online"}});
      },
      kTransactionAttempts);
  if (!s.ok()) return fail(s);
  if (!(s = xs_->Write(kNoTransaction, absl::StrCat("/libxl/", domid, "/dm-version"), "qemu_xen"))
           .ok()) {
    return fail(s);
  }
  // The simulated xenstored ignores the mfn; the port only has to be > 0.
  if (!(s = xs_->IntroduceDomain(domid, 0, /*port=*/1)).ok()) return fail(s);
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!(s = WriteChannel(domid, static_cast<uint32_t>(i + 1), specs[i])).ok()) return fail(s);
  }
  const std::string dir = options_.state_dir;
  if (!specs.empty()) {
    auto qemu = SpawnChild(
        {options_.xensim_binary, "qemu", "--state-dir", dir, "--domid", absl::StrCat(domid)});
    if (!qemu.ok()) return fail(qemu.status());
    d.qemu_pid = *qemu;
    if (!(s = WaitForBackends(domid, specs.size(), d.qemu_pid)).ok()) return fail(s);
  }
  const std::string root = absl::StrCat(dir, "/guests/", name, "/root");
  if (!(s = MakeDirs(root + "/dev", 0755)).ok()) return fail(s);
  // Unpause: the guest boots, or (restore) resumes from its saved state.
  std::vector<std::string> argv = {options_.xensim_binary, "guest",  "--state-dir", dir, "--domid",
                                   absl::StrCat(domid),    "--name", name};
  if (!restore_state.empty()) {
    argv.push_back("--restore-state");
    argv.push_back(restore_state);
  }
  // The guest process plays the domain's vCPUs: it runs only while the
  // domain's pause count is 0, and a dom0 daemon may hold it (xenchand does
  // until a returning domain's durable channels exist).
  auto guest = SpawnChild(argv, /*start_stopped=*/true);
  if (!guest.ok()) return fail(guest.status());
  d.guest_pid = *guest;
  if (!(s = hypervisor_->AttachVcpuProcess(domid, d.guest_pid)).ok()) return fail(s);
  if (!(s = hypervisor_->Unpause(domid)).ok()) return fail(s);
  return StatusLocked(d);
}

absl::Status Host::DestroyLocked(Domain& d) {
  const uint32_t domid = d.domid;
  // Pause (the guest process stops for good) and stop the device model.
  KillAndReap(d.guest_pid, SIGKILL);
  d.guest_pid = -1;
  KillAndReap(d.qemu_pid, SIGTERM);
  d.qemu_pid = -1;
  // libxl__devices_destroy: only the devices libxl recorded in /libxl/D/device.
  const std::string lx_dev = absl::StrCat("/libxl/", domid, "/device");
  absl::Status first;
  auto kinds = xs_->Directory(kNoTransaction, lx_dev);
  if (kinds.ok()) {
    for (const std::string& kind : *kinds) {
      auto devs = xs_->Directory(kNoTransaction, absl::StrCat(lx_dev, "/", kind));
      if (!devs.ok()) continue;
      for (const std::string& dev : *devs) {
        const std::string lx = absl::StrCat(lx_dev, "/", kind, "/", dev);
        absl::Status s = RunInTransaction(
            *xs_,
            [&](XsTransaction t) -> absl::Status {
              for (const char* key : {"frontend", "backend"}) {
                auto path = xs_->Read(t, absl::StrCat(lx, "/", key));
                if (path.ok() && !path->empty()) {
                  if (absl::Status r = PathCleanup(*xs_, t, *path); !r.ok()) return r;
                }
              }
              return PathCleanup(*xs_, t, lx);
            },
            kTransactionAttempts);
        if (!s.ok() && first.ok()) first = s;
      }
    }
  }
  // devices_destroy_cb: the domain's own paths.
  absl::Status s = RunInTransaction(
      *xs_,
      [&](XsTransaction t) -> absl::Status {
        for (const std::string& path :
             {absl::StrCat("/local/domain/", domid), absl::StrCat("/vm/", d.uuid),
              absl::StrCat("/libxl/", domid)}) {
          absl::Status r = xs_->Remove(t, path);
          if (!IgnoreNotFound(r)) return r;
        }
        return absl::OkStatus();
      },
      kTransactionAttempts);
  if (!s.ok() && first.ok()) first = s;
  d.state = State::kDying;
  s = hypervisor_->DestroyDomain(domid);
  if (!s.ok() && !absl::IsNotFound(s) && first.ok()) first = s;
  s = xs_->ReleaseDomain(domid);
  if (!s.ok() && !absl::IsNotFound(s) && first.ok()) first = s;
  if (!hypervisor_->Info(domid).exists) domains_.erase(domid);
  return first;
}

absl::Status Host::DestroyDomain(const std::string& domain) {
  MutexLock lock(&mu_);
  auto d = FindLocked(domain);
  if (!d.ok()) return d.status();
  return DestroyLocked(**d);
}

}  // namespace sim
}  // namespace xenchan
