// Authorizer: who may do what (server/channel_service.h, "Authorization").
// Every handler authenticates its caller (identity.h) and checks the verbs
// the proto names for it against the policy in force, after validating the
// request's fields and BEFORE looking the resource up, so PERMISSION_DENIED
// never depends on whether the domain or channel exists. The domain of a
// check is the one the engine resolves the requested name to (toolstack
// UUID and name), or, for an unknown domain, the name as given. Callers
// without principals get UNAUTHENTICATED. Every decision goes to the audit
// log, if any.
//
// Thread safety: thread-safe (the policy function and the audit log are).
#ifndef XENCHAN_SERVER_AUTHORIZER_H_
#define XENCHAN_SERVER_AUTHORIZER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "backend/engine/types.h"
#include "grpcpp/server_context.h"
#include "server/audit/audit_log.h"
#include "server/engine_view.h"
#include "server/identity.h"
#include "server/policy/policy.h"

namespace xenchan {
namespace server {

// Who may do what, and where decisions are recorded.
struct AccessControl {
  // Establishes each caller's identity. Required; must outlive the service.
  const Authenticator* authenticator = nullptr;
  // The policy in force, asked once per decision (PolicyStore::Current or a
  // fixed policy). Required; must be thread-safe and never return null.
  std::function<std::shared_ptr<const policy::Policy>()> policy;
  // The audit trail; null: decisions are not recorded. Must outlive the
  // service.
  audit::AuditLog* audit = nullptr;
};

class Authorizer {
 public:
  // `engine` resolves domain names and must outlive the authorizer.
  Authorizer(const EngineView* engine, AccessControl access)
      : engine_(engine), access_(std::move(access)) {}

  Identity Authenticate(const grpc::CallbackServerContext& context) const {
    return access_.authenticator->Authenticate(context);
  }
  std::shared_ptr<const policy::Policy> Policy() const { return access_.policy(); }
  // Null when decisions are not recorded.
  audit::AuditLog* audit() const { return access_.audit; }

  // "/xenchan.v1.ChannelService/<method>".
  static std::string FullMethod(absl::string_view method);
  static audit::Caller CallerOf(const Identity& id);

  // The domain a request names, as the policy sees it: the toolstack's UUID
  // and name when the engine knows it, else the name as given (a UUID-shaped
  // name as a lower-cased UUID), so that the decision does not depend on
  // existence.
  policy::DomainRef ResolveDomain(const std::string& domain) const;

  // UNAUTHENTICATED for a caller without principals (recorded).
  absl::Status RequireAuthenticated(const Identity& id, absl::string_view method,
                                    absl::string_view resource, absl::string_view verb) const;

  // Checks `verb` on channel `channel_id` of `domain` (the domain segment of
  // the request); records the decision. PERMISSION_DENIED names the channel.
  absl::Status Authorize(const Identity& id, absl::string_view method, const std::string& domain,
                         const std::string& channel_id, policy::Verb verb) const;

  // Checks that the caller holds `verb` (or, with nullopt, any verb) on some
  // channel of `domain`; records the decision.
  absl::Status AuthorizeDomain(const Identity& id, absl::string_view method,
                               const std::string& domain, std::optional<policy::Verb> verb) const;

  // Records a filtered listing (ListDomains, ListChannels and WatchChannels
  // over all domains): allowed, showing only what the caller may see.
  absl::Status AuthorizeListing(const Identity& id, absl::string_view method,
                                const std::string& resource, absl::string_view verb) const;

  // Whether `id` may read channel `c` under `p` (what lists and watches show).
  static bool MayRead(const policy::Policy& p, const Identity& id, const ChannelInfo& c);

 private:
  absl::Status Denied(const Identity& id, absl::string_view verb, const std::string& key,
                      const std::string& resource) const;

  const EngineView* const engine_;
  const AccessControl access_;
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_AUTHORIZER_H_
