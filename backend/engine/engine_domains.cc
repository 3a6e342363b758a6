// Engine: domain discovery. Domains are learnt from xenstore watches only
// (@introduceDomain, @releaseDomain, each domain's name node), never by
// polling; a domain that dies takes its channels with it, except durable
// ones, which wait DOMAIN_DOWN for its next incarnation (engine_durable.cc).
// Also the lookup of a domain by UUID or name that every request starts
// with, which knows not-running domains with durable channels too.
#include <optional>
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
    // libxl writes a domain's nodes before it introduces the domain, and
    // @releaseDomain drops a domain that is not introduced: one seen
    // half-built would be dropped and then found again, a second arrival.
    // Its own @introduceDomain comes back.
    auto introduced = xs.IsDomainIntroduced(*domid);
    if (introduced.ok() && !*introduced) continue;
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
    rec.shutdown_token = DomainShutdownWatchToken(*domid);
    // Copies this host let go when the domain moved away (engine_moved.cc)
    // give way: back here, it adopts the fleet's declarations.
    RetireMovedChannels(rec.info.uuid);
    std::optional<EpochChangeReason> returned;
    bool incoming = false;  // its UUID runs here already: a same-host migration
    {
      MutexLock lock(&mu_);
      if (!rec.info.uuid.empty()) {
        for (const auto& [other, other_rec] : domains_)
          incoming |= other_rec.info.uuid == rec.info.uuid;
      }
      domains_[*domid] = rec;
      if (!rec.info.uuid.empty() && down_domains_.count(rec.info.uuid) != 0) {
        returned = DomainReturnReason(*domid, rec.info.uuid);
        down_domains_.erase(rec.info.uuid);
      }
    }
    // Hold it until its channels exist (engine_hold.cc). An incoming
    // migration's channels follow it only when the outgoing domain goes
    // (RemoveDomain), which releases the hold then.
    if (returned.has_value() || (incoming && HasDeclarations(rec.info.uuid))) {
      HoldDomain(*domid, rec.info.uuid, absl::Now() + options_.domain_hold_limit);
    } else if (started_ && !rec.info.uuid.empty() && !HasDeclarations(rec.info.uuid) &&
               options_.on_domain_arrival && options_.on_domain_arrival(*domid, rec.info.uuid)) {
      // Maybe from another host of the fleet, with channels declared there:
      // held until the fleet answers (AdoptDeclarations).
      HoldDomain(*domid, rec.info.uuid, absl::Now() + options_.adoption_hold_limit);
    }
    (void)xs.Watch(NodePath(base, kDomainNameNode), rec.name_token);
    (void)xs.Watch(DomainShutdownPath(*domid), rec.shutdown_token);
    // As early as the toolstack lets us: the domain was just introduced, so
    // a rebooting guest finds its channels at boot and a restored one (still
    // paused while libxl adds its devices) when it resumes.
    if (returned.has_value()) {
      RecreateDurableChannels(*domid, *returned);
      ReleaseHold(*domid);
    }
    added = true;
  }
  if (added) ScanToolstackChannels();
}

void Engine::ReadShutdownRequest(uint32_t domid) {
  auto request = options_.xenstore->Read(kNoTransaction, DomainShutdownPath(domid));
  if (!request.ok()) return;  // the domain is being torn down
  MutexLock lock(&mu_);
  auto it = domains_.find(domid);
  if (it == domains_.end()) return;
  ++it->second.shutdown_events;
  // Empty: the registration, or the guest's acknowledgement (it clears the
  // node as it acts). Guest-writable: kept only as a short word.
  if (!request->empty()) it->second.info.shutdown_request = request->substr(0, 16);
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
  std::vector<RingChannel*> down;  // durable: kept, DOMAIN_DOWN
  // A guest that suspends leaves its devices alone; one that shuts down or
  // reboots closes them first. (Whether they were still connected at the
  // end does not tell: the toolstack may remove the frontend directories
  // before the domain goes.)
  bool none_closed = true;
  for (auto& [serial, ring] : rings_) {
    if (ring->channel().identity().domid == domid && !ring->finished()) {
      const bool durable = durable_serials_.count(serial) != 0;
      if (durable) none_closed = none_closed && !ring->guest_closed();
      ring->ReleaseForDomainGone();
      (durable ? down : gone).push_back(ring.get());
    }
  }
  XenStore& xs = *options_.xenstore;
  (void)xs.Remove(kNoTransaction,
                  BackendDomainDir(options_.backend_domid, options_.backend_type, domid));
  std::string name_token;
  std::string shutdown_token;
  std::optional<uint32_t> successor;  // a running domain with the same UUID (migration)
  {
    // Forget the domain and its channels before anyone hears of it.
    MutexLock lock(&mu_);
    auto it = domains_.find(domid);
    if (it != domains_.end()) {
      name_token = it->second.name_token;
      shutdown_token = it->second.shutdown_token;
      const DomainInfo& info = it->second.info;
      if (!down.empty() && !info.uuid.empty()) {
        for (const auto& [other, rec] : domains_) {
          if (other != domid && rec.info.uuid == info.uuid) successor = other;
        }
        if (!successor.has_value()) {
          // The request's value if it was caught; otherwise a request was
          // made (and acknowledged) and the guest did not close its devices.
          const int events = it->second.shutdown_events;
          const bool suspended = info.shutdown_request == "suspend" ||
                                 (info.shutdown_request.empty() && events >= 2 && none_closed);
          down_domains_[info.uuid] = DownDomain{info.name, suspended};
        }
      }
      domains_.erase(it);
    }
    for (RingChannel* ring : gone) channels_.erase(ring->channel().serial());
  }
  for (RingChannel* ring : gone) ring->ReportDomainGone();
  for (RingChannel* ring : down) ring->ReportDomainDown();
  if (!name_token.empty()) (void)xs.Unwatch(DomainNamePath(domid), name_token);
  if (!shutdown_token.empty()) (void)xs.Unwatch(DomainShutdownPath(domid), shutdown_token);
  released_devids_.ForgetDomain(domid);
  ReapFinished();
  ReleaseHold(domid);  // it went while held: only the record is left
  // Same-host migration: the incoming domain was running (or held) before
  // the outgoing one went; the channels follow it now.
  if (successor.has_value()) {
    RecreateDurableChannels(*successor, EpochChangeReason::kDomainMigrated);
    ReleaseHold(*successor);
  }
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
  if (by_name != nullptr) return by_name->info;
  // Not running, known by its durable channels.
  for (const auto& [uuid, down] : down_domains_) {
    if (uuid == lower || (!down.name.empty() && down.name == domain)) {
      DomainInfo info;
      info.uuid = uuid;
      info.name = down.name;
      info.state = DomainState::kNotRunning;
      return info;
    }
  }
  return absl::NotFoundError(absl::StrCat("no domain '", domain, "'"));
}

}  // namespace xenchan
