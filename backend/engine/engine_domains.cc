// Engine: domain discovery. Domains are learnt from xenstore watches only
// (@introduceDomain, @releaseDomain, each domain's name node), never by
// polling; a domain that dies takes its channels with it. Also the lookup of
// a domain by UUID or name that every request starts with.
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backend/engine/engine.h"
#include "backend/engine/names.h"
#include "backend/engine/watch_tokens.h"
#include "backend/engine/xenstore_layout.h"
#include "backend/util/uuid.h"

namespace xenchan {

void Engine::ScanDomains() {
  XenStore& xs = *options_.xenstore;
  auto dirs = xs.Directory(kNoTransaction, kLocalDomainDir);
  if (!dirs.ok()) return;
  bool added = false;
  for (const std::string& d : *dirs) {
    std::optional<uint32_t> domid = ParseDecimal(d, kMaxDomid);
    if (!domid.has_value() || *domid == options_.backend_domid) continue;
    {
      MutexLock lock(&mu_);
      if (domains_.count(*domid) != 0) continue;
    }
    const std::string base = DomainPath(*domid);
    auto name = xs.Read(kNoTransaction, NodePath(base, kDomainNameNode));
    if (!name.ok()) continue;  // not fully set up yet: @introduceDomain comes back
    std::string uuid;
    auto vm = xs.Read(kNoTransaction, NodePath(base, kDomainVmNode));
    if (vm.ok()) {
      auto u = xs.Read(kNoTransaction, NodePath(*vm, kVmUuidNode));
      if (u.ok() && IsUuid(*u)) {
        uuid = *u;
      } else {
        std::vector<std::string> parts = absl::StrSplit(*vm, '/');
        if (!parts.empty() && IsUuid(parts.back())) uuid = parts.back();
      }
    }
    DomainRecord rec;
    rec.info.domid = *domid;
    rec.info.name = *name;
    rec.info.uuid = absl::AsciiStrToLower(uuid);
    rec.name_token = DomainNameWatchToken(*domid);
    {
      MutexLock lock(&mu_);
      domains_[*domid] = rec;
    }
    (void)xs.Watch(NodePath(base, kDomainNameNode), rec.name_token);
    added = true;
  }
  if (added) ScanToolstackChannels();
}

void Engine::ReadDomainName(uint32_t domid) {
  auto name = options_.xenstore->Read(kNoTransaction, DomainNamePath(domid));
  if (!name.ok()) return;
  std::vector<std::shared_ptr<Channel>> affected;
  {
    MutexLock lock(&mu_);
    auto it = domains_.find(domid);
    if (it == domains_.end() || it->second.info.name == *name) return;
    it->second.info.name = *name;
    for (auto& [serial, ch] : channels_) {
      if (ch->identity().domid == domid) affected.push_back(ch);
    }
  }
  for (auto& ch : affected) ch->SetDomainName(*name);
}

void Engine::CheckReleasedDomains() {
  std::vector<uint32_t> domids;
  {
    MutexLock lock(&mu_);
    for (const auto& [domid, rec] : domains_) domids.push_back(domid);
  }
  for (uint32_t domid : domids) {
    auto introduced = options_.xenstore->IsDomainIntroduced(domid);
    if (introduced.ok() && !*introduced) RemoveDomain(domid);
  }
}

void Engine::RemoveDomain(uint32_t domid) {
  for (auto& [serial, ts] : toolstack_) {
    if (ts->channel().identity().domid == domid) ts->Remove(RemovalReason::kDomainGone);
  }
  std::vector<RingChannel*> gone;
  for (auto& [serial, ring] : rings_) {
    if (ring->channel().identity().domid == domid && !ring->finished()) {
      ring->ReleaseForDomainGone();
      gone.push_back(ring.get());
    }
  }
  XenStore& xs = *options_.xenstore;
  (void)xs.Remove(kNoTransaction,
                  BackendDomainDir(options_.backend_domid, options_.backend_type, domid));
  std::string token;
  {
    // Forget the domain and its channels before anyone hears of it.
    MutexLock lock(&mu_);
    auto it = domains_.find(domid);
    if (it != domains_.end()) {
      token = it->second.name_token;
      domains_.erase(it);
    }
    for (RingChannel* ring : gone) channels_.erase(ring->channel().serial());
  }
  for (RingChannel* ring : gone) ring->ReportDomainGone();
  if (!token.empty()) {
    (void)xs.Unwatch(DomainNamePath(domid), token);
  }
  released_devids_.ForgetDomain(domid);
  ReapFinished();
}

absl::StatusOr<DomainInfo> Engine::ResolveDomainLocked(const std::string& domain) const {
  const std::string lower = absl::AsciiStrToLower(domain);
  const DomainRecord* by_name = nullptr;
  for (const auto& [domid, rec] : domains_) {
    if (!rec.info.uuid.empty() && rec.info.uuid == lower) {
      DomainInfo info = rec.info;
      return info;
    }
    if (rec.info.name == domain && by_name == nullptr) by_name = &rec;
  }
  if (by_name == nullptr) {
    return absl::NotFoundError(absl::StrCat("no domain '", domain, "'"));
  }
  return by_name->info;
}

}  // namespace xenchan
