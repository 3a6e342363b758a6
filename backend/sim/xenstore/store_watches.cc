// Watches in the simulated xenstored: queueing events inside a transaction
// or firing them now, who may see an event (read access to the node, its old
// perms or its parent; the "@" specials' own perms), relative watch paths,
// the per-domain watch quota, and XS_WATCH / XS_UNWATCH / XS_RESET_WATCHES.
#include <errno.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

#include <utility>

#include "absl/strings/match.h"
#include "backend/sim/xenstore/paths.h"
#include "backend/sim/xenstore/store.h"

namespace xenchan::sim::xenstore {

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

void Store::SendEvent(const Connection& conn, const Watch& w, const std::string& path) {
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

void Store::FireNow(const std::string& path, bool exact, const std::vector<Perm>* old_perms) {
  const bool special = !path.empty() && path[0] == '@';
  const std::vector<Perm>* special_perms = nullptr;
  if (special) {
    if (path == "@introduceDomain") special_perms = &introduce_perms_;
    if (path == "@releaseDomain") special_perms = &release_perms_;
  }
  for (auto& entry : conns_) {
    const Connection& conn = *entry.second;
    if (special) {
      if (special_perms == nullptr || !(PermFor(conn, *special_perms) & kPermRead)) {
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
  if (!c.conn->privileged && WatchCountForDomain(c.conn->domid) > options_.watches_per_domain) {
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

int Store::DoResetWatches(Ctx& c) {
  c.conn->watches.clear();
  c.conn->transactions.clear();
  c.tx = nullptr;
  Ack(c, XS_RESET_WATCHES);
  return 0;
}

}  // namespace xenchan::sim::xenstore
