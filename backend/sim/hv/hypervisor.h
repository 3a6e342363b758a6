// xensim's simulated hypervisor: grant tables and interdomain event channels
// shared by the processes that play domains (dom0 daemons, simulated guests).
//
// The server listens on one SOCK_SEQPACKET Unix socket per domain and speaks
// the protocol documented in protocol.h; client.h is the matching client
// library. Grants are memfd pages passed between processes, so a guest and a
// backend really share ring memory; a bound event channel is a shared page of
// pending and mask words and a wake-up socket per end (protocol.h), so events go from
// peer to peer without this server, which only sets bindings up and ends
// them. The semantics follow Xen where the channel engine can observe them
// (XEN-CHANNELS.md §2.4, §3.4, §4.1, §4.3): bind needs an unbound port
// earmarked for the binder, a bind marks the new port pending, a closed port's
// peer reverts to unbound for the closer, and a destroyed domain whose pages
// are still mapped lingers as a dying ("zombie") domain until the last
// mapping goes.
#ifndef XENCHAN_BACKEND_SIM_HV_HYPERVISOR_H_
#define XENCHAN_BACKEND_SIM_HV_HYPERVISOR_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backend/sim/hv/evtchn_shared.h"
#include "backend/sim/hv/protocol.h"
#include "backend/sim/hv/wire.h"
#include "backend/util/mutex.h"

namespace xenchan {
namespace sim {
namespace hv {

// The simulated hypervisor server.
//
// Ownership: owns its sockets, one epoll thread, and every grant page and
// port. Destroying it stops the thread, closes every connection and removes
// the sockets it created.
//
// Thread safety: all methods are thread-safe. One thread (started by Create)
// does all socket I/O; the shared state is guarded by one mutex that the
// thread and the public methods take for short, non-blocking sections.
// `on_domain_gone` runs on that thread without the mutex held, so it may call
// back into the Hypervisor.
class Hypervisor {
 public:
  struct Options {
    // Socket for domain 0, e.g. <state_dir>/hypervisor.sock. Required.
    std::string dom0_socket;
    // Directory under which CreateDomain makes <domid>/hypervisor.sock.
    // Created if missing. Required.
    std::string domain_socket_dir;
    // Called once for each destroyed domain when it has finally gone (at
    // once if none of its pages was mapped, else when the last mapping is
    // released). Optional.
    std::function<void(uint32_t domid)> on_domain_gone;
  };

  struct DomainInfo {
    bool exists = false;                // created and not yet gone (includes dying)
    bool dying = false;                 // destroyed but some page still mapped by others
    size_t mapped_pages_by_others = 0;  // live mappings of its grants
    uint32_t pause_count = 0;           // controller pauses (protocol.h); runs at 0
  };

  // Binds the dom0 socket and starts the server thread. Domain 0 exists from
  // the start. Raises the process's RLIMIT_NOFILE soft limit to its hard
  // limit, since every live grant holds an open memfd. INVALID_ARGUMENT for empty or too long
  // paths; the errno's code if a socket or directory cannot be made.
  static absl::StatusOr<std::unique_ptr<Hypervisor>> Create(Options options);

  ~Hypervisor();
  Hypervisor(const Hypervisor&) = delete;
  Hypervisor& operator=(const Hypervisor&) = delete;

  // Creates domain `domid` and its socket. INVALID_ARGUMENT for a reserved
  // domid (>= kDomidLimit); ALREADY_EXISTS if it exists (or is dying).
  absl::Status CreateDomain(uint32_t domid) ABSL_LOCKS_EXCLUDED(mu_);

  // Destroys `domid`: removes its socket, closes its connections (their
  // mappings are released and their ports closed, so interdomain peers revert
  // to unbound earmarked for `domid`), and drops its grants. If another
  // domain still maps one of its pages, the domain stays dying until that
  // mapping is released. NOT_FOUND if no such live domain; INVALID_ARGUMENT
  // for domain 0. Does not wait for the domain to be gone.
  absl::Status DestroyDomain(uint32_t domid) ABSL_LOCKS_EXCLUDED(mu_);

  DomainInfo Info(uint32_t domid) const ABSL_LOCKS_EXCLUDED(mu_);

  // The toolstack's pause and unpause of `domid` (protocol.h, "Domain
  // pause"): the count every controller shares, which a new domain starts
  // at 1. NOT_FOUND if no such live domain; INVALID_ARGUMENT for domain 0 or
  // an unpause at 0; OUT_OF_RANGE at the bound.
  absl::Status Pause(uint32_t domid) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Unpause(uint32_t domid) ABSL_LOCKS_EXCLUDED(mu_);

  // Names the process that plays `domid`'s vCPUs, started stopped
  // (SIGSTOP): it gets SIGCONT whenever the domain's pause count reaches 0
  // (at once if it is 0) and SIGSTOP whenever it leaves 0, so a paused
  // domain really does not run. Forgotten when the domain is destroyed.
  // NOT_FOUND if no such live domain.
  absl::Status AttachVcpuProcess(uint32_t domid, pid_t pid) ABSL_LOCKS_EXCLUDED(mu_);

  // Where domain `domid`'s socket is (or would be).
  std::string DomainSocketPath(uint32_t domid) const;

