// QuotaManager: per-caller and per-domain quotas of xenchand (issue 7
// "Limits"), so that one client cannot take the server from the others.
//
// Quotas (QuotaLimits; 0 means no limit):
//  - streams per caller: open streaming RPCs (Attach, Read, Write,
//    WatchChannels) and Calls in flight of one caller principal;
//  - streams per domain: the same, over all callers, against one domain's
//    channels;
//  - observers per channel per caller: reading sessions (Attach, Read) one
//    caller holds on one channel (the engine's own per-channel limit counts
//    all callers together);
//  - bytes per second per caller: a token bucket (refilled at the rate, at
//    most `burst` bytes banked) charged for bytes a caller sends to guests
//    (Write, Attach, Call requests): a write the bucket cannot pay for is
//    refused; and a second bucket of the same rate and burst for bytes it
//    reads from them (Read, Attach, Call replies), which paces instead of
//    refusing: reads may run the bucket into debt by one chunk, and the
//    caller's streams read nothing more until the debt is paid
//    (ReadDelay);
//  - queued bytes per caller: bytes a caller has handed over and the server
//    has not delivered to the guest yet (its share of the engine's write
//    queues; xenchand charges Write streams, channel_service.cc).
// Acquiring a counted quota returns a Lease that gives it back when it is
// destroyed (RAII; movable), so every end path of a handler releases it.
// Exceeding any quota answers RESOURCE_EXHAUSTED whose payload names the
// limit (QuotaExceededOf), and is counted per kind (exceeded()).
//
// Thread-safe: one internal lock, never held while calling out. Leases must
// not outlive the manager.
#ifndef XENCHAN_SERVER_QUOTA_QUOTA_MANAGER_H_
#define XENCHAN_SERVER_QUOTA_QUOTA_MANAGER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/util/mutex.h"

namespace xenchan {
namespace server {
namespace quota {

struct QuotaLimits {
  uint64_t streams_per_caller = 4096;
  uint64_t streams_per_domain = 16384;
  // Off by default: the engine's readers-per-channel limit bounds all
  // callers together.
  uint64_t observers_per_channel_per_caller = 0;
  uint64_t bytes_per_second_per_caller = uint64_t{32} << 20;
  // Most bytes a caller's bucket banks (its burst); 0: one second's worth.
  uint64_t burst_bytes_per_caller = 0;
  uint64_t queued_bytes_per_caller = uint64_t{8} << 20;
};

enum class QuotaKind {
  kStreamsPerCaller,
  kStreamsPerDomain,
  kObserversPerChannel,
  kBytesPerSecond,
  kQueuedBytes,
};
inline constexpr size_t kQuotaKinds = 5;

// The stable name of a quota kind (LimitExceeded.limit, metric labels).
const char* QuotaLimitName(QuotaKind kind);

// What a QUOTA_EXCEEDED status says, for the gRPC error details.
struct QuotaExceeded {
  QuotaKind kind = QuotaKind::kStreamsPerCaller;
  uint64_t limit_value = 0;
  uint64_t requested_value = 0;  // in use plus the request's own demand
};
// The quota a RESOURCE_EXHAUSTED status from QuotaManager names; nullopt for
// any other status.
std::optional<QuotaExceeded> QuotaExceededOf(const absl::Status& status);

class QuotaManager {
 public:
  // Gives back what it holds when destroyed. Default-constructed: holds
  // nothing.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept { *this = std::move(other); }
    Lease& operator=(Lease&& other) noexcept;
    ~Lease() { Release(); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    // Gives it back now (idempotent).
    void Release();
    bool held() const { return manager_ != nullptr; }
    // For queued-byte leases: gives back `n` of the bytes now (the guest
    // consumed them); the rest stays held.
    void Shrink(uint64_t n);
    // Takes `other` over: its amount joins this lease's (both must be of the
    // same manager, kind, caller and key), `other` holds nothing after.
    void Absorb(Lease&& other);
    uint64_t amount() const { return amount_; }

   private:
    friend class QuotaManager;
    QuotaManager* manager_ = nullptr;
    QuotaKind kind_ = QuotaKind::kStreamsPerCaller;
    std::string caller_;
    std::string domain_;   // kStreamsPerCaller: the domain also charged
    std::string channel_;  // kObserversPerChannel
    uint64_t amount_ = 0;
  };

