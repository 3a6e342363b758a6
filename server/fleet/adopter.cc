// See adopter.h.
#include "server/fleet/adopter.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/engine/channel_record.h"
#include "server/convert.h"
#include "server/fleet/records.h"
#include "server/log.h"

namespace xenchan {
namespace fleet {
namespace {

// Arrivals waiting at most; beyond, domains are not held (they run without
// adopted channels rather than wait on a backlog).
constexpr size_t kMaxQueued = 256;
// Declarations read per domain at most (a guest has at most 7 channels).
constexpr int64_t kMaxDeclarationsPerDomain = 64;

}  // namespace

Adopter::Adopter(std::shared_ptr<etcd::Client> etcd, std::string prefix, ChannelConfig defaults)
    : etcd_(std::move(etcd)), prefix_(std::move(prefix)), defaults_(std::move(defaults)) {}

Adopter::~Adopter() { Stop(); }

void Adopter::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
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

void Adopter::Run() {
  for (;;) {
    std::pair<uint32_t, std::string> arrival;
    {
      MutexLock lock(&mu_);
      while (!stop_ && queue_.empty()) cv_.Wait(&mu_);
      if (stop_) {
        // Not answered: the engine's hold limit ends those holds.
        return;
      }
      arrival = std::move(queue_.front());
      queue_.pop_front();
    }
    std::vector<ChannelDeclaration> found = Lookup(arrival.second);
    if (!found.empty()) {
      server::Log("info", "fleet: adopting durable channels",
                  {{"uuid", arrival.second},
                   {"domid", absl::StrCat(arrival.first)},
                   {"channels", absl::StrCat(found.size())}});
    }
    engine_->AdoptDeclarations(arrival.first, arrival.second, std::move(found));
    MutexLock lock(&mu_);
    ++answered_;
  }
}

std::vector<ChannelDeclaration> Adopter::Lookup(const std::string& uuid) {
  std::vector<ChannelDeclaration> out;
  auto range = etcd_->GetPrefix(DomainDeclarationsPrefix(prefix_, uuid), kMaxDeclarationsPerDomain);
  if (!range.ok()) {
    server::Log("warning", "fleet: cannot read a domain's declarations; it runs without them",
                {{"uuid", uuid}, {"error", range.status().ToString()}});
    return out;
  }
  for (const etcd::KeyValue& kv : range->kvs) {
    auto record = DecodeDeclaration(prefix_, kv.key, kv.value);
    if (!record.ok()) {
      server::Log("warning", "fleet: refused a record", {{"error", record.status().ToString()}});
      continue;
    }
    ChannelConfig config = server::FromProto(record->config());
    if (config.buffer_limit_bytes == 0) config.buffer_limit_bytes = defaults_.buffer_limit_bytes;
    if (config.write_queue_limit_bytes == 0) {
      config.write_queue_limit_bytes = defaults_.write_queue_limit_bytes;
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
