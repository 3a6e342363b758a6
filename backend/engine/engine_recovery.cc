// Engine: taking over the ring channels of a previous engine process (the
// engine restarted, or crashed). Everything needed is in our own backend
// directories: each channel's record (channel_record.h), its backend state,
// an unplug that was under way, and the devids unplugs released lately.
// Connected rings are re-mapped and re-bound without the guest's help when
// the frontend watch first fires (ring_channel.h); what belongs to domains
// that are gone is removed.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backend/engine/channel_record.h"
#include "backend/engine/devid.h"
#include "backend/engine/engine.h"
#include "backend/engine/names.h"
#include "backend/engine/xenstore_layout.h"
#include "backend/util/uuid.h"

namespace xenchan {

void Engine::RecoverRingChannels() {
  XenStore& xs = *options_.xenstore;
  const std::string base = BackendTypeDir(options_.backend_domid, options_.backend_type);
  auto doms = xs.Directory(kNoTransaction, base);
  if (!doms.ok()) return;
  for (const std::string& d : *doms) {
    std::optional<uint32_t> domid = ParseDecimal(d, kMaxDomid);
    DomainInfo dom;
    bool known = false;
    if (domid.has_value()) {
      MutexLock lock(&mu_);
      auto it = domains_.find(*domid);
      if (it != domains_.end()) {
        known = true;
        dom = it->second.info;
      }
    }
    if (known) {
      auto introduced = xs.IsDomainIntroduced(*domid);
      known = !introduced.ok() || *introduced;
    }
    if (!known) {  // its domain is gone: what is left is ours to clean up
      (void)xs.Remove(kNoTransaction, NodePath(base, d));
      continue;
    }
    LoadReleasedDevids(*domid, absl::Now());
    const std::string domain_dir = NodePath(base, d);
    auto devs = xs.Directory(kNoTransaction, domain_dir);
    if (!devs.ok()) continue;
    for (const std::string& n : *devs) {
      std::optional<uint32_t> devid = ParseDecimal(n, kMaxRingDevid);
      if (!devid.has_value() || *devid == 0) continue;
      const std::string be = NodePath(domain_dir, n);
      auto read = [&](absl::string_view node) -> std::string {
        auto v = xs.Read(kNoTransaction, NodePath(be, node));
        return v.ok() ? *v : std::string();
      };
      const std::string name = read(kNameNode);
      if (!ValidateChannelId(name).ok()) continue;
      std::string uid = read(kUidNode);
      if (!IsUuid(uid)) uid = NewUuid();
      // Our own keys (the guest can read but not write them), still parsed
      // strictly and within the limits a create would accept; anything else
      // takes the defaults.
      ChannelConfig asked = ParseChannelConfigNodes(read);
      // Durable if declared (the store is the truth, engine_durable.cc).
      auto declared = declarations_.find({dom.uuid, name});
      const bool durable = declared != declarations_.end();
      if (durable) {
        asked.lifetime = ChannelLifetime::kDurable;
        uid = declared->second.uid;
      }
      uint64_t epoch = 0;
      (void)absl::SimpleAtoi(read(kEpochNode), &epoch);
      const XenbusState be_state =
          ParseXenbusState(read(kStateNode)).value_or(XenbusState::kInitialising);
      // An unplug the previous engine had begun (ring_channel.h).
      std::optional<absl::Time> unplug_deadline;
      auto unplugging = xs.Read(kNoTransaction, NodePath(be, kUnpluggingNode));
      if (unplugging.ok()) {
        int64_t micros = 0;
        unplug_deadline =
            absl::SimpleAtoi(*unplugging, &micros) ? absl::FromUnixMicros(micros) : absl::Now();
      }

      ChannelIdentity id;
      id.serial = next_serial_++;
      id.uid = uid;
      id.channel_id = name;
      id.domain_uuid = dom.uuid;
      id.domid = *domid;
      id.devid = *devid;
      id.transport = Transport::kRing;
      auto channel = NewChannel(id, EffectiveConfig(asked), dom.name, absl::Now());
      RingParams params = NewRingParams(*domid, *devid, id.serial);
      params.persisted_epoch = epoch;
      params.recovered = true;
      params.resume_unplug_deadline = unplug_deadline;
      if (durable && !unplug_deadline.has_value()) {
        durable_serials_.insert(id.serial);
        // Takes a new generation: a re-creation the previous engine did not
        // record used epochs from the one after the recorded generation.
        (void)RecordDeclaredDevid(dom.uuid, name, *devid);
      }
      AddRingChannel(std::move(channel), std::move(params), be_state);
    }
  }
}

void Engine::LoadReleasedDevids(uint32_t domid, absl::Time now) {
  XenStore& xs = *options_.xenstore;
  const std::string dir = ReleasedDevidsDir(options_.backend_domid, options_.backend_type, domid);
  auto entries = xs.Directory(kNoTransaction, dir);
  if (!entries.ok()) return;
  for (const std::string& e : *entries) {
    std::optional<uint32_t> devid = ParseDecimal(e, kMaxRingDevid);
    auto value = xs.Read(kNoTransaction, NodePath(dir, e));
    int64_t micros = 0;
    // Only we write these; anything unreadable counts as released just now.
    absl::Time at =
        value.ok() && absl::SimpleAtoi(*value, &micros) ? absl::FromUnixMicros(micros) : now;
    at = std::min(at, now);  // a clock that went back must not extend it
    if (!devid.has_value() || *devid == 0 || released_devids_.Expired(at, now)) {
      (void)xs.Remove(kNoTransaction, NodePath(dir, e));
      continue;
    }
    released_devids_.Record(domid, *devid, at);
  }
}

}  // namespace xenchan
