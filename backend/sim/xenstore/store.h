// The simulated xenstored's data model and request semantics, without I/O.
//
// Store implements what xenstored 4.17 does with a decoded request: the node
// tree, permissions, watches, transactions, per-domain quotas and domain
// introduction/release. It never touches a socket: replies and watch events
// leave through the Delegate as ready-to-send frames, so it can be unit-tested
// by feeding Messages and looking at the frames.
//
// Semantics (checked against xen tools/xenstore/xenstored_*.c, 4.17):
//  * Tree rooted at "/"; initial nodes "/", "/tool", "/tool/xenstored", owned
//    by dom0 with perms "n0". Children are listed in creation order.
//  * Paths: absolute paths start with '/', have no "//", no trailing '/',
//    only [A-Za-z0-9-/_@], and at most 2048 bytes after "/local/domain/N/"
//    (XENSTORE_REL_PATH_MAX). Relative paths resolve against the
//    connection's "/local/domain/<domid>" (dom0: /local/domain/0).
//  * Permissions: entry 0 names the owner, whose flag is the default for
//    domains not listed; the owner (and the owner's target, see
//    XS_SET_TARGET) has read+write; privileged connections ignore perms.
//    New nodes inherit the parent's perms, and an unprivileged creator
//    becomes the owner. Writing creates missing parents. Only privileged
//    connections may change the owner (else EPERM). Denied accesses give
//    EACCES, and ENOENT is reported only if the nearest existing ancestor
//    lets the caller see it.
//  * Watches: fire once on registration, then on write/mkdir/rm/set-perms of
//    the watched path or anything below it; a recursive rm fires the removed
//    node's path for watches on it or above it, and each removed descendant's
//    exact path for watches on exactly that descendant. Events are sent only
//    to connections that can read the node (or its parent). Relative watches
//    get relative paths. "@introduceDomain" / "@releaseDomain" fire on
//    XS_INTRODUCE / XS_RELEASE, to privileged connections and to domains
//    granted read on them with XS_SET_PERMS.
//  * Transactions: each node read or written in a transaction is copied on
//    first access with its generation; XS_TRANSACTION_END "T" fails with
//    EAGAIN if any of them changed in the meantime, else applies the changes
//    atomically and then fires their watches. "F" discards.
//  * Quotas for unprivileged domains (xenstored defaults): 1000 nodes per
//    domain, 128 watches per domain, 10 open transactions per connection
//    (xenstored allows one more than the limit), node size 2048 bytes, 5
//    perms entries per node. Exceeding gives ENOSPC (E2BIG for watches).
//  * Unknown message types get ENOSYS (as xenstored 4.17, not EINVAL);
//    XS_CONTROL, XS_INTRODUCE, XS_RELEASE, XS_RESUME, XS_SET_TARGET and
//    XS_IS_DOMAIN_INTRODUCED need a privileged connection (else EACCES).
//  * XS_RELEASE drops the domain's connections (watches, transactions), then
//    removes every node the domain owns with its subtree (firing watches),
//    marks other nodes' perms entries for it as ignored, marks it not
//    introduced and fires "@releaseDomain".
//
// Thread safety: none. One thread (the server's loop) owns a Store.
#ifndef XENCHAN_BACKEND_SIM_XENSTORE_STORE_H_
#define XENCHAN_BACKEND_SIM_XENSTORE_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/sim/xenstore/wire.h"

