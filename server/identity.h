// Identity: who is calling, as handed to every handler of ChannelService, and
// the Authenticator that establishes it from the transport.
//
// Transports and the principals they present (policy/identity.h):
//   Unix socket   xenchand accepts the connections itself (UnixListener),
//                 reads the peer's uid, gid and supplementary groups with
//                 SO_PEERCRED / SO_PEERGROUPS, records them here under the
//                 connection's fd, and hands the fd to gRPC
//                 (grpc::AddInsecureChannelFromFd). gRPC names such a
//                 connection's peer `fd:N`. Principals `unix:uid=U`,
//                 `unix:gid=G` (primary and supplementary groups).
//   mutual TLS    the client certificate gRPC verified against tls-client-ca:
//                 every URI SAN and DNS SAN, else the subject CN
//                 (tls_identity.h).
//   insecure TCP  (loopback only, asked for explicitly) no principals: the
//                 caller is unauthenticated and is granted nothing.
//
// Why `fd:N` cannot name the wrong connection: gRPC owns the fd from the
// hand-over and closes it only when the connection's transport is destroyed,
// which waits for every call on it (each call's stream holds a reference to
// its transport). So while a handler runs, fd N is still that connection's
// socket, and accept() cannot return N for another connection until every
// call of the old one has finished. As a second guard, each record keeps the
// socket's inode and Lookup() checks the fd still refers to it: a number
// reused for anything we did not record authenticates nobody.
//
// Thread safety: UnixPeerRegistry and Authenticator are thread-safe.
#ifndef XENCHAN_SERVER_IDENTITY_H_
#define XENCHAN_SERVER_IDENTITY_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "backend/util/mutex.h"
#include "grpcpp/server_context.h"
#include "server/policy/identity.h"

namespace xenchan {
namespace server {

// How a call reached xenchand.
enum class TransportKind { kUnknown, kUnix, kTls, kInsecureTcp };
// `unix`, `tls`, `insecure-tcp`, `unknown`.
absl::string_view TransportName(TransportKind kind);

struct Identity {
  // The authenticated principals; empty for an unauthenticated caller.
  policy::Identity principals;
  // The transport peer as gRPC reports it (`ipv4:127.0.0.1:5000`, `fd:12`).
  std::string peer;
  TransportKind transport = TransportKind::kUnknown;

  bool authenticated() const { return principals.authenticated(); }
  // What the logs and audit records show: all principals
  // (`unix:uid=0,unix:gid=0`), or `peer:{peer}` when unauthenticated.
  std::string display() const { return authenticated() ? principals.ToString() : "peer:" + peer; }
  // What LeaseHolder.identity shows (proto/xenchan/v1/resources.proto): the
  // one principal that names the caller: `unix:uid={uid}` on the Unix
  // socket; for mTLS its first URI SAN, else its first DNS SAN, else its
  // subject CN (the order FromCertificate presents them in). Group ids are
  // not shown. `peer:{peer}` when unauthenticated.
  std::string holder() const;
};

// The peer credentials of the Unix-socket connections xenchand accepted.
class UnixPeerRegistry {
 public:
  // Reads the credentials of the connected Unix socket `fd` (SO_PEERCRED,
  // SO_PEERGROUPS) and records them under `fd`, replacing an older record of
  // the same number. Call before handing `fd` to gRPC. INTERNAL if the
  // credentials cannot be read (refuse the connection then).
  absl::Status Register(int fd) ABSL_LOCKS_EXCLUDED(mu_);
  // The principals of connection `fd`, if it is one we registered and the fd
  // still refers to the same socket.
  std::optional<policy::Identity> Lookup(int fd) const ABSL_LOCKS_EXCLUDED(mu_);
  // Records kept (one per fd number ever registered, at most).
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    dev_t dev = 0;
    ino_t inode = 0;
    policy::Identity identity;
  };
  mutable Mutex mu_;
  std::unordered_map<int, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

// Establishes the Identity of a call (see the file comment).
class Authenticator {
 public:
  // `unix_peers` may be null (no Unix listener); it must outlive this.
  explicit Authenticator(const UnixPeerRegistry* unix_peers) : unix_peers_(unix_peers) {}

  Identity Authenticate(const grpc::CallbackServerContext& context) const;

 private:
  const UnixPeerRegistry* const unix_peers_;
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_IDENTITY_H_
