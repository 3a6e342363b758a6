// The node tree of the simulated xenstored: checked lookups (EACCES versus
// ENOENT as xenstored's get_node() decides), node creation with missing
// parents under the node and size quotas, subtree removal with its watch
// events, and XS_DIRECTORY / XS_DIRECTORY_PART / XS_READ / XS_WRITE /
// XS_MKDIR / XS_RM.
#include <errno.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/sim/xenstore/paths.h"
#include "backend/sim/xenstore/store.h"

namespace xenchan::sim::xenstore {
namespace {

// sizeof(struct xs_tdb_record_hdr) and of one struct xs_permissions: what
// xenstored counts against the node size quota.
constexpr int kRecordHeaderSize = 24;
constexpr int kPermRecordSize = 8;

std::string JoinChildren(const Node& node) { return JoinWithNuls(node.children); }

}  // namespace

// ---------------------------------------------------------------------------
// Checked access, creation and removal.

int Store::ErrnoFromParents(Ctx& c, const std::string& path, int err, uint32_t perm) {
  std::string p = path;
  const Node* parent = nullptr;
  while (p != "/") {
    p = ParentOf(p);
    parent = Get(c, p);
    if (parent != nullptr) break;
  }
  if (parent == nullptr) return EACCES;
  return (PermFor(*c.conn, parent->perms) & perm) ? err : EACCES;
}

const Node* Store::GetChecked(Ctx& c, const std::string& path, uint32_t perm, int* err) {
  if (!IsValidPath(path)) {
    *err = EINVAL;
    return nullptr;
  }
  const Node* node = Get(c, path);
  int e = ENOENT;
  if (node != nullptr && (PermFor(*c.conn, node->perms) & perm) != perm) {
    node = nullptr;
    e = EACCES;
  }
  if (node == nullptr) *err = ErrnoFromParents(c, path, e, perm);
  return node;
}

int Store::CheckNodeSize(const Ctx& c, const Node& node) const {
  if (c.conn->privileged) return 0;
  size_t size = kRecordHeaderSize + kPermRecordSize * node.perms.size() + node.data.size();
  for (const std::string& child : node.children) size += child.size() + 1;
  return size >= static_cast<size_t>(options_.max_node_size) ? ENOSPC : 0;
}

int Store::OwnedInView(const Ctx& c, uint32_t domid) const {
  int n = OwnedNodeCount(domid);
  if (c.tx != nullptr) {
    auto it = c.tx->owned_delta.find(domid);
    if (it != c.tx->owned_delta.end()) n += it->second;
  }
  return n;
}

int Store::CreateNode(Ctx& c, const std::string& path, std::string data) {
  // names[0] is `path`, names[k+1] the parent of names[k]; all missing.
  std::vector<std::string> names = {path};
  std::string parent_path = ParentOf(path);
  const Node* parent = Get(c, parent_path);
  while (parent == nullptr) {
    if (parent_path == "/") return EIO;  // No root: cannot happen.
    names.push_back(parent_path);
    parent_path = ParentOf(parent_path);
    parent = Get(c, parent_path);
  }
  const bool unprivileged = !c.conn->privileged;
  if (unprivileged &&
      OwnedInView(c, c.conn->domid) + static_cast<int>(names.size()) > options_.nodes_per_domain) {
    return ENOSPC;
  }
  // Build everything first so that a quota failure changes nothing.
  std::vector<std::pair<std::string, Node>> writes;
  Node existing = *parent;
  existing.children.push_back(BaseName(names.back()));
  if (int err = CheckNodeSize(c, existing)) return err;
  std::vector<Perm> perms = existing.perms;
  writes.emplace_back(parent_path, std::move(existing));
  for (size_t k = names.size(); k-- > 0;) {
    Node n;
    n.perms = perms;
    if (unprivileged) n.perms[0].id = c.conn->domid;
    perms = n.perms;
    if (k > 0) n.children.push_back(BaseName(names[k - 1]));
    if (k == 0) n.data = std::move(data);
    if (int err = CheckNodeSize(c, n)) return err;
    writes.emplace_back(names[k], std::move(n));
  }
  for (auto& w : writes) Put(c, w.first, std::move(w.second));
  return 0;
}

// Removes `path` (which exists) and its subtree, firing watches as
// xenstored's rm_node(): descendants fire exactly, the top node normally.
// Unlinks it from its parent too.
int Store::RemoveTree(Ctx& c, const std::string& path) {
  std::string parent_path = ParentOf(path);
  const Node* parent = Get(c, parent_path);
  if (parent == nullptr) return EINVAL;
  // Pre-order list of the subtree; processed backwards, every node comes
  // after all of its descendants.
  std::vector<std::string> order;
  std::vector<std::string> stack = {path};
  while (!stack.empty()) {
    std::string p = std::move(stack.back());
    stack.pop_back();
    const Node* n = Get(c, p);
    if (n == nullptr) continue;
    for (const std::string& child : n->children) {
      stack.push_back(ChildPath(p, child));
    }
    order.push_back(std::move(p));
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const Node* n = Get(c, *it);
    if (n == nullptr) continue;
    std::vector<Perm> perms = n->perms;
    FireWatches(&c, *it, /*exact=*/*it != path, &perms);
    Erase(c, *it);
  }
  parent = Get(c, parent_path);
  if (parent != nullptr) {
    Node p = *parent;
    const std::string base = BaseName(path);
    p.children.erase(std::remove(p.children.begin(), p.children.end(), base), p.children.end());
    Put(c, parent_path, std::move(p));
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Handlers.

int Store::DoDirectory(Ctx& c, bool part) {
  SplitPayload split = SplitStrings(c.req->payload);
  std::string name;
  if (part) {
    if (split.strings.size() != 2) return EINVAL;
    name = Canonicalize(*c.conn, split.strings[0]);
  } else {
    std::optional<absl::string_view> arg = OneArg(c.req->payload);
    if (!arg) return EINVAL;
    name = Canonicalize(*c.conn, *arg);
  }
  int err = 0;
  const Node* node = GetChecked(c, name, kPermRead, &err);
  if (node == nullptr) return err;
  const std::string children = JoinChildren(*node);
  if (!part) {
    Reply(c, XS_DIRECTORY, children);
    return 0;
  }
  // XS_DIRECTORY_PART: "<generation>\0" then as many whole child names from
  // byte offset `off` as fit; the last part ends with an extra NUL.
  const uint32_t off = static_cast<uint32_t>(AtoiLike(split.strings[1]));
  std::string reply = absl::StrCat(node->generation);
  reply.push_back('\0');
  const size_t genlen = reply.size();
  if (off >= children.size()) {
    reply.push_back('\0');
    Reply(c, XS_DIRECTORY_PART, reply);
    return 0;
  }
  const size_t maxlen = kPayloadMax - genlen - 1;
  size_t len = 0;
  while (true) {
    const size_t pos = off + len;
    const size_t nul = children.find('\0', pos);
    const size_t child_len = nul - pos;
    if (len + child_len >= maxlen) break;
    len += child_len + 1;
    if (off + len == children.size()) break;
  }
  reply.append(children, off, len);
  if (off + len == children.size()) reply.push_back('\0');
  Reply(c, XS_DIRECTORY_PART, reply);
  return 0;
}

int Store::DoRead(Ctx& c) {
  std::optional<absl::string_view> arg = OneArg(c.req->payload);
  if (!arg) return EINVAL;
  int err = 0;
  const Node* node = GetChecked(c, Canonicalize(*c.conn, *arg), kPermRead, &err);
  if (node == nullptr) return err;
  Reply(c, XS_READ, node->data);
  return 0;
}

int Store::DoWrite(Ctx& c) {
  SplitPayload split = SplitStrings(c.req->payload);
  if (split.strings.empty()) return EINVAL;
  const absl::string_view path_arg = split.strings[0];
  std::string data(c.req->payload.substr(path_arg.size() + 1));
  const std::string name = Canonicalize(*c.conn, path_arg);
  int err = 0;
  const Node* node = GetChecked(c, name, kPermWrite, &err);
  if (node == nullptr) {
    if (err != ENOENT) return err;
    if ((err = CreateNode(c, name, std::move(data))) != 0) return err;
  } else {
    Node n = *node;
    n.data = std::move(data);
    if ((err = CheckNodeSize(c, n)) != 0) return err;
    Put(c, name, std::move(n));
  }
  FireWatches(&c, name, /*exact=*/false, nullptr);
  Ack(c, XS_WRITE);
  return 0;
}

int Store::DoMkdir(Ctx& c) {
  std::optional<absl::string_view> arg = OneArg(c.req->payload);
  if (!arg) return EINVAL;
  const std::string name = Canonicalize(*c.conn, *arg);
  int err = 0;
  const Node* node = GetChecked(c, name, kPermWrite, &err);
  if (node == nullptr) {
    if (err != ENOENT) return err;
    if ((err = CreateNode(c, name, std::string())) != 0) return err;
    FireWatches(&c, name, /*exact=*/false, nullptr);
  }
  Ack(c, XS_MKDIR);
  return 0;
}

int Store::DoRm(Ctx& c) {
  std::optional<absl::string_view> arg = OneArg(c.req->payload);
  if (!arg) return EINVAL;
  const std::string name = Canonicalize(*c.conn, *arg);
  int err = 0;
  const Node* node = GetChecked(c, name, kPermWrite, &err);
  if (node == nullptr) {
    if (err != ENOENT) return err;
    // Already gone is fine if the parent exists.
    if (Get(c, ParentOf(name)) != nullptr) {
      Ack(c, XS_RM);
      return 0;
    }
    return ENOENT;
  }
  if (name == "/") return EINVAL;
  if ((err = RemoveTree(c, name)) != 0) return err;
  Ack(c, XS_RM);
  return 0;
}

}  // namespace xenchan::sim::xenstore