namespace xenchan::sim::xenstore {

// Permission bits as in <xenstore_lib.h>.
inline constexpr uint32_t kPermNone = 0;
inline constexpr uint32_t kPermRead = 1;
inline constexpr uint32_t kPermWrite = 2;
inline constexpr uint32_t kPermOwner = 8;  // Computed only, never stored.

// One permission entry: domain `id` gets `perms` (kPermRead|kPermWrite).
// `ignored` marks a non-owner entry naming a domain that was released after
// the entry was set (xenstored's XS_PERM_IGNORE): it no longer grants
// anything, so a later domain reusing the domid does not inherit it. It is
// still listed by XS_GET_PERMS, as xenstored does.
struct Perm {
  uint32_t id = 0;
  uint32_t perms = kPermNone;
  bool ignored = false;
  bool operator==(const Perm& o) const {
    return id == o.id && perms == o.perms && ignored == o.ignored;
  }
};

// Parses a xenstore perms string ("r5", "b0", "n12", "w3"); nullopt if bad.
std::optional<Perm> ParsePerm(absl::string_view s);
// Formats a perm as xenstore does ("b0").
std::string FormatPerm(const Perm& perm);

// Identifies a client connection inside the Store.
using ConnId = uint64_t;

// Quotas and limits; defaults are xenstored 4.17's.
struct StoreOptions {
  int nodes_per_domain = 1000;
  int watches_per_domain = 128;
  int transactions_per_connection = 10;
  int max_node_size = 2048;
  int perms_per_node = 5;
  int max_relative_path = 2048;  // XENSTORE_REL_PATH_MAX
};

// A node as stored (exposed read-only for tests and introspection).
struct Node {
  std::string data;
  std::vector<std::string> children;  // Names, in creation order.
  std::vector<Perm> perms;            // Never empty; [0] is the owner.
  uint64_t generation = 0;            // Changes on every modification.
};

class Store {
 public:
  // Where the Store's output goes. Called synchronously from Handle() and
  // ReleaseDomain(); implementations must not call back into the Store.
  class Delegate {
   public:
    virtual ~Delegate() = default;
    // Queue `frame` (one encoded message) for connection `conn`.
    virtual void Send(ConnId conn, std::string frame) = 0;
    // XS_INTRODUCE of a new domain: make its per-domain socket. An error
    // fails the request with EIO and leaves the domain not introduced.
    virtual absl::Status DomainIntroduced(uint32_t domid) = 0;
    // XS_RELEASE: the Store has already forgotten `conns` (that domain's
    // connections); close them and the domain's socket.
    virtual void DomainReleased(uint32_t domid, const std::vector<ConnId>& conns) = 0;
  };

