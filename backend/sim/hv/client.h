// Client library for xensim's simulated hypervisor (hypervisor.h): what a
// process playing a domain uses to grant pages, map other domains' grants and
// use interdomain event channels. The protocol is in protocol.h.
//
// Which domain a process acts as is decided by the socket it connects to:
// dom0 uses the hypervisor's dom0 socket, domain D uses
// <domain_socket_dir>/D/hypervisor.sock.
//
// Error codes (from the server's errno): INVALID_ARGUMENT (EINVAL: no such
// grant/port, port not unbound or not earmarked for us, bad argument),
// NOT_FOUND (ESRCH: no such live domain), PERMISSION_DENIED (EACCES: grant
// not for us, or read-only), FAILED_PRECONDITION (EBUSY: grant still mapped;
// EBADF: event channels not opened), RESOURCE_EXHAUSTED (ENOSPC: a limit),
// UNAVAILABLE (the hypervisor is gone or the connection broke; the object is
// then unusable), DEADLINE_EXCEEDED (no reply within 30 s).
#ifndef XENCHAN_BACKEND_SIM_HV_CLIENT_H_
#define XENCHAN_BACKEND_SIM_HV_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/sim/hv/evtchn_shared.h"
#include "backend/sim/hv/protocol.h"
#include "backend/sim/hv/wire.h"
#include "backend/util/mutex.h"

namespace xenchan {
namespace sim {
namespace hv {

// Converts a server errno (or a transport errno) into a Status, per the
// table above.
absl::Status HvErrnoToStatus(int err, absl::string_view what);

// Creates a zeroed page that GrantPage accepts: a memfd of kPageSize bytes,
// created with MFD_ALLOW_SEALING | MFD_CLOEXEC. The caller mmaps it to use it.
absl::StatusOr<UniqueFd> CreateGrantablePage();

namespace internal {

// One request/reply control connection. Thread-safe: requests are serialised
// by a mutex, each one blocks until its reply (bounded by a 30 s timeout).
class RpcChannel {
 public:
  static absl::StatusOr<std::shared_ptr<RpcChannel>> Connect(const std::string& socket_path);

  // Sends a request (with `fd` attached unless negative) and waits for its
  // reply. `value` and `reply_fd` may be null when unused; `reply_fd` is an
  // array of the `reply_fd_count` fds the reply must carry.
  absl::Status Call(uint32_t type, uint32_t a0, uint32_t a1, uint32_t a2, int fd, uint32_t* value,
                    UniqueFd* reply_fd, size_t reply_fd_count = 1) ABSL_LOCKS_EXCLUDED(mu_);
  // Sends a request that has no reply (kNotify).
  absl::Status Send(uint32_t type, uint32_t a0) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit RpcChannel(UniqueFd sock) : sock_(std::move(sock)) {}

  Mutex mu_;
  UniqueFd sock_ ABSL_GUARDED_BY(mu_);
  uint32_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace internal

// A mapping of another domain's granted page. munmaps and releases the
// mapping (kUnmap) when destroyed; it keeps its connection's channel alive,
// so it may outlive the HvConnection that made it.
// Thread safety: data() may be read from any thread; destroy from one.
class HvMapping {
 public:
  ~HvMapping();
  HvMapping(const HvMapping&) = delete;
  HvMapping& operator=(const HvMapping&) = delete;

  // kPageSize bytes shared with the granting process.
  void* data() const { return addr_; }
  bool writable() const { return writable_; }

 private:
  friend class HvConnection;
  HvMapping(std::shared_ptr<internal::RpcChannel> channel, void* addr, uint32_t id, bool writable)
      : channel_(std::move(channel)), addr_(addr), id_(id), writable_(writable) {}

  std::shared_ptr<internal::RpcChannel> channel_;
  void* const addr_;
  const uint32_t id_;
  const bool writable_;
};

// A connection for grant operations, both the granting (guest) side and the
// mapping (backend) side. Thread-safe; each call blocks for one round trip.
class HvConnection {
 public:
  // UNAVAILABLE if nothing listens at `socket_path`.
  static absl::StatusOr<std::unique_ptr<HvConnection>> Connect(const std::string& socket_path);

  // Grants `memfd` (see CreateGrantablePage; it is sealed against resizing
  // and kept by the hypervisor, the caller keeps its own descriptor) to
  // `to_domid`. Returns the grant ref. The grant belongs to the domain and
  // outlives this connection until EndAccess or domain destruction.
  absl::StatusOr<uint32_t> GrantPage(int memfd, uint32_t to_domid, bool readonly);
  // Revokes grant `ref`. FAILED_PRECONDITION while it is mapped.
  absl::Status EndAccess(uint32_t ref);
  // Maps grant `ref` of `domid`, read-write if `writable`.
  absl::StatusOr<std::unique_ptr<HvMapping>> MapGrant(uint32_t domid, uint32_t ref, bool writable);
  // dom0 only (PERMISSION_DENIED otherwise): adds to / takes from domain
  // `domid`'s controller pause count (protocol.h, "Domain pause").
  // NOT_FOUND if no such live domain; INVALID_ARGUMENT for domain 0 or an
  // unpause of a domain nobody paused; OUT_OF_RANGE at the bound.
  absl::Status PauseDomain(uint32_t domid);
  absl::Status UnpauseDomain(uint32_t domid);

