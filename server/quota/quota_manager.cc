// QuotaManager: counted quotas with RAII leases and a token bucket per
// caller (see the header).
#include "server/quota/quota_manager.h"

#include <algorithm>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace xenchan {
namespace server {
namespace quota {
namespace {

// The payload that marks a QuotaManager status: "<kind>;<limit>;<requested>".
constexpr char kQuotaPayload[] = "type.xenchan.dev/xenchan.server.QuotaExceeded";

}  // namespace

const char* QuotaLimitName(QuotaKind kind) {
  switch (kind) {
    case QuotaKind::kStreamsPerCaller:
      return "streams_per_identity";
    case QuotaKind::kStreamsPerDomain:
      return "streams_per_domain";
    case QuotaKind::kObserversPerChannel:
      return "observers_per_channel_per_identity";
    case QuotaKind::kBytesPerSecond:
      return "bytes_per_second_per_identity";
    case QuotaKind::kQueuedBytes:
      return "queued_bytes_per_identity";
  }
  return "unknown";
}

std::optional<QuotaExceeded> QuotaExceededOf(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kResourceExhausted) return std::nullopt;
  auto payload = status.GetPayload(kQuotaPayload);
  if (!payload.has_value()) return std::nullopt;
  std::vector<std::string> parts = absl::StrSplit(std::string(*payload), ';');
  QuotaExceeded q;
  int kind = 0;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &kind) || kind < 0 ||
      kind >= static_cast<int>(kQuotaKinds) || !absl::SimpleAtoi(parts[1], &q.limit_value) ||
      !absl::SimpleAtoi(parts[2], &q.requested_value)) {
    return std::nullopt;
  }
  q.kind = static_cast<QuotaKind>(kind);
  return q;
}

QuotaManager::Lease& QuotaManager::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    manager_ = other.manager_;
    kind_ = other.kind_;
    caller_ = std::move(other.caller_);
    domain_ = std::move(other.domain_);
    channel_ = std::move(other.channel_);
    amount_ = other.amount_;
    other.manager_ = nullptr;
    other.amount_ = 0;
  }
  return *this;
}

void QuotaManager::Lease::Release() {
  if (manager_ == nullptr) return;
  manager_->Give(*this, amount_);
  manager_ = nullptr;
  amount_ = 0;
}

void QuotaManager::Lease::Shrink(uint64_t n) {
  if (manager_ == nullptr) return;
  n = std::min(n, amount_);
  if (n == 0) return;
  manager_->Give(*this, n);
  amount_ -= n;
}

void QuotaManager::Lease::Absorb(Lease&& other) {
  if (!other.held()) return;
  if (!held()) {
    *this = std::move(other);
    return;
  }
  amount_ += other.amount_;
  other.manager_ = nullptr;
  other.amount_ = 0;
}

QuotaManager::QuotaManager(QuotaLimits limits, std::function<absl::Time()> now)
    : limits_(limits), now_(now ? std::move(now) : [] { return absl::Now(); }) {}

uint64_t QuotaManager::burst() const {
  return limits_.burst_bytes_per_caller != 0 ? limits_.burst_bytes_per_caller
                                             : limits_.bytes_per_second_per_caller;
}

QuotaManager::CallerState& QuotaManager::CallerLocked(const std::string& caller) {
  if (callers_.size() >= next_sweep_ && callers_.count(caller) == 0) {
    // Forget every idle caller now and then, so that callers that come and
    // go (peers on new ports) cannot grow the map without bound.
    std::vector<std::string> names;
    for (const auto& [name, state] : callers_) names.push_back(name);
    for (const std::string& name : names) MaybeForgetLocked(name);
    next_sweep_ = std::max<size_t>(1024, callers_.size() * 2);
  }
  auto [it, inserted] = callers_.try_emplace(caller);
  if (inserted) {  // a new caller starts full
    it->second.tokens = static_cast<double>(burst());
    it->second.read_tokens = static_cast<double>(burst());
  }
  return it->second;
}

void QuotaManager::RefillLocked(CallerState& c, absl::Time now) const {
  const double cap = static_cast<double>(burst());
  if (c.refilled != absl::InfinitePast() && now > c.refilled) {
    c.tokens =
        std::min(cap, c.tokens + absl::ToDoubleSeconds(now - c.refilled) *
                                     static_cast<double>(limits_.bytes_per_second_per_caller));
  }
  c.refilled = std::max(c.refilled, now);
}

