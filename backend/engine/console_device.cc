// Console devices of ring channels: the create transaction (§2.5).
#include "backend/engine/console_device.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/engine/channel_record.h"
#include "backend/engine/devid.h"
#include "backend/engine/names.h"
#include "backend/engine/xenstore_layout.h"

namespace xenchan {
namespace {

constexpr int kTransactionAttempts = 16;

absl::Status IgnoreNotFound(absl::Status s) {
  return s.code() == absl::StatusCode::kNotFound ? absl::OkStatus() : s;
}

// Writes both ends of `device` in transaction `t` (§2.5): our backend
// directory (libxl's keys and our record of the channel, dom0's with the
// guest allowed to read) before the guest-owned frontend directory with
// libxl's keys (some read-only to the guest). Replaces what was left at
// either path. The first error, if any (the caller aborts `t`).
absl::Status WriteConsoleDevice(XenStore& xs, XsTransaction t, const NewConsoleDevice& device) {
  const uint32_t B = device.backend_domid;
  const uint32_t D = device.domid;
  const std::string fe = FrontendPath(D, device.devid);
  const std::string be = BackendPath(B, device.backend_type, D, device.devid);
  const std::vector<XsPermission> be_perms = {{B, XsPermission::kNone}, {D, XsPermission::kRead}};
  const std::vector<XsPermission> fe_perms = {{D, XsPermission::kNone}, {B, XsPermission::kRead}};
  const std::vector<XsPermission> ro_perms = be_perms;
  const std::string initialising = absl::StrCat(static_cast<int>(XenbusState::kInitialising));
  absl::Status status = absl::OkStatus();
  auto write = [&](const std::string& dir, absl::string_view node, const std::string& value,
                   const std::vector<XsPermission>* perms) {
    if (!status.ok()) return;
    const std::string path = NodePath(dir, node);
    status = xs.Write(t, path, value);
    if (status.ok() && perms != nullptr) status = xs.SetPermissions(t, path, *perms);
  };
  // Backend directory first: it must exist before the guest can see state 1.
  status = IgnoreNotFound(xs.Remove(t, be));
  if (status.ok()) status = xs.Mkdir(t, be);
  if (status.ok()) status = xs.SetPermissions(t, be, be_perms);
  write(be, kFrontendNode, fe, nullptr);
  write(be, kFrontendIdNode, absl::StrCat(D), nullptr);
  write(be, kOnlineNode, "1", nullptr);
  write(be, kStateNode, initialising, nullptr);
  write(be, kProtocolNode, kConsoleProtocol, nullptr);
  write(be, kNameNode, device.channel_id, nullptr);
  write(be, kUidNode, device.uid, nullptr);
  write(be, kEpochNode, absl::StrCat(device.epoch), nullptr);
  for (const auto& [node, value] : ChannelConfigNodes(device.config)) {
    write(be, node, value, nullptr);
  }
  // Frontend directory, guest-owned, with libxl's keys.
  if (status.ok()) status = IgnoreNotFound(xs.Remove(t, fe));
  if (status.ok()) status = xs.Mkdir(t, fe);
  if (status.ok()) status = xs.SetPermissions(t, fe, fe_perms);
  write(fe, kBackendNode, be, &fe_perms);
  write(fe, kBackendIdNode, absl::StrCat(B), &fe_perms);
  write(fe, kStateNode, initialising, &fe_perms);
  write(fe, kProtocolNode, kConsoleProtocol, &fe_perms);
  // Read-only to the guest.
  write(fe, kNameNode, device.channel_id, &ro_perms);
  write(fe, kTypeNode, device.backend_type, &ro_perms);
  write(fe, kLimitNode, absl::StrCat(device.config.buffer_limit_bytes), &ro_perms);
  write(fe, kOutputNode, device.backend_type, &ro_perms);
  write(fe, kTtyNode, "", &ro_perms);
  return status;
}

}  // namespace

absl::StatusOr<uint32_t> AddConsoleDevice(XenStore& xs, const NewConsoleDevice& device,
                                          const DevidChoice& choice, bool validate_only) {
  const uint32_t B = device.backend_domid;
  const uint32_t D = device.domid;
  uint32_t chosen = 0;
  const absl::Status status = RunInTransaction(
      xs,
      [&](XsTransaction t) -> absl::Status {
        if (!xs.Read(t, DomainNamePath(D)).ok()) {
          return absl::UnavailableError(
              absl::StrCat("domain ", choice.domain_name, " is going away"));
        }
        ConsoleDirectories dirs;
        auto list = [&](const std::string& dir, std::vector<std::string>* entries) {
          auto listed = xs.Directory(t, dir);
          if (listed.ok()) *entries = *std::move(listed);
        };
        list(FrontendDir(D), &dirs.frontend);
        list(LibxlConsoleDir(D), &dirs.libxl);
        list(BackendDomainDir(B, device.backend_type, D), &dirs.backend);
        absl::StatusOr<uint32_t> devid =
            ChooseDevid(dirs, choice.recently_released, choice.max_channels_per_domain,
                        choice.domain_name, choice.preferred);
        if (!devid.ok()) return devid.status();
        chosen = *devid;
        if (validate_only) return DiscardTransaction();
        NewConsoleDevice d = device;
        d.devid = chosen;
        return WriteConsoleDevice(xs, t, d);
      },
      kTransactionAttempts);
  if (!status.ok()) return status;
  return chosen;
}

}  // namespace xenchan
