// Fuzz target for the policy parser (the file is operator input, but a
// parser must survive anything): arbitrary bytes either parse or give
// INVALID_ARGUMENT with a `source:line:column:` prefix, and a parsed policy
// answers consistently (Allows == Check == VerbsOn, channel verbs within
// domain verbs, nothing for an anonymous caller).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "server/policy/policy.h"

namespace {

using xenchan::server::policy::DomainRef;
using xenchan::server::policy::Identity;
using xenchan::server::policy::kAllVerbs;
using xenchan::server::policy::Policy;
using xenchan::server::policy::Verb;
using xenchan::server::policy::VerbSet;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Policy> policy = Policy::Parse(text, "fuzz");
  if (!policy.ok()) {
    Check(policy.status().code() == absl::StatusCode::kInvalidArgument);
    Check(absl::StartsWith(policy.status().message(), "fuzz:"));
    return 0;
  }
  const std::vector<Identity> identities = {
      Identity{},
      Identity::FromUnixPeer(0, {0}),
      Identity::FromUnixPeer(1000, {1001, 27}),
      Identity::FromCertificate({"spiffe://example.org/controller"}, {"ctl.example.org"}, ""),
      Identity::FromCertificate({}, {}, "provisioner"),
      Identity::FromCertificate({"urn:x"}, {}, ""),
  };
  const std::vector<DomainRef> domains = {
      {"6f1c0e4a-3b2d-4c5e-8f70-123456789abc", "web-1"}, {"", "db"}, {"", ""}};
  const std::vector<std::string> channels = {"org.example.agent", "a", "", "x.y.z-1_2"};
  for (const Identity& id : identities) {
    for (const DomainRef& dom : domains) {
      const VerbSet on_domain = policy->VerbsOnDomain(id, dom);
      for (const std::string& ch : channels) {
        const VerbSet verbs = policy->VerbsOn(id, dom, ch);
        for (Verb verb : kAllVerbs) {
          const bool allowed = policy->Allows(id, dom, ch, verb);
          Check(allowed == policy->Check(id, dom, ch, verb).allowed);
          Check(allowed == verbs.Contains(verb));
          if (allowed) Check(on_domain.Contains(verb));
          if (!id.authenticated()) Check(!allowed);
        }
        Check(policy->CanSee(id, dom, ch) == !verbs.empty());
      }
    }
  }
  return 0;
}
