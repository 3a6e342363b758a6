#include "backend/sim/xenstore/store.h"

#include <errno.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace xenchan::sim::xenstore {
namespace {

// DOMID_SELF and DOMID_FIRST_RESERVED from xen/xen.h.
constexpr uint32_t kDomidSelf = 0x7FF0;
constexpr uint32_t kDomidFirstReserved = 0x7FF0;
// sizeof(struct xs_tdb_record_hdr) and of one struct xs_permissions: what
// xenstored counts against the node size quota.
constexpr int kRecordHeaderSize = 24;
constexpr int kPermRecordSize = 8;

std::string ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == 0 || slash == std::string::npos) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

std::string ChildPath(const std::string& parent, const std::string& child) {
  return parent == "/" ? absl::StrCat("/", child)
                       : absl::StrCat(parent, "/", child);
}

// xenstored is_child(): `child` is `parent` or below it; everything is
// below "/".
bool IsChild(const std::string& child, const std::string& parent) {
  if (parent == "/") return true;
  if (!absl::StartsWith(child, parent)) return false;
  return child.size() == parent.size() || child[parent.size()] == '/';
}

std::string JoinChildren(const Node& node) {
  return JoinWithNuls(node.children);
}

}  // namespace

std::optional<Perm> ParsePerm(absl::string_view s) {
  if (s.size() < 2) return std::nullopt;
  Perm p;
  switch (s[0]) {
    case 'n': p.perms = kPermNone; break;
    case 'r': p.perms = kPermRead; break;
    case 'w': p.perms = kPermWrite; break;
    case 'b': p.perms = kPermRead | kPermWrite; break;
    default: return std::nullopt;
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
    case kPermRead: letter = 'r'; break;
    case kPermWrite: letter = 'w'; break;
    case kPermRead | kPermWrite: letter = 'b'; break;
    default: letter = 'n'; break;
  }
  return absl::StrCat(std::string(1, letter), perm.id);
}

Store::Store(const StoreOptions& options, Delegate* delegate)
    : options_(options), delegate_(delegate) {
  // What xenstored's setup_structure() makes: "/", "/tool",
  // "/tool/xenstored", owned by dom0 with no access for others.
  auto make = [this](const std::string& path,
                     std::vector<std::string> children) {
    Node n;
    n.children = std::move(children);
    n.perms = {Perm{0, kPermNone}};
    n.generation = ++generation_;
    nodes_[path] = std::move(n);
    owned_[0]++;
  };
  make("/", {"tool"});
  make("/tool", {"xenstored"});
  make("/tool/xenstored", {});
  system_conn_.privileged = true;
}

Store::~Store() = default;

ConnId Store::AddConnection(uint32_t domid, bool privileged) {
  auto conn = std::make_unique<Connection>();
  conn->id = next_conn_id_++;
  conn->domid = domid;
  conn->privileged = privileged;
  const ConnId id = conn->id;
  conns_[id] = std::move(conn);
  return id;
}

void Store::RemoveConnection(ConnId conn) { conns_.erase(conn); }

const Node* Store::Find(absl::string_view path) const {
  auto it = nodes_.find(path);
  return it == nodes_.end() ? nullptr : &it->second;
}

int Store::OwnedNodeCount(uint32_t domid) const {
  auto it = owned_.find(domid);
  return it == owned_.end() ? 0 : it->second;
}

bool Store::IsIntroduced(uint32_t domid) const {
  return domid == 0 || introduced_.count(domid) > 0;
}

size_t Store::WatchCount(ConnId conn) const {
  auto it = conns_.find(conn);
  return it == conns_.end() ? 0 : it->second->watches.size();
}

size_t Store::TransactionCount(ConnId conn) const {
  auto it = conns_.find(conn);
  return it == conns_.end() ? 0 : it->second->transactions.size();
}

// ---------------------------------------------------------------------------
// Dispatch.

