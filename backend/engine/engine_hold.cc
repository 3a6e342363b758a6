// Engine: holding a returning domain paused until its durable channels exist.
//
// A restored or migrated-in guest resumes the moment the toolstack unpauses
// it, and a rebooted one starts booting; a durable channel whose device is
// written after that is met by a guest that already looked (a restored Linux
// guest keeps a stale device at the old devid and its agent a dead tty;
// docs/PROTOCOL-NOTES.md, issue 12). Xen counts controller pauses, so the
// engine adds its own pause as soon as it sees @introduceDomain and takes it
// back once the devices are written: the toolstack's unpause then leaves the
// domain paused until ours. Nothing waits for the guest under a hold, only
// for our own xenstore writes, and `domain_hold_limit` bounds it anyway.
//
// Crash safety: each hold is recorded in xenstore (HeldDomainPath, under
// dom0's own directory) between our pause and our unpause, pause first and
// record second, record removed first and unpause second, so the engine
// never unpauses a domain it did not pause (which could start a domain the
// toolstack is still building). An engine that restarts ends every recorded
// hold whose domain still has the recorded UUID. The one-write window
// between the pause and its record (or the record's removal and the
// unpause) leaves a domain paused if the engine dies exactly there; `xl
// unpause` frees it.
#include <string>

#include "backend/engine/engine.h"
#include "backend/engine/names.h"
#include "backend/engine/xenstore_layout.h"
#include "backend/util/uuid.h"

namespace xenchan {

bool Engine::HasDeclarations(const std::string& uuid) const {
  auto it = declarations_.lower_bound({uuid, std::string()});
  return it != declarations_.end() && it->first.first == uuid;
}

void Engine::HoldDomain(uint32_t domid, const std::string& uuid, absl::Time deadline) {
  if (options_.domain_control == nullptr || held_.count(domid) != 0) return;
  // Too late (it is gone) or not allowed: the channels come as they can.
  if (!options_.domain_control->Pause(domid).ok()) return;
  held_[domid] = deadline;
  (void)options_.xenstore->Write(
      kNoTransaction, HeldDomainPath(options_.backend_domid, options_.backend_type, domid), uuid);
}

void Engine::ReleaseHold(uint32_t domid) {
  auto it = held_.find(domid);
  if (it == held_.end()) return;
  held_.erase(it);
  (void)options_.xenstore->Remove(
      kNoTransaction, HeldDomainPath(options_.backend_domid, options_.backend_type, domid));
  // NOT_FOUND if the domain went meanwhile: nothing is left to release.
  (void)options_.domain_control->Unpause(domid);
}

void Engine::CheckHolds(absl::Time now) {
  std::vector<uint32_t> due;
  for (const auto& [domid, deadline] : held_) {
    if (deadline <= now) due.push_back(domid);
  }
  for (uint32_t domid : due) ReleaseHold(domid);
}

void Engine::ReleaseRecordedHolds() {
  if (options_.domain_control == nullptr) return;
  XenStore& xs = *options_.xenstore;
  const std::string dir = HeldDomainsDir(options_.backend_domid, options_.backend_type);
  auto entries = xs.Directory(kNoTransaction, dir);
  if (!entries.ok()) return;  // none recorded
  for (const std::string& entry : *entries) {
    std::optional<uint32_t> domid = ParseDecimal(entry, kMaxDomid);
    const std::string path = NodePath(dir, entry);
    auto uuid = xs.Read(kNoTransaction, path);
    (void)xs.Remove(kNoTransaction, path);
    if (!domid.has_value() || !uuid.ok() || !IsUuid(*uuid)) continue;
    // Only the incarnation we paused: a domid reused by another domain was
    // not paused by us.
    bool same = false;
    {
      MutexLock lock(&mu_);
      auto dom = domains_.find(*domid);
      same = dom != domains_.end() && dom->second.info.uuid == *uuid;
    }
    if (same) (void)options_.domain_control->Unpause(*domid);
  }
}

}  // namespace xenchan
