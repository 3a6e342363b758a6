// See adopter.h.
#include "server/fleet/adopter.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backend/engine/channel_record.h"
#include "server/convert.h"
#include "server/fleet/records.h"
#include "server/log.h"

namespace xenchan {
namespace fleet {
namespace {

// Arrivals waiting at most; beyond, domains are not held (they run without
// adopted channels rather than wait on a backlog). Also the most arrivals
// looked up again at once (beyond, an empty answer is final).
constexpr size_t kMaxQueued = 256;
// Declarations read per domain at most (a guest has at most 7 channels).
constexpr int64_t kMaxDeclarationsPerDomain = 64;

}  // namespace

Adopter::Adopter(std::shared_ptr<etcd::Client> etcd, AdopterOptions options)
    : etcd_(std::move(etcd)), options_(std::move(options)) {}

Adopter::~Adopter() { Stop(); }

void Adopter::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    retries_.clear();
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

void Adopter::Start(Engine* engine) {
  engine_ = engine;
  {
    MutexLock lock(&mu_);
    started_ = true;
  }
  thread_ = std::thread([this] { Run(); });
}

bool Adopter::Offer(uint32_t domid, const std::string& uuid) {
  MutexLock lock(&mu_);
  if (!started_ || stop_ || queue_.size() >= kMaxQueued) return false;
  queue_.emplace_back(domid, uuid);
  cv_.SignalAll();
  return true;
}

uint64_t Adopter::answered() const {
  MutexLock lock(&mu_);
  return answered_;
}

uint64_t Adopter::late_adoptions() const {
  MutexLock lock(&mu_);
  return late_adoptions_;
}

size_t Adopter::retrying() const {
  MutexLock lock(&mu_);
  return retries_.size() + (looking_again_ ? 1 : 0);
}

void Adopter::Run() {
  for (;;) {
    std::pair<uint32_t, std::string> arrival;
    Retry retry;
    bool is_arrival = false;
    {
      MutexLock lock(&mu_);
      for (;;) {
        // Not answered: the engine's hold limit ends those holds.
        if (stop_) return;
        // A new arrival first: its domain is held meanwhile.
        if (!queue_.empty()) {
          arrival = std::move(queue_.front());
          queue_.pop_front();
          is_arrival = true;
          break;
        }
        auto due = std::min_element(retries_.begin(), retries_.end(),
                                    [](const Retry& a, const Retry& b) { return a.next < b.next; });
        if (due == retries_.end()) {
          cv_.Wait(&mu_);
        } else if (due->next <= absl::Now()) {
          retry = std::move(*due);
          if (due + 1 != retries_.end()) *due = std::move(retries_.back());
          retries_.pop_back();
          looking_again_ = true;
          break;
        } else {
          cv_.WaitWithDeadline(&mu_, due->next);
        }
      }
    }
    if (is_arrival) {
      Answer(arrival.first, arrival.second);
    } else {
      std::optional<Retry> again = LookAgain(std::move(retry));
      MutexLock lock(&mu_);
      looking_again_ = false;
      // Unless stopping, or a newer arrival of the same UUID replaced it.
      if (again.has_value() && !stop_ &&
          std::none_of(retries_.begin(), retries_.end(),
                       [&](const Retry& r) { return r.uuid == again->uuid; })) {
        retries_.push_back(*std::move(again));
      }
    }
  }
}

void Adopter::Answer(uint32_t domid, const std::string& uuid) {
  absl::StatusOr<std::vector<ChannelDeclaration>> found = Lookup(uuid, /*skip_own=*/false);
  std::vector<ChannelDeclaration> declarations;
  if (found.ok()) {
    declarations = *std::move(found);
  } else {
    server::Log("warning",
                "fleet: cannot read a domain's declarations; it runs without them until they "
                "can be read",
                {{"uuid", uuid}, {"error", found.status().ToString()}});
  }
  const bool empty = declarations.empty();
  if (!empty) {
    server::Log("info", "fleet: adopting durable channels",
                {{"uuid", uuid},
                 {"domid", absl::StrCat(domid)},
                 {"channels", absl::StrCat(declarations.size())}});
  }
  engine_->AdoptDeclarations(domid, uuid, std::move(declarations));
  MutexLock lock(&mu_);
  ++answered_;
  if (!empty || stop_) return;
  // The source may not have published yet, or etcd was away: look again.
  // One entry per UUID (the newest arrival's).
  retries_.erase(std::remove_if(retries_.begin(), retries_.end(),
                                [&](const Retry& r) { return r.uuid == uuid; }),
                 retries_.end());
  if (retries_.size() >= kMaxQueued) {
    server::Log("warning", "fleet: too many arrivals looked up again; this one is not",
                {{"uuid", uuid}, {"domid", absl::StrCat(domid)}});
    return;
  }
  const absl::Time now = absl::Now();
  Retry r;
  r.domid = domid;
  r.uuid = uuid;
  r.backoff = options_.first_retry;
  r.give_up = now + options_.retry_window;
  r.next = std::min(now + r.backoff, r.give_up);
  retries_.push_back(std::move(r));
  cv_.SignalAll();
}

std::optional<Adopter::Retry> Adopter::LookAgain(Retry retry) {
  if (!StillHere(retry.domid, retry.uuid)) return std::nullopt;
  absl::StatusOr<std::vector<ChannelDeclaration>> found = Lookup(retry.uuid, /*skip_own=*/true);
  if (found.ok() && !found->empty()) {
    server::Log("info", "fleet: adopting durable channels declared after the domain arrived",
                {{"uuid", retry.uuid},
                 {"domid", absl::StrCat(retry.domid)},
                 {"channels", absl::StrCat(found->size())}});
    engine_->AdoptDeclarations(retry.domid, retry.uuid, *std::move(found));
    MutexLock lock(&mu_);
    ++late_adoptions_;
    return std::nullopt;
  }
  const absl::Time now = absl::Now();
  if (now >= retry.give_up) return std::nullopt;  // the empty answer stands
  retry.backoff = std::min(retry.backoff * 2, options_.max_retry);
  retry.next = std::min(now + retry.backoff, retry.give_up);
  return retry;
}

bool Adopter::StillHere(uint32_t domid, const std::string& uuid) const {
  absl::StatusOr<DomainInfo> d = engine_->GetDomain(uuid);
  return d.ok() && d->domid == domid && d->state == DomainState::kRunning;
}

absl::StatusOr<std::vector<ChannelDeclaration>> Adopter::Lookup(const std::string& uuid,
                                                                bool skip_own) {
  auto range =
      etcd_->GetPrefix(DomainDeclarationsPrefix(options_.prefix, uuid), kMaxDeclarationsPerDomain);
  if (!range.ok()) return range.status();
  std::vector<ChannelDeclaration> out;
  for (const etcd::KeyValue& kv : range->kvs) {
    auto record = DecodeDeclaration(options_.prefix, kv.key, kv.value);
    if (!record.ok()) {
      server::Log("warning", "fleet: refused a record", {{"error", record.status().ToString()}});
      continue;
    }
    // Written here: a channel declared here since the arrival (the engine
    // has it, or it was deleted and its key is about to go), not a late one.
    if (skip_own && !options_.host_id.empty() && record->host_id() == options_.host_id) continue;
    ChannelConfig config = server::FromProto(record->config());
    if (config.buffer_limit_bytes == 0) {
      config.buffer_limit_bytes = options_.defaults.buffer_limit_bytes;
    }
    if (config.write_queue_limit_bytes == 0) {
      config.write_queue_limit_bytes = options_.defaults.write_queue_limit_bytes;
    }
    if (absl::Status s = ValidateConfigLimits(config); !s.ok()) {
      server::Log("warning", "fleet: refused a declaration's settings",
                  {{"key", kv.key}, {"error", s.ToString()}});
      continue;
    }
    ChannelDeclaration d;
    d.domain_uuid = record->domain_uuid();
    d.channel_id = record->channel_id();
    d.uid = record->uid();
    d.config = DeclaredConfig(config);
    if (record->last_devid() != 0) d.last_devid = record->last_devid();
    d.domain_name = record->domain_name();
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace fleet
}  // namespace xenchan
