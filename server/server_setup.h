// The pieces Server::BuildAndStart assembles from a ServerConfig, each a
// plain function: the platform the engine runs on, the engine's and the
// service's settings, the authorization policy, the TLS credentials.
//
// Thread safety: plain functions.
#ifndef XENCHAN_SERVER_SERVER_SETUP_H_
#define XENCHAN_SERVER_SERVER_SETUP_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "backend/engine/engine.h"
#include "grpcpp/security/server_credentials.h"
#include "server/audit/audit_log.h"
#include "server/channel_service.h"
#include "server/config.h"
#include "server/policy/policy.h"
#include "server/policy/policy_store.h"

namespace xenchan {
namespace server {

// Opens the platform config.platform names: real Xen (libxenstore,
// /dev/xen/evtchn, /dev/xen/gntdev), or the running xensim at
// config.sim_state_dir. UNAVAILABLE/NOT_FOUND if it cannot be opened.
absl::StatusOr<EngineOptions> OpenPlatform(const ServerConfig& config);

// Sets the engine's limits (buffers, readers, event retention, memory
// budget) from `config`.
void ApplyEngineLimits(const ServerConfig& config, EngineOptions* options);

// Opens the declaration store of durable channels in StateDir(config)
// (declarations.db, created with its directory if missing). A store that is
// corrupt, unreadable, newer or held by another xenchand is an error:
// xenchand must not start and silently forget declarations.
absl::StatusOr<std::unique_ptr<DeclarationStore>> OpenDeclarations(const ServerConfig& config);

// The service's settings (call time, workers, watch backlog, quotas) from
// `config`.
ChannelServiceOptions ServiceOptionsFrom(const ServerConfig& config);

// The policy used without a policy file: every verb for uid 0 and for our
// own uid (which only the Unix socket can present), nothing for anyone else.
absl::StatusOr<policy::Policy> BuiltInPolicy();

// Loads the policy file at `path` (refusing a bad one) into a store whose
// reloads are logged and, if `audit` is set, recorded there.
absl::StatusOr<std::unique_ptr<policy::PolicyStore>> OpenPolicyFile(const std::string& path,
                                                                    audit::AuditLog* audit);

// The credentials of TLS listeners: mutual TLS, client certificates required
// and verified against tls-client-ca; re-read every tls-refresh-interval if
// set. NOT_FOUND for an unreadable file, INVALID_ARGUMENT for non-PEM ones.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsCredentials(const ServerConfig& config);

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_SERVER_SETUP_H_
