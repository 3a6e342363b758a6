// Engine: hot-add and unplug of the ring channels xenchan serves itself
// (XEN-CHANNELS §2.3, §2.5): the create transaction that writes both ends of
// a console device, the record of devids an unplug released, and the
// blocking wrappers for callers that may wait. Which devid a new channel
// gets is devid.h's ChooseDevid.
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/engine/channel_record.h"
#include "backend/engine/console_device.h"
#include "backend/engine/devid.h"
#include "backend/engine/engine.h"
#include "backend/engine/names.h"
#include "backend/engine/waiter.h"
#include "backend/engine/watch_tokens.h"
#include "backend/engine/xenstore_layout.h"
#include "backend/platform/xenstore.h"
#include "backend/util/uuid.h"

namespace xenchan {
namespace {}  // namespace

ChannelConfig Engine::EffectiveConfig(const ChannelConfig& asked) const {
  ChannelConfig c = asked;
  if (c.buffer_limit_bytes == 0) c.buffer_limit_bytes = options_.buffer_limit_bytes;
  if (!c.overflow_policy.has_value()) c.overflow_policy = options_.overflow_policy;
  if (c.write_queue_limit_bytes == 0) c.write_queue_limit_bytes = options_.write_queue_limit_bytes;
  if (!c.default_framing.has_value()) c.default_framing = Framing{};
  return c;
}

RingParams Engine::NewRingParams(uint32_t domid, uint32_t devid, uint64_t serial) const {
  RingParams params;
  // Both paths are ours to compute, never the guest's word for them.
  params.frontend_path = FrontendPath(domid, devid);
  params.backend_path = BackendPath(options_.backend_domid, options_.backend_type, domid, devid);
  params.watch_token = RingFrontendWatchToken(serial);
  params.event_allowance = options_.event_allowance;
  params.event_period = options_.event_period;
  params.event_cap = options_.event_cap;
  params.event_cap_period = options_.event_cap_period;
  params.connect_timeout = options_.connect_timeout;
  return params;
}

void Engine::RecordRelease(uint32_t domid, uint32_t devid, absl::Time now) {
  released_devids_.Record(domid, devid, now);
  // Persisted so that a restarted engine does not hand the devid out again
  // before the guest can have dropped the old device (§2.5). Best effort: a
  // failure only loses the protection across a restart.
  XenStore& xs = *options_.xenstore;
  const std::vector<XsPermission> dom0_only = {{options_.backend_domid, XsPermission::kNone}};
  const std::string dir = ReleasedDevidsDir(options_.backend_domid, options_.backend_type, domid);
  const std::string node = NodePath(dir, absl::StrCat(devid));
  if (xs.Write(kNoTransaction, node, absl::StrCat(absl::ToUnixMicros(now))).ok()) {
    (void)xs.SetPermissions(kNoTransaction, dir, dom0_only);
    (void)xs.SetPermissions(kNoTransaction, node, dom0_only);
  }
}

void Engine::CreateChannel(CreateChannelRequest request,
                           std::function<void(absl::StatusOr<ChannelInfo>)> done) {
  Post([this, request = std::move(request), done = std::move(done)]() mutable {
    DoCreate(std::move(request), std::move(done));
  });
}

void Engine::DoCreate(CreateChannelRequest request,
                      std::function<void(absl::StatusOr<ChannelInfo>)> done) {
  if (stop_) return done(absl::UnavailableError("the engine is shutting down"));
  absl::Status valid = ValidateChannelId(request.channel_id);
  if (!valid.ok()) return done(valid);
  const ChannelConfig config = EffectiveConfig(request.config);
  if (absl::Status s = ValidateConfigLimits(config); !s.ok()) return done(std::move(s));
  DomainInfo dom;
  {
    MutexLock lock(&mu_);
    auto resolved = ResolveDomainLocked(request.domain);
    if (!resolved.ok()) return done(resolved.status());
    dom = *resolved;
    if (dom.state == DomainState::kNotRunning) {
      return done(absl::UnavailableError(absl::StrCat("domain ", dom.name, " is not running")));
    }
    for (const auto& [serial, ch] : channels_) {
      if (ch->identity().domid == dom.domid && ch->identity().channel_id == request.channel_id &&
          !ch->removed()) {
        return done(absl::AlreadyExistsError(absl::StrCat(
            "domain ", dom.name, " already has a channel '", request.channel_id, "'")));
      }
    }
  }
  XenStore& xs = *options_.xenstore;
  const uint32_t B = options_.backend_domid;
  const uint32_t D = dom.domid;
  const absl::Time now = absl::Now();
  // Forget releases old enough to reuse.
  for (uint32_t released : released_devids_.Expire(D, now)) {
    (void)xs.Remove(kNoTransaction, NodePath(ReleasedDevidsDir(B, options_.backend_type, D),
                                             absl::StrCat(released)));
  }
  const std::set<uint32_t> recently_released = released_devids_.Blocked(D);
  // The channel's memory floor must fit (memory_budget.h).
  if (budget_->Headroom(D) < options_.channel_memory_reserve_bytes) {
    return done(MemoryBudgetError(
        absl::StrCat("the memory budget has no room for another channel's ",
                     options_.channel_memory_reserve_bytes, "-byte reserve in domain ", dom.name)));
  }
  const bool durable = config.lifetime == ChannelLifetime::kDurable;
  if (durable && options_.declarations == nullptr) {
    return done(absl::FailedPreconditionError(
        "durable channels need a declaration store (xenchand's state directory)"));
  }
  if (durable && dom.uuid.empty()) {
    return done(absl::FailedPreconditionError(
        absl::StrCat("domain ", dom.name, " has no UUID to declare a durable channel for")));
  }
  NewConsoleDevice device;
  device.backend_domid = B;
  device.backend_type = options_.backend_type;
  device.domid = D;
  device.channel_id = request.channel_id;
  device.uid = NewUuid();
  device.config = config;
  DevidChoice choice;
  choice.recently_released = recently_released;
  choice.max_channels_per_domain = options_.max_channels_per_domain;
  choice.domain_name = dom.name;
  // A durable channel is declared before its device exists: if this engine
  // dies in between, the next one finds the declaration and re-creates it.
  int64_t generation = 0;
  if (durable && !request.validate_only) {
    auto declared = Declare(dom.uuid, dom.name, device, now);
    if (!declared.ok()) return done(std::move(declared).status());
    generation = *declared;
    device.epoch = EpochFloor(generation);
  }
  // The devid is chosen and both ends written in one transaction; a
  // validate-only create stops after the choice.
  absl::StatusOr<uint32_t> devid = AddConsoleDevice(xs, device, choice, request.validate_only);
  if (!devid.ok()) {
    if (generation != 0) (void)Undeclare(dom.uuid, request.channel_id);
    return done(std::move(devid).status());  // one owner, no shared rep
  }
  device.devid = *devid;
  if (request.validate_only) {
    ChannelInfo preview;
    preview.channel_id = request.channel_id;
    preview.domain_uuid = dom.uuid;
    preview.domain_name = dom.name;
    preview.domid = D;
    preview.transport = Transport::kRing;
    preview.state = ChannelState::kCreating;
    preview.config = config;
    return done(preview);
  }
  if (generation != 0) {
    (void)RecordDeclaredDevid(dom.uuid, request.channel_id, device.devid, dom.name);
  }

  ChannelIdentity id;
  id.serial = next_serial_++;
  id.uid = device.uid;
  id.channel_id = request.channel_id;
  id.domain_uuid = dom.uuid;
  id.domid = D;
  id.devid = device.devid;
  id.transport = Transport::kRing;
  auto channel = NewChannel(id, config, dom.name, now);
  RingParams params = NewRingParams(D, device.devid, id.serial);
  params.persisted_epoch = device.epoch;
  if (durable) durable_serials_.insert(id.serial);
  AddRingChannel(channel, std::move(params), XenbusState::kInitialising);
  if (!request.wait_until_connected) return done(channel->Info());
  RingChannel* ring = rings_[id.serial].get();
  ring->WaitConnected(
      absl::Now() + request.connect_timeout, [channel, done = std::move(done)](absl::Status s) {
        if (s.ok()) return done(channel->Info());
        done(std::move(s));  // hand the one reference over: no rep shared across threads
      });
}

void Engine::DeleteChannel(const ChannelRef& ref, absl::Duration force_after,
                           std::function<void(absl::StatusOr<DeleteResult>)> done) {
  Post([this, ref, force_after, done = std::move(done)]() mutable {
    DoDelete(ref, force_after, std::move(done));
  });
}

void Engine::DoDelete(ChannelRef ref, absl::Duration force_after,
                      std::function<void(absl::StatusOr<DeleteResult>)> done) {
  if (stop_) return done(absl::UnavailableError("the engine is shutting down"));
  auto channel = FindChannel(ref);
  if (!channel.ok()) return done(channel.status());
  if ((*channel)->identity().transport != Transport::kRing) {
    return done(absl::FailedPreconditionError(
        "toolstack channels are managed by xl.cfg, not deleted through xenchan"));
  }
  auto it = rings_.find((*channel)->serial());
  if (it == rings_.end() || it->second->finished()) {
    if (moved_.count((*channel)->serial()) != 0) {  // a copy let go (engine_moved.cc)
      RemoveMovedChannel(*channel, "the channel was deleted", RemovalReason::kDeleted);
      return done(DeleteResult{(*channel)->Info(), false});
    }
    if (durable_serials_.count((*channel)->serial()) != 0) {
      return DeleteDownChannel(*channel, std::move(done));
    }
    return done(absl::NotFoundError("channel was removed"));
  }
  if (durable_serials_.count((*channel)->serial()) != 0) {
    // The declaration goes first: from here on the channel is an ordinary
    // one being unplugged, and an engine that dies now does not bring it
    // back.
    const ChannelIdentity& id = (*channel)->identity();
    if (absl::Status s = Undeclare(id.domain_uuid, id.channel_id); !s.ok()) {
      return done(std::move(s));
    }
    durable_serials_.erase(id.serial);
  }
  it->second->Unplug(force_after, std::move(done), absl::Now());
  ReapFinished();
}

absl::StatusOr<ChannelInfo> Engine::CreateChannelAndWait(CreateChannelRequest request) {
  auto waiter = std::make_shared<Waiter<absl::StatusOr<ChannelInfo>>>();
  CreateChannel(std::move(request),
                [waiter](absl::StatusOr<ChannelInfo> r) { waiter->Set(std::move(r)); });
  return waiter->Wait();
}

absl::StatusOr<DeleteResult> Engine::DeleteChannelAndWait(const ChannelRef& ref,
                                                          absl::Duration force_after) {
  auto waiter = std::make_shared<Waiter<absl::StatusOr<DeleteResult>>>();
  DeleteChannel(ref, force_after,
                [waiter](absl::StatusOr<DeleteResult> r) { waiter->Set(std::move(r)); });
  return waiter->Wait();
}

}  // namespace xenchan