void Store::Handle(ConnId conn_id, const Message& req) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end()) return;
  Connection* conn = it->second.get();
  Ctx c{conn, nullptr, &req};

  auto fail = [&](int err) {
    delegate_->Send(conn_id, EncodeError(req.req_id, req.tx_id, err));
  };

  bool privileged_only = false;
  bool uses_tx = true;
  switch (req.type) {
    case XS_CONTROL:
    case XS_INTRODUCE:
    case XS_RELEASE:
    case XS_IS_DOMAIN_INTRODUCED:
    case XS_RESUME:
    case XS_SET_TARGET:
      privileged_only = true;
      break;
    case XS_WATCH:
    case XS_UNWATCH:
      uses_tx = false;
      break;
    case XS_DIRECTORY:
    case XS_READ:
    case XS_GET_PERMS:
    case XS_TRANSACTION_START:
    case XS_TRANSACTION_END:
    case XS_GET_DOMAIN_PATH:
    case XS_WRITE:
    case XS_MKDIR:
    case XS_RM:
    case XS_SET_PERMS:
    case XS_RESET_WATCHES:
    case XS_DIRECTORY_PART:
      break;
    default:  // XS_WATCH_EVENT, XS_ERROR, removed and unknown types.
      fail(ENOSYS);
      return;
  }
  if (privileged_only && !conn->privileged) {
    fail(EACCES);
    return;
  }
  if (uses_tx && req.tx_id != 0) {
    auto tx = conn->transactions.find(req.tx_id);
    if (tx == conn->transactions.end()) {
      fail(ENOENT);
      return;
    }
    c.tx = tx->second.get();
  }

  int err = 0;
  switch (req.type) {
    case XS_CONTROL: err = DoControl(c); break;
    case XS_DIRECTORY: err = DoDirectory(c, /*part=*/false); break;
    case XS_READ: err = DoRead(c); break;
    case XS_GET_PERMS: err = DoGetPerms(c); break;
    case XS_WATCH: err = DoWatch(c); break;
    case XS_UNWATCH: err = DoUnwatch(c); break;
    case XS_TRANSACTION_START: err = DoTransactionStart(c); break;
    case XS_TRANSACTION_END: err = DoTransactionEnd(c); break;
    case XS_INTRODUCE: err = DoIntroduce(c); break;
    case XS_RELEASE: err = DoRelease(c); break;
    case XS_GET_DOMAIN_PATH: err = DoGetDomainPath(c); break;
    case XS_WRITE: err = DoWrite(c); break;
    case XS_MKDIR: err = DoMkdir(c); break;
    case XS_RM: err = DoRm(c); break;
    case XS_SET_PERMS: err = DoSetPerms(c); break;
    case XS_IS_DOMAIN_INTRODUCED: err = DoIsDomainIntroduced(c); break;
    case XS_RESUME: err = DoResume(c); break;
    case XS_SET_TARGET: err = DoSetTarget(c); break;
    case XS_RESET_WATCHES: err = DoResetWatches(c); break;
    case XS_DIRECTORY_PART: err = DoDirectory(c, /*part=*/true); break;
    default: err = ENOSYS; break;
  }
  if (err != 0) fail(err);
}

void Store::Reply(const Ctx& c, uint32_t type, absl::string_view payload) {
  if (payload.size() > kPayloadMax) {
    delegate_->Send(c.conn->id, EncodeError(c.req->req_id, c.req->tx_id, E2BIG));
    return;
  }
  delegate_->Send(c.conn->id,
                  EncodeMessage(type, c.req->req_id, c.req->tx_id, payload));
}

// ---------------------------------------------------------------------------
// Paths and permissions.

