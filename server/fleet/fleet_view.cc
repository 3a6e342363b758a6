// FleetView: see fleet_view.h.
#include "server/fleet/fleet_view.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/fleet/records.h"

namespace xenchan {
namespace fleet {
namespace {

bool SameRecord(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

FleetEvent HostEvent(FleetEvent::Type type, int64_t revision, HostEntry entry) {
  FleetEvent e;
  e.revision = revision;
  e.type = type;
  e.kind = FleetEvent::Kind::kHost;
  e.host = std::move(entry);
  return e;
}

FleetEvent DomainEvent(FleetEvent::Type type, int64_t revision, DomainEntry entry) {
  FleetEvent e;
  e.revision = revision;
  e.type = type;
  e.kind = FleetEvent::Kind::kDomain;
  e.domain = std::move(entry);
  return e;
}

// The events that turn `before` into `after`, at `revision`.
template <class Entry, class MakeEvent>
void Diff(const std::map<std::string, Entry>& before, const std::map<std::string, Entry>& after,
          int64_t revision, MakeEvent make, std::vector<FleetEvent>* out) {
  for (const auto& [id, entry] : before) {
    if (after.count(id) == 0) out->push_back(make(FleetEvent::Type::kDisappeared, revision, entry));
  }
  for (const auto& [id, entry] : after) {
    auto it = before.find(id);
    if (it == before.end()) {
      out->push_back(make(FleetEvent::Type::kAppeared, revision, entry));
    } else if (!SameRecord(it->second.record, entry.record)) {
      out->push_back(make(FleetEvent::Type::kChanged, revision, entry));
    }
  }
}

}  // namespace

FleetView::FleetView(std::string prefix, Limits limits, RefusalCallback on_refused)
    : prefix_(std::move(prefix)),
      hosts_prefix_(HostsPrefix(prefix_)),
      domains_prefix_(DomainsPrefix(prefix_)),
      limits_(limits),
      on_refused_(std::move(on_refused)) {}

bool FleetView::Load(const etcd::KeyValue& kv, std::map<std::string, HostEntry>* hosts,
                     std::map<std::string, DomainEntry>* domains) {
  if (absl::StartsWith(kv.key, hosts_prefix_)) {
    auto record = DecodeHost(prefix_, kv.key, kv.value);
    if (!record.ok()) {
      on_refused_(kv.key, record.status());
      return false;
    }
    if (hosts->count(record->host_id()) == 0 && hosts->size() >= limits_.max_hosts) {
      on_refused_(kv.key, absl::ResourceExhaustedError(absl::StrCat(
                              "more than ", limits_.max_hosts, " hosts: this one is ignored")));
      return false;
    }
    const std::string id = record->host_id();
    (*hosts)[id] = HostEntry{*std::move(record), kv.mod_revision};
    return true;
  }
  if (absl::StartsWith(kv.key, domains_prefix_)) {
    auto record = DecodeDomain(prefix_, kv.key, kv.value);
    if (!record.ok()) {
      on_refused_(kv.key, record.status());
      return false;
    }
    if (domains->count(record->uuid()) == 0 && domains->size() >= limits_.max_domains) {
      on_refused_(kv.key, absl::ResourceExhaustedError(absl::StrCat(
                              "more than ", limits_.max_domains, " domains: this one is ignored")));
      return false;
    }
    const std::string uuid = record->uuid();
    (*domains)[uuid] = DomainEntry{*std::move(record), kv.mod_revision};
    return true;
  }
  return true;  // not ours (declarations/, unknown keys): ignored
}

void FleetView::Reset(const std::vector<etcd::KeyValue>& kvs, int64_t revision) {
  std::map<std::string, HostEntry> hosts;
  std::map<std::string, DomainEntry> domains;
  for (const etcd::KeyValue& kv : kvs) (void)Load(kv, &hosts, &domains);
  if (!loaded_) {
    loaded_ = true;
    floor_ = revision;
  } else {
    std::vector<FleetEvent> events;
    Diff(hosts_, hosts, revision, HostEvent, &events);
    Diff(domains_, domains, revision, DomainEvent, &events);
    FleetEvent resynced;
    resynced.revision = revision;
    resynced.type = FleetEvent::Type::kResynced;
    events.push_back(std::move(resynced));
    for (FleetEvent& e : events) Record(std::move(e));
  }
  hosts_ = std::move(hosts);
  domains_ = std::move(domains);
  revision_ = std::max(revision_, revision);
}

void FleetView::Apply(const std::vector<etcd::Event>& events) {
  // Events at or before what the view already reflects were seen (a watch
  // restarted from an older revision); one transaction's share a revision.
  const int64_t seen = revision_;
  for (const etcd::Event& e : events) {
    if (e.kv.mod_revision <= seen) continue;
    if (e.type == etcd::Event::Type::kDelete) {
      Remove(e.kv.key, e.kv.mod_revision);
    } else {
      Put(e.kv);
    }
    revision_ = std::max(revision_, e.kv.mod_revision);
  }
}

void FleetView::Put(const etcd::KeyValue& kv) {
  if (absl::StartsWith(kv.key, hosts_prefix_)) {
    auto record = DecodeHost(prefix_, kv.key, kv.value);
    if (!record.ok()) {
      on_refused_(kv.key, record.status());
      Remove(kv.key, kv.mod_revision);
      return;
    }
    const std::string id = record->host_id();
    auto it = hosts_.find(id);
    HostEntry entry{*std::move(record), kv.mod_revision};
    if (it == hosts_.end()) {
      if (hosts_.size() >= limits_.max_hosts) {
        on_refused_(kv.key, absl::ResourceExhaustedError(absl::StrCat(
                                "more than ", limits_.max_hosts, " hosts: this one is ignored")));
        return;
      }
      hosts_[id] = entry;
      Record(HostEvent(FleetEvent::Type::kAppeared, kv.mod_revision, std::move(entry)));
    } else {
      const bool same = SameRecord(it->second.record, entry.record);
      it->second = entry;
      if (!same) Record(HostEvent(FleetEvent::Type::kChanged, kv.mod_revision, std::move(entry)));
    }
    return;
  }
  if (absl::StartsWith(kv.key, domains_prefix_)) {
    auto record = DecodeDomain(prefix_, kv.key, kv.value);
    if (!record.ok()) {
      on_refused_(kv.key, record.status());
      Remove(kv.key, kv.mod_revision);
      return;
    }
    const std::string uuid = record->uuid();
    auto it = domains_.find(uuid);
    DomainEntry entry{*std::move(record), kv.mod_revision};
    if (it == domains_.end()) {
      if (domains_.size() >= limits_.max_domains) {
        on_refused_(kv.key,
                    absl::ResourceExhaustedError(absl::StrCat("more than ", limits_.max_domains,
                                                              " domains: this one is ignored")));
        return;
      }
      domains_[uuid] = entry;
      Record(DomainEvent(FleetEvent::Type::kAppeared, kv.mod_revision, std::move(entry)));
    } else {
      const bool same = SameRecord(it->second.record, entry.record);
      it->second = entry;
      if (!same) Record(DomainEvent(FleetEvent::Type::kChanged, kv.mod_revision, std::move(entry)));
    }
  }
}

void FleetView::Remove(const std::string& key, int64_t revision) {
  if (absl::StartsWith(key, hosts_prefix_)) {
    auto it = hosts_.find(key.substr(hosts_prefix_.size()));
    if (it == hosts_.end()) return;
    HostEntry last = std::move(it->second);
    hosts_.erase(it);
    Record(HostEvent(FleetEvent::Type::kDisappeared, revision, std::move(last)));
  } else if (absl::StartsWith(key, domains_prefix_)) {
    auto it = domains_.find(key.substr(domains_prefix_.size()));
    if (it == domains_.end()) return;
    DomainEntry last = std::move(it->second);
    domains_.erase(it);
    Record(DomainEvent(FleetEvent::Type::kDisappeared, revision, std::move(last)));
  }
}

void FleetView::Record(FleetEvent event) {
  history_.push_back(std::move(event));
  // Evict whole revisions, so that the history is complete after floor_.
  while (history_.size() > limits_.max_history) {
    const int64_t evicted = history_.front().revision;
    while (!history_.empty() && history_.front().revision == evicted) history_.pop_front();
    floor_ = std::max(floor_, evicted);
  }
}

absl::Status FleetView::EventsAfter(int64_t after, size_t max, std::vector<FleetEvent>* out) const {
  if (after < floor_ || after > revision_) {
    return absl::OutOfRangeError(absl::StrCat("revision ", after, " is outside the history kept (",
                                              floor_, "..", revision_, ")"));
  }
  auto it = std::upper_bound(history_.begin(), history_.end(), after,
                             [](int64_t r, const FleetEvent& e) { return r < e.revision; });
  for (size_t n = 0; it != history_.end() && n < max; ++it, ++n) out->push_back(*it);
  return absl::OkStatus();
}

}  // namespace fleet
}  // namespace xenchan
