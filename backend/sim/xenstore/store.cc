// The Store's skeleton: construction, connections, read-only introspection,
// and the request dispatch that checks a request's privilege and transaction
// and hands it to its handler. The handlers live by subject beside this file:
// store_nodes.cc (the tree), store_perms.cc (permissions),
// store_watches.cc, store_transactions.cc and store_domains.cc; the path
// rules are in paths.h.
#include "backend/sim/xenstore/store.h"

#include <errno.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

#include <memory>
#include <utility>

#include "backend/sim/xenstore/paths.h"

namespace xenchan::sim::xenstore {

Store::Store(const StoreOptions& options, Delegate* delegate)
    : options_(options), delegate_(delegate) {
  // What xenstored's setup_structure() makes: "/", "/tool",
  // "/tool/xenstored", owned by dom0 with no access for others.
  auto make = [this](const std::string& path, std::vector<std::string> children) {
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

  auto fail = [&](int err) { delegate_->Send(conn_id, EncodeError(req.req_id, req.tx_id, err)); };

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
    case XS_CONTROL:
      err = DoControl(c);
      break;
    case XS_DIRECTORY:
      err = DoDirectory(c, /*part=*/false);
      break;
    case XS_READ:
      err = DoRead(c);
      break;
    case XS_GET_PERMS:
      err = DoGetPerms(c);
      break;
    case XS_WATCH:
      err = DoWatch(c);
      break;
    case XS_UNWATCH:
      err = DoUnwatch(c);
      break;
    case XS_TRANSACTION_START:
      err = DoTransactionStart(c);
      break;
    case XS_TRANSACTION_END:
      err = DoTransactionEnd(c);
      break;
    case XS_INTRODUCE:
      err = DoIntroduce(c);
      break;
    case XS_RELEASE:
      err = DoRelease(c);
      break;
    case XS_GET_DOMAIN_PATH:
      err = DoGetDomainPath(c);
      break;
    case XS_WRITE:
      err = DoWrite(c);
      break;
    case XS_MKDIR:
      err = DoMkdir(c);
      break;
    case XS_RM:
      err = DoRm(c);
      break;
    case XS_SET_PERMS:
      err = DoSetPerms(c);
      break;
    case XS_IS_DOMAIN_INTRODUCED:
      err = DoIsDomainIntroduced(c);
      break;
    case XS_RESUME:
      err = DoResume(c);
      break;
    case XS_SET_TARGET:
      err = DoSetTarget(c);
      break;
    case XS_RESET_WATCHES:
      err = DoResetWatches(c);
      break;
    case XS_DIRECTORY_PART:
      err = DoDirectory(c, /*part=*/true);
      break;
    default:
      err = ENOSYS;
      break;
  }
  if (err != 0) fail(err);
}

void Store::Reply(const Ctx& c, uint32_t type, absl::string_view payload) {
  if (payload.size() > kPayloadMax) {
    delegate_->Send(c.conn->id, EncodeError(c.req->req_id, c.req->tx_id, E2BIG));
    return;
  }
  delegate_->Send(c.conn->id, EncodeMessage(type, c.req->req_id, c.req->tx_id, payload));
}

// ---------------------------------------------------------------------------
// Paths as a connection sees them (rules in paths.h).

std::string Store::ImplicitPath(const Connection& conn) const { return DomainPath(conn.domid); }

std::string Store::Canonicalize(const Connection& conn, absl::string_view path) const {
  return ResolvePath(conn.domid, path);
}

bool Store::IsValidPath(absl::string_view path) const {
  return IsValidNodePath(path, static_cast<size_t>(options_.max_relative_path));
}

// ---------------------------------------------------------------------------
// XS_CONTROL.

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

}  // namespace xenchan::sim::xenstore
