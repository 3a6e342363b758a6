// Policy checks: the verbs, and the evaluation that matches a caller's
// identity, the domain and the channel against the parsed rules. The format
// is described in policy.h; the parser is policy_parser.cc and
// policy_values.cc.
#include "server/policy/policy.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace xenchan {
namespace server {
namespace policy {

absl::string_view VerbName(Verb verb) {
  switch (verb) {
    case Verb::kRead:
      return "read";
    case Verb::kWrite:
      return "write";
    case Verb::kCall:
      return "call";
    case Verb::kManage:
      return "manage";
    case Verb::kAdmin:
      return "admin";
  }
  return "unknown";
}

std::optional<Verb> ParseVerb(absl::string_view name) {
  for (Verb verb : kAllVerbs) {
    if (name == VerbName(verb)) return verb;
  }
  return std::nullopt;
}

VerbSet VerbSet::All() {
  VerbSet set;
  for (Verb verb : kAllVerbs) set.Add(verb);
  return set;
}

std::string VerbSet::ToString() const {
  std::vector<absl::string_view> names;
  for (Verb verb : kAllVerbs) {
    if (Contains(verb)) names.push_back(VerbName(verb));
  }
  return absl::StrJoin(names, ",");
}

// ---------------------------------------------------------------------------
// Checks.

bool Policy::IdentityMatcher::Matches(const Principal& principal) const {
  if (any_kind) return true;
  return principal.kind == kind && value.has_value() && value->Matches(principal.value);
}

bool Policy::DomainMatcher::Matches(const DomainRef& domain) const {
  switch (kind) {
    case Kind::kAny:
      return true;
    case Kind::kUuid:
      return !domain.uuid.empty() && absl::EqualsIgnoreCase(domain.uuid, uuid);
    case Kind::kName:
      return !domain.name.empty() && name.has_value() && name->Matches(domain.name);
  }
  return false;
}

bool Policy::SectionApplies(const Section& section, const Identity& identity) const {
  for (const Principal& principal : identity.principals) {
    if (section.identity.Matches(principal)) return true;
  }
  return false;
}

const Policy::Rule* Policy::FindRule(const Identity& identity, const DomainRef& domain,
                                     absl::string_view channel_id, Verb verb,
                                     const Section** section_out) const {
  for (const Section& section : sections_) {
    if (!SectionApplies(section, identity)) continue;
    for (const Rule& rule : section.rules) {
      if (rule.verbs.Contains(verb) && rule.domain.Matches(domain) &&
          rule.channel->Matches(channel_id)) {
        if (section_out != nullptr) *section_out = &section;
        return &rule;
      }
    }
  }
  return nullptr;
}

bool Policy::Allows(const Identity& identity, const DomainRef& domain, absl::string_view channel_id,
                    Verb verb) const {
  return FindRule(identity, domain, channel_id, verb, nullptr) != nullptr;
}

Decision Policy::Check(const Identity& identity, const DomainRef& domain,
                       absl::string_view channel_id, Verb verb) const {
  Decision decision;
  const Section* section = nullptr;
  if (const Rule* rule = FindRule(identity, domain, channel_id, verb, &section)) {
    decision.allowed = true;
    decision.line = rule->line;
    decision.reason = absl::StrFormat("allowed by %s:%d ([identity %s])", source_, rule->line,
                                      section->identity.text);
    return decision;
  }
  if (!identity.authenticated()) {
    decision.reason = "denied: the caller is not authenticated";
    return decision;
  }
  bool any_section = false;
  for (const Section& s : sections_) any_section = any_section || SectionApplies(s, identity);
  if (!any_section) {
    decision.reason = absl::StrFormat("denied: no section of %s matches identity %s", source_,
                                      identity.ToString());
  } else {
    decision.reason = absl::StrFormat(
        "denied: no rule of %s grants `%s` on this domain and "
        "channel to %s",
        source_, VerbName(verb), identity.ToString());
  }
  return decision;
}

VerbSet Policy::VerbsOn(const Identity& identity, const DomainRef& domain,
                        absl::string_view channel_id) const {
  VerbSet verbs;
  for (const Section& section : sections_) {
    if (!SectionApplies(section, identity)) continue;
    for (const Rule& rule : section.rules) {
      if (rule.domain.Matches(domain) && rule.channel->Matches(channel_id)) {
        verbs.AddAll(rule.verbs);
      }
    }
  }
  return verbs;
}

VerbSet Policy::VerbsOnDomain(const Identity& identity, const DomainRef& domain) const {
  VerbSet verbs;
  for (const Section& section : sections_) {
    if (!SectionApplies(section, identity)) continue;
    for (const Rule& rule : section.rules) {
      if (rule.domain.Matches(domain)) verbs.AddAll(rule.verbs);
    }
  }
  return verbs;
}

size_t Policy::rule_count() const {
  size_t n = 0;
  for (const Section& section : sections_) n += section.rules.size();
  return n;
}

}  // namespace policy
}  // namespace server
}  // namespace xenchan
