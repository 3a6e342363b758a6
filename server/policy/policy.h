// Policy: xenchand's authorization rules, parsed from the policy file, and
// the questions the RPC handlers ask of them. Deny by default: a caller may
// use a verb on a channel only if a rule grants it.
//
// File format (deploy/policy.example is the annotated example). Line-based,
// UTF-8 or ASCII; `#` at the start of a line or after white space starts a
// comment; blank lines are ignored.
//
//   [identity PATTERN]                      starts the section of one identity
//   allow verbs=VERBS domain=DOMAIN channel=CHANNEL
//                                           a rule of the current section
//
//   PATTERN  `*` (every authenticated caller), or one of the principal forms
//            of identity.h with a glob (glob.h) after the prefix:
//            `spiffe://example.org/ns/*`, `uri:urn:example:*`,
//            `dns:*.example.org` (case-insensitive), `cn:provisioner`; or an
//            exact `unix:uid=N` / `unix:gid=N`.
//   VERBS    comma-separated `read`, `write`, `call`, `manage`, `admin`, or
//            `*` for all five (the proto says which RPC needs which verb).
//   DOMAIN   `*`, `uuid:UUID` (exact, case-insensitive), or `name:GLOB` on
//            the domain name.
//   CHANNEL  a glob on the channel id (`*`, `org.example.agent.*`); literal
//            characters must be ones a channel id can hold (A-Z a-z 0-9 . _ -).
//   Values are bare words, or double-quoted strings when they hold white
//   space, `#`, `"` or (in a section header) `]`; inside quotes `\"` and `\\`
//   stand for `"` and `\`, other backslashes are kept (glob escapes).
//
// Every key is required once per rule. A caller is granted the union of the
// rules of every section whose pattern matches any of its principals. There
// are no deny rules, so rule order never matters. Each identity pattern may
// head one section only.
//
// Errors: Parse() answers INVALID_ARGUMENT naming `source:line:column` and
// what is wrong (unknown verb, bad glob, duplicate section or key, bad
// identity or domain form, rule outside a section, control characters...).
//
// Thread safety: a Policy is immutable after Parse(); every method is const
// and thread-safe. Share it as std::shared_ptr<const Policy> (PolicyStore).
#ifndef XENCHAN_SERVER_POLICY_POLICY_H_
#define XENCHAN_SERVER_POLICY_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/policy/glob.h"
#include "server/policy/identity.h"

namespace xenchan {
namespace server {
namespace policy {

// What a caller wants to do; the proto names the verbs each RPC needs.
enum class Verb : uint8_t { kRead = 0, kWrite = 1, kCall = 2, kManage = 3, kAdmin = 4 };
inline constexpr Verb kAllVerbs[] = {Verb::kRead, Verb::kWrite, Verb::kCall, Verb::kManage,
                                     Verb::kAdmin};

// `read`, `write`, `call`, `manage`, `admin`.
absl::string_view VerbName(Verb verb);
// The verb named `name` (lower case, as in the policy file), or nullopt.
std::optional<Verb> ParseVerb(absl::string_view name);

// A small set of verbs.
class VerbSet {
 public:
  VerbSet() = default;
  static VerbSet All();
  void Add(Verb verb) { bits_ |= Bit(verb); }
  void AddAll(VerbSet other) { bits_ |= other.bits_; }
  bool Contains(Verb verb) const { return (bits_ & Bit(verb)) != 0; }
  bool empty() const { return bits_ == 0; }
  // E.g. `read,write`; `` when empty.
  std::string ToString() const;
  bool operator==(VerbSet other) const { return bits_ == other.bits_; }

 private:
  static uint8_t Bit(Verb verb) { return static_cast<uint8_t>(1u << static_cast<uint8_t>(verb)); }
  uint8_t bits_ = 0;
};

// The domain a request is about. Either field may be empty when unknown; a
// `uuid:` rule matches only a known UUID, a `name:` rule only a known name.
// The name must be the toolstack's name for the domain, never a value the
// guest controls.
struct DomainRef {
  std::string uuid;
  std::string name;
};

// The outcome of a check, for the audit log.
struct Decision {
  bool allowed = false;
  // The line of the granting rule (0 when denied).
  int line = 0;
  // Why: `allowed by <source>:<line> ([identity ...])`, or what was missing.
  std::string reason;
};

class Policy {
 public:
  // Largest policy text Parse() accepts.
  static constexpr size_t kMaxBytes = 1 << 20;

  // Parses a policy file's text. `source` names it in error messages and
  // reasons (e.g. the file path). INVALID_ARGUMENT as described above.
  static absl::StatusOr<Policy> Parse(absl::string_view text, absl::string_view source = "policy");

  // True if `identity` may use `verb` on channel `channel_id` of `domain`.
  bool Allows(const Identity& identity, const DomainRef& domain, absl::string_view channel_id,
              Verb verb) const;
  // As Allows, with the reason (for the audit log).
  Decision Check(const Identity& identity, const DomainRef& domain, absl::string_view channel_id,
                 Verb verb) const;
  // Every verb `identity` holds on the channel.
  VerbSet VerbsOn(const Identity& identity, const DomainRef& domain,
                  absl::string_view channel_id) const;
  // True if `identity` holds any verb on the channel. Note the proto asks
  // for `read` to list, get or watch a channel: filter those with
  // Allows(..., Verb::kRead); CanSee is for views where any verb suffices.
  bool CanSee(const Identity& identity, const DomainRef& domain,
              absl::string_view channel_id) const {
    return !VerbsOn(identity, domain, channel_id).empty();
  }
  // Every verb `identity` holds on some channel pattern of `domain`
  // (ListDomains/GetDomain: "any verb on the domain").
  VerbSet VerbsOnDomain(const Identity& identity, const DomainRef& domain) const;
  bool CanSeeDomain(const Identity& identity, const DomainRef& domain) const {
    return !VerbsOnDomain(identity, domain).empty();
  }

  // Where the policy came from (Parse's `source`).
  const std::string& source() const { return source_; }
  size_t section_count() const { return sections_.size(); }
  size_t rule_count() const;

 private:
  // Matches the principals of one section header.
  struct IdentityMatcher {
    bool any_kind = false;  // the `*` pattern
    Principal::Kind kind = Principal::Kind::kUri;
    std::optional<Glob> value;  // unset: `*`; exact values are literal globs
    std::string text;           // canonical pattern text, for messages
    bool Matches(const Principal& principal) const;
  };
  struct DomainMatcher {
    enum class Kind { kAny, kUuid, kName };
    Kind kind = Kind::kAny;
    std::string uuid;          // kUuid, lower case
    std::optional<Glob> name;  // kName
    bool Matches(const DomainRef& domain) const;
  };
  struct Rule {
    int line = 0;
    VerbSet verbs;
    DomainMatcher domain;
    std::optional<Glob> channel;
  };
  struct Section {
    int line = 0;
    IdentityMatcher identity;
    std::vector<Rule> rules;
  };
  class Parser;

  Policy() = default;
  bool SectionApplies(const Section& section, const Identity& identity) const;
  // The first rule granting `verb` (nullptr if none) and its section.
  const Rule* FindRule(const Identity& identity, const DomainRef& domain,
                       absl::string_view channel_id, Verb verb, const Section** section) const;

  std::string source_;
  std::vector<Section> sections_;
};

}  // namespace policy
}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_POLICY_POLICY_H_
