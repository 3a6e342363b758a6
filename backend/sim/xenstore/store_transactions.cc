// Transactions in the simulated xenstored: the request's view of the tree
// (the global tree, or copies taken on first access inside a transaction
// with the generation and perms they had then), and XS_TRANSACTION_START /
// XS_TRANSACTION_END, which commits atomically unless a node accessed in the
// transaction changed meanwhile (EAGAIN), then fires the queued watches.
#include <errno.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/sim/xenstore/store.h"

namespace xenchan::sim::xenstore {

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

int Store::DoTransactionStart(Ctx& c) {
  if (c.tx != nullptr) return EBUSY;  // No nested transactions.
  Connection& conn = *c.conn;
  if (!conn.privileged &&
      static_cast<int>(conn.transactions.size()) > options_.transactions_per_connection) {
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
            OwnedNodeCount(delta.first) + delta.second > options_.nodes_per_domain) {
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

}  // namespace xenchan::sim::xenstore
