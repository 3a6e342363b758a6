// XenstoreServer: the simulated xenstored of xensim, serving the real
// xenstored socket protocol so that Debian's libxenstore and xenstore-utils
// work against it unchanged.
//
// Sockets (all Unix stream sockets; protocol in wire.h, semantics in
// store.h):
//  * `Options::socket_path`: the privileged (dom0) socket. Every connection
//    on it acts as dom0: it ignores permissions and may send
//    XS_INTRODUCE / XS_RELEASE / XS_SET_TARGET / XS_RESUME / XS_CONTROL /
//    XS_IS_DOMAIN_INTRODUCED. Clients: `XENSTORED_PATH=<socket_path>` then
//    `xs_open(0)`, or `XENSTORED_PATH=... xenstore-ls /`.
//  * Per-domain sockets: when dom0 introduces domain D
//    (`xs_introduce_domain(h, D, mfn, port)`; mfn is ignored, port must be
//    > 0), the server creates DomainSocketPath(D), by default
//    `<state_dir>/domains/<D>/xenstored.sock` (directories created as
//    needed), and fires "@introduceDomain". Every connection on that socket
//    acts as unprivileged domain D: relative paths resolve against
//    /local/domain/D, permissions and quotas apply. A guest process connects
//    with `XENSTORED_PATH=DomainSocketPath(D)`.
//    `xs_release_domain(h, D)` closes that socket and all of D's
//    connections, removes every node D owns (firing watches), and fires
//    "@releaseDomain"; `xs_is_domain_introduced` is then false.
//  * Unix socket paths must be shorter than 108 bytes (sun_path); Create()
//    and XS_INTRODUCE fail (INVALID_ARGUMENT / EIO) otherwise.
//
// Initial tree: "/", "/tool", "/tool/xenstored" (as xenstored makes it). A
// toolstack (xensim) writes /local/domain/N/... itself over the dom0 socket.
//
// Hostile clients: a header announcing more than 4096 payload bytes closes
// the connection (as xenstored); a connection that closes mid-message is
// dropped; unknown types get XS_ERROR "ENOSYS" (as xenstored 4.17). A client
// that sends without reading is no longer read from once
// `output_soft_limit` bytes of replies wait for it (reading resumes when it
// drains); one whose queue exceeds `output_hard_limit` (e.g. watch events
// it never reads) is disconnected. At most `max_connections` connections
// are open at once; more are accepted and closed at once.
//
// Threading: Create() starts one thread running an epoll loop that owns the
// Store and every socket, so the protocol state needs no locks. Public
// methods are thread-safe. The destructor stops the thread, closes every
// connection and removes every socket file the server made.
#ifndef XENCHAN_BACKEND_SIM_XENSTORE_SERVER_H_
#define XENCHAN_BACKEND_SIM_XENSTORE_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backend/sim/xenstore/store.h"
#include "backend/sim/xenstore/wire.h"
#include "backend/util/mutex.h"

namespace xenchan::sim::xenstore {

class XenstoreServer : private Store::Delegate {
 public:
  struct Options {
    // The dom0 socket. Required. Its directory must exist; a stale socket
    // file at that path is replaced (any other file is an error).
    std::string socket_path;
    // Root for per-domain sockets in the default layout
    // (<state_dir>/domains/<domid>/xenstored.sock). Required unless
    // `domain_socket_path` is set.
    std::string state_dir;
    // Optional: maps a domid to its socket path instead of the default
    // layout. Called on the server thread; must be thread-compatible.
    std::function<std::string(uint32_t domid)> domain_socket_path;
    // Limits against misbehaving clients (see the file comment).
    size_t max_connections = 256;
    size_t output_soft_limit = 256 * 1024;
    size_t output_hard_limit = 4 * 1024 * 1024;
    // Quotas of the store (xenstored defaults).
    StoreOptions store;
  };

  // Binds the dom0 socket and starts the server thread. Errors:
  // INVALID_ARGUMENT (missing option, path too long for a Unix socket),
  // FAILED_PRECONDITION (path taken by a non-socket file), INTERNAL or
  // UNAVAILABLE for system call failures.
  static absl::StatusOr<std::unique_ptr<XenstoreServer>> Create(Options options);

  // Stops the thread, closes every connection, unlinks every socket.
  ~XenstoreServer() override;
  XenstoreServer(const XenstoreServer&) = delete;
  XenstoreServer& operator=(const XenstoreServer&) = delete;

  // The dom0 socket path.
  const std::string& socket_path() const { return options_.socket_path; }

  // Where domain `domid`'s socket is (or will be once introduced).
  std::string DomainSocketPath(uint32_t domid) const;

  // Runs `fn` on the server thread with the store, and waits for it. For
  // tests and diagnostics: `fn` must only read, and must not block. Must
  // not be called from the server thread (it would deadlock).
  void Inspect(const std::function<void(const Store&)>& fn) ABSL_LOCKS_EXCLUDED(mu_);

  // I/O counters, to check the bounds on misbehaving clients.
  struct Stats {
    size_t connections = 0;         // Open client connections.
    size_t max_output_queued = 0;   // Largest reply queue (bytes) now.
    size_t max_input_buffered = 0;  // Largest unparsed input (bytes) now.
    size_t domain_sockets = 0;      // Per-domain sockets listening.
  };
  // Blocks until the server thread has taken the numbers. Same calling rule
  // as Inspect().
  Stats GetStats() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Conn {
    int fd = -1;
    ConnId store_id = 0;
    FrameParser parser;
    std::deque<std::string> out;
    size_t out_offset = 0;  // Bytes of out.front() already written.
    size_t out_bytes = 0;   // Unwritten bytes queued.
    uint32_t epoll_events = 0;
    bool closing = false;
  };
  struct Listener {
    int fd = -1;
    uint32_t domid = 0;
    bool privileged = false;
    std::string path;
  };

  explicit XenstoreServer(Options options);

  // Store::Delegate (server thread).
  void Send(ConnId conn, std::string frame) override;
  absl::Status DomainIntroduced(uint32_t domid) override;
  void DomainReleased(uint32_t domid, const std::vector<ConnId>& conns) override;

  // Server thread.
  void Run();
  absl::StatusOr<uint64_t> AddListener(const std::string& path, uint32_t domid, bool privileged);
  void CloseListener(uint64_t tag);
  void Accept(uint64_t tag);
  void OnConnEvent(uint64_t tag, uint32_t events);
  void ProcessInput(Conn& conn);
  void Flush(Conn& conn);
  void UpdateInterest(Conn& conn);
  void ScheduleClose(uint64_t tag);
  void CloseScheduled();
  void RunTasks() ABSL_LOCKS_EXCLUDED(mu_);
  // Runs `task` on the server thread and waits for it (other threads only).
  void RunOnLoop(const std::function<void()>& task) ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;

  // Owned by the server thread once it runs.
  Store store_;
  uint64_t next_tag_ = 2;  // Tag 1 is the wake-up eventfd.
  std::map<uint64_t, Listener> listeners_;
  std::map<uint32_t, uint64_t> domain_listeners_;  // domid -> tag
  std::map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::map<ConnId, uint64_t> conn_tags_;  // Store id -> tag.
  std::vector<uint64_t> to_close_;
  bool accept_paused_ = false;  // Listeners muted after EMFILE.

  // Requests from other threads.
  Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace xenchan::sim::xenstore

#endif  // XENCHAN_BACKEND_SIM_XENSTORE_SERVER_H_
