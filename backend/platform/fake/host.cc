// FakeHost: the in-memory Xen host's toolstack.
#include "backend/platform/fake/host.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/util/uuid.h"

namespace xenchan {
namespace {

constexpr XsPermission::Access kNone = XsPermission::kNone;
constexpr XsPermission::Access kRead = XsPermission::kRead;

bool IgnoreNotFound(const absl::Status& s) { return s.ok() || absl::IsNotFound(s); }

// Transactions are retried on conflicts up to this many times, as libxl does.
constexpr int kTransactionAttempts = 100;

// libxl__xs_mknod: an empty node with explicit permissions.
absl::Status Mknod(XenStore& xs, XsTransaction t, const std::string& path,
                   const std::vector<XsPermission>& perms) {
  absl::Status s = xs.Write(t, path, "");
  return s.ok() ? xs.SetPermissions(t, path, perms) : s;
}

}  // namespace

FakeHost::FakeHost()
    : trace_(std::make_shared<FakeTrace>()),
      hub_(std::make_shared<FakeXenStoreHub>(trace_)),
      hypervisor_(std::make_shared<FakeHypervisor>(trace_)) {}

absl::StatusOr<std::unique_ptr<FakeHost>> FakeHost::Create() {
  std::unique_ptr<FakeHost> host(new FakeHost());
  absl::StatusOr<std::unique_ptr<FakeXenStore>> xs = host->OpenXenStore(0);
  if (!xs.ok()) return xs.status();
  host->xs_ = *std::move(xs);
  absl::Status s = host->xs_->Write(kNoTransaction, "/local/domain/0/domid", "0");
  if (s.ok()) s = host->xs_->Write(kNoTransaction, "/local/domain/0/name", "Domain-0");
  if (!s.ok()) return absl::InternalError(absl::StrCat("writing dom0's entries: ", s.message()));
  return host;
}

absl::StatusOr<std::unique_ptr<FakeXenStore>> FakeHost::OpenXenStore(uint32_t domid) {
  return FakeXenStore::Connect(hub_, domid, /*privileged=*/domid == 0);
}

absl::StatusOr<std::unique_ptr<FakeEventChannels>> FakeHost::OpenEventChannels(uint32_t domid) {
  return FakeEventChannels::Create(hypervisor_, domid);
}

std::unique_ptr<FakeGrantTables> FakeHost::OpenGrantTables(uint32_t domid) {
  return std::make_unique<FakeGrantTables>(hypervisor_, domid);
}

std::unique_ptr<FakeDomainControl> FakeHost::OpenDomainControl() {
  return std::make_unique<FakeDomainControl>(hypervisor_);
}

absl::Status FakeHost::WriteDomainEntries(const Domain& d) {
  const std::string dom = absl::StrCat("/local/domain/", d.domid);
  const std::string vm = absl::StrCat("/vm/", d.uuid);
  const std::string libxl = absl::StrCat("/libxl/", d.domid);
  const std::vector<XsPermission> noperm = {{0, kNone}};
  const std::vector<XsPermission> roperm = {{0, kNone}, {d.domid, kRead}};
  const std::vector<XsPermission> rwperm = {{d.domid, kNone}};
  XenStore& xs = *xs_;
  return RunInTransaction(
      xs,
      [&](XsTransaction t) -> absl::Status {
        absl::Status s;
        if (!(s = Mknod(xs, t, dom, roperm)).ok()) return s;
        if (!(s = Mknod(xs, t, vm, roperm)).ok()) return s;
        if (!(s = Mknod(xs, t, libxl, noperm)).ok()) return s;
        if (!(s = Mknod(xs, t, libxl + "/device", noperm)).ok()) return s;
        if (!(s = xs.Write(t, dom + "/vm", vm)).ok()) return s;
        if (!(s = xs.Write(t, dom + "/name", d.name)).ok()) return s;
        if (!(s = xs.Write(t, dom + "/domid", absl::StrCat(d.domid))).ok()) return s;
        for (const char* sub : {"memory", "device", "control"}) {
          if (!(s = Mknod(xs, t, absl::StrCat(dom, "/", sub), roperm)).ok()) return s;
        }
        for (const char* sub :
             {"control/shutdown", "data", "drivers", "feature", "attr", "error"}) {
          if (!(s = Mknod(xs, t, absl::StrCat(dom, "/", sub), rwperm)).ok()) return s;
        }
        if (!(s = xs.Write(t, vm + "/uuid", d.uuid)).ok()) return s;
        if (!(s = xs.Write(t, vm + "/name", d.name)).ok()) return s;
        return xs.Write(t, libxl + "/type", "pv");
      },
      kTransactionAttempts);
}

absl::StatusOr<FakeHost::Domain> FakeHost::CreateDomain(const std::string& name,
                                                        const std::string& uuid, bool paused) {
  if (name.empty()) return absl::InvalidArgumentError("empty domain name");
  std::optional<std::string> canonical = CanonicalUuid(uuid);
  if (!uuid.empty() && !canonical.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid uuid '", uuid, "'"));
  }
  MutexLock lock(&mu_);
  for (const auto& [id, d] : domains_) {
    if (d.name == name) return absl::AlreadyExistsError(absl::StrCat("domain ", name, " exists"));
  }
  Domain d;
  d.domid = next_domid_++;
  d.name = name;
  d.uuid =
      canonical.has_value() ? *canonical : StableUuid(absl::StrCat("fake-host/domain/", d.domid));
  absl::Status s = WriteDomainEntries(d);
  if (s.ok()) s = hypervisor_->CreateDomain(d.domid);
  if (s.ok()) s = xs_->IntroduceDomain(d.domid);
  // Built: the toolstack's unpause (others' pauses still hold it).
  if (s.ok() && !paused) s = hypervisor_->Unpause(d.domid);
  if (!s.ok()) {
    (void)hypervisor_->DestroyDomain(d.domid);
    for (const std::string& path :
         {absl::StrCat("/local/domain/", d.domid), absl::StrCat("/vm/", d.uuid),
          absl::StrCat("/libxl/", d.domid)}) {
      (void)xs_->Remove(kNoTransaction, path);
    }
    return s;
  }
  domains_[d.domid] = d;
  return d;
}

absl::Status FakeHost::DestroyDomain(uint32_t domid) {
  MutexLock lock(&mu_);
  auto it = domains_.find(domid);
  if (it == domains_.end()) return absl::NotFoundError(absl::StrCat("no live domain ", domid));
  const Domain d = it->second;
  domains_.erase(it);
  XenStore& xs = *xs_;
  // libxl__devices_destroy: the devices libxl recorded, frontend and backend.
  const std::string lx_dev = absl::StrCat("/libxl/", domid, "/device");
  absl::Status first;
  auto keep_first = [&first](const absl::Status& s) {
    if (!IgnoreNotFound(s) && first.ok()) first = s;
  };
  absl::StatusOr<std::vector<std::string>> kinds = xs.Directory(kNoTransaction, lx_dev);
  for (const std::string& kind : kinds.ok() ? *kinds : std::vector<std::string>()) {
    absl::StatusOr<std::vector<std::string>> devs =
        xs.Directory(kNoTransaction, absl::StrCat(lx_dev, "/", kind));
    for (const std::string& dev : devs.ok() ? *devs : std::vector<std::string>()) {
      const std::string lx = absl::StrCat(lx_dev, "/", kind, "/", dev);
      for (const char* key : {"frontend", "backend"}) {
        absl::StatusOr<std::string> path = xs.Read(kNoTransaction, absl::StrCat(lx, "/", key));
        if (path.ok() && !path->empty()) keep_first(xs.Remove(kNoTransaction, *path));
      }
      keep_first(xs.Remove(kNoTransaction, lx));
    }
  }
  // devices_destroy_cb: the domain's own paths, in one transaction.
  keep_first(RunInTransaction(
      xs,
      [&](XsTransaction t) -> absl::Status {
        for (const std::string& path :
             {absl::StrCat("/local/domain/", domid), absl::StrCat("/vm/", d.uuid),
              absl::StrCat("/libxl/", domid)}) {
          absl::Status r = xs.Remove(t, path);
          if (!IgnoreNotFound(r)) return r;
        }
        return absl::OkStatus();
      },
      kTransactionAttempts));
  keep_first(hypervisor_->DestroyDomain(domid));
  keep_first(xs_->ReleaseDomain(domid));
  return first;
}

}  // namespace xenchan