void QuotaManager::RefillReadLocked(CallerState& c, absl::Time now) const {
  const double cap = static_cast<double>(burst());
  if (c.read_refilled != absl::InfinitePast() && now > c.read_refilled) {
    c.read_tokens =
        std::min(cap, c.read_tokens + absl::ToDoubleSeconds(now - c.read_refilled) *
                                          static_cast<double>(limits_.bytes_per_second_per_caller));
  }
  c.read_refilled = std::max(c.read_refilled, now);
}

void QuotaManager::MaybeForgetLocked(const std::string& caller) {
  auto it = callers_.find(caller);
  if (it == callers_.end()) return;
  CallerState& c = it->second;
  if (c.streams != 0 || c.queued != 0 || !c.observers.empty()) return;
  const absl::Time now = now_();
  RefillLocked(c, now);
  RefillReadLocked(c, now);
  // A caller with a partly drained bucket is remembered, or it could reset
  // its rate by closing everything and coming back.
  if (limits_.bytes_per_second_per_caller != 0 &&
      (c.tokens < static_cast<double>(burst()) || c.read_tokens < static_cast<double>(burst()))) {
    return;
  }
  callers_.erase(it);
}

absl::Status QuotaManager::ExceededLocked(QuotaKind kind, uint64_t limit, uint64_t requested,
                                          const std::string& who) {
  ++exceeded_[static_cast<size_t>(kind)];
  absl::Status s = absl::ResourceExhaustedError(absl::StrCat("quota ", QuotaLimitName(kind), " of ",
                                                             who, " exceeded: limit ", limit,
                                                             ", requested ", requested));
  s.SetPayload(kQuotaPayload,
               absl::Cord(absl::StrCat(static_cast<int>(kind), ";", limit, ";", requested)));
  return s;
}

absl::StatusOr<QuotaManager::Lease> QuotaManager::AcquireStream(const std::string& caller,
                                                                const std::string& domain) {
  MutexLock lock(&mu_);
  CallerState& c = CallerLocked(caller);
  if (limits_.streams_per_caller != 0 && c.streams >= limits_.streams_per_caller) {
    absl::Status s = ExceededLocked(QuotaKind::kStreamsPerCaller, limits_.streams_per_caller,
                                    c.streams + 1, "'" + caller + "'");
    MaybeForgetLocked(caller);
    return s;
  }
  if (!domain.empty() && limits_.streams_per_domain != 0) {
    auto it = domains_.find(domain);
    const uint64_t used = it == domains_.end() ? 0 : it->second;
    if (used >= limits_.streams_per_domain) {
      absl::Status s = ExceededLocked(QuotaKind::kStreamsPerDomain, limits_.streams_per_domain,
                                      used + 1, "domain '" + domain + "'");
      MaybeForgetLocked(caller);
      return s;
    }
  }
  ++c.streams;
  if (!domain.empty()) ++domains_[domain];
  Lease lease;
  lease.manager_ = this;
  lease.kind_ = QuotaKind::kStreamsPerCaller;
  lease.caller_ = caller;
  lease.domain_ = domain;
  lease.amount_ = 1;
  return lease;
}

absl::StatusOr<QuotaManager::Lease> QuotaManager::AcquireObserver(const std::string& caller,
                                                                  const std::string& channel) {
  MutexLock lock(&mu_);
  CallerState& c = CallerLocked(caller);
  uint64_t& n = c.observers[channel];
  if (limits_.observers_per_channel_per_caller != 0 &&
      n >= limits_.observers_per_channel_per_caller) {
    const uint64_t requested = n + 1;
    if (n == 0) c.observers.erase(channel);
    absl::Status s =
        ExceededLocked(QuotaKind::kObserversPerChannel, limits_.observers_per_channel_per_caller,
                       requested, "'" + caller + "' on channel " + channel);
    MaybeForgetLocked(caller);
    return s;
  }
  ++n;
  Lease lease;
  lease.manager_ = this;
  lease.kind_ = QuotaKind::kObserversPerChannel;
  lease.caller_ = caller;
  lease.channel_ = channel;
  lease.amount_ = 1;
  return lease;
}

absl::StatusOr<QuotaManager::Lease> QuotaManager::AcquireQueued(const std::string& caller,
                                                                uint64_t n) {
  MutexLock lock(&mu_);
  CallerState& c = CallerLocked(caller);
  if (limits_.queued_bytes_per_caller != 0 && c.queued + n > limits_.queued_bytes_per_caller) {
    absl::Status s = ExceededLocked(QuotaKind::kQueuedBytes, limits_.queued_bytes_per_caller,
                                    c.queued + n, "'" + caller + "'");
    MaybeForgetLocked(caller);
    return s;
  }
  c.queued += n;
  Lease lease;
  lease.manager_ = this;
  lease.kind_ = QuotaKind::kQueuedBytes;
  lease.caller_ = caller;
  lease.amount_ = n;
  return lease;
}

