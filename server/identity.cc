// Authentication of callers (see the header).
#include "server/identity.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "backend/util/errno_status.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/auth_context.h"
#include "server/tls_identity.h"

namespace xenchan {
namespace server {

absl::string_view TransportName(TransportKind kind) {
  switch (kind) {
    case TransportKind::kUnix:
      return "unix";
    case TransportKind::kTls:
      return "tls";
    case TransportKind::kInsecureTcp:
      return "insecure-tcp";
    default:
      return "unknown";
  }
}

std::string Identity::holder() const {
  if (!authenticated()) return "peer:" + peer;
  using Kind = policy::Principal::Kind;
  for (Kind kind : {Kind::kUnixUid, Kind::kUri, Kind::kDns, Kind::kCommonName}) {
    for (const policy::Principal& p : principals.principals) {
      if (p.kind == kind) return p.ToString();
    }
  }
  return principals.ToString();  // only group ids
}

absl::Status UnixPeerRegistry::Register(int fd) {
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred)) {
    return absl::InternalError(ErrnoMessage(errno, "SO_PEERCRED"));
  }
  // Supplementary groups of the peer at connect time (Linux 4.13+). At most
  // 64 are presented (if the peer has more, SO_PEERGROUPS fails with ERANGE
  // and only the primary gid is): fewer principals can only grant less.
  std::vector<uint32_t> gids = {static_cast<uint32_t>(cred.gid)};
  gid_t groups[64];
  socklen_t glen = sizeof(groups);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0) {
    for (size_t i = 0; i < glen / sizeof(gid_t); ++i) gids.push_back(groups[i]);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return absl::InternalError(ErrnoMessage(errno, "fstat"));
  Entry e;
  e.dev = st.st_dev;
  e.inode = st.st_ino;
  e.identity = policy::Identity::FromUnixPeer(static_cast<uint32_t>(cred.uid), gids);
  MutexLock lock(&mu_);
  entries_[fd] = std::move(e);
  return absl::OkStatus();
}

std::optional<policy::Identity> UnixPeerRegistry::Lookup(int fd) const {
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return std::nullopt;
  MutexLock lock(&mu_);
  auto it = entries_.find(fd);
  if (it == entries_.end() || it->second.dev != st.st_dev || it->second.inode != st.st_ino) {
    return std::nullopt;
  }
  return it->second.identity;
}

size_t UnixPeerRegistry::size() const {
  MutexLock lock(&mu_);
  return entries_.size();
}

Identity Authenticator::Authenticate(const grpc::CallbackServerContext& context) const {
  Identity id;
  id.peer = context.peer();
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  bool tls = false;
  if (auth != nullptr) {
    for (const auto& v : auth->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME)) {
      // "ssl" from SslServerCredentials, "tls" from TlsServerCredentials
      // (the reloading certificate provider).
      if (v == GRPC_SSL_TRANSPORT_SECURITY_TYPE || v == GRPC_TLS_TRANSPORT_SECURITY_TYPE) {
        tls = true;
      }
    }
  }
  if (tls) {
    id.transport = TransportKind::kTls;
    // Only a verified peer: the listener requires and verifies client
    // certificates, so an unauthenticated TLS peer cannot get this far; if
    // one did, it gets no principals.
    if (!auth->IsPeerAuthenticated()) return id;
    const auto pems = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    if (pems.size() != 1) return id;
    auto principals = IdentityFromCertificatePem(absl::string_view(pems[0].data(), pems[0].size()));
    if (principals.ok()) id.principals = *std::move(principals);
    return id;
  }
  if (absl::StartsWith(id.peer, "fd:")) {
    id.transport = TransportKind::kUnix;
    int fd = -1;
    if (unix_peers_ != nullptr && absl::SimpleAtoi(id.peer.substr(3), &fd)) {
      if (auto p = unix_peers_->Lookup(fd)) id.principals = *std::move(p);
    }
    return id;
  }
  if (absl::StartsWith(id.peer, "ipv4:") || absl::StartsWith(id.peer, "ipv6:")) {
    id.transport = TransportKind::kInsecureTcp;
  }
  return id;
}

}  // namespace server
}  // namespace xenchan
