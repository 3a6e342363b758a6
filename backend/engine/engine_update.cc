// Engine: UpdateChannel, the in-place change of a ring channel's settings
// (issue 12). The new settings are checked as a create checks them, then
// persisted where a restarted engine reads them (the backend record of
// channel_record.h; for a durable channel also its declaration in the
// store), and only then applied to the running channel, so that nothing a
// caller was told can be lost by a crash. The semantics of each field are in
// engine.h.
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/engine/channel_record.h"
#include "backend/engine/console_device.h"
#include "backend/engine/engine.h"
#include "backend/engine/waiter.h"
#include "backend/engine/xenstore_layout.h"
#include "backend/platform/xenstore.h"

namespace xenchan {
namespace {

// A record rewrite conflicts only with the ring's own writes to its
// backend directory; a few attempts are plenty.
constexpr int kRecordAttempts = 10;

// `update` applied over `current` (every field set).
ChannelConfig Updated(const ChannelConfig& current, const ChannelUpdate& update) {
  ChannelConfig c = current;
  if (update.buffer_limit_bytes.has_value()) c.buffer_limit_bytes = *update.buffer_limit_bytes;
  if (update.overflow_policy.has_value()) c.overflow_policy = *update.overflow_policy;
  if (update.write_queue_limit_bytes.has_value()) {
    c.write_queue_limit_bytes = *update.write_queue_limit_bytes;
  }
  if (update.default_framing.has_value()) c.default_framing = *update.default_framing;
  if (update.lifetime.has_value()) c.lifetime = *update.lifetime;
  return c;
}

bool IsEmpty(const ChannelUpdate& u) {
  return !u.buffer_limit_bytes.has_value() && !u.overflow_policy.has_value() &&
         !u.write_queue_limit_bytes.has_value() && !u.default_framing.has_value() &&
         !u.lifetime.has_value();
}

// The checks of a create (engine_hotplug.cc DoCreate) on effective values.
// Rewrites the xenchan-* nodes of the backend directory `be` in one
// transaction, only while the directory is still there (NOT_FOUND if not).
absl::Status WriteConfigRecord(XenStore& xs, const std::string& be, const ChannelConfig& config) {
  return RunInTransaction(
      xs,
      [&](XsTransaction t) -> absl::Status {
        if (!xs.Read(t, NodePath(be, kStateNode)).ok()) {
          return absl::NotFoundError("the channel's backend directory is gone");
        }
        for (const auto& [node, value] : ChannelConfigNodes(config)) {
          if (absl::Status s = xs.Write(t, NodePath(be, node), value); !s.ok()) return s;
        }
        return absl::OkStatus();
      },
      kRecordAttempts);
}

}  // namespace

void Engine::UpdateChannel(const ChannelRef& ref, ChannelUpdate update, bool validate_only,
                           std::function<void(absl::StatusOr<ChannelInfo>)> done) {
  Post([this, ref, update = std::move(update), validate_only, done = std::move(done)]() mutable {
    DoUpdate(ref, update, validate_only, std::move(done));
  });
}

absl::StatusOr<ChannelInfo> Engine::UpdateChannelAndWait(const ChannelRef& ref,
                                                         ChannelUpdate update, bool validate_only) {
  auto waiter = std::make_shared<Waiter<absl::StatusOr<ChannelInfo>>>();
  UpdateChannel(ref, std::move(update), validate_only,
                [waiter](absl::StatusOr<ChannelInfo> r) { waiter->Set(std::move(r)); });
  return waiter->Wait();
}

void Engine::DoUpdate(const ChannelRef& ref, const ChannelUpdate& update, bool validate_only,
                      std::function<void(absl::StatusOr<ChannelInfo>)> done) {
  if (stop_) return done(absl::UnavailableError("the engine is shutting down"));
  if (IsEmpty(update)) return done(absl::InvalidArgumentError("the update changes no field"));
  auto found = FindChannel(ref);
  if (!found.ok()) return done(found.status());
  const std::shared_ptr<Channel> channel = *std::move(found);
  const ChannelIdentity id = channel->identity();
  if (id.transport != Transport::kRing) {
    return done(absl::FailedPreconditionError(
        "toolstack channels take their settings from QEMU and xl.cfg, not from xenchan"));
  }
  if (auto moved = moved_.find(id.serial); moved != moved_.end()) {
    return done(absl::FailedPreconditionError(
        absl::StrCat("the channel moved with its domain to host ", moved->second.second,
                     ": update it there (this host keeps a copy for reading only)")));
  }
  const ChannelConfig config = EffectiveConfig(Updated(channel->config(), update));
  if (absl::Status s = ValidateConfigLimits(config); !s.ok()) return done(std::move(s));

  auto it = rings_.find(id.serial);
  RingChannel* ring = it != rings_.end() && !it->second->finished() ? it->second.get() : nullptr;
  const bool was_durable = durable_serials_.count(id.serial) != 0;
  if (ring == nullptr && !was_durable) return done(absl::NotFoundError("channel was removed"));
  const ChannelState state = channel->Info().state;
  if (state == ChannelState::kClosing || state == ChannelState::kClosed) {
    return done(absl::FailedPreconditionError("the channel is being deleted"));
  }
  const bool durable = config.lifetime == ChannelLifetime::kDurable;
  if (durable && !was_durable) {
    if (options_.declarations == nullptr) {
      return done(absl::FailedPreconditionError(
          "durable channels need a declaration store (xenchand's state directory)"));
    }
    if (id.domain_uuid.empty()) {
      return done(absl::FailedPreconditionError(
          "the channel's domain has no UUID to declare a durable channel for"));
    }
  }
  // A DOMAIN_DOWN channel exists only by its declaration: without it there
  // is no incarnation left for the channel to live in.
  if (!durable && was_durable && ring == nullptr) {
    return done(absl::FailedPreconditionError(
        "the channel's domain is not running, so an incarnation lifetime would leave it in no "
        "incarnation at all; delete the channel instead"));
  }
  if (absl::Status s = channel->CheckConfig(config); !s.ok()) return done(s);
  if (validate_only) {
    ChannelInfo preview = channel->Info();
    preview.config = config;
    return done(preview);
  }

  const absl::Time now = absl::Now();
  if (absl::Status s = PersistUpdate(channel, ring, config, durable, now); !s.ok()) {
    return done(s);
  }
  if (durable) {
    durable_serials_.insert(id.serial);
  } else {
    durable_serials_.erase(id.serial);
  }
  channel->UpdateConfig(config);
  if (std::optional<DropReport> drop = channel->TakeDropReport(); drop.has_value()) {
    channel->Emit(ChannelEventType::kGap, std::nullopt, drop);
  }
  // A guest stalled on a full buffer waits for us to drain it: look now.
  if (ring != nullptr) ring->Service(now);
  channel->Emit(ChannelEventType::kStateChanged);
  done(channel->Info());
}

absl::Status Engine::PersistUpdate(const std::shared_ptr<Channel>& channel, RingChannel* ring,
                                   const ChannelConfig& config, bool durable, absl::Time now) {
  const ChannelIdentity id = channel->identity();
  const ChannelConfig previous = channel->config();
  XenStore& xs = *options_.xenstore;
  if (ring != nullptr) {
    if (absl::Status s = WriteConfigRecord(xs, ring->params().backend_path, config); !s.ok()) {
      return s;
    }
  }
  const bool was_durable = durable_serials_.count(id.serial) != 0;
  absl::Status stored = absl::OkStatus();
  if (durable && was_durable) {
    auto decl = declarations_.find({id.domain_uuid, id.channel_id});
    if (decl == declarations_.end()) {
      stored = absl::InternalError("the durable channel has no declaration");
    } else {
      DeclarationUpdate change;
      change.config = DeclaredConfig(config);
      absl::StatusOr<int64_t> generation = options_.declarations->Update(
          id.domain_uuid, id.channel_id, decl->second.generation, change);
      if (generation.ok()) {
        decl->second.generation = *generation;
        decl->second.config = *change.config;
      } else {
        stored = generation.status();
      }
    }
  } else if (durable) {
    NewConsoleDevice device;
    device.channel_id = id.channel_id;
    device.uid = id.uid;
    device.config = config;
    const std::string domain_name = channel->Info().domain_name;
    absl::StatusOr<int64_t> generation = Declare(id.domain_uuid, domain_name, device, now);
    if (generation.ok() && id.devid != 0) {
      // Best effort, as at a create: a declaration without it re-creates
      // the channel at the devid it has now anyway (RecreateDurableChannels).
      (void)RecordDeclaredDevid(id.domain_uuid, id.channel_id, id.devid, domain_name);
    }
    stored = generation.status();
  } else if (was_durable) {
    stored = Undeclare(id.domain_uuid, id.channel_id);
  }
  if (!stored.ok() && ring != nullptr) {
    (void)WriteConfigRecord(xs, ring->params().backend_path, previous);
  }
  return stored;
}

}  // namespace xenchan