absl::Status QuotaManager::ConsumeBytes(const std::string& caller, uint64_t n) {
  if (limits_.bytes_per_second_per_caller == 0 || n == 0) return absl::OkStatus();
  MutexLock lock(&mu_);
  CallerState& c = CallerLocked(caller);
  RefillLocked(c, now_());
  if (static_cast<double>(n) > c.tokens) {
    const uint64_t banked = static_cast<uint64_t>(c.tokens);
    return ExceededLocked(QuotaKind::kBytesPerSecond, limits_.bytes_per_second_per_caller, n,
                          absl::StrCat("'", caller, "' (", banked, " bytes available now)"));
  }
  c.tokens -= static_cast<double>(n);
  return absl::OkStatus();
}

absl::Duration QuotaManager::RetryAfter(const std::string& caller, uint64_t n) {
  if (limits_.bytes_per_second_per_caller == 0) return absl::ZeroDuration();
  if (n > burst()) return absl::InfiniteDuration();
  MutexLock lock(&mu_);
  CallerState& c = CallerLocked(caller);
  RefillLocked(c, now_());
  const double missing = static_cast<double>(n) - c.tokens;
  if (missing <= 0) return absl::ZeroDuration();
  return absl::Seconds(missing / static_cast<double>(limits_.bytes_per_second_per_caller));
}

void QuotaManager::ChargeRead(const std::string& caller, uint64_t n) {
  if (limits_.bytes_per_second_per_caller == 0 || n == 0) return;
  MutexLock lock(&mu_);
  CallerState& c = CallerLocked(caller);
  RefillReadLocked(c, now_());
  c.read_tokens -= static_cast<double>(n);
}

absl::Duration QuotaManager::ReadDelay(const std::string& caller) {
  if (limits_.bytes_per_second_per_caller == 0) return absl::ZeroDuration();
  MutexLock lock(&mu_);
  auto it = callers_.find(caller);
  if (it == callers_.end()) return absl::ZeroDuration();  // a full bucket
  CallerState& c = it->second;
  RefillReadLocked(c, now_());
  if (c.read_tokens >= 0) return absl::ZeroDuration();
  return absl::Seconds(-c.read_tokens / static_cast<double>(limits_.bytes_per_second_per_caller));
}

void QuotaManager::Give(const Lease& lease, uint64_t amount) {
  MutexLock lock(&mu_);
  auto it = callers_.find(lease.caller_);
  if (it == callers_.end()) return;
  CallerState& c = it->second;
  switch (lease.kind_) {
    case QuotaKind::kStreamsPerCaller:
    case QuotaKind::kStreamsPerDomain: {
      c.streams -= std::min(c.streams, amount);
      if (!lease.domain_.empty()) {
        auto d = domains_.find(lease.domain_);
        if (d != domains_.end()) {
          d->second -= std::min(d->second, amount);
          if (d->second == 0) domains_.erase(d);
        }
      }
      break;
    }
    case QuotaKind::kObserversPerChannel: {
      auto o = c.observers.find(lease.channel_);
      if (o != c.observers.end()) {
        o->second -= std::min(o->second, amount);
        if (o->second == 0) c.observers.erase(o);
      }
      break;
    }
    case QuotaKind::kQueuedBytes:
      c.queued -= std::min(c.queued, amount);
      break;
    case QuotaKind::kBytesPerSecond:
      break;
  }
  MaybeForgetLocked(lease.caller_);
}

std::array<uint64_t, kQuotaKinds> QuotaManager::exceeded() const {
  MutexLock lock(&mu_);
  return exceeded_;
}

uint64_t QuotaManager::streams(const std::string& caller) const {
  MutexLock lock(&mu_);
  auto it = callers_.find(caller);
  return it == callers_.end() ? 0 : it->second.streams;
}

uint64_t QuotaManager::domain_streams(const std::string& domain) const {
  MutexLock lock(&mu_);
  auto it = domains_.find(domain);
  return it == domains_.end() ? 0 : it->second;
}

uint64_t QuotaManager::queued(const std::string& caller) const {
  MutexLock lock(&mu_);
  auto it = callers_.find(caller);
  return it == callers_.end() ? 0 : it->second.queued;
}

size_t QuotaManager::tracked_callers() const {
  MutexLock lock(&mu_);
  return callers_.size();
}

}  // namespace quota
}  // namespace server
}  // namespace xenchan
