// Engine: the toolstack channels, declared in xl.cfg and served by QEMU
// (toolstack_channel.h). They are discovered under QEMU's console backends
// (/local/domain/B/backend/console), by a watch on that directory and
// whenever a new domain is learnt, and each is then followed through its own
// watches until its device or its domain goes.
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/engine/engine.h"
#include "backend/engine/names.h"
#include "backend/engine/watch_tokens.h"
#include "backend/engine/xenstore_layout.h"
#include "backend/util/uuid.h"

namespace xenchan {
namespace {

// Toolstack devids are whatever libxl chose; larger entries are not devices.
constexpr uint32_t kMaxToolstackDevid = 1000000;

}  // namespace

void Engine::ScanToolstackChannels() {
  if (!options_.serve_toolstack_channels) return;
  XenStore& xs = *options_.xenstore;
  const std::string base = BackendTypeDir(options_.backend_domid, kToolstackBackendType);
  auto doms = xs.Directory(kNoTransaction, base);
  if (!doms.ok()) return;
  const absl::Time now = absl::Now();
  for (const std::string& d : *doms) {
    std::optional<uint32_t> domid = ParseDecimal(d, kMaxDomid);
    if (!domid.has_value()) continue;
    DomainInfo dom;
    {
      MutexLock lock(&mu_);
      auto it = domains_.find(*domid);
      if (it == domains_.end()) continue;  // learnt later, then scanned again
      dom = it->second.info;
    }
    auto devs = xs.Directory(kNoTransaction, NodePath(base, d));
    if (!devs.ok()) continue;
    for (const std::string& n : *devs) {
      std::optional<uint32_t> devid = ParseDecimal(n, kMaxToolstackDevid);
      if (!devid.has_value() || toolstack_devices_.count({*domid, *devid}) != 0) continue;
      std::optional<ToolstackSpec> spec = ReadToolstackSpec(xs, *domid, *devid);
      if (!spec.has_value()) continue;
      bool taken = false;
      {
        MutexLock lock(&mu_);
        for (const auto& [serial, ch] : channels_) {
          taken = taken || (ch->identity().domid == *domid &&
                            ch->identity().channel_id == spec->name && !ch->removed());
        }
      }
      if (taken) continue;  // a channel id is unique per domain across transports
      ChannelIdentity id;
      id.serial = next_serial_++;
      id.uid = StableUuid(
          absl::StrCat("toolstack/", dom.uuid, "/", *domid, "/", *devid, "/", spec->name));
      id.channel_id = spec->name;
      id.domain_uuid = dom.uuid;
      id.domid = *domid;
      id.devid = *devid;
      id.transport = spec->socket ? Transport::kToolstackSocket : Transport::kToolstackPty;
      auto channel = NewChannel(id, EffectiveConfig({}), dom.name, now);
      {
        MutexLock lock(&mu_);
        channels_[id.serial] = channel;
      }
      auto ts = std::make_unique<ToolstackChannel>(&xs, channel, *spec,
                                                   ToolstackChannelWatchToken(id.serial));
      toolstack_devices_[{*domid, *devid}] = id.serial;
      ToolstackChannel* t = ts.get();
      toolstack_[id.serial] = std::move(ts);
      (void)t->Start();
      t->Refresh(now);
      channel->Emit(ChannelEventType::kAppeared);
    }
  }
}

void Engine::RefreshToolstack(uint64_t serial, absl::Time now) {
  auto it = toolstack_.find(serial);
  if (it == toolstack_.end() || it->second->finished()) return;
  if (it->second->Refresh(now)) return;
  // Its device is gone. If its domain is going too, say so (libxl removes
  // the devices first when it destroys a domain; this cannot always tell).
  const uint32_t domid = it->second->channel().identity().domid;
  auto introduced = options_.xenstore->IsDomainIntroduced(domid);
  const bool domain_gone =
      (introduced.ok() && !*introduced) ||
      options_.xenstore->Read(kNoTransaction, DomainNamePath(domid)).status().code() ==
          absl::StatusCode::kNotFound;
  it->second->Remove(domain_gone ? RemovalReason::kDomainGone : RemovalReason::kToolstackRemoved);
}

}  // namespace xenchan
