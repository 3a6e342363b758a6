// Engine: durable channels (issue 12). A durable channel is declared for its
// domain's UUID in the DeclarationStore before its device exists. When the
// domain's incarnation ends, the channel is not removed: it waits,
// DOMAIN_DOWN, with its buffer, sessions and write lease, and is re-created
// (same channel id and uid, the same devid where free, new domid) as soon as
// a domain with that UUID is introduced; its first connection there starts a
// new epoch whose reason says how the domain came back.
//
// Epochs: an incarnation's epochs start at EpochFloor(g + 1), g being the
// generation the declaration had when the channel was re-created there (the
// store update that follows takes g + 1 or more). Generations only grow, so
// a new incarnation's epochs sit above every earlier one's, even when the
// engine lost everything in between.
//
// A restored or migrated guest that resumed before the device was written
// keeps a stale device at that devid and never probes ours: after
// resume_probe_timeout the channel is moved once to another devid
// (CheckResumeProbes).
//
// The store is read at start (a store that cannot be read stops xenchand
// with its error) and written on the engine thread only by lifecycle events.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "backend/engine/channel_record.h"
#include "backend/engine/engine.h"
#include "backend/engine/names.h"
#include "backend/engine/xenstore_layout.h"

namespace xenchan {
namespace {

constexpr int kEpochsPerIncarnationBits = 20;  // 1M connections before epochs could overlap

// The name a declaration keeps for its domain: the toolstack's name without
// xl migrate's temporary suffix; "" if the store could not keep it.
std::string DeclarableName(absl::string_view name) {
  absl::ConsumeSuffix(&name, "--incoming");
  if (name.size() > kMaxDeclaredDomainNameBytes) return "";
  for (char c : name) {
    if (c < 0x20 || c > 0x7e) return "";
  }
  return std::string(name);
}

}  // namespace

uint64_t Engine::EpochFloor(int64_t generation) {
  return static_cast<uint64_t>(std::max<int64_t>(generation, 0)) << kEpochsPerIncarnationBits;
}

bool Engine::BelongsTo(const Channel& ch, const DomainInfo& info) {
  const ChannelIdentity& id = ch.identity();
  if (!info.uuid.empty() && !id.domain_uuid.empty()) return id.domain_uuid == info.uuid;
  return id.domid == info.domid;
}

absl::StatusOr<int64_t> Engine::Declare(const std::string& uuid, const std::string& domain_name,
                                        const NewConsoleDevice& device, absl::Time now) {
  ChannelDeclaration d;
  d.domain_uuid = uuid;
  d.channel_id = device.channel_id;
  d.uid = device.uid;
  d.config = DeclaredConfig(device.config);
  d.create_time = now;
  d.domain_name = DeclarableName(domain_name);
  absl::StatusOr<int64_t> generation = options_.declarations->Put(d);
  if (!generation.ok()) return generation.status();
  d.generation = *generation;
  declarations_[{uuid, device.channel_id}] = std::move(d);
  return generation;
}

absl::Status Engine::Undeclare(const std::string& uuid, const std::string& channel_id) {
  absl::Status s = options_.declarations->Delete(uuid, channel_id);
  if (!s.ok() && s.code() != absl::StatusCode::kNotFound) return s;
  declarations_.erase({uuid, channel_id});
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Engine::RecordDeclaredDevid(const std::string& uuid,
                                                    const std::string& channel_id, uint32_t devid,
                                                    const std::string& domain_name) {
  auto it = declarations_.find({uuid, channel_id});
  if (it == declarations_.end()) return absl::NotFoundError("no declaration");
  DeclarationUpdate update;
  update.last_devid = devid;
  const std::string name = DeclarableName(domain_name);
  if (!name.empty()) update.domain_name = name;
  absl::StatusOr<int64_t> generation =
      options_.declarations->Update(uuid, channel_id, it->second.generation, update);
  if (!generation.ok()) return generation.status();
  it->second.generation = *generation;
  it->second.last_devid = devid;
  return generation;
}

absl::Status Engine::LoadDeclarations() {
  if (options_.declarations == nullptr) return absl::OkStatus();
  auto all = options_.declarations->ListAll();
  if (!all.ok()) return all.status();
  for (ChannelDeclaration& d : *all) {
    auto key = std::make_pair(d.domain_uuid, d.channel_id);
    declarations_[key] = std::move(d);
  }
  return absl::OkStatus();
}

void Engine::RestoreDeclaredChannels() {
  const absl::Time now = absl::Now();
  std::vector<uint32_t> running;  // domains with declared channels to re-create
  for (const auto& [key, d] : declarations_) {
    std::shared_ptr<Channel> found;
    DomainInfo dom;
    bool domain_runs = false;
    {
      MutexLock lock(&mu_);
      for (const auto& [serial, ch] : channels_) {
        if (ch->identity().domain_uuid == d.domain_uuid &&
            ch->identity().channel_id == d.channel_id && !ch->removed()) {
          found = ch;
        }
      }
      for (const auto& [domid, rec] : domains_) {
        if (rec.info.uuid == d.domain_uuid) {
          dom = rec.info;
          domain_runs = true;
        }
      }
    }
    if (found != nullptr) continue;  // recovered with its ring (RecoverRingChannels)
    if (!domain_runs) {
      MutexLock lock(&mu_);
      down_domains_.emplace(d.domain_uuid, DownDomain{d.domain_name, false});
    }
    AddWaitingChannel(d, domain_runs ? dom.name : d.domain_name, now);
    if (domain_runs) running.push_back(dom.domid);
  }
  std::sort(running.begin(), running.end());
  running.erase(std::unique(running.begin(), running.end()), running.end());
  // The domain came back while no engine ran: this engine has none of the
  // channel's buffers, as after any restart.
  for (uint32_t domid : running) {
    RecreateDurableChannels(domid, EpochChangeReason::kServerRestarted);
  }
}

std::shared_ptr<Channel> Engine::AddWaitingChannel(const ChannelDeclaration& d,
                                                   const std::string& name, absl::Time now) {
  ChannelIdentity id;
  id.serial = next_serial_++;
  id.uid = d.uid;
  id.channel_id = d.channel_id;
  id.domain_uuid = d.domain_uuid;
  id.devid = d.last_devid.value_or(0);
  id.transport = Transport::kRing;
  auto channel = NewChannel(id, EffectiveConfig(ConfigFromDeclared(d.config)), name, now);
  channel->SetDomainDown();
  durable_serials_.insert(id.serial);
  {
    MutexLock lock(&mu_);
    channels_[id.serial] = channel;
  }
  channel->Emit(ChannelEventType::kAppeared);
  return channel;
}

EpochChangeReason Engine::DomainReturnReason(uint32_t domid, const std::string& uuid) {
  auto dom = domains_.find(domid);
  // xl migrate's receiver names the domain so until the stream is in.
  if (dom != domains_.end() && absl::EndsWith(dom->second.info.name, "--incoming")) {
    return EpochChangeReason::kDomainMigrated;
  }
  auto down = down_domains_.find(uuid);
  if (down != down_domains_.end() && down->second.suspended) {
    return EpochChangeReason::kDomainRestored;
  }
  return EpochChangeReason::kDomainRebooted;
}

void Engine::RecreateDurableChannels(uint32_t domid, EpochChangeReason reason, bool moved) {
  DomainInfo dom;
  std::vector<std::shared_ptr<Channel>> waiting;
  {
    MutexLock lock(&mu_);
    auto it = domains_.find(domid);
    if (it == domains_.end()) return;
    dom = it->second.info;
    for (const auto& [serial, ch] : channels_) {
      if (durable_serials_.count(serial) != 0 && rings_.count(serial) == 0 && BelongsTo(*ch, dom) &&
          !ch->removed()) {
        waiting.push_back(ch);
      }
    }
  }
  XenStore& xs = *options_.xenstore;
  const absl::Time now = absl::Now();
  for (const std::shared_ptr<Channel>& ch : waiting) {
    const ChannelIdentity id = ch->identity();
    auto decl = declarations_.find({id.domain_uuid, id.channel_id});
    if (decl == declarations_.end()) continue;
    const std::optional<uint32_t> preferred =
        id.devid != 0 ? std::optional<uint32_t>(id.devid) : decl->second.last_devid;
    auto fail = [&](const absl::Status& s) {
      ch->SetState(ChannelState::kDomainDown, XenbusState::kUnknown, XenbusState::kUnknown,
                   ChannelError{ChannelErrorKind::kXenstore,
                                absl::StrCat("re-creating the channel in domain ", dom.name,
                                             " failed: ", s.message()),
                                now});
      ch->Emit(ChannelEventType::kStateChanged);
    };
    // The device first, the store after it: the guest may be about to
    // resume. This incarnation's epochs start above the next generation,
    // which the store update below takes (only this thread writes it); an
    // engine that dies before that update raises the generation when it
    // recovers the channel (RecoverRingChannels), so no epoch is reused.
    NewConsoleDevice device;
    device.backend_domid = options_.backend_domid;
    device.backend_type = options_.backend_type;
    device.domid = domid;
    device.channel_id = id.channel_id;
    device.uid = id.uid;
    device.config = ch->config();
    device.epoch = std::max(EpochFloor(decl->second.generation + 1), ch->Info().epoch);
    DevidChoice choice;
    choice.recently_released = released_devids_.Blocked(domid);
    // Devids whose device the guest reported broken (a stale device after a
    // resume): it never probes them again. Guest-written: only entries that
    // parse as a devid count.
    auto broken = xs.Directory(kNoTransaction, ConsoleErrorDir(domid));
    for (const std::string& e : broken.ok() ? *broken : std::vector<std::string>()) {
      std::optional<uint32_t> n = ParseDecimal(e, kMaxRingDevid);
      if (n.has_value() && *n != 0) choice.recently_released.insert(*n);
    }
    choice.max_channels_per_domain = options_.max_channels_per_domain;
    choice.preferred = preferred;
    choice.domain_name = dom.name;
    absl::StatusOr<uint32_t> devid = AddConsoleDevice(xs, device, choice, false);
    if (!devid.ok()) {
      fail(devid.status());
      continue;
    }
    (void)RecordDeclaredDevid(id.domain_uuid, id.channel_id, *devid, dom.name);
    {
      MutexLock lock(&mu_);
      ch->Rebind(domid, *devid, dom.name);
    }
    RingParams params = NewRingParams(domid, *devid, id.serial);
    params.persisted_epoch = device.epoch;
    params.first_connect_reason = reason;
    AddRingChannel(ch, std::move(params), XenbusState::kInitialising,
                   ChannelEventType::kStateChanged);
    if (!moved && (reason == EpochChangeReason::kDomainRestored ||
                   reason == EpochChangeReason::kDomainMigrated)) {
      resume_checks_[id.serial] = {absl::Now() + options_.resume_probe_timeout, reason};
    }
  }
}

void Engine::CheckResumeProbes(absl::Time now) {
  std::vector<std::pair<uint64_t, EpochChangeReason>> due;
  for (auto it = resume_checks_.begin(); it != resume_checks_.end();) {
    if (it->second.first > now) {
      ++it;
      continue;
    }
    due.emplace_back(it->first, it->second.second);
    it = resume_checks_.erase(it);
  }
  for (const auto& [serial, reason] : due) {
    auto ring = rings_.find(serial);
    if (ring == rings_.end() || ring->second->finished()) continue;
    const ChannelInfo info = ring->second->channel().Info();
    const bool unprobed = info.state == ChannelState::kWaitingForGuest &&
                          (info.frontend_state == XenbusState::kInitialising ||
                           info.frontend_state == XenbusState::kUnknown);
    if (!unprobed) continue;
    // The guest resumed with a stale device at this devid: drop ours there
    // (its removal lets the guest clean the stale one up), keep the devid
    // from being handed out again for a while, and write the channel anew
    // at another devid, which the resumed guest probes.
    const uint32_t domid = info.domid;
    const uint32_t old_devid = info.devid;
    ring->second->ReleaseForDomainGone();  // nothing is mapped yet: only the watch goes
    XenStore& xs = *options_.xenstore;
    (void)xs.Remove(kNoTransaction, FrontendPath(domid, old_devid));
    (void)xs.Remove(kNoTransaction,
                    BackendPath(options_.backend_domid, options_.backend_type, domid, old_devid));
    RecordRelease(domid, old_devid, now);
    std::shared_ptr<Channel> channel = ring->second->shared_channel();
    ReapFinished();
    RecreateDurableChannels(domid, reason, /*moved=*/true);
    const ChannelInfo moved = channel->Info();
    channel->SetState(
        moved.state, moved.frontend_state, moved.backend_state,
        ChannelError{ChannelErrorKind::kGuestNotConnecting,
                     absl::StrCat("the resumed guest did not probe devid ", old_devid, " within ",
                                  absl::FormatDuration(options_.resume_probe_timeout),
                                  " (a stale device): moved to devid ", moved.devid),
                     now});
    channel->Emit(ChannelEventType::kStateChanged);
  }
}

void Engine::DeleteDownChannel(const std::shared_ptr<Channel>& channel,
                               std::function<void(absl::StatusOr<DeleteResult>)> done) {
  const ChannelIdentity id = channel->identity();
  if (absl::Status s = Undeclare(id.domain_uuid, id.channel_id); !s.ok()) {
    return done(std::move(s));
  }
  durable_serials_.erase(id.serial);
  channel->SetState(ChannelState::kClosed, XenbusState::kUnknown, XenbusState::kUnknown,
                    std::nullopt);
  channel->MarkRemoved(absl::NotFoundError("the channel was deleted"));
  channel->Emit(ChannelEventType::kRemoved, std::nullopt, std::nullopt, std::nullopt,
                RemovalReason::kDeleted);
  {
    MutexLock lock(&mu_);
    channels_.erase(id.serial);
    bool more = false;
    for (const auto& [serial, ch] : channels_) {
      more = more || ch->identity().domain_uuid == id.domain_uuid;
    }
    if (!more) down_domains_.erase(id.domain_uuid);
  }
  done(DeleteResult{channel->Info(), false});
}

}  // namespace xenchan
