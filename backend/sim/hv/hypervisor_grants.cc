// The simulated hypervisor's grant table: granting a sealed one-page memfd to
// another domain, ending access, and mapping and unmapping another domain's
// grant (a fresh file description with exactly the access granted). A dying
// domain's grants go with their last mapping.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/sim/hv/hypervisor.h"

namespace xenchan {
namespace sim {
namespace hv {

int Hypervisor::GrantLocked(Connection& conn, const Request& req, UniqueFd fd, uint32_t* ref) {
  const uint32_t to_domid = req.args[0];
  const uint32_t readonly = req.args[1];
  if (to_domid >= kDomidLimit || to_domid == conn.domid || readonly > 1 || req.args[2] != 0 ||
      req.args[3] != 0) {
    return EINVAL;
  }
  Domain& domain = domains_.at(conn.domid);
  if (domain.grants.size() >= kMaxGrantsPerDomain) return ENOSPC;
  // The page must be a read-write memfd of exactly one page that we can seal
  // against resizing: a mapper must never see it shrink under its mmap.
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size != static_cast<off_t>(kPageSize)) {
    return EINVAL;
  }
  int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || (flags & O_ACCMODE) != O_RDWR) return EINVAL;
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) return EINVAL;
  if (fstat(fd.get(), &st) != 0 || st.st_size != static_cast<off_t>(kPageSize)) return EINVAL;
  // Next-fit, so that a re-grant after EndAccess gets a different ref.
  uint32_t candidate = domain.next_ref;
  for (;;) {
    if (domain.grants.count(candidate) == 0) break;
    candidate = candidate + 1 >= kGrantRefLimit ? kFirstGrantRef : candidate + 1;
  }
  domain.next_ref = candidate + 1 >= kGrantRefLimit ? kFirstGrantRef : candidate + 1;
  Grant& grant = domain.grants[candidate];
  grant.memfd = std::move(fd);
  grant.to_domid = to_domid;
  grant.readonly = readonly != 0;
  *ref = candidate;
  return 0;
}

int Hypervisor::EndAccessLocked(Connection& conn, const Request& req) {
  if (req.args[1] != 0 || req.args[2] != 0 || req.args[3] != 0) return EINVAL;
  Domain& domain = domains_.at(conn.domid);
  auto it = domain.grants.find(req.args[0]);
  if (it == domain.grants.end()) return EINVAL;
  if (it->second.map_count != 0) return EBUSY;
  domain.grants.erase(it);
  return 0;
}

int Hypervisor::MapLocked(Connection& conn, const Request& req, uint32_t* id, UniqueFd* page) {
  const uint32_t domid = req.args[0];
  const uint32_t ref = req.args[1];
  const uint32_t writable = req.args[2];
  if (writable > 1 || req.args[3] != 0) return EINVAL;
  auto domain = domains_.find(domid);
  if (domain == domains_.end() || domain->second.dying) return ESRCH;
  auto grant = domain->second.grants.find(ref);
  if (grant == domain->second.grants.end()) return EINVAL;
  if (grant->second.to_domid != conn.domid) return EACCES;
  if (grant->second.readonly && writable != 0) return EACCES;
  if (conn.mappings.size() >= kMaxMappingsPerConnection) return ENOSPC;
  // A fresh open file description with exactly the access granted: a
  // read-only mapper cannot mprotect its way to writing.
  std::string proc = absl::StrCat("/proc/self/fd/", grant->second.memfd.get());
  UniqueFd fd(open(proc.c_str(), (writable != 0 ? O_RDWR : O_RDONLY) | O_CLOEXEC));
  if (!fd.valid()) return errno;
  uint32_t mapping_id = conn.next_mapping_id;
  while (mapping_id == 0 || conn.mappings.count(mapping_id) != 0) ++mapping_id;
  conn.next_mapping_id = mapping_id + 1;
  conn.mappings[mapping_id] = Mapping{domid, ref};
  ++grant->second.map_count;
  ++domain->second.mapped_pages;
  *id = mapping_id;
  *page = std::move(fd);
  return 0;
}

int Hypervisor::UnmapLocked(Connection& conn, const Request& req) {
  if (req.args[1] != 0 || req.args[2] != 0 || req.args[3] != 0) return EINVAL;
  auto it = conn.mappings.find(req.args[0]);
  if (it == conn.mappings.end()) return EINVAL;
  Mapping mapping = it->second;
  conn.mappings.erase(it);
  ReleaseMappingLocked(mapping);
  return 0;
}

void Hypervisor::ReleaseMappingLocked(const Mapping& mapping) {
  auto domain = domains_.find(mapping.domid);
  if (domain == domains_.end()) return;
  auto grant = domain->second.grants.find(mapping.ref);
  if (grant == domain->second.grants.end()) return;
  --grant->second.map_count;
  --domain->second.mapped_pages;
  if (domain->second.dying && grant->second.map_count == 0) domain->second.grants.erase(grant);
  MaybeReapLocked(mapping.domid);
}

}  // namespace hv
}  // namespace sim
}  // namespace xenchan
