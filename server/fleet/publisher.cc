// See publisher.h.
#include "server/fleet/publisher.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/fleet/records.h"
#include "server/log.h"

namespace xenchan {
namespace fleet {

using fleet::v1::DeclarationRecord;
using fleet::v1::DomainRecord;

Publisher::Publisher(std::shared_ptr<etcd::Client> etcd, PublisherOptions options,
                     std::unique_ptr<LocalView> view)
    : etcd_(std::move(etcd)), options_(std::move(options)), view_(std::move(view)) {}

Publisher::~Publisher() { Stop(false); }

void Publisher::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Publisher::Stop(bool graceful) {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    cv_.SignalAll();
  }
  if (!thread_.joinable()) return;
  thread_.join();
  if (graceful && lease_ != 0) {
    absl::Status s = etcd_->RevokeLease(lease_);
    server::Log(s.ok() ? "info" : "warning", "fleet: left",
                {{"host", options_.host.host_id()}, {"revoke", s.ToString()}});
    lease_ = 0;
  }
}

PublisherStats Publisher::stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

bool Publisher::WaitForSync(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  MutexLock lock(&mu_);
  const uint64_t start = good_passes_;
  while (good_passes_ < start + 2) {
    if (cv_.WaitWithDeadline(&mu_, deadline)) return false;
  }
  return true;
}

void Publisher::Run() {
  // The domains running when this xenchand started may be old news (one
  // may have moved to another host while it was down): re-published, never
  // claimed. Every domid seen after this look is a new introduction here,
  // claimed even if etcd was away at the time, so that a domain arriving
  // while etcd is away is still claimed when it returns.
  for (const DomainRecord& record : view_->Domains()) {
    seen_domids_[record.uuid()] = record.domid();
  }
  absl::Duration backoff = absl::Milliseconds(100);
  for (;;) {
    const bool ok = Pass();
    absl::Duration wait = options_.scan_interval;
    if (ok) {
      backoff = absl::Milliseconds(100);
      MutexLock lock(&mu_);
      ++good_passes_;
      cv_.SignalAll();
    } else {
      wait = backoff;
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
    MutexLock lock(&mu_);
    const absl::Time until = absl::Now() + wait;
    while (!stop_ && !cv_.WaitWithDeadline(&mu_, until)) {
    }
    if (stop_) return;
  }
}

void Publisher::Failed(const absl::Status& status, const std::string& what) {
  bool was_connected;
  {
    MutexLock lock(&mu_);
    was_connected = stats_.connected;
    stats_.connected = false;
    ++stats_.failures;
  }
  if (was_connected) {
    server::Log("warning", "fleet: etcd unreachable, degraded (serving goes on)",
                {{"while", what}, {"error", status.ToString()}});
    if (options_.on_connection_change) options_.on_connection_change(false);
  }
}

void Publisher::Succeeded() {
  bool was_connected;
  {
    MutexLock lock(&mu_);
    was_connected = stats_.connected;
    stats_.connected = true;
  }
  if (!was_connected)
    server::Log("info", "fleet: etcd connected", {{"host", options_.host.host_id()}});
}

bool Publisher::Pass() {
  registered_now_ = false;
  if (!EnsureLease()) return false;
  // Nothing changed here since the last full comparison, which succeeded,
  // and the lease (with the domains on it) is the same: nothing to compare.
  const uint64_t generation = view_->Generation();
  const absl::Time now = absl::Now();
  if (synced_ && !registered_now_ && generation == synced_generation_ && now < next_full_) {
    return true;
  }
  synced_ = false;
  {
    MutexLock lock(&mu_);
    ++stats_.full_passes;
  }
  if (!SyncDomains() || !SyncDeclarations()) return false;
  synced_ = true;
  synced_generation_ = generation;
  next_full_ = now + options_.full_scan_interval;
  return true;
}

bool Publisher::EnsureLease() {
  const absl::Time now = absl::Now();
  if (lease_ != 0 && now >= next_keepalive_) {
    auto ttl = etcd_->KeepAlive(lease_);
    if (ttl.ok()) {
      next_keepalive_ = now + options_.lease_ttl / 3;
    } else if (ttl.status().code() == absl::StatusCode::kNotFound) {
      // Expired while etcd was away: everything on it is gone.
      server::Log("warning", "fleet: lease expired, registering again",
                  {{"lease", absl::StrCat(lease_)}});
      lease_ = 0;
      domains_.clear();
    } else {
      Failed(ttl.status(), "keep-alive");
      return false;
    }
  }
  if (lease_ != 0) return true;
  auto lease = etcd_->GrantLease(options_.lease_ttl);
  if (!lease.ok()) {
    Failed(lease.status(), "lease grant");
    return false;
  }
  fleet::v1::HostRecord host = options_.host;
  host.set_version(kRecordVersion);
  auto put = etcd_->Put(HostKey(options_.prefix, host.host_id()), Encode(host), *lease);
  if (!put.ok()) {
    Failed(put.status(), "host registration");
    (void)etcd_->RevokeLease(*lease);
    return false;
  }
  lease_ = *lease;
  registered_now_ = true;
  next_keepalive_ = now + options_.lease_ttl / 3;
  domains_.clear();  // re-published on the new lease
  Succeeded();
  {
    MutexLock lock(&mu_);
    stats_.lease = lease_;
    stats_.writes += 2;
    ++stats_.registrations;
  }
  server::Log(
      "info", "fleet: registered",
      {{"host", host.host_id()}, {"lease", absl::StrCat(lease_)}, {"address", host.api_address()}});
  return true;
}

bool Publisher::SyncDomains() {
  std::set<std::string> desired;
  for (DomainRecord record : view_->Domains()) {
    record.set_version(kRecordVersion);
    record.set_host_id(options_.host.host_id());
    const std::string key = DomainKey(options_.prefix, record.uuid());
    desired.insert(key);
    auto seen = seen_domids_.find(record.uuid());
    // A domid this host had not seen for the UUID is a new introduction
    // here (a reboot, a restore or an incoming migration): it claims the
    // domain (see Run for the domains that ran before).
    if (seen == seen_domids_.end() || seen->second != record.domid()) {
      pending_claims_.insert(key);
    }
    seen_domids_[record.uuid()] = record.domid();
    if (!PublishDomain(record, pending_claims_.count(key) != 0)) return false;
    pending_claims_.erase(key);
  }
  for (auto it = domains_.begin(); it != domains_.end();) {
    if (desired.count(it->first) != 0) {
      ++it;
      continue;
    }
    // Gone from this host: removed unless another host wrote it since.
    auto txn = etcd_->Txn({etcd::Compare::ModRevisionIs(it->first, it->second.mod_revision)},
                          {etcd::Op::Delete(it->first)}, {});
    if (!txn.ok()) {
      Failed(txn.status(), "domain removal");
      return false;
    }
    {
      MutexLock lock(&mu_);
      ++stats_.writes;
    }
    it = domains_.erase(it);
  }
  for (auto it = lost_.begin(); it != lost_.end();) {
    it = desired.count(*it) != 0 ? std::next(it) : lost_.erase(it);
  }
  for (auto it = pending_claims_.begin(); it != pending_claims_.end();) {
    it = desired.count(*it) != 0 ? std::next(it) : pending_claims_.erase(it);
  }
  for (auto it = seen_domids_.begin(); it != seen_domids_.end();) {
    it = desired.count(DomainKey(options_.prefix, it->first)) != 0 ? std::next(it)
                                                                   : seen_domids_.erase(it);
  }
  return true;
}

bool Publisher::PublishDomain(const DomainRecord& record, bool claim) {
  const std::string key = DomainKey(options_.prefix, record.uuid());
  const std::string value = Encode(record);
  auto mine = domains_.find(key);
  if (!claim) {
    if (mine != domains_.end() && mine->second.value == value) return true;  // unchanged
    if (lost_.count(key) != 0) return true;                                  // another host's now
  }
  std::vector<etcd::Compare> guard;
  if (claim) {
    // The newest introduction wins: no guard.
  } else if (mine != domains_.end()) {
    guard.push_back(etcd::Compare::ModRevisionIs(key, mine->second.mod_revision));
  } else {
    guard.push_back(etcd::Compare::Missing(key));
  }
  auto txn = etcd_->Txn(guard, {etcd::Op::Put(key, value, lease_)}, {etcd::Op::Get(key)});
  if (!txn.ok()) {
    Failed(txn.status(), "domain publication");
    return false;
  }
  {
    MutexLock lock(&mu_);
    ++stats_.writes;
  }
  if (txn->succeeded) {
    domains_[key] = Published{value, txn->revision};
    lost_.erase(key);
    return true;
  }
  domains_.erase(key);
  // Someone else wrote it. Ours after all (this host before a restart, or
  // the same record): take it over with a guard on what is there now.
  const std::vector<etcd::KeyValue>& now =
      txn->gets.empty() ? std::vector<etcd::KeyValue>() : txn->gets[0];
  if (!now.empty()) {
    auto there = DecodeDomain(options_.prefix, key, now[0].value);
    if (there.ok() && there->host_id() == options_.host.host_id()) {
      auto retake = etcd_->Txn({etcd::Compare::ModRevisionIs(key, now[0].mod_revision)},
                               {etcd::Op::Put(key, value, lease_)}, {});
      if (!retake.ok()) {
        Failed(retake.status(), "domain publication");
        return false;
      }
      if (retake->succeeded) domains_[key] = Published{value, retake->revision};
      return true;
    }
    if (!there.ok()) {
      server::Log("warning", "fleet: refused a record", {{"error", there.status().ToString()}});
    }
    lost_.insert(key);
    MutexLock lock(&mu_);
    ++stats_.domains_lost;
    server::Log(
        "info", "fleet: another host claimed a domain since",
        {{"uuid", record.uuid()}, {"host", there.ok() ? there->host_id() : std::string("?")}});
  }
  // Deleted meanwhile (its owner's lease expired): the next pass writes it
  // if it is still missing.
  return true;
}

bool Publisher::SyncDeclarations() {
  std::map<std::string, std::string> desired;
  for (DeclarationRecord record : view_->Declarations()) {
    record.set_version(kRecordVersion);
    record.set_host_id(options_.host.host_id());
    desired[DeclarationKey(options_.prefix, record.domain_uuid(), record.channel_id())] =
        Encode(record);
  }
  for (const auto& [key, value] : desired) {
    auto mine = declarations_.find(key);
    if (mine != declarations_.end() && mine->second.value == value) continue;
    auto put = etcd_->Put(key, value);
    if (!put.ok()) {
      Failed(put.status(), "declaration publication");
      return false;
    }
    declarations_[key] = Published{value, *put};
    MutexLock lock(&mu_);
    ++stats_.writes;
  }
  std::set<std::string> moved;
  for (const auto& [uuid, channel_id] : view_->MovedAway()) {
    moved.insert(DeclarationKey(options_.prefix, uuid, channel_id));
  }
  for (auto it = declarations_.begin(); it != declarations_.end();) {
    if (desired.count(it->first) != 0) {
      ++it;
      continue;
    }
    if (moved.count(it->first) != 0) {  // the destination's now: not ours to delete
      it = declarations_.erase(it);
      continue;
    }
    // Deleted here (DeleteChannel, or no longer durable): for the fleet too,
    // unless another host wrote it since (the domain moved there).
    auto del = etcd_->Txn({etcd::Compare::ModRevisionIs(it->first, it->second.mod_revision)},
                          {etcd::Op::Delete(it->first)}, {});
    if (!del.ok()) {
      Failed(del.status(), "declaration removal");
      return false;
    }
    {
      MutexLock lock(&mu_);
      ++stats_.writes;
    }
    it = declarations_.erase(it);
  }
  Succeeded();
  return true;
}

}  // namespace fleet
}  // namespace xenchan