 private:
  // The server's side of one bound pair (protocol.h, "Event channels"):
  // its mapping of the shared page and the wake-up sockets' write ends, for relayed
  // notifies; the page and side 0's read end until side 0's notice has
  // carried them. Ending it (destruction) sets the page's closed flag and
  // closes the server's ends. Lives as long as either port points at it.
  struct Binding {
    Binding() = default;
    Binding(const Binding&) = delete;
    Binding& operator=(const Binding&) = delete;
    ~Binding();
    EvtchnSharedWords* words = nullptr;  // mmap of `page`, kPageSize bytes
    UniqueFd page;                       // until side 0's notice is sent
    UniqueFd read_end0;                  // side 0's read end, until then too
    UniqueFd write_end[2];               // [side]: the write end waking that side
  };
  struct Port {
    enum class State { kUnbound, kInterdomain };
    State state = State::kUnbound;
    uint64_t conn = 0;                 // owning connection
    uint32_t remote_domid = 0;         // earmark (unbound) or peer domain
    uint32_t remote_port = 0;          // peer port when interdomain
    uint32_t side = 0;                 // this end's side in `binding`
    std::shared_ptr<Binding> binding;  // when interdomain
  };
  struct Grant {
    UniqueFd memfd;
    uint32_t to_domid = 0;
    bool readonly = false;
    size_t map_count = 0;
  };
  struct Domain {
    bool dying = false;
    UniqueFd listen_fd;
    std::string socket_path;  // unlinked on destroy
    std::map<uint32_t, Grant> grants;
    uint32_t next_ref = kFirstGrantRef;
    size_t mapped_pages = 0;  // sum of map_count over grants
    std::map<uint32_t, Port> ports;
    std::set<uint64_t> conns;
    uint32_t pause_count = 1;  // created paused
    pid_t vcpu_process = -1;   // AttachVcpuProcess
  };
  struct Mapping {
    uint32_t domid = 0;
    uint32_t ref = 0;
  };
  struct Connection {
    uint32_t domid = 0;
    UniqueFd sock;
    UniqueFd event_sock;         // server end; invalid until kEvtchnOpen
    bool event_blocked = false;  // waiting for EPOLLOUT on event_sock
    bool event_dead = false;     // client end closed; notices dropped
    std::set<uint32_t> notices;  // ports whose notice is still to be sent
    std::map<uint32_t, Mapping> mappings;
    uint32_t next_mapping_id = 1;
    std::set<uint32_t> ports;
  };

  explicit Hypervisor(Options options);

  absl::Status ListenLocked(uint32_t domid, const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  void HandleEventLocked(uint64_t token, uint32_t events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AcceptLocked(uint32_t domid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads and serves up to a batch of the connection's queued requests;
  // closes the connection on end of stream or a malformed message.
  void ServeLocked(uint64_t conn_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Serves one well-formed-size request. Returns false to close the
  // connection (the reply could not be sent).
  bool HandleRequestLocked(uint64_t conn_id, const Request& req, UniqueFd fd)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseConnectionLocked(uint64_t conn_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  int GrantLocked(Connection& conn, const Request& req, UniqueFd fd, uint32_t* ref)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int EndAccessLocked(Connection& conn, const Request& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int MapLocked(Connection& conn, const Request& req, uint32_t* id, UniqueFd* page)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int UnmapLocked(Connection& conn, const Request& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseMappingLocked(const Mapping& mapping) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int EvtchnOpenLocked(uint64_t conn_id, Connection& conn, UniqueFd* client_end)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int AllocUnboundLocked(uint64_t conn_id, Connection& conn, const Request& req, uint32_t* port)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // On success `out` holds the binder's three binding fds (protocol.h).
  int BindInterdomainLocked(uint64_t conn_id, Connection& conn, const Request& req, uint32_t* port,
                            UniqueFd out[3]) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int UnbindLocked(Connection& conn, const Request& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyLocked(Connection& conn, const Request& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pause and unpause (hypervisor_pause.cc); errno results.
  int PauseLocked(uint32_t domid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int UnpauseLocked(uint32_t domid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int PauseRequestLocked(const Connection& conn, const Request& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Lowest free port of `domain`, or 0 if it has kMaxPortsPerDomain.
  static uint32_t FreePort(const Domain& domain);
  // Closes `port` of `domid`: the interdomain peer reverts to unbound.
  void ClosePortLocked(uint32_t domid, uint32_t port) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new binding: the sealed shared page, mapped, and both wake-up sockets; the read
  // end of side 1's goes to `read_end1`. Returns 0 or an errno.
  static int MakeBinding(std::shared_ptr<Binding>* out, UniqueFd* read_end1);
  // Marks `side` of `binding` pending and wakes it unless it is masked.
  static void RaiseLocked(Binding& binding, uint32_t side);
  // Queues a notice about `port` for its owning connection and sends what
  // the event socket takes.
  void QueueNoticeLocked(uint32_t domid, uint32_t port) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends a connection's queued notices while its event socket takes them.
  void FlushNoticesLocked(uint64_t conn_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets a dying domain once nothing maps its pages.
  void MaybeReapLocked(uint32_t domid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeLoop();

  const Options options_;
  UniqueFd epoll_fd_;
  UniqueFd wake_fd_;  // eventfd: stop request or callbacks to fire
  // Kept open to be closed when accept() hits EMFILE (see AcceptLocked);
  // touched only by the server thread.
  UniqueFd reserve_fd_;
  std::thread thread_;

  mutable Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<uint32_t, Domain> domains_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Connection> conns_ ABSL_GUARDED_BY(mu_);
  uint64_t next_conn_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<uint32_t> gone_ ABSL_GUARDED_BY(mu_);  // for on_domain_gone
};

}  // namespace hv
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_HV_HYPERVISOR_H_
