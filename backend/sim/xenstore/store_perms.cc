// Permissions in the simulated xenstored: the perms string format, the
// access a connection has to a node (owner, target, listed domains, ignored
// entries of released domains), and XS_GET_PERMS / XS_SET_PERMS, including
// the perms of the "@introduceDomain" / "@releaseDomain" specials.
#include <errno.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backend/sim/xenstore/store.h"

namespace xenchan::sim::xenstore {

std::optional<Perm> ParsePerm(absl::string_view s) {
  if (s.size() < 2) return std::nullopt;
  Perm p;
  switch (s[0]) {
    case 'n':
      p.perms = kPermNone;
      break;
    case 'r':
      p.perms = kPermRead;
      break;
    case 'w':
      p.perms = kPermWrite;
      break;
    case 'b':
      p.perms = kPermRead | kPermWrite;
      break;
    default:
      return std::nullopt;
  }
  absl::string_view id = s.substr(1);
  for (char ch : id) {
    if (ch < '0' || ch > '9') return std::nullopt;
  }
  if (!absl::SimpleAtoi(id, &p.id)) return std::nullopt;
  return p;
}

std::string FormatPerm(const Perm& perm) {
  char letter = 'n';
  switch (perm.perms & (kPermRead | kPermWrite)) {
    case kPermRead:
      letter = 'r';
      break;
    case kPermWrite:
      letter = 'w';
      break;
    case kPermRead | kPermWrite:
      letter = 'b';
      break;
    default:
      letter = 'n';
      break;
  }
  return absl::StrCat(std::string(1, letter), perm.id);
}

uint32_t Store::PermFor(const Connection& conn, const std::vector<Perm>& perms) const {
  constexpr uint32_t kAll = kPermRead | kPermWrite | kPermOwner;
  if (conn.privileged || perms.empty()) return kAll;
  std::optional<uint32_t> target;
  auto dom = introduced_.find(conn.domid);
  if (dom != introduced_.end()) target = dom->second.target;
  if (perms[0].id == conn.domid || (target && perms[0].id == *target)) {
    return kAll;
  }
  for (size_t i = 1; i < perms.size(); ++i) {
    if (perms[i].ignored) continue;
    if (perms[i].id == conn.domid || (target && perms[i].id == *target)) {
      return perms[i].perms & kAll;
    }
  }
  return perms[0].perms & kAll;
}

int Store::DoGetPerms(Ctx& c) {
  std::optional<absl::string_view> arg = OneArg(c.req->payload);
  if (!arg) return EINVAL;
  int err = 0;
  const Node* node = GetChecked(c, Canonicalize(*c.conn, *arg), kPermRead, &err);
  if (node == nullptr) return err;
  std::vector<std::string> strings;
  for (const Perm& p : node->perms) strings.push_back(FormatPerm(p));
  Reply(c, XS_GET_PERMS, JoinWithNuls(strings));
  return 0;
}

int Store::DoSetPerms(Ctx& c) {
  SplitPayload split = SplitStrings(c.req->payload);
  if (split.strings.size() < 2) return EINVAL;
  const size_t num = split.strings.size() - 1;
  if (!c.conn->privileged && num > static_cast<size_t>(options_.perms_per_node)) {
    return ENOSPC;
  }
  std::vector<Perm> perms;
  for (size_t i = 1; i < split.strings.size(); ++i) {
    std::optional<Perm> p = ParsePerm(split.strings[i]);
    if (!p) return EINVAL;
    perms.push_back(*p);
  }
  const absl::string_view path = split.strings[0];
  if (!path.empty() && path[0] == '@') {
    std::vector<Perm>* special = nullptr;
    if (path == "@introduceDomain") special = &introduce_perms_;
    if (path == "@releaseDomain") special = &release_perms_;
    if (special == nullptr) return EINVAL;
    if ((PermFor(*c.conn, *special) & (kPermWrite | kPermOwner)) != (kPermWrite | kPermOwner)) {
      return EACCES;
    }
    *special = std::move(perms);
    Ack(c, XS_SET_PERMS);
    return 0;
  }
  const std::string name = Canonicalize(*c.conn, path);
  int err = 0;
  const Node* node = GetChecked(c, name, kPermWrite | kPermOwner, &err);
  if (node == nullptr) return err;
  if (!c.conn->privileged && perms[0].id != node->perms[0].id) return EPERM;
  std::vector<Perm> old_perms = node->perms;
  Node n = *node;
  n.perms = std::move(perms);
  if ((err = CheckNodeSize(c, n)) != 0) return err;
  Put(c, name, std::move(n));
  FireWatches(&c, name, /*exact=*/false, &old_perms);
  Ack(c, XS_SET_PERMS);
  return 0;
}

}  // namespace xenchan::sim::xenstore
