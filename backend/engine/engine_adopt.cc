// Engine: adopting durable channels declared on another host of the fleet
// (docs/FLEET.md). A domain introduced here after start, with a UUID this
// engine has no declaration for, may have arrived from another host (a
// migration, or a restore of an image saved there) with durable channels:
// the engine asks the fleet (on_domain_arrival), holding the domain paused
// meanwhile (engine_hold.cc) so that the guest resumes with its channels in
// place. AdoptDeclarations declares what the fleet found, here, re-creates
// the channels as for a migration and ends the hold.
#include <string>
#include <utility>
#include <vector>

#include "backend/engine/channel_record.h"
#include "backend/engine/engine.h"

namespace xenchan {

void Engine::AdoptDeclarations(uint32_t domid, const std::string& uuid,
                               std::vector<ChannelDeclaration> declarations) {
  Post([this, domid, uuid, declarations = std::move(declarations)]() mutable {
    DoAdopt(domid, uuid, std::move(declarations));
  });
}

void Engine::DoAdopt(uint32_t domid, const std::string& uuid,
                     std::vector<ChannelDeclaration> declarations) {
  std::string name;
  {
    MutexLock lock(&mu_);
    auto dom = domains_.find(domid);
    if (dom == domains_.end() || dom->second.info.uuid != uuid) {
      name.clear();  // gone meanwhile, or another domain now: nothing to adopt into
    } else {
      name = dom->second.info.name;
    }
  }
  bool adopted = false;
  if (!name.empty() && options_.declarations != nullptr) {
    const absl::Time now = absl::Now();
    for (ChannelDeclaration& d : declarations) {
      // The fleet's values are checked by the caller; the key is ours to
      // check, and a channel declared here already stays as it is.
      if (d.domain_uuid != uuid || declarations_.count({uuid, d.channel_id}) != 0) continue;
      if (!ValidateConfigLimits(ConfigFromDeclared(d.config)).ok()) continue;
      d.create_time = now;
      absl::StatusOr<int64_t> generation = options_.declarations->Put(d);
      if (!generation.ok()) continue;  // e.g. its uid is another declaration's here
      d.generation = *generation;
      AddWaitingChannel(d, name, now);
      declarations_[{uuid, d.channel_id}] = std::move(d);
      adopted = true;
    }
  }
  if (adopted) RecreateDurableChannels(domid, EpochChangeReason::kDomainMigrated);
  ReleaseHold(domid);
}

}  // namespace xenchan