uint32_t Store::PermFor(const Connection& conn,
                        const std::vector<Perm>& perms) const {
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

std::string Store::ImplicitPath(const Connection& conn) const {
  return absl::StrCat("/local/domain/", conn.domid);
}

std::string Store::Canonicalize(const Connection& conn,
                                absl::string_view path) const {
  if (!path.empty() && (path[0] == '/' || path[0] == '@')) {
    return std::string(path);
  }
  return absl::StrCat(ImplicitPath(conn), "/", path);
}

bool Store::IsValidPath(absl::string_view path) const {
  if (path.empty() || path[0] != '/') return false;
  if (path.size() > 1 && path.back() == '/') return false;
  if (absl::StrContains(path, "//")) return false;
  size_t local_off = 0;
  constexpr absl::string_view kLocal = "/local/domain/";
  if (absl::StartsWith(path, kLocal)) {
    size_t i = kLocal.size();
    size_t digits = 0;
    while (i < path.size() && digits < 5 && path[i] >= '0' && path[i] <= '9') {
      ++i;
      ++digits;
    }
    if (digits > 0 && i < path.size() && path[i] == '/') local_off = i + 1;
  }
  if (path.size() > local_off + static_cast<size_t>(options_.max_relative_path)) {
    return false;
  }
  if (path.size() > 3072) return false;  // XENSTORE_ABS_PATH_MAX
  for (char ch : path) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '/' ||
                    ch == '_' || ch == '@';
    if (!ok) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Node access: global tree, or copy-on-access inside a transaction.

const Node* Store::Get(Ctx& c, const std::string& path) {
  if (c.tx == nullptr) {
    auto it = nodes_.find(path);
    return it == nodes_.end() ? nullptr : &it->second;
  }
  Transaction& tx = *c.tx;
  auto it = tx.nodes.find(path);
  if (it == tx.nodes.end()) {
    auto g = nodes_.find(path);
    if (g == nodes_.end()) {
      it = tx.nodes.emplace(path, std::nullopt).first;
      tx.base_generation[path] = 0;
      tx.base_perms[path] = std::nullopt;
    } else {
      it = tx.nodes.emplace(path, g->second).first;
      tx.base_generation[path] = g->second.generation;
      tx.base_perms[path] = g->second.perms;
    }
  }
  return it->second ? &*it->second : nullptr;
}

void Store::Put(Ctx& c, const std::string& path, Node node) {
  node.generation = ++generation_;
  if (c.tx == nullptr) {
    auto it = nodes_.find(path);
    if (it != nodes_.end()) {
      if (--owned_[it->second.perms[0].id] == 0) {
        owned_.erase(it->second.perms[0].id);
      }
    }
    owned_[node.perms[0].id]++;
    nodes_[path] = std::move(node);
    return;
  }
  Get(c, path);  // Records the first access.
  std::optional<Node>& slot = c.tx->nodes[path];
  if (slot) c.tx->owned_delta[slot->perms[0].id]--;
  c.tx->owned_delta[node.perms[0].id]++;
  slot = std::move(node);
  c.tx->modified.insert(path);
}

void Store::Erase(Ctx& c, const std::string& path) {
  if (c.tx == nullptr) {
    auto it = nodes_.find(path);
    if (it == nodes_.end()) return;
    if (--owned_[it->second.perms[0].id] == 0) {
      owned_.erase(it->second.perms[0].id);
    }
    nodes_.erase(it);
    ++generation_;
    return;
  }
  Get(c, path);
  std::optional<Node>& slot = c.tx->nodes[path];
  if (slot) c.tx->owned_delta[slot->perms[0].id]--;
  slot = std::nullopt;
  c.tx->modified.insert(path);
}

int Store::ErrnoFromParents(Ctx& c, const std::string& path, int err,
                            uint32_t perm) {
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

const Node* Store::GetChecked(Ctx& c, const std::string& path, uint32_t perm,
                              int* err) {
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
  size_t size = kRecordHeaderSize + kPermRecordSize * node.perms.size() +
                node.data.size();
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
  if (unprivileged && OwnedInView(c, c.conn->domid) +
                              static_cast<int>(names.size()) >
                          options_.nodes_per_domain) {
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
    p.children.erase(std::remove(p.children.begin(), p.children.end(), base),
                     p.children.end());
    Put(c, parent_path, std::move(p));
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Watches.

void Store::FireWatches(Ctx* c, const std::string& path, bool exact,
                        const std::vector<Perm>* old_perms) {
  if (c != nullptr && c->tx != nullptr) {
    Transaction& tx = *c->tx;
    for (PendingEvent& ev : tx.events) {
      if (ev.path == path) {
        ev.exact = ev.exact && exact;
        return;
      }
    }
    PendingEvent ev;
    ev.path = path;
    ev.exact = exact;
    auto bp = tx.base_perms.find(path);
    if (bp != tx.base_perms.end() && bp->second) {
      ev.perms = bp->second;
    } else if (old_perms != nullptr) {
      ev.perms = *old_perms;
    }
    tx.events.push_back(std::move(ev));
    return;
  }
  FireNow(path, exact, old_perms);
}

bool Store::WatchPermitted(const Connection& conn, const std::string& path,
                           const std::vector<Perm>* old_perms) const {
  if (old_perms != nullptr && (PermFor(conn, *old_perms) & kPermRead)) {
    return true;
  }
  auto node = nodes_.find(path);
  if (node == nodes_.end()) return false;
  if (PermFor(conn, node->second.perms) & kPermRead) return true;
  auto parent = nodes_.find(ParentOf(path));
  if (parent == nodes_.end()) return false;
  return (PermFor(conn, parent->second.perms) & kPermRead) != 0;
}

void Store::SendEvent(const Connection& conn, const Watch& w,
                      const std::string& path) {
  absl::string_view shown = path;
  if (w.relative) {
    const std::string prefix = ImplicitPath(conn);
    if (absl::StartsWith(shown, prefix)) {
      shown.remove_prefix(prefix.size());
      if (!shown.empty() && shown[0] == '/') shown.remove_prefix(1);
    }
  }
  std::string payload;
  payload.reserve(shown.size() + w.token.size() + 2);
  payload.append(shown.data(), shown.size());
  payload.push_back('\0');
  payload.append(w.token);
  payload.push_back('\0');
  if (payload.size() > kPayloadMax) return;  // As xenstored: never sent.
  delegate_->Send(conn.id, EncodeMessage(XS_WATCH_EVENT, 0, 0, payload));
}

void Store::FireNow(const std::string& path, bool exact,
                    const std::vector<Perm>* old_perms) {
  const bool special = !path.empty() && path[0] == '@';
  const std::vector<Perm>* special_perms = nullptr;
  if (special) {
    if (path == "@introduceDomain") special_perms = &introduce_perms_;
    if (path == "@releaseDomain") special_perms = &release_perms_;
  }
  for (auto& entry : conns_) {
    const Connection& conn = *entry.second;
    if (special) {
      if (special_perms == nullptr ||
          !(PermFor(conn, *special_perms) & kPermRead)) {
        continue;
      }
    } else if (!WatchPermitted(conn, path, old_perms)) {
      continue;
    }
    for (const Watch& w : conn.watches) {
      const bool match = exact ? w.node == path : IsChild(path, w.node);
      if (match) SendEvent(conn, w, path);
    }
  }
}

int Store::WatchCountForDomain(uint32_t domid) const {
  int n = 0;
  for (const auto& entry : conns_) {
    if (entry.second->domid == domid && !entry.second->privileged) {
      n += static_cast<int>(entry.second->watches.size());
    }
  }
  return n;
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
  const Node* node =
      GetChecked(c, Canonicalize(*c.conn, *arg), kPermRead, &err);
  if (node == nullptr) return err;
  Reply(c, XS_READ, node->data);
  return 0;
}

int Store::DoGetPerms(Ctx& c) {
  std::optional<absl::string_view> arg = OneArg(c.req->payload);
  if (!arg) return EINVAL;
  int err = 0;
  const Node* node =
      GetChecked(c, Canonicalize(*c.conn, *arg), kPermRead, &err);
  if (node == nullptr) return err;
  std::vector<std::string> strings;
  for (const Perm& p : node->perms) strings.push_back(FormatPerm(p));
  Reply(c, XS_GET_PERMS, JoinWithNuls(strings));
  return 0;
}

int Store::DoWatch(Ctx& c) {
  SplitPayload split = SplitStrings(c.req->payload);
  if (split.strings.size() != 2) return EINVAL;
  Watch w;
  absl::string_view path = split.strings[0];
  if (!path.empty() && path[0] == '@') {
    if (path.size() > static_cast<size_t>(options_.max_relative_path)) {
      return EINVAL;
    }
    w.node = std::string(path);
  } else {
    w.relative = path.empty() || path[0] != '/';
    w.node = Canonicalize(*c.conn, path);
    if (!IsValidPath(w.node)) return EINVAL;
  }
  w.token = std::string(split.strings[1]);
  for (const Watch& existing : c.conn->watches) {
    if (existing.node == w.node && existing.token == w.token) return EEXIST;
  }
  if (!c.conn->privileged &&
      WatchCountForDomain(c.conn->domid) > options_.watches_per_domain) {
    return E2BIG;
  }
  c.conn->watches.push_back(w);
  Ack(c, XS_WATCH);
  // Fires once up front (not tied to the request).
  SendEvent(*c.conn, w, w.node);
  return 0;
}

int Store::DoUnwatch(Ctx& c) {
  SplitPayload split = SplitStrings(c.req->payload);
  if (split.strings.size() != 2) return EINVAL;
  const std::string node = Canonicalize(*c.conn, split.strings[0]);
  auto& watches = c.conn->watches;
  for (auto it = watches.begin(); it != watches.end(); ++it) {
    if (it->node == node && it->token == split.strings[1]) {
      watches.erase(it);
      Ack(c, XS_UNWATCH);
      return 0;
    }
  }
  return ENOENT;
}

int Store::DoTransactionStart(Ctx& c) {
  if (c.tx != nullptr) return EBUSY;  // No nested transactions.
  Connection& conn = *c.conn;
  if (!conn.privileged && static_cast<int>(conn.transactions.size()) >
                              options_.transactions_per_connection) {
    return ENOSPC;
  }
  uint32_t id = conn.next_transaction_id++;
  while (id == 0 || conn.transactions.count(id) > 0) {
    id = conn.next_transaction_id++;
  }
  auto tx = std::make_unique<Transaction>();
  tx->id = id;
  conn.transactions[id] = std::move(tx);
  std::string reply = absl::StrCat(id);
  reply.push_back('\0');
  Reply(c, XS_TRANSACTION_START, reply);
  return 0;
}

int Store::DoTransactionEnd(Ctx& c) {
  std::optional<absl::string_view> arg = OneArg(c.req->payload);
  if (!arg || (*arg != "T" && *arg != "F")) return EINVAL;
  if (c.tx == nullptr) return ENOENT;
  auto node = c.conn->transactions.extract(c.tx->id);
  std::unique_ptr<Transaction> tx = std::move(node.mapped());
  c.tx = nullptr;
  if (*arg == "T") {
    for (const auto& base : tx->base_generation) {
      auto cur = nodes_.find(base.first);
      const uint64_t gen = cur == nodes_.end() ? 0 : cur->second.generation;
      if (gen != base.second) return EAGAIN;
    }
    if (!c.conn->privileged) {
      for (const auto& delta : tx->owned_delta) {
        if (delta.second > 0 &&
            OwnedNodeCount(delta.first) + delta.second >
                options_.nodes_per_domain) {
          return ENOSPC;
        }
      }
    }
    for (const std::string& path : tx->modified) {
      std::optional<Node>& slot = tx->nodes[path];
      auto it = nodes_.find(path);
      if (it != nodes_.end()) {
        if (--owned_[it->second.perms[0].id] == 0) {
          owned_.erase(it->second.perms[0].id);
        }
      }
      if (slot) {
        owned_[slot->perms[0].id]++;
        nodes_[path] = std::move(*slot);
      } else if (it != nodes_.end()) {
        nodes_.erase(it);
      }
    }
    ++generation_;
    Ack(c, XS_TRANSACTION_END);
    for (const PendingEvent& ev : tx->events) {
      FireNow(ev.path, ev.exact, ev.perms ? &*ev.perms : nullptr);
    }
    return 0;
  }
  Ack(c, XS_TRANSACTION_END);
  return 0;
}

int Store::DoIntroduce(Ctx& c) {
  SplitPayload split = SplitStrings(c.req->payload);
  if (split.strings.size() < 3) return EINVAL;
  const int64_t domid = AtoiLike(split.strings[0]);
  const int64_t port = AtoiLike(split.strings[2]);
  if (port <= 0) return EINVAL;
  if (domid < 0 || domid >= kDomidFirstReserved) return EINVAL;
  const uint32_t id = static_cast<uint32_t>(domid);
  if (!IsIntroduced(id)) {
    if (!delegate_->DomainIntroduced(id).ok()) return EIO;
    introduced_[id] = Domain{};
    FireNow("@introduceDomain", /*exact=*/true, nullptr);
  }
  Ack(c, XS_INTRODUCE);
  return 0;
}

void Store::ReleaseDomainNodes(uint32_t domid) {
  if (OwnedNodeCount(domid) == 0) return;
  // Top-most nodes owned by the domain, in tree order.
  std::vector<std::string> tops;
  std::vector<std::string> stack = {"/"};
  while (!stack.empty()) {
    std::string p = std::move(stack.back());
    stack.pop_back();
    auto it = nodes_.find(p);
    if (it == nodes_.end()) continue;
    if (p != "/" && it->second.perms[0].id == domid) {
      tops.push_back(p);
      continue;
    }
    const auto& children = it->second.children;
    for (auto ch = children.rbegin(); ch != children.rend(); ++ch) {
      stack.push_back(ChildPath(p, *ch));
    }
  }
  Ctx sys{&system_conn_, nullptr, nullptr};
  for (const std::string& top : tops) RemoveTree(sys, top);
}

void Store::IgnorePermsOf(uint32_t domid) {
  for (auto& entry : nodes_) {
    auto& perms = entry.second.perms;
    for (size_t i = 1; i < perms.size(); ++i) {
      if (perms[i].id == domid) perms[i].ignored = true;
    }
  }
}

int Store::DoRelease(Ctx& c) {
  std::optional<absl::string_view> arg = OneArg(c.req->payload);
  if (!arg) return EINVAL;
  const int64_t domid = AtoiLike(*arg);
  if (domid == 0) return EINVAL;
  if (domid < 0 || domid >= kDomidFirstReserved ||
      introduced_.count(static_cast<uint32_t>(domid)) == 0) {
    return ENOENT;
  }
  const uint32_t id = static_cast<uint32_t>(domid);
  std::vector<ConnId> dropped;
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (it->second->domid == id && !it->second->privileged) {
      dropped.push_back(it->first);
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
  delegate_->DomainReleased(id, dropped);
  ReleaseDomainNodes(id);
  IgnorePermsOf(id);
  for (auto* perms : {&introduce_perms_, &release_perms_}) {
    for (size_t i = perms->size(); i-- > 1;) {
      if ((*perms)[i].id == id) perms->erase(perms->begin() + i);
    }
  }
  introduced_.erase(id);
  for (auto& dom : introduced_) {
    if (dom.second.target == id) dom.second.target.reset();
  }
  FireNow("@releaseDomain", /*exact=*/true, nullptr);
  Ack(c, XS_RELEASE);
  return 0;
}

int Store::DoResume(Ctx& c) {
  std::optional<absl::string_view> arg = OneArg(c.req->payload);
  if (!arg) return EINVAL;
  const int64_t domid = AtoiLike(*arg);
  if (domid == 0) return EINVAL;
  if (domid < 0 || domid >= kDomidFirstReserved ||
      introduced_.count(static_cast<uint32_t>(domid)) == 0) {
    return ENOENT;
  }
  Ack(c, XS_RESUME);
  return 0;
}

int Store::DoGetDomainPath(Ctx& c) {
  std::optional<absl::string_view> arg = OneArg(c.req->payload);
  if (!arg) return EINVAL;
  std::string path = absl::StrCat(
      "/local/domain/", static_cast<uint32_t>(AtoiLike(*arg)));
  path.push_back('\0');
  Reply(c, XS_GET_DOMAIN_PATH, path);
  return 0;
}

int Store::DoIsDomainIntroduced(Ctx& c) {
  std::optional<absl::string_view> arg = OneArg(c.req->payload);
  if (!arg) return EINVAL;
  const int64_t domid = AtoiLike(*arg);
  const bool introduced =
      domid == kDomidSelf ||
      (domid >= 0 && domid < kDomidFirstReserved &&
       IsIntroduced(static_cast<uint32_t>(domid)));
  Reply(c, XS_IS_DOMAIN_INTRODUCED, absl::string_view(introduced ? "T" : "F", 2));
  return 0;
}

int Store::DoSetTarget(Ctx& c) {
  SplitPayload split = SplitStrings(c.req->payload);
  if (split.strings.size() < 2) return EINVAL;
  const int64_t domid = AtoiLike(split.strings[0]);
  const int64_t target = AtoiLike(split.strings[1]);
  for (int64_t d : {domid, target}) {
    if (d < 0 || d >= kDomidFirstReserved ||
        !IsIntroduced(static_cast<uint32_t>(d))) {
      return ENOENT;
    }
  }
  if (domid == 0) return EINVAL;  // dom0 is privileged anyway.
  introduced_[static_cast<uint32_t>(domid)].target =
      static_cast<uint32_t>(target);
  Ack(c, XS_SET_TARGET);
  return 0;
}

int Store::DoResetWatches(Ctx& c) {
  c.conn->watches.clear();
  c.conn->transactions.clear();
  c.tx = nullptr;
  Ack(c, XS_RESET_WATCHES);
  return 0;
}

int Store::DoControl(Ctx& c) {
  SplitPayload split = SplitStrings(c.req->payload);
  if (split.strings.empty()) return EINVAL;
  if (split.strings[0] == "help") {
    std::string text = "help\nprint <string>\n";
    text.push_back('\0');
    Reply(c, XS_CONTROL, text);
    return 0;
  }
  if (split.strings[0] == "print" && split.strings.size() == 2) {
    Ack(c, XS_CONTROL);
    return 0;
  }
  return EINVAL;
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
    if ((PermFor(*c.conn, *special) & (kPermWrite | kPermOwner)) !=
        (kPermWrite | kPermOwner)) {
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
