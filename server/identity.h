// Identity: who is calling, as handed to every handler of ChannelService.
//
// Authentication is not implemented yet (issue 7: mTLS on TCP, SO_PEERCRED
// on the Unix socket, and the policy that maps identities to verbs). Until
// then every caller is unauthenticated, nothing is authorised on the basis of
// an identity, and `display` only names the transport peer so that lease
// holders and logs say where a session came from. This is the seam issue 7
// fills in: IdentityOf() will authenticate, and handlers will check verbs
// against `principal`.
#ifndef XENCHAN_SERVER_IDENTITY_H_
#define XENCHAN_SERVER_IDENTITY_H_

#include <string>

#include "grpcpp/server_context.h"

namespace xenchan {
namespace server {

struct Identity {
  // The authenticated principal (SPIFFE ID, certificate subject or
  // `unix:uid={uid}`); empty while authentication is not implemented.
  std::string principal;
  // The transport peer as gRPC reports it (e.g. `ipv4:127.0.0.1:5000`).
  std::string peer;
  // What LeaseHolder.identity shows: the principal, or `peer:{peer}`.
  std::string display() const { return principal.empty() ? "peer:" + peer : principal; }
};

inline Identity IdentityOf(const grpc::CallbackServerContext& context) {
  Identity id;
  id.peer = context.peer();
  return id;
}

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_IDENTITY_H_