  // `now` is the clock (tests inject one); default absl::Now.
  explicit QuotaManager(QuotaLimits limits, std::function<absl::Time()> now = nullptr);
  QuotaManager(const QuotaManager&) = delete;
  QuotaManager& operator=(const QuotaManager&) = delete;

  // One stream (or Call) of `caller` against `domain` (its UUID or name as
  // the server resolved it; empty if none, e.g. WatchChannels). Charges the
  // caller's and the domain's stream counts together or neither.
  absl::StatusOr<Lease> AcquireStream(const std::string& caller, const std::string& domain)
      ABSL_LOCKS_EXCLUDED(mu_);
  // One reading session of `caller` on channel `channel` (any stable key,
  // e.g. the channel's uid).
  absl::StatusOr<Lease> AcquireObserver(const std::string& caller, const std::string& channel)
      ABSL_LOCKS_EXCLUDED(mu_);
  // `n` bytes of `caller` queued towards guests.
  absl::StatusOr<Lease> AcquireQueued(const std::string& caller, uint64_t n)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Takes `n` bytes from `caller`'s bucket, or none: RESOURCE_EXHAUSTED if
  // the bucket does not hold `n` now (larger than the burst: never). The
  // caller may retry after RetryAfter(caller, n).
  absl::Status ConsumeBytes(const std::string& caller, uint64_t n) ABSL_LOCKS_EXCLUDED(mu_);
  // How long until `caller`'s bucket holds `n` bytes (zero if it does now;
  // InfiniteDuration if `n` is above the burst or there is no rate).
  absl::Duration RetryAfter(const std::string& caller, uint64_t n) ABSL_LOCKS_EXCLUDED(mu_);

  // Charges `n` bytes read from guests to `caller`'s read bucket, which may
  // go into debt (reads are paced, not refused). No-op without a rate.
  void ChargeRead(const std::string& caller, uint64_t n) ABSL_LOCKS_EXCLUDED(mu_);
  // How long `caller`'s streams must wait before reading from guests again:
  // until the read bucket is out of debt (zero if it is now).
  absl::Duration ReadDelay(const std::string& caller) ABSL_LOCKS_EXCLUDED(mu_);

  // Times each quota was exceeded, by kind.
  std::array<uint64_t, kQuotaKinds> exceeded() const ABSL_LOCKS_EXCLUDED(mu_);
  // Current use (for tests and diagnostics).
  uint64_t streams(const std::string& caller) const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t domain_streams(const std::string& domain) const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t queued(const std::string& caller) const ABSL_LOCKS_EXCLUDED(mu_);
  // Callers the manager keeps state for (idle ones are forgotten).
  size_t tracked_callers() const ABSL_LOCKS_EXCLUDED(mu_);
  const QuotaLimits& limits() const { return limits_; }

 private:
  struct CallerState {
    uint64_t streams = 0;
    uint64_t queued = 0;
    std::map<std::string, uint64_t> observers;  // channel -> sessions
    double tokens = 0;                          // bucket
    absl::Time refilled = absl::InfinitePast();
    double read_tokens = 0;  // read bucket; negative: in debt
    absl::Time read_refilled = absl::InfinitePast();
  };

  void Give(const Lease& lease, uint64_t amount) ABSL_LOCKS_EXCLUDED(mu_);
  CallerState& CallerLocked(const std::string& caller) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefillLocked(CallerState& c, absl::Time now) const;
  void RefillReadLocked(CallerState& c, absl::Time now) const;
  // Forgets `caller` if it holds nothing and its bucket is full.
  void MaybeForgetLocked(const std::string& caller) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ExceededLocked(QuotaKind kind, uint64_t limit, uint64_t requested,
                              const std::string& who) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t burst() const;

  const QuotaLimits limits_;
  const std::function<absl::Time()> now_;
  mutable Mutex mu_;
  std::map<std::string, CallerState> callers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> domains_ ABSL_GUARDED_BY(mu_);
  size_t next_sweep_ ABSL_GUARDED_BY(mu_) = 1024;
  std::array<uint64_t, kQuotaKinds> exceeded_ ABSL_GUARDED_BY(mu_) = {};
};

}  // namespace quota
}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_QUOTA_QUOTA_MANAGER_H_
