// FleetView: what one xenchand knows of the fleet (docs/FLEET.md): the
// hosts/ and domains/ records read back from etcd, checked by the strict
// codec (records.h), and a bounded history of their changes by etcd revision,
// from which FleetService's WatchFleet streams are served and resumed. Pure
// state without I/O or threads: FleetReader (reader.h) feeds it what etcd
// says; tests feed it directly.
//
// Untrusted input: a value the codec refuses (bad JSON, oversized, unknown
// version, ids that do not match the key) is reported to the refusal
// callback with its key and treated as absent: a record that was known and
// is overwritten by a bad value disappears. Keys outside hosts/ and domains/
// (declarations/, anything unknown) are ignored. Memory is bounded: at most
// Limits::max_hosts hosts and max_domains domains (more are refused like bad
// values), and max_history events.
//
// Thread safety: none; FleetReader guards it with its lock.
#ifndef XENCHAN_SERVER_FLEET_FLEET_VIEW_H_
#define XENCHAN_SERVER_FLEET_FLEET_VIEW_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/etcd/client.h"
#include "xenchan/fleet/v1/records.pb.h"

namespace xenchan {
namespace fleet {

// A host's record and the etcd revision it was written at.
struct HostEntry {
  v1::HostRecord record;
  int64_t mod_revision = 0;
};

// A domain's record and the etcd revision it was written at.
struct DomainEntry {
  v1::DomainRecord record;
  int64_t mod_revision = 0;
};

// One change of the view.
struct FleetEvent {
  enum class Type {
    kAppeared,
    kChanged,
    kDisappeared,
    // The view was re-read from etcd (after a compaction or a lost watch):
    // the events before it at the same revision are the difference.
    kResynced,
  };
  enum class Kind { kHost, kDomain, kNone };
  int64_t revision = 0;
  Type type = Type::kAppeared;
  Kind kind = Kind::kNone;
  HostEntry host;      // kHost: the record after the change (kDisappeared: the last one)
  DomainEntry domain;  // kDomain: idem
};

class FleetView {
 public:
  struct Limits {
    size_t max_hosts = 4096;
    size_t max_domains = 65536;
    size_t max_history = 8192;
  };
  // Told about every value refused, with its key and why.
  using RefusalCallback = std::function<void(const std::string& key, const absl::Status& why)>;

  FleetView(std::string prefix, Limits limits, RefusalCallback on_refused);

  // Replaces the state with a snapshot of every key under hosts/ and
  // domains/ read at `revision`. The first reset starts the history at
  // `revision`; later ones record the differences as events at `revision`,
  // followed by a kResynced event.
  void Reset(const std::vector<etcd::KeyValue>& kvs, int64_t revision);
  // Applies watch events (in revision order).
  void Apply(const std::vector<etcd::Event>& events);

  // Whether a snapshot was loaded.
  bool loaded() const { return loaded_; }
  // The newest etcd revision the view reflects.
  int64_t revision() const { return revision_; }
  // The history holds every change after this revision.
  int64_t floor() const { return floor_; }
  const std::map<std::string, HostEntry>& hosts() const { return hosts_; }
  const std::map<std::string, DomainEntry>& domains() const { return domains_; }

  // Appends the events after revision `after` to `out`, at most `max`; more
  // remain if it returns with `max` added. OUT_OF_RANGE if `after` is before
  // floor() or after revision().
  absl::Status EventsAfter(int64_t after, size_t max, std::vector<FleetEvent>* out) const;

 private:
  // Decodes one put into the maps (no event); false if refused.
  bool Load(const etcd::KeyValue& kv, std::map<std::string, HostEntry>* hosts,
            std::map<std::string, DomainEntry>* domains);
  void Put(const etcd::KeyValue& kv);
  void Remove(const std::string& key, int64_t revision);
  void Record(FleetEvent event);

  const std::string prefix_;
  const std::string hosts_prefix_;
  const std::string domains_prefix_;
  const Limits limits_;
  const RefusalCallback on_refused_;

  bool loaded_ = false;
  int64_t revision_ = 0;
  int64_t floor_ = 0;
  std::map<std::string, HostEntry> hosts_;      // by host id
  std::map<std::string, DomainEntry> domains_;  // by UUID
  std::deque<FleetEvent> history_;
};

}  // namespace fleet
}  // namespace xenchan

#endif  // XENCHAN_SERVER_FLEET_FLEET_VIEW_H_
