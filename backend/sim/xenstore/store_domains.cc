// Domains in the simulated xenstored: XS_INTRODUCE, XS_RELEASE (dropping the
// domain's connections, removing the nodes it owns, ignoring perms entries
// naming it), XS_RESUME, XS_GET_DOMAIN_PATH, XS_IS_DOMAIN_INTRODUCED and
// XS_SET_TARGET.
#include <errno.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

#include <utility>

#include "backend/sim/xenstore/paths.h"
#include "backend/sim/xenstore/store.h"

namespace xenchan::sim::xenstore {
namespace {

// DOMID_SELF and DOMID_FIRST_RESERVED from xen/xen.h.
constexpr uint32_t kDomidSelf = 0x7FF0;
constexpr uint32_t kDomidFirstReserved = 0x7FF0;

}  // namespace

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
  std::string path = DomainPath(static_cast<uint32_t>(AtoiLike(*arg)));
  path.push_back('\0');
  Reply(c, XS_GET_DOMAIN_PATH, path);
  return 0;
}

int Store::DoIsDomainIntroduced(Ctx& c) {
  std::optional<absl::string_view> arg = OneArg(c.req->payload);
  if (!arg) return EINVAL;
  const int64_t domid = AtoiLike(*arg);
  const bool introduced = domid == kDomidSelf || (domid >= 0 && domid < kDomidFirstReserved &&
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
    if (d < 0 || d >= kDomidFirstReserved || !IsIntroduced(static_cast<uint32_t>(d))) {
      return ENOENT;
    }
  }
  if (domid == 0) return EINVAL;  // dom0 is privileged anyway.
  introduced_[static_cast<uint32_t>(domid)].target = static_cast<uint32_t>(target);
  Ack(c, XS_SET_TARGET);
  return 0;
}

}  // namespace xenchan::sim::xenstore