  // `delegate` must outlive the Store.
  Store(const StoreOptions& options, Delegate* delegate);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Registers a connection acting as `domid`. A privileged connection (the
  // dom0 socket) ignores perms and quotas. Returns its id (never reused).
  ConnId AddConnection(uint32_t domid, bool privileged);
  // Forgets a connection: its watches and transactions go. Idempotent.
  void RemoveConnection(ConnId conn);

  // Processes one request from `conn` and sends its reply (and any watch
  // events) through the Delegate. Unknown connections are ignored.
  void Handle(ConnId conn, const Message& request);

  // Read-only introspection (tests, diagnostics).
  const Node* Find(absl::string_view path) const;
  size_t node_count() const { return nodes_.size(); }
  int OwnedNodeCount(uint32_t domid) const;
  bool IsIntroduced(uint32_t domid) const;
  size_t connection_count() const { return conns_.size(); }
  bool HasConnection(ConnId conn) const { return conns_.count(conn) > 0; }
  size_t WatchCount(ConnId conn) const;
  size_t TransactionCount(ConnId conn) const;

 private:
  struct Watch {
    std::string node;  // Absolute path or "@..." special.
    std::string token;
    bool relative = false;
  };
  struct PendingEvent {
    std::string path;
    bool exact = false;
    std::optional<std::vector<Perm>> perms;  // Perms before the change.
  };
  struct Transaction {
    uint32_t id = 0;
    // Every node accessed: its copy inside the transaction (nullopt =
    // absent), the global generation at first access (0 = absent), and the
    // perms it had then.
    std::map<std::string, std::optional<Node>> nodes;
    std::map<std::string, uint64_t> base_generation;
    std::map<std::string, std::optional<std::vector<Perm>>> base_perms;
    std::set<std::string> modified;
    std::map<uint32_t, int> owned_delta;  // Node count changes per domain.
    std::vector<PendingEvent> events;
  };
  struct Connection {
    ConnId id = 0;
    uint32_t domid = 0;
    bool privileged = false;
    std::vector<Watch> watches;
    std::map<uint32_t, std::unique_ptr<Transaction>> transactions;
    uint32_t next_transaction_id = 1;
  };
  struct Domain {
    std::optional<uint32_t> target;
  };
  // The context of one request.
  struct Ctx {
    Connection* conn;
    Transaction* tx;  // nullptr outside a transaction.
    const Message* req;
  };

  // Request handlers: return 0 after sending a reply, or an errno to send.
  int DoDirectory(Ctx& c, bool part);
  int DoRead(Ctx& c);
  int DoGetPerms(Ctx& c);
  int DoWatch(Ctx& c);
  int DoUnwatch(Ctx& c);
  int DoTransactionStart(Ctx& c);
  int DoTransactionEnd(Ctx& c);
  int DoIntroduce(Ctx& c);
  int DoRelease(Ctx& c);
  int DoResume(Ctx& c);
  int DoGetDomainPath(Ctx& c);
  int DoWrite(Ctx& c);
  int DoMkdir(Ctx& c);
  int DoRm(Ctx& c);
  int DoSetPerms(Ctx& c);
  int DoIsDomainIntroduced(Ctx& c);
  int DoSetTarget(Ctx& c);
  int DoResetWatches(Ctx& c);
  int DoControl(Ctx& c);

  void Reply(const Ctx& c, uint32_t type, absl::string_view payload);
  void Ack(const Ctx& c, uint32_t type) { Reply(c, type, absl::string_view("OK", 3)); }

  // Permissions.
  uint32_t PermFor(const Connection& conn, const std::vector<Perm>& perms) const;
  std::string ImplicitPath(const Connection& conn) const;
  std::string Canonicalize(const Connection& conn, absl::string_view path) const;
  bool IsValidPath(absl::string_view path) const;

  // Node access through the request's view (the transaction or the tree).
  const Node* Get(Ctx& c, const std::string& path);
  void Put(Ctx& c, const std::string& path, Node node);
  void Erase(Ctx& c, const std::string& path);
  // xenstored get_node(): the node if `perm` is granted, else errno in *err.
  const Node* GetChecked(Ctx& c, const std::string& path, uint32_t perm, int* err);
  int ErrnoFromParents(Ctx& c, const std::string& path, int err, uint32_t perm);
  int CreateNode(Ctx& c, const std::string& path, std::string data);
  int CheckNodeSize(const Ctx& c, const Node& node) const;
  int OwnedInView(const Ctx& c, uint32_t domid) const;
  int RemoveTree(Ctx& c, const std::string& path);

  // Watches.
  void FireWatches(Ctx* c, const std::string& path, bool exact, const std::vector<Perm>* old_perms);
  void FireNow(const std::string& path, bool exact, const std::vector<Perm>* old_perms);
  bool WatchPermitted(const Connection& conn, const std::string& path,
                      const std::vector<Perm>* old_perms) const;
  void SendEvent(const Connection& conn, const Watch& w, const std::string& path);
  int WatchCountForDomain(uint32_t domid) const;

  void ReleaseDomainNodes(uint32_t domid);
  void IgnorePermsOf(uint32_t domid);

  const StoreOptions options_;
  Delegate* const delegate_;
  std::map<std::string, Node, std::less<>> nodes_;
  std::map<uint32_t, int> owned_;  // Node count per owner domid.
  uint64_t generation_ = 0;
  std::map<ConnId, std::unique_ptr<Connection>> conns_;
  ConnId next_conn_id_ = 1;
  std::map<uint32_t, Domain> introduced_;  // dom0 is implicit.
  std::vector<Perm> introduce_perms_{Perm{0, kPermNone}};
  std::vector<Perm> release_perms_{Perm{0, kPermNone}};
  // Acts for the store itself (domain cleanup): privileged, no watches.
  Connection system_conn_;
};

}  // namespace xenchan::sim::xenstore

#endif  // XENCHAN_BACKEND_SIM_XENSTORE_STORE_H_