 private:
  explicit HvConnection(std::shared_ptr<internal::RpcChannel> channel)
      : channel_(std::move(channel)) {}
  std::shared_ptr<internal::RpcChannel> channel_;
};

// An event-channel handle (its own connection): the simulated counterpart of
// a xenevtchn handle. Its ports close when it is destroyed or its process
// dies.
//
// The data path is local (protocol.h, "Event channels"): Notify sets the
// peer's pending word and wakes its socket unless it is masked, Unmask
// clears this end's mask and re-delivers if a notify came meanwhile, and
// Pending takes a port from the wake-up sockets that fired (an epoll set,
// fd()). Only the binding's set-up and end go through the hypervisor. The
// shared words are hints from a possibly hostile peer: a port is masked or
// not by this handle's own state, and a peer that scribbles on them or wakes
// us at will can only cause spurious events on its own channel, at most one
// per unmask (a port that fires while masked is taken out of the epoll set
// until unmasked).
//
// Thread-safe; AllocUnbound, BindInterdomain and Unbind block for one round
// trip; Notify, Pending and Unmask never block (Notify sends one message to
// the hypervisor when the binding is unknown or ended).
class HvEvtchn {
 public:
  // Raises the process's RLIMIT_NOFILE soft limit to its hard limit (each
  // bound port holds two descriptors).
  static absl::StatusOr<std::unique_ptr<HvEvtchn>> Open(const std::string& socket_path);
  ~HvEvtchn();
  HvEvtchn(const HvEvtchn&) = delete;
  HvEvtchn& operator=(const HvEvtchn&) = delete;

  // Readable when Pending() may return a port.
  int fd() const { return epoll_fd_.get(); }
  // A new local port, unbound and earmarked for `remote_domid`.
  absl::StatusOr<uint32_t> AllocUnbound(uint32_t remote_domid) ABSL_LOCKS_EXCLUDED(mu_);
  // Binds to `remote_port` of `remote_domid`; the new local port fires once.
  absl::StatusOr<uint32_t> BindInterdomain(uint32_t remote_domid, uint32_t remote_port)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Unbind(uint32_t port) ABSL_LOCKS_EXCLUDED(mu_);
  // Signals the peer of `port`. INVALID_ARGUMENT if `port` is not ours.
  absl::Status Notify(uint32_t port) ABSL_LOCKS_EXCLUDED(mu_);
  // A fired port of ours (now masked), or nullopt if none is waiting.
  // UNAVAILABLE once the hypervisor has gone.
  absl::StatusOr<std::optional<uint32_t>> Pending() ABSL_LOCKS_EXCLUDED(mu_);
  // Unmasks `port`; a firing while it was masked is delivered now.
  absl::Status Unmask(uint32_t port) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // One end of a binding as this handle holds it (protocol.h).
  struct Binding {
    Binding() = default;
    Binding(const Binding&) = delete;
    Binding& operator=(const Binding&) = delete;
    ~Binding();
    uint64_t serial = 0;  // epoll token's high half: tells stale events apart
    uint32_t side = 0;
    EvtchnSharedWords* words = nullptr;  // kPageSize bytes, shared
    UniqueFd read_end;                   // own wake-up socket
    UniqueFd peer_write_end;             // the peer's
  };
  struct LocalPort {
    bool masked = false;               // authoritative; published in words->mask
    bool fired_while_masked = false;   // deliver again at unmask
    bool disarmed = false;             // read end out of the epoll set until unmask
    bool queued = false;               // in fired_ already
    std::unique_ptr<Binding> binding;  // null while unbound or not yet known
  };

  HvEvtchn(std::shared_ptr<internal::RpcChannel> channel, UniqueFd event_sock)
      : channel_(std::move(channel)), event_sock_(std::move(event_sock)) {}
  absl::Status Init();

  // Installs a binding from its three fds (page, own read end, peer write
  // end) for `port`, replacing any other.
  absl::Status InstallLocked(uint32_t port, uint32_t side, UniqueFd fds[3])
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops `lp`'s binding; a pending word left in it is delivered later.
  void DropBindingLocked(uint32_t port, LocalPort& lp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies the notices waiting on the event socket.
  absl::Status ReadNoticesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues `port` for delivery by Pending and wakes fd().
  void RedeliverLocked(uint32_t port) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends `port` to fired_ unless it is there already.
  void QueueFiredLocked(uint32_t port) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Delivery of a port that fired: masks it and returns true, or (masked
  // already) remembers it for the unmask and returns false.
  bool TakeLocked(uint32_t port) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<internal::RpcChannel> channel_;
  const UniqueFd event_sock_;
  UniqueFd epoll_fd_;
  UniqueFd redeliver_fd_;  // private eventfd: RedeliverLocked's wake-up
  Mutex mu_;
  std::map<uint32_t, LocalPort> ports_ ABSL_GUARDED_BY(mu_);
  std::deque<uint32_t> fired_ ABSL_GUARDED_BY(mu_);    // fetched, not yet taken
  std::set<uint32_t> redeliver_ ABSL_GUARDED_BY(mu_);  // for RedeliverLocked
  uint64_t next_serial_ ABSL_GUARDED_BY(mu_) = 1;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // the hypervisor went away
};

}  // namespace hv
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_HV_CLIENT_H_
