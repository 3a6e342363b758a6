// FleetReader: the reading side of the fleet (docs/FLEET.md, issue 13 item
// 4). One thread reads every hosts/ and domains/ record from etcd in one
// transaction, then follows them with a prefix watch, keeping a FleetView
// (fleet_view.h): the current records and a bounded history of changes.
// FleetService answers from it, so no RPC ever waits for etcd.
//
// etcd away: the view keeps the last state seen; the thread retries with
// backoff (from the last revision seen, so nothing is missed), and re-reads
// everything if etcd compacted what it had not seen (the differences become
// events followed by a kResynced). Each change of connectivity is logged
// once. Values the codec refuses are logged with their key ("fleet: refused
// etcd value") and treated as absent.
//
// Ownership: shares the etcd client; owns its thread, joined by the
// destructor. Thread safety: every method may be called from any thread.
// Subscribers' callbacks run on the reader's thread, without the reader's
// lock: they must be quick and must not call Unsubscribe.
#ifndef XENCHAN_SERVER_FLEET_READER_H_
#define XENCHAN_SERVER_FLEET_READER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/util/mutex.h"
#include "server/etcd/client.h"
#include "server/fleet/fleet_view.h"

namespace xenchan {
namespace fleet {

struct FleetReaderOptions {
  FleetView::Limits limits;
  // Retry delays while etcd does not answer (doubling from min to max).
  absl::Duration retry_min = absl::Milliseconds(100);
  absl::Duration retry_max = absl::Seconds(5);
  // How long one wait for watch events lasts (bounds how long stopping takes).
  absl::Duration poll = absl::Milliseconds(500);
};

class FleetReader {
 public:
  // Starts reading the fleet under `prefix` (checked: INVALID_ARGUMENT).
  // etcd being down is not an error: the reader keeps trying.
  static absl::StatusOr<std::unique_ptr<FleetReader>> Start(std::shared_ptr<etcd::Client> client,
                                                            std::string prefix,
                                                            FleetReaderOptions options = {});
  ~FleetReader();
  FleetReader(const FleetReader&) = delete;
  FleetReader& operator=(const FleetReader&) = delete;

  const std::string& prefix() const { return prefix_; }

  // Runs `read` on the view under the reader's lock, if a snapshot was
  // loaded; UNAVAILABLE otherwise (etcd never answered yet). `read` must be
  // quick and must not call the reader.
  absl::Status Read(const std::function<void(const FleetView&)>& read) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // The highest revision etcd reported as compacted (0: none seen). Learnt
  // with each full read (before the view changes) and whenever the watch
  // hits a compaction.
  int64_t compacted_revision() const ABSL_LOCKS_EXCLUDED(mu_);

  // `on_change` runs after every change of the view. Returns an id for
  // Unsubscribe, after which it is not called again.
  uint64_t Subscribe(std::function<void()> on_change) ABSL_LOCKS_EXCLUDED(subscribers_mu_);
  void Unsubscribe(uint64_t id) ABSL_LOCKS_EXCLUDED(subscribers_mu_);

  // Waits until the view reflects etcd revision `revision` (0: until loaded).
  // For tests and start-up. False on timeout.
  bool WaitForRevision(int64_t revision, absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  FleetReader(std::shared_ptr<etcd::Client> client, std::string prefix, FleetReaderOptions options);
  void Run();
  // One full read; false if etcd did not answer.
  bool LoadSnapshot();
  // Asks etcd how far its history is compacted (a watch from revision 1).
  void ProbeCompaction();
  void NoteCompaction(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  void SetConnected(bool connected, const absl::Status& why);
  void Notify() ABSL_LOCKS_EXCLUDED(subscribers_mu_);
  // Sleeps `delay` unless stopping; false if stopping.
  bool Backoff(absl::Duration delay) ABSL_LOCKS_EXCLUDED(mu_);

  const std::shared_ptr<etcd::Client> client_;
  const std::string prefix_;
  const FleetReaderOptions options_;

  mutable Mutex mu_;
  mutable CondVar cv_;
  FleetView view_ ABSL_GUARDED_BY(mu_);
  int64_t compacted_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  etcd::Watch* watch_ ABSL_GUARDED_BY(mu_) = nullptr;  // to cancel when stopping

  Mutex subscribers_mu_;
  uint64_t next_subscriber_ ABSL_GUARDED_BY(subscribers_mu_) = 1;
  std::map<uint64_t, std::shared_ptr<std::function<void()>>> subscribers_
      ABSL_GUARDED_BY(subscribers_mu_);

  bool connected_ = true;  // reader thread only: for logging changes once
  std::thread thread_;
};

}  // namespace fleet
}  // namespace xenchan

#endif  // XENCHAN_SERVER_FLEET_READER_H_
