// FakeXenStoreHub: the in-memory xenstored of the fake Xen host. It runs
// xensim's I/O-free sim::xenstore::Store (xenstored's semantics: perms,
// watches, transactions, quotas, introduce/release) behind one lock, and
// hands each connection its replies and watch events directly instead of
// over a socket. FakeXenStore is the client side of one connection.
#ifndef XENCHAN_BACKEND_PLATFORM_FAKE_XENSTORE_HUB_H_
#define XENCHAN_BACKEND_PLATFORM_FAKE_XENSTORE_HUB_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "backend/platform/fake/trace.h"
#include "backend/platform/xenstore.h"
#include "backend/sim/xenstore/store.h"
#include "backend/sim/xenstore/wire.h"
#include "backend/util/mutex.h"

namespace xenchan {

// Ownership: owns the Store; shared (shared_ptr) by the fake host and every
// FakeXenStore. Thread safety: every method is thread-safe; one mutex
// serialises the Store (which has none of its own), so a request is atomic
// with respect to every other connection's, as in single-threaded
// xenstored. Blocking: never beyond that lock.
class FakeXenStoreHub : private sim::xenstore::Store::Delegate {
 public:
  using ConnId = sim::xenstore::ConnId;

  explicit FakeXenStoreHub(std::shared_ptr<FakeTrace> trace,
                           const sim::xenstore::StoreOptions& options = {});
  ~FakeXenStoreHub() override;
  FakeXenStoreHub(const FakeXenStoreHub&) = delete;
  FakeXenStoreHub& operator=(const FakeXenStoreHub&) = delete;

  // A connection acting as `domid` (privileged: the dom0 socket, which
  // ignores perms). `event_fd` (an eventfd owned by the caller, open until
  // Disconnect) is made readable while the connection has watch events
  // queued and drained when the queue empties.
  ConnId Connect(uint32_t domid, bool privileged, int event_fd) ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets a connection (its watches and transactions go). Idempotent.
  void Disconnect(ConnId conn) ABSL_LOCKS_EXCLUDED(mu_);

  // Runs one request (type, tx_id and payload as on the wire) and returns
  // its reply (XS_ERROR replies included). UNAVAILABLE if the connection is
  // gone (disconnected, or its domain released).
  absl::StatusOr<sim::xenstore::Message> Call(ConnId conn, uint32_t type, uint32_t tx_id,
                                              std::string payload) ABSL_LOCKS_EXCLUDED(mu_);
  // The next queued watch event of `conn`, or nullopt.
  std::optional<XsWatchEvent> NextEvent(ConnId conn) ABSL_LOCKS_EXCLUDED(mu_);

  // Runs `read` on the Store under the lock (introspection for tests).
  void Inspect(const std::function<void(const sim::xenstore::Store&)>& read) const
      ABSL_LOCKS_EXCLUDED(mu_);

  FakeTrace& trace() { return *trace_; }

 private:
  struct Conn {
    uint32_t domid = 0;
    int event_fd = -1;
    bool released = false;  // the Store dropped it (XS_RELEASE)
    std::deque<XsWatchEvent> events;
    std::optional<sim::xenstore::Message> reply;  // of the request in flight
  };

  // Store::Delegate; called from inside Store::Handle, so with mu_ held.
  void Send(ConnId conn, std::string frame) override;
  absl::Status DomainIntroduced(uint32_t domid) override;
  void DomainReleased(uint32_t domid, const std::vector<ConnId>& conns) override;

  const std::shared_ptr<FakeTrace> trace_;
  mutable Mutex mu_;
  // Constructed with `this` as its delegate; touched only under mu_.
  sim::xenstore::Store store_ ABSL_GUARDED_BY(mu_);
  std::map<ConnId, Conn> conns_ ABSL_GUARDED_BY(mu_);
  uint32_t next_req_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_FAKE_XENSTORE_HUB_H_
