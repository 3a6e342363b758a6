// FakeXenStore: XenStore requests encoded as xenstored messages and run in
// the shared FakeXenStoreHub.
#include "backend/platform/fake/xenstore.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <xen/io/xs_wire.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/platform/xen/lib_xenstore.h"

namespace xenchan {
namespace {

namespace xs = sim::xenstore;

std::string WithNul(const std::string& s) { return s + std::string(1, '\0'); }

}  // namespace

absl::StatusOr<std::unique_ptr<FakeXenStore>> FakeXenStore::Connect(
    std::shared_ptr<FakeXenStoreHub> hub, uint32_t domid, bool privileged) {
  const int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return absl::InternalError("eventfd failed");
  const FakeXenStoreHub::ConnId conn = hub->Connect(domid, privileged, fd);
  return std::unique_ptr<FakeXenStore>(new FakeXenStore(std::move(hub), conn, fd));
}

FakeXenStore::~FakeXenStore() {
  hub_->Disconnect(conn_);
  close(event_fd_);
}

absl::StatusOr<std::string> FakeXenStore::Call(uint32_t type, XsTransaction t, std::string payload,
                                               const std::string& what) {
  absl::StatusOr<xs::Message> reply = hub_->Call(conn_, type, t, std::move(payload));
  if (!reply.ok())
    return absl::UnavailableError(absl::StrCat(what, ": ", reply.status().message()));
  if (reply->type == XS_ERROR) {
    std::optional<absl::string_view> name = xs::OneArg(reply->payload);
    std::optional<int> err = name ? xs::ErrnoFromName(*name) : std::nullopt;
    return XsErrnoToStatus(err.value_or(EINVAL), what);
  }
  return std::move(reply->payload);
}

absl::StatusOr<std::string> FakeXenStore::Read(XsTransaction t, const std::string& path) {
  return Call(XS_READ, t, WithNul(path), absl::StrCat("read ", path));
}

absl::Status FakeXenStore::Write(XsTransaction t, const std::string& path,
                                 const std::string& value) {
  return Call(XS_WRITE, t, WithNul(path) + value, absl::StrCat("write ", path)).status();
}

absl::Status FakeXenStore::Mkdir(XsTransaction t, const std::string& path) {
  return Call(XS_MKDIR, t, WithNul(path), absl::StrCat("mkdir ", path)).status();
}

absl::Status FakeXenStore::Remove(XsTransaction t, const std::string& path) {
  return Call(XS_RM, t, WithNul(path), absl::StrCat("rm ", path)).status();
}

absl::StatusOr<std::vector<std::string>> FakeXenStore::Directory(XsTransaction t,
                                                                 const std::string& path) {
  absl::StatusOr<std::string> reply =
      Call(XS_DIRECTORY, t, WithNul(path), absl::StrCat("directory ", path));
  if (!reply.ok()) return reply.status();
  std::vector<std::string> names;
  for (absl::string_view name : xs::SplitStrings(*reply).strings) names.emplace_back(name);
  return names;
}

absl::Status FakeXenStore::SetPermissions(XsTransaction t, const std::string& path,
                                          const std::vector<XsPermission>& perms) {
  std::vector<std::string> strings = {path};
  for (const XsPermission& p : perms) {
    strings.push_back(xs::FormatPerm(xs::Perm{p.domid, static_cast<uint32_t>(p.access)}));
  }
  return Call(XS_SET_PERMS, t, xs::JoinWithNuls(strings), absl::StrCat("set permissions of ", path))
      .status();
}

absl::StatusOr<std::vector<XsPermission>> FakeXenStore::GetPermissions(XsTransaction t,
                                                                       const std::string& path) {
  const std::string what = absl::StrCat("get permissions of ", path);
  absl::StatusOr<std::string> reply = Call(XS_GET_PERMS, t, WithNul(path), what);
  if (!reply.ok()) return reply.status();
  std::vector<XsPermission> perms;
  for (absl::string_view text : xs::SplitStrings(*reply).strings) {
    std::optional<xs::Perm> p = xs::ParsePerm(text);
    if (!p) return XsErrnoToStatus(EINVAL, what);
    perms.push_back(XsPermission{
        p->id, static_cast<XsPermission::Access>(p->perms & (xs::kPermRead | xs::kPermWrite))});
  }
  return perms;
}

absl::StatusOr<XsTransaction> FakeXenStore::StartTransaction() {
  absl::StatusOr<std::string> reply =
      Call(XS_TRANSACTION_START, kNoTransaction, std::string(1, '\0'), "start transaction");
  if (!reply.ok()) return reply.status();
  std::optional<absl::string_view> id = xs::OneArg(*reply);
  const int64_t t = id ? xs::AtoiLike(*id) : 0;
  if (t <= 0) return XsErrnoToStatus(EINVAL, "start transaction");
  return static_cast<XsTransaction>(t);
}

absl::Status FakeXenStore::EndTransaction(XsTransaction t, bool commit) {
  return Call(XS_TRANSACTION_END, t, WithNul(commit ? "T" : "F"),
              commit ? "commit transaction" : "abort transaction")
      .status();
}

absl::Status FakeXenStore::Watch(const std::string& path, const std::string& token) {
  return Call(XS_WATCH, kNoTransaction, xs::JoinWithNuls({path, token}),
              absl::StrCat("watch ", path))
      .status();
}

absl::Status FakeXenStore::Unwatch(const std::string& path, const std::string& token) {
  return Call(XS_UNWATCH, kNoTransaction, xs::JoinWithNuls({path, token}),
              absl::StrCat("unwatch ", path))
      .status();
}

std::optional<XsWatchEvent> FakeXenStore::ReadWatch() { return hub_->NextEvent(conn_); }

absl::StatusOr<bool> FakeXenStore::IsDomainIntroduced(uint32_t domid) {
  absl::StatusOr<std::string> reply =
      Call(XS_IS_DOMAIN_INTRODUCED, kNoTransaction, WithNul(absl::StrCat(domid)),
           absl::StrCat("is domain ", domid, " introduced"));
  if (!reply.ok()) return reply.status();
  return xs::OneArg(*reply) == absl::string_view("T");
}

absl::Status FakeXenStore::IntroduceDomain(uint32_t domid) {
  // The mfn is ignored by the simulated xenstored; the port only has to be > 0.
  return Call(XS_INTRODUCE, kNoTransaction, xs::JoinWithNuls({absl::StrCat(domid), "0", "1"}),
              absl::StrCat("introduce domain ", domid))
      .status();
}

absl::Status FakeXenStore::ReleaseDomain(uint32_t domid) {
  return Call(XS_RELEASE, kNoTransaction, WithNul(absl::StrCat(domid)),
              absl::StrCat("release domain ", domid))
      .status();
}

}  // namespace xenchan
