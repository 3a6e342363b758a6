// Engine: letting go of durable channels whose domain now runs on another
// host of the fleet (docs/FLEET.md, "The source host lets go of a channel
// that moved"). The fleet tells the engine (ReleaseMovedChannels) which
// channels the new host adopted; for each such domain that does not run
// here, those of its channels waiting DOMAIN_DOWN:
//  - get a new, empty epoch with reason kDomainMigrated after their last
//    byte, so every reader learns it has read everything this host had;
//  - lose their declaration here (the fleet's, which the destination
//    adopted, is the truth; a domain that comes back here adopts it anew);
//  - stay readable, reported DOMAIN_DOWN with lifetime INCARNATION (no
//    longer durable here; no other channel is DOMAIN_DOWN without being
//    durable, which is how the fleet's publisher tells them apart), for
//    moved_channel_retention, then are removed (readers drain what they had
//    not read, then see NOT_FOUND).
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backend/engine/engine.h"

namespace xenchan {

void Engine::ReleaseMovedChannels(std::map<std::string, MovedDomain> moved) {
  Post([this, moved = std::move(moved)]() {
    const absl::Time now = absl::Now();
    for (const auto& [uuid, domain] : moved) DoReleaseMoved(uuid, domain, now);
  });
}

void Engine::DoReleaseMoved(const std::string& uuid, const MovedDomain& moved, absl::Time now) {
  const std::string& host = moved.host;
  if (uuid.empty() || host.empty()) return;
  std::vector<std::shared_ptr<Channel>> waiting;
  {
    MutexLock lock(&mu_);
    if (down_domains_.count(uuid) == 0) return;  // runs here, or nothing of it waits here
    for (const auto& [domid, rec] : domains_) {
      if (rec.info.uuid == uuid) return;  // runs here (again): the publisher's guard decides
    }
    for (const auto& [serial, ch] : channels_) {
      if (ch->identity().domain_uuid == uuid &&
          moved.channel_ids.count(ch->identity().channel_id) &&
          durable_serials_.count(serial) != 0 && rings_.count(serial) == 0 && !ch->removed()) {
        waiting.push_back(ch);
      }
    }
  }
  for (const std::shared_ptr<Channel>& ch : waiting) {
    const ChannelIdentity id = ch->identity();
    // The declaration first: if the store refuses, the channel stays as it
    // was (durable, DOMAIN_DOWN) and a later change of the fleet retries.
    if (!Undeclare(id.domain_uuid, id.channel_id).ok()) continue;
    durable_serials_.erase(id.serial);
    resume_checks_.erase(id.serial);
    ChannelConfig config = ch->config();
    config.lifetime = ChannelLifetime::kIncarnation;
    ch->UpdateConfig(config);  // the same settings: only the reported lifetime changes
    const EpochChange change =
        ch->BeginEpoch(ch->Info().epoch + 1, EpochChangeReason::kDomainMigrated, now);
    ch->Emit(ChannelEventType::kEpochChanged, change);
    ch->Emit(ChannelEventType::kStateChanged);
    moved_[id.serial] = {now + options_.moved_channel_retention, host};
  }
}

void Engine::CheckMovedChannels(absl::Time now) {
  std::vector<std::pair<std::shared_ptr<Channel>, std::string>> due;
  {
    MutexLock lock(&mu_);
    for (auto it = moved_.begin(); it != moved_.end();) {
      if (it->second.first > now) {
        ++it;
        continue;
      }
      auto ch = channels_.find(it->first);
      if (ch != channels_.end()) due.emplace_back(ch->second, it->second.second);
      it = moved_.erase(it);
    }
  }
  for (const auto& [ch, host] : due) {
    RemoveMovedChannel(ch,
                       absl::StrCat("the channel moved to host ", host,
                                    " with its domain; this host's copy was kept for ",
                                    absl::FormatDuration(options_.moved_channel_retention)),
                       RemovalReason::kDomainGone);
  }
}

void Engine::RetireMovedChannels(const std::string& uuid) {
  if (uuid.empty()) return;
  std::vector<std::shared_ptr<Channel>> copies;
  {
    MutexLock lock(&mu_);
    for (auto it = moved_.begin(); it != moved_.end();) {
      auto ch = channels_.find(it->first);
      if (ch == channels_.end() || ch->second->identity().domain_uuid == uuid) {
        if (ch != channels_.end()) copies.push_back(ch->second);
        it = moved_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const std::shared_ptr<Channel>& ch : copies) {
    RemoveMovedChannel(ch,
                       "the channel's domain came back to this host: its channels follow the "
                       "fleet's declaration",
                       RemovalReason::kDomainGone);
  }
}

void Engine::RemoveMovedChannel(const std::shared_ptr<Channel>& channel, const std::string& why,
                                RemovalReason reason) {
  const ChannelIdentity id = channel->identity();
  channel->MarkRemoved(absl::NotFoundError(why));
  channel->Emit(ChannelEventType::kRemoved, std::nullopt, std::nullopt, std::nullopt, reason);
  MutexLock lock(&mu_);
  moved_.erase(id.serial);
  channels_.erase(id.serial);
  bool more = false;
  for (const auto& [serial, ch] : channels_) {
    more = more || ch->identity().domain_uuid == id.domain_uuid;
  }
  if (!more) down_domains_.erase(id.domain_uuid);
}

}  // namespace xenchan
