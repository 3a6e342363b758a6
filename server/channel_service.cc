// ChannelService: validation, engine calls, error classification and the
// stream reactors (see the header for the design).
#include "server/channel_service.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backend/engine/names.h"
#include "server/convert.h"
#include "server/identity.h"
#include "server/log.h"
#include "server/resource_names.h"
#include "server/status.h"
#include "server/validate.h"

namespace xenchan {
namespace server {

using absl::StatusCode;
using policy::Verb;

namespace {

constexpr size_t kMaxChunk = 64 * 1024;
// PartialResponse.response is cut to this many bytes (see PartialLocked).
constexpr size_t kMaxPartialResponseDetailBytes = 4096;

absl::Time DeadlineOf(const grpc::CallbackServerContext& context) {
  const auto d = context.deadline();
  if (d == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(d);
}

bool MatchesFilter(const ChannelInfo& c, const v1::ChannelFilter& filter) {
  if (!filter.channel_id_prefix().empty() &&
      c.channel_id.compare(0, filter.channel_id_prefix().size(), filter.channel_id_prefix()) !=
          0) {
    return false;
  }
  bool any = false;
  bool match = false;
  for (int t : filter.transports()) {
    if (t == v1::TRANSPORT_UNSPECIFIED) continue;
    any = true;
    if (ToProto(c.transport) == t) match = true;
  }
  return !any || match;
}

ReadStart EngineStart(const v1::ReadStart& start, ReadStart::Anchor default_anchor) {
  ReadStart out;
  out.anchor = default_anchor;
  if (start.point_case() == v1::ReadStart::kAnchor) {
    if (start.anchor() == v1::START_ANCHOR_EARLIEST) out.anchor = ReadStart::Anchor::kEarliest;
    if (start.anchor() == v1::START_ANCHOR_NEXT) out.anchor = ReadStart::Anchor::kNext;
  } else if (start.point_case() == v1::ReadStart::kPosition) {
    out.position = Position{start.position().epoch(), start.position().offset()};
  }
  return out;
}

AckLevel FromProtoAck(v1::AckLevel a) {
  switch (a) {
    case v1::ACK_LEVEL_DELIVERED: return AckLevel::kDelivered;
    case v1::ACK_LEVEL_CONSUMED: return AckLevel::kConsumed;
    default: return AckLevel::kAccepted;
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Shared state.

class ReactorBase;

class ServiceCore {
 public:
  ServiceCore(Engine* engine, ServerMetrics* metrics, ChannelServiceOptions options,
              AccessControl access)
      : engine(engine),
        metrics(metrics),
        options(std::move(options)),
        access(std::move(access)),
        scheduler(std::make_unique<Scheduler>(this->options.worker_threads)),
        quota(this->options.quota) {}

  Engine* const engine;
  ServerMetrics* const metrics;
  const ChannelServiceOptions options;
  const AccessControl access;
  std::unique_ptr<Scheduler> scheduler;
  QuotaManager quota;
  std::atomic<bool> shutting_down{false};

  absl::Status ShuttingDownError() const {
    return ApiError(StatusCode::kUnavailable, v1::ERROR_REASON_SHUTTING_DOWN,
                    "xenchand is shutting down")
        .RetryAfter(options.shutdown_retry_delay);
  }

  // When a wait bounded by `deadline` must end (see deadline_margin).
  absl::Time WaitDeadline(absl::Time deadline) const {
    if (deadline == absl::InfiniteFuture()) return deadline;
    const absl::Duration left = deadline - absl::Now();
    return deadline - std::max(absl::ZeroDuration(),
                               std::min(options.deadline_margin, left / 10));
  }

  v1::Channel ChannelProto(const ChannelInfo& info) {
    v1::Channel c;
    ToProto(info, &c);
    return c;
  }

  void Register(ReactorBase* r, std::weak_ptr<ReactorBase> w) ABSL_LOCKS_EXCLUDED(mu) {
    MutexLock lock(&mu);
    live[r] = std::move(w);
  }
  void Unregister(ReactorBase* r) ABSL_LOCKS_EXCLUDED(mu) {
    MutexLock lock(&mu);
    live.erase(r);
  }
  std::vector<std::shared_ptr<ReactorBase>> Live() ABSL_LOCKS_EXCLUDED(mu) {
    std::vector<std::shared_ptr<ReactorBase>> out;
    MutexLock lock(&mu);
    for (auto& [r, w] : live) {
      if (auto s = w.lock()) out.push_back(std::move(s));
    }
    return out;
  }

  // --- Authorization (see the header). ---

  Identity Authenticate(const grpc::CallbackServerContext& context) const {
    return access.authenticator->Authenticate(context);
  }
  std::shared_ptr<const policy::Policy> Policy() const { return access.policy(); }

  static std::string FullMethod(absl::string_view method) {
    return absl::StrCat("/xenchan.v1.ChannelService/", method);
  }
  static audit::Caller CallerOf(const Identity& id) {
    return audit::Caller{id.principals.ToString(), id.peer};
  }

  // --- Quotas (see the header). ---

  // Whose quotas a call uses: its principals, else its transport peer.
  static std::string QuotaKey(const Identity& id) {
    const std::string principals = id.principals.ToString();
    return principals.empty() ? "peer:" + id.peer : principals;
  }
  // The domain key of a request's domain segment (its UUID when known).
  std::string QuotaDomain(const std::string& domain) const {
    auto d = engine->GetDomain(domain);
    return d.ok() && !d->uuid.empty() ? d->uuid : domain;
  }
  // A QuotaManager refusal as the API error (counted); other statuses as
  // they are.
  absl::Status QuotaError(const absl::Status& s) {
    std::optional<QuotaExceeded> q = QuotaExceededOf(s);
    if (!q.has_value()) return s;
    return QuotaApiError(*q, s);
  }
  // The API error of the QuotaManager refusal `s` that says `q` (counted).
  ApiError QuotaApiError(const QuotaExceeded& quota, const absl::Status& s) {
    const QuotaExceeded* const q = &quota;
    const char* name = QuotaLimitName(q->kind);
    metrics->QuotaExceeded(name);
    v1::LimitExceeded limit;
    limit.set_limit(name);
    limit.set_limit_value(q->limit_value);
    limit.set_requested_value(q->requested_value);
    return std::move(ApiError(StatusCode::kResourceExhausted, v1::ERROR_REASON_QUOTA_EXCEEDED,
                              std::string(s.message()))
                         .Metadata("limit", name)
                         .Detail(limit));
  }

  // An engine refusal because the memory budget is full (IsMemoryBudgetError)
  // as the API error.
  ApiError MemoryBudgetExhausted(const absl::Status& s) {
    const MemoryUsage memory = engine->memory().usage;
    v1::LimitExceeded limit;
    limit.set_limit("memory_budget_bytes");
    limit.set_limit_value(memory.limit);
    limit.set_requested_value(memory.used);
    return std::move(ApiError(StatusCode::kResourceExhausted,
                              v1::ERROR_REASON_MEMORY_BUDGET_EXHAUSTED, std::string(s.message()))
                         .Metadata("limit", "memory_budget_bytes")
                         .Detail(limit)
                         .RetryAfter(absl::Seconds(1)));
  }

  // The domain a request names, as the policy sees it: the toolstack's UUID
  // and name when the engine knows it, else the name as given (a UUID-shaped
  // name as a UUID), so that the decision does not depend on existence.
  policy::DomainRef ResolveDomain(const std::string& domain) const {
    auto d = engine->GetDomain(domain);
    if (d.ok()) return policy::DomainRef{d->uuid, d->name};
    policy::DomainRef ref;
    if (LooksLikeUuid(domain)) {
      ref.uuid = absl::AsciiStrToLower(domain);
    } else {
      ref.name = domain;
    }
    return ref;
  }

  // UNAUTHENTICATED for a caller without principals (recorded).
  absl::Status RequireAuthenticated(const Identity& id, absl::string_view method,
                                    absl::string_view resource, absl::string_view verb) {
    if (id.authenticated()) return absl::OkStatus();
    if (access.audit != nullptr) {
      access.audit->Authorization(CallerOf(id), FullMethod(method), resource, verb, false,
                                  absl::StrCat("unauthenticated ", TransportName(id.transport),
                                               " caller"));
    }
    return ApiError(StatusCode::kUnauthenticated, v1::ERROR_REASON_UNAUTHENTICATED,
                    absl::StrCat("no usable identity on this connection (",
                                 TransportName(id.transport),
                                 "); use the Unix socket or a TLS client certificate"));
  }

  absl::Status Denied(const Identity& id, absl::string_view verb, const std::string& key,
                      const std::string& resource) {
    return ApiError(StatusCode::kPermissionDenied, v1::ERROR_REASON_PERMISSION_DENIED,
                    absl::StrCat(id.display(), " may not ", verb, " ", resource))
        .Metadata("verb", std::string(verb))
        .Metadata(key, resource);
  }

  // Checks `verb` on channel `channel_id` of `domain` (the domain segment of
  // the request); records the decision. `resource` names it for the audit
  // log and the error.
  absl::Status Authorize(const Identity& id, absl::string_view method, const std::string& domain,
                         const std::string& channel_id, Verb verb) {
    const policy::DomainRef ref = ResolveDomain(domain);
    const std::string resource =
        FormatChannelName(ref.uuid.empty() ? domain : ref.uuid, channel_id);
    const absl::string_view verb_name = policy::VerbName(verb);
    absl::Status s = RequireAuthenticated(id, method, resource, verb_name);
    if (!s.ok()) return s;
    const policy::Decision d = Policy()->Check(id.principals, ref, channel_id, verb);
    if (access.audit != nullptr) {
      access.audit->Authorization(CallerOf(id), FullMethod(method), resource, verb_name,
                                  d.allowed, d.reason);
    }
    if (d.allowed) return absl::OkStatus();
    return Denied(id, verb_name, "channel", resource);
  }

  // Checks that the caller holds `verb` (or, with nullopt, any verb) on some
  // channel of `domain`; records the decision.
  absl::Status AuthorizeDomain(const Identity& id, absl::string_view method,
                               const std::string& domain, std::optional<Verb> verb) {
    const policy::DomainRef ref = ResolveDomain(domain);
    const std::string resource = FormatDomainName(ref.uuid.empty() ? domain : ref.uuid);
    const std::string verb_name = verb.has_value() ? std::string(policy::VerbName(*verb)) : "any";
    absl::Status s = RequireAuthenticated(id, method, resource, verb_name);
    if (!s.ok()) return s;
    const policy::VerbSet held = Policy()->VerbsOnDomain(id.principals, ref);
    const bool allowed = verb.has_value() ? held.Contains(*verb) : !held.empty();
    if (access.audit != nullptr) {
      access.audit->Authorization(
          CallerOf(id), FullMethod(method), resource, verb_name, allowed,
          allowed ? absl::StrCat("holds ", held.ToString(), " on some channel of the domain")
                  : absl::StrCat("no rule grants ", verb_name, " on any channel of the domain"));
    }
    if (allowed) return absl::OkStatus();
    return Denied(id, verb_name, "domain", resource);
  }

  // Records a filtered listing (ListDomains, ListChannels and WatchChannels
  // over all domains): allowed, showing only what the caller may see.
  absl::Status AuthorizeListing(const Identity& id, absl::string_view method,
                                const std::string& resource, absl::string_view verb) {
    absl::Status s = RequireAuthenticated(id, method, resource, verb);
    if (!s.ok()) return s;
    if (access.audit != nullptr) {
      access.audit->Authorization(CallerOf(id), FullMethod(method), resource, verb, true,
                                  "listing filtered by the policy");
    }
    return absl::OkStatus();
  }

  bool MayRead(const policy::Policy& p, const Identity& id, const ChannelInfo& c) const {
    return p.Allows(id.principals, policy::DomainRef{c.domain_uuid, c.domain_name}, c.channel_id,
                    Verb::kRead);
  }

  // --- Error classification of engine statuses. ---

  absl::Status DomainNotFound(const std::string& domain) {
    return ApiError(StatusCode::kNotFound, v1::ERROR_REASON_DOMAIN_NOT_FOUND,
                    absl::StrCat("no domain '", domain, "'"))
        .Metadata("domain", "domains/" + domain);
  }

  // NOT_FOUND for `name`: which of domain or channel is missing.
  absl::Status ChannelNotFound(const ChannelName& name) {
    if (!engine->GetDomain(name.domain).ok()) return DomainNotFound(name.domain);
    return ApiError(StatusCode::kNotFound, v1::ERROR_REASON_CHANNEL_NOT_FOUND,
                    absl::StrCat("domain '", name.domain, "' has no channel '", name.channel_id,
                                 "'"))
        .Metadata("channel", "domains/" + name.domain + "/channels/" + name.channel_id);
  }

  // The status that ends a stream or call on `name` when the engine reports
  // the channel gone (`s` is NOT_FOUND or UNAVAILABLE from the session).
  absl::Status Removed(const absl::Status& s, const std::string& channel) {
    if (shutting_down) return ShuttingDownError();
    if (s.code() == StatusCode::kNotFound) {
      return ApiError(StatusCode::kNotFound, v1::ERROR_REASON_CHANNEL_REMOVED,
                      absl::StrCat("the channel was removed: ", s.message()))
          .Metadata("channel", channel);
    }
    if (s.code() == StatusCode::kUnavailable) {
      return ApiError(StatusCode::kUnavailable, v1::ERROR_REASON_DOMAIN_GONE,
                      absl::StrCat("the domain went away: ", s.message()))
          .Metadata("channel", channel)
          .RetryAfter(absl::Seconds(1));
    }
    return s;
  }

  // Errors of Engine::OpenSession (see Session::Open).
  absl::Status SessionOpenError(const absl::Status& s, const ChannelName& name,
                                const std::optional<Position>& requested) {
    const std::string channel = "domains/" + name.domain + "/channels/" + name.channel_id;
    auto info = engine->GetChannel(ChannelRef{name.domain, name.channel_id});
    switch (s.code()) {
      case StatusCode::kNotFound:
        if (!info.ok()) return ChannelNotFound(name);
        return Removed(s, channel);
      case StatusCode::kUnavailable:
        return Removed(s, channel);
      case StatusCode::kResourceExhausted: {
        if (IsMemoryBudgetError(s)) return MemoryBudgetExhausted(s).Metadata("channel", channel);
        v1::LimitExceeded limit;
        limit.set_limit("observers_per_channel");
        limit.set_limit_value(options.max_readers_per_channel);
        limit.set_requested_value((info.ok() ? info->observer_count : 0) + 1);
        return ApiError(StatusCode::kResourceExhausted, v1::ERROR_REASON_TOO_MANY_OBSERVERS,
                        std::string(s.message()))
            .Metadata("channel", channel)
            .Metadata("limit", "observers_per_channel")
            .Detail(limit);
      }
      case StatusCode::kFailedPrecondition: {
        // The engine refuses a session for two reasons only: the channel is
        // closing, or (for a writer) the lease is held. The holder may have
        // let go since, so the lease is not required to be visible now.
        if (info.ok() && info->state != ChannelState::kClosing &&
            info->state != ChannelState::kClosed) {
          ApiError e(StatusCode::kFailedPrecondition, v1::ERROR_REASON_LEASE_HELD,
                     std::string(s.message()));
          e.Metadata("channel", channel);
          if (info->write_lease.has_value()) {
            v1::LeaseHolder holder;
            ToProto(*info->write_lease, &holder);
            e.Metadata("session_id", info->write_lease->session_id).Detail(holder);
          }
          return e;
        }
        ApiError e(StatusCode::kFailedPrecondition, v1::ERROR_REASON_NOT_CONNECTED,
                   std::string(s.message()));
        e.Metadata("channel", channel);
        if (info.ok()) e.Detail(ChannelProto(*info));
        return e;
      }
      case StatusCode::kOutOfRange: {
        v1::RetainedRange range;
        if (requested.has_value()) ToProto(*requested, range.mutable_requested_position());
        if (info.ok() && (info->epoch != 0 || info->from_guest.next.epoch != 0)) {
          ToProto(info->from_guest.earliest, range.mutable_earliest_position());
          ToProto(info->from_guest.next, range.mutable_next_position());
        }
        return ApiError(StatusCode::kOutOfRange, v1::ERROR_REASON_OFFSET_NOT_RETAINED,
                        std::string(s.message()))
            .Metadata("channel", channel)
            .Detail(range);
      }
      default:
        return s;
    }
  }

  absl::Status EpochChanged(uint64_t expected, uint64_t current, const std::string& channel,
                            const std::string& message) {
    v1::EpochMismatch mismatch;
    mismatch.set_expected_epoch(expected);
    mismatch.set_current_epoch(current);
    return ApiError(StatusCode::kAborted, v1::ERROR_REASON_EPOCH_CHANGED, message)
        .Metadata("channel", channel)
        .Detail(mismatch);
  }

  // Counts the engine's new lifecycle events into the metrics.
  void CountEvents() ABSL_LOCKS_EXCLUDED(metrics_mu) {
    MutexLock lock(&metrics_mu);
    for (;;) {
      auto events = engine->EventsAfter(metrics_cursor, 256);
      if (!events.ok()) {  // fell behind the retention: skip ahead
        metrics_cursor = engine->revision();
        break;
      }
      if (events->empty()) break;
      for (const ChannelEvent& e : *events) {
        metrics->EngineEvent(e.type);
        metrics_cursor = e.revision;
      }
    }
    const EngineStats stats = engine->stats();
    metrics->SetEngineFigures(stats.domains, stats.channels);
    const MemoryUsage memory = engine->memory().usage;
    metrics->SetMemoryFigures(memory.used, memory.peak, memory.limit, memory.refused);
  }

  Mutex metrics_mu;
  uint64_t metrics_cursor ABSL_GUARDED_BY(metrics_mu) = 0;

  Mutex mu;
  std::map<ReactorBase*, std::weak_ptr<ReactorBase>> live ABSL_GUARDED_BY(mu);
};

// ---------------------------------------------------------------------------
// Reactor plumbing.

// What every reactor shares: its lock, its registration (for shutdown and
// metrics) and posting follow-up work to the scheduler. Kept alive by
// `self_` from creation until gRPC's OnDone has been handled, and by any
// task or engine callback in flight (they hold weak pointers).
class ReactorBase : public std::enable_shared_from_this<ReactorBase> {
 public:
  ReactorBase(std::shared_ptr<ServiceCore> core, std::string method,
              grpc::CallbackServerContext* context)
      : core_(std::move(core)),
        method_(std::move(method)),
        context_(context),
        identity_(core_->Authenticate(*context)),
        start_(absl::Now()),
        deadline_(DeadlineOf(*context)) {}
  virtual ~ReactorBase() = default;

  // Ends the call with UNAVAILABLE (SHUTTING_DOWN). Runs on the scheduler.
  virtual void Shutdown() = 0;

 protected:
  // Call once the object is owned by a shared_ptr.
  void Register(std::shared_ptr<ReactorBase> self) {
    self_ = std::move(self);
    core_->Register(this, self_);
    core_->metrics->RpcStarted(method_);
  }
  // After OnDone: no more gRPC operations; releases the self reference.
  void Unregister() {
    std::vector<QuotaManager::Lease> leases;
    {
      MutexLock lock(&quota_mu_);
      leases.swap(quota_leases_);
    }
    leases.clear();  // every end path gives its quotas back here
    core_->Unregister(this);
    absl::StatusCode code;
    {
      MutexLock lock(&mu_);
      code = final_code_;
    }
    core_->metrics->RpcFinished(method_, code, absl::Now() - start_);
    Log("info", "rpc", {{"method", method_},
                        {"code", absl::StatusCodeToString(code)},
                        {"peer", identity_.peer},
                        {"identity", identity_.display()},
                        {"duration", absl::FormatDuration(absl::Now() - start_)}});
    AuditSessionClosed(code);
    self_.reset();
  }

  // Audit: a session on `resource` opened (Read, Attach, Write, Call).
  void AuditSessionOpened(const std::string& resource, const std::string& session,
                          absl::string_view role) {
    if (core_->access.audit == nullptr) return;
    {
      MutexLock lock(&audit_mu_);
      session_resource_ = resource;
      session_id_ = session;
      session_opened_at_ = absl::Now();
    }
    core_->access.audit->SessionOpened(ServiceCore::CallerOf(identity_),
                                       ServiceCore::FullMethod(method_), resource, session, role);
  }
  // Holds, for the whole call, one stream of this caller against `domain`
  // (empty: none) and, if `observed` names a channel, one observer of it.
  // RESOURCE_EXHAUSTED (QUOTA_EXCEEDED) if a quota is full.
  absl::Status AcquireQuota(const std::string& domain, const std::string& observed) {
    const std::string key = ServiceCore::QuotaKey(identity_);
    auto stream = core_->quota.AcquireStream(key, domain.empty() ? "" : core_->QuotaDomain(domain));
    if (!stream.ok()) return core_->QuotaError(stream.status());
    std::optional<QuotaManager::Lease> observer;
    if (!observed.empty()) {
      auto o = core_->quota.AcquireObserver(key, observed);
      if (!o.ok()) return core_->QuotaError(o.status());
      observer = *std::move(o);
    }
    MutexLock lock(&quota_mu_);
    quota_leases_.push_back(*std::move(stream));
    if (observer.has_value()) quota_leases_.push_back(*std::move(observer));
    return absl::OkStatus();
  }
  // Charges `n` bytes to this caller's bytes-per-second quota.
  absl::Status ChargeBytes(size_t n) {
    return core_->QuotaError(core_->quota.ConsumeBytes(ServiceCore::QuotaKey(identity_), n));
  }
  // Bytes read from guests are paced, not refused: each delivered chunk is
  // charged to the caller's read bucket (ChargeRead), and while the bucket
  // is in debt the caller's streams read nothing: Paced says so and
  // has `m` run once the debt is paid. (A Call's reply is charged when
  // complete: it paces the caller's later reads.)
  void ChargeRead(size_t n) { core_->quota.ChargeRead(ServiceCore::QuotaKey(identity_), n); }
  template <class T>
  bool Paced(void (T::*m)()) {
    const absl::Duration delay = core_->quota.ReadDelay(ServiceCore::QuotaKey(identity_));
    if (delay <= absl::ZeroDuration()) return false;
    const absl::Time now = absl::Now();
    {
      MutexLock lock(&quota_mu_);
      if (paced_until_ > now) return true;  // a wake-up is due already
      paced_until_ = now + delay;
    }
    TimerAt(now + delay, m);
    return true;
  }

  // Bytes of this call's session: client to guest, guest to client.
  void CountIn(size_t n) { bytes_in_.fetch_add(n, std::memory_order_relaxed); }
  void CountOut(size_t n) { bytes_out_.fetch_add(n, std::memory_order_relaxed); }

  template <class T, class... A>
  void Later(void (T::*m)(A...), A... args) {
    std::weak_ptr<ReactorBase> w = weak_from_this();
    core_->scheduler->Run([w, m, args...] {
      if (auto s = w.lock()) (static_cast<T*>(s.get())->*m)(args...);
    });
  }
  // A callback for Session on_ready / event subscriptions: posts `m`.
  template <class T>
  std::function<void()> Notifier(void (T::*m)()) {
    std::weak_ptr<ReactorBase> w = weak_from_this();
    std::shared_ptr<ServiceCore> core = core_;
    return [w, m, core] {
      core->scheduler->Run([w, m] {
        if (auto s = w.lock()) (static_cast<T*>(s.get())->*m)();
      });
    };
  }
  // A timer running `m` at `when`; returns its id.
  template <class T>
  uint64_t TimerAt(absl::Time when, void (T::*m)()) {
    std::weak_ptr<ReactorBase> w = weak_from_this();
    return core_->scheduler->RunAt(when, [w, m] {
      if (auto s = w.lock()) (static_cast<T*>(s.get())->*m)();
    });
  }

  const std::shared_ptr<ServiceCore> core_;
  const std::string method_;
  grpc::CallbackServerContext* const context_;
  const Identity identity_;
  const absl::Time start_;
  const absl::Time deadline_;
  Mutex mu_;
  absl::StatusCode final_code_ ABSL_GUARDED_BY(mu_) = absl::StatusCode::kOk;

 private:
  void AuditSessionClosed(absl::StatusCode code) {
    if (core_->access.audit == nullptr) return;
    std::string resource, session;
    absl::Time opened;
    {
      MutexLock lock(&audit_mu_);
      if (session_id_.empty()) return;
      resource = session_resource_;
      session = session_id_;
      opened = session_opened_at_;
    }
    core_->access.audit->SessionClosed(ServiceCore::CallerOf(identity_),
                                       ServiceCore::FullMethod(method_), resource, session,
                                       bytes_in_.load(), bytes_out_.load(), absl::Now() - opened,
                                       absl::StatusCodeToString(code));
  }

  std::shared_ptr<ReactorBase> self_;
  Mutex quota_mu_;
  std::vector<QuotaManager::Lease> quota_leases_ ABSL_GUARDED_BY(quota_mu_);
  absl::Time paced_until_ ABSL_GUARDED_BY(quota_mu_) = absl::InfinitePast();
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};
  Mutex audit_mu_;
  std::string session_resource_ ABSL_GUARDED_BY(audit_mu_);
  std::string session_id_ ABSL_GUARDED_BY(audit_mu_);
  absl::Time session_opened_at_ ABSL_GUARDED_BY(audit_mu_);
};

// A unary call answered later (CreateChannel, DeleteChannel, Call).
class AsyncUnary : public grpc::ServerUnaryReactor, public ReactorBase {
 public:
  using ReactorBase::ReactorBase;

  void OnCancel() override { Later(&AsyncUnary::Cancelled); }
  void OnDone() override { Later(&AsyncUnary::Done); }
  void Shutdown() override {
    MutexLock lock(&mu_);
    FinishLocked(core_->ShuttingDownError());
  }

 protected:
  // Finishes once; later calls are ignored.
  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    final_code_ = status.code();
    OnFinishLocked();
    Finish(ToGrpcStatus(status));
  }
  bool finished() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_; }
  // Hook: runs once, just before Finish.
  virtual void OnFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}
  // Hook: runs after OnDone, on the scheduler.
  virtual void Cleanup() {}

 private:
  void Cancelled() {
    MutexLock lock(&mu_);
    FinishLocked(absl::CancelledError("the call was cancelled"));
  }
  void Done() {
    Cleanup();
    Unregister();
  }
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// A stream with server-to-client messages (WatchChannels, Read, Attach):
// a bounded outbound queue with one write in flight, and finishing after
// the queue has drained (or at once).
template <class Resp, class GrpcReactor>
class OutStream : public GrpcReactor, public ReactorBase {
 public:
  using ReactorBase::ReactorBase;

  void OnWriteDone(bool ok) override { Later(&OutStream::AfterWrite, ok); }
  void OnCancel() override { Later(&OutStream::Cancelled); }
  void OnDone() override { Later(&OutStream::Done); }
  void Shutdown() override {
    MutexLock lock(&mu_);
    EndNowLocked(core_->ShuttingDownError());
  }

 protected:
  // Produces messages while HasRoom(); ends the stream with End*Locked.
  virtual void FillLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  // Runs on the scheduler after OnDone (close sessions, cancel timers).
  virtual void Cleanup() {}

  bool HasRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.size() < core_->options.stream_queue_messages;
  }
  bool ending() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finish_.has_value(); }
  void Enqueue(Resp message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_.has_value()) return;
    queue_.push_back(std::move(message));
  }
  // Ends the stream with `status` once the queued messages are written.
  void EndLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!finish_.has_value()) finish_ = status;
    FlushLocked();
  }
  // Ends the stream with `status` now, dropping queued messages.
  void EndNowLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    queue_.clear();
    EndLocked(status);
  }
  // Starts the next write or the finish.
  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (!queue_.empty()) {
      current_ = std::move(queue_.front());
      queue_.pop_front();
      writing_ = true;
      this->StartWrite(&current_);
      return;
    }
    if (finish_.has_value()) {
      finished_ = true;
      final_code_ = finish_->code();
      BeforeFinishLocked();
      this->Finish(ToGrpcStatus(*finish_));
    }
  }
  // Hook: runs once, just before Finish (release what the client's next
  // call may need: the write lease, the reader slot).
  virtual void BeforeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}
  // Fills and flushes: the body of every wake-up.
  void Pump() {
    MutexLock lock(&mu_);
    if (finished_ || finish_.has_value()) {
      FlushLocked();
      return;
    }
    FillLocked();
    FlushLocked();
  }

 private:
  void AfterWrite(bool ok) {
    MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      EndNowLocked(absl::CancelledError("the client went away"));
      return;
    }
    if (!finish_.has_value()) FillLocked();
    FlushLocked();
  }
  void Cancelled() {
    MutexLock lock(&mu_);
    EndNowLocked(absl::CancelledError("the call was cancelled"));
  }
  void Done() {
    Cleanup();
    Unregister();
  }

  std::deque<Resp> queue_ ABSL_GUARDED_BY(mu_);
  Resp current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> finish_ ABSL_GUARDED_BY(mu_);
};

// Finishes a default unary reactor with `status` and records metrics.
grpc::ServerUnaryReactor* FinishUnary(ServiceCore& core, grpc::CallbackServerContext* context,
                                      const char* method, absl::Time start,
                                      const absl::Status& status) {
  core.metrics->RpcStarted(method);
  core.metrics->RpcFinished(method, status.code(), absl::Now() - start);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// ---------------------------------------------------------------------------
// Queries.

namespace {

absl::Status DoListDomains(ServiceCore& core, const Identity& id,
                           const v1::ListDomainsRequest& request,
                           v1::ListDomainsResponse* response) {
  auto size = PageSize(request.page_size());
  if (!size.ok()) return size.status();
  absl::Status allowed = core.AuthorizeListing(id, "ListDomains", "domains", "any");
  if (!allowed.ok()) return allowed;
  const std::shared_ptr<const policy::Policy> policy = core.Policy();
  std::string after;
  if (!request.page_token().empty()) {
    auto key = DecodePageToken(request.page_token(), "domains", "page_token");
    if (!key.ok()) return key.status();
    after = *key;
  }
  std::vector<DomainInfo> domains = core.engine->Snapshot().domains;
  std::sort(domains.begin(), domains.end(),
            [](const DomainInfo& a, const DomainInfo& b) { return a.uuid < b.uuid; });
  for (const DomainInfo& d : domains) {
    if (!after.empty() && d.uuid <= after) continue;
    if (!policy->CanSeeDomain(id.principals, policy::DomainRef{d.uuid, d.name})) continue;
    if (response->domains_size() == *size) {
      response->set_next_page_token(
          EncodePageToken("domains", response->domains().rbegin()->uuid()));
      break;
    }
    ToProto(d, response->add_domains());
  }
  return absl::OkStatus();
}

absl::Status DoGetDomain(ServiceCore& core, const Identity& id,
                         const v1::GetDomainRequest& request, v1::GetDomainResponse* response) {
  auto name = ParseDomainName(request.name(), "name", /*allow_all=*/false);
  if (!name.ok()) return name.status();
  absl::Status allowed = core.AuthorizeDomain(id, "GetDomain", name->domain, std::nullopt);
  if (!allowed.ok()) return allowed;
  auto domain = core.engine->GetDomain(name->domain);
  if (!domain.ok()) return core.DomainNotFound(name->domain);
  ToProto(*domain, response->mutable_domain());
  return absl::OkStatus();
}

absl::Status DoListChannels(ServiceCore& core, const Identity& id,
                            const v1::ListChannelsRequest& request,
                            v1::ListChannelsResponse* response) {
  auto parent = ParseDomainName(request.parent(), "parent", /*allow_all=*/true);
  if (!parent.ok()) return parent.status();
  auto size = PageSize(request.page_size());
  if (!size.ok()) return size.status();
  absl::Status s = ValidateFilter(request.filter(), "filter");
  if (!s.ok()) return s;
  std::vector<ChannelState> states;
  for (int st : request.states()) {
    if (!v1::ChannelState_IsValid(st)) {
      return InvalidOption("states", absl::StrCat("unknown channel state ", st));
    }
    if (auto e = FromProto(static_cast<v1::ChannelState>(st))) states.push_back(*e);
  }
  std::string after;
  if (!request.page_token().empty()) {
    auto key = DecodePageToken(request.page_token(), ListFingerprint(request), "page_token");
    if (!key.ok()) return key.status();
    after = *key;
  }
  absl::Status allowed =
      parent->all() ? core.AuthorizeListing(id, "ListChannels", "domains/-", "read")
                    : core.AuthorizeDomain(id, "ListChannels", parent->domain, Verb::kRead);
  if (!allowed.ok()) return allowed;
  const std::shared_ptr<const policy::Policy> policy = core.Policy();
  std::string domain_uuid;
  if (!parent->all()) {
    auto domain = core.engine->GetDomain(parent->domain);
    if (!domain.ok()) return core.DomainNotFound(parent->domain);
    domain_uuid = domain->uuid;
  }
  std::vector<ChannelInfo> channels = core.engine->Snapshot().channels;
  std::sort(channels.begin(), channels.end(), [](const ChannelInfo& a, const ChannelInfo& b) {
    return std::tie(a.domain_uuid, a.channel_id) < std::tie(b.domain_uuid, b.channel_id);
  });
  for (const ChannelInfo& c : channels) {
    if (!parent->all() && c.domain_uuid != domain_uuid) continue;
    if (!MatchesFilter(c, request.filter())) continue;
    if (!states.empty() && std::find(states.begin(), states.end(), c.state) == states.end()) {
      continue;
    }
    if (!core.MayRead(*policy, id, c)) continue;
    const std::string key = c.domain_uuid + "/" + c.channel_id;
    if (!after.empty() && key <= after) continue;
    if (response->channels_size() == *size) {
      const v1::Channel& last = *response->channels().rbegin();
      response->set_next_page_token(EncodePageToken(
          ListFingerprint(request), last.domain_uuid() + "/" + last.channel_id()));
      break;
    }
    *response->add_channels() = core.ChannelProto(c);
  }
  return absl::OkStatus();
}

absl::Status DoGetChannel(ServiceCore& core, const Identity& id,
                          const v1::GetChannelRequest& request,
                          v1::GetChannelResponse* response) {
  auto name = ParseChannelName(request.name(), "name");
  if (!name.ok()) return name.status();
  absl::Status allowed = core.Authorize(id, "GetChannel", name->domain, name->channel_id,
                                        Verb::kRead);
  if (!allowed.ok()) return allowed;
  auto info = core.engine->GetChannel(ChannelRef{name->domain, name->channel_id});
  if (!info.ok()) return core.ChannelNotFound(*name);
  *response->mutable_channel() = core.ChannelProto(*info);
  return absl::OkStatus();
}

}  // namespace

ChannelService::ChannelService(Engine* engine, ServerMetrics* metrics,
                               ChannelServiceOptions options, AccessControl access)
    : core_(std::make_shared<ServiceCore>(engine, metrics, std::move(options),
                                          std::move(access))) {
  // Lifecycle events (stalls, gaps, epochs, ...) and engine figures for the
  // metrics, counted once here rather than per watcher.
  {
    MutexLock lock(&core_->metrics_mu);
    core_->metrics_cursor = engine->revision();
  }
  std::weak_ptr<ServiceCore> w = core_;
  event_subscription_ = engine->SubscribeEvents([w] {
    auto core = w.lock();
    if (!core || !core->scheduler) return;
    core->scheduler->Run([w] {
      if (auto c = w.lock()) c->CountEvents();
    });
  });
  core_->CountEvents();
}

ChannelService::~ChannelService() {
  core_->engine->UnsubscribeEvents(event_subscription_);
  // Workers may still hold reactors, and they read core_->scheduler: join
  // them before the pointer itself changes, then free the scheduler.
  core_->scheduler->Stop();
  core_->scheduler.reset();
}

void ChannelService::BeginShutdown() {
  if (core_->shutting_down.exchange(true)) return;
  for (auto& r : core_->Live()) {
    std::weak_ptr<ReactorBase> w = r;
    core_->scheduler->Run([w] {
      if (auto s = w.lock()) s->Shutdown();
    });
  }
}

#define XENCHAN_UNARY_QUERY(Method)                                                      \
  grpc::ServerUnaryReactor* ChannelService::Method(grpc::CallbackServerContext* context, \
                                                   const v1::Method##Request* request,   \
                                                   v1::Method##Response* response) {     \
    const absl::Time start = absl::Now();                                                \
    absl::Status s =                                                                     \
        core_->shutting_down ? core_->ShuttingDownError() : ValidateRequest(*request);   \
    if (s.ok()) s = Do##Method(*core_, core_->Authenticate(*context), *request, response); \
    return FinishUnary(*core_, context, #Method, start, s);                              \
  }

XENCHAN_UNARY_QUERY(ListDomains)
XENCHAN_UNARY_QUERY(GetDomain)
XENCHAN_UNARY_QUERY(ListChannels)
XENCHAN_UNARY_QUERY(GetChannel)

#undef XENCHAN_UNARY_QUERY

// ---------------------------------------------------------------------------
// CreateChannel and DeleteChannel.

namespace {

class CreateReactor : public AsyncUnary {
 public:
  CreateReactor(std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context,
                const v1::CreateChannelRequest* request, v1::CreateChannelResponse* response)
      : AsyncUnary(std::move(core), "CreateChannel", context),
        request_(*request),
        response_(response) {}

  void Start(std::shared_ptr<ReactorBase> self) {
    Register(std::move(self));
    absl::Status s = Validate();
    if (!s.ok()) {
      MutexLock lock(&mu_);
      FinishLocked(s);
      return;
    }
    std::weak_ptr<ReactorBase> w = weak_from_this();
    std::shared_ptr<ServiceCore> core = core_;
    core_->engine->CreateChannel(engine_request_, [w, core](absl::StatusOr<ChannelInfo> r) {
      // On the engine thread: hand over and return.
      core->scheduler->Run([w, r = std::move(r)]() mutable {
        if (auto s = w.lock()) static_cast<CreateReactor*>(s.get())->Answer(std::move(r));
      });
    });
  }

 private:
  absl::Status Validate() {
    if (core_->shutting_down) return core_->ShuttingDownError();
    absl::Status valid = ValidateRequest(request_);
    if (!valid.ok()) return valid;
    auto parent = ParseDomainName(request_.parent(), "parent", /*allow_all=*/false);
    if (!parent.ok()) return parent.status();
    if (!ValidateChannelId(request_.channel_id()).ok()) {
      const std::string why =
          "1 to 64 bytes of [A-Za-z0-9._-], starting with a letter or digit";
      return ApiError(StatusCode::kInvalidArgument, v1::ERROR_REASON_INVALID_CHANNEL_ID,
                      absl::StrCat("channel_id '", request_.channel_id(), "': ", why))
          .Field("channel_id", why);
    }
    absl::Status allowed = core_->Authorize(identity_, method_, parent->domain,
                                            request_.channel_id(), Verb::kManage);
    if (!allowed.ok()) return allowed;
    const v1::ChannelConfig& c = request_.config();
    if (c.buffer_limit_bytes() != 0 &&
        (c.buffer_limit_bytes() < kMinBufferLimit || c.buffer_limit_bytes() > kMaxBufferLimit)) {
      return InvalidOption("config.buffer_limit_bytes", "allowed 4096..67108864");
    }
    if (!v1::OverflowPolicy_IsValid(c.overflow_policy())) {
      return InvalidOption("config.overflow_policy", "unknown overflow policy");
    }
    if (c.write_queue_limit_bytes() != 0 && (c.write_queue_limit_bytes() < kMinWriteQueueLimit ||
                                             c.write_queue_limit_bytes() > kMaxWriteQueueLimit)) {
      return InvalidOption("config.write_queue_limit_bytes", "allowed 65536..16777216");
    }
    if (c.has_default_framing()) {
      absl::Status s = ValidateFraming(c.default_framing(), "config.default_framing");
      if (!s.ok()) return s;
      engine_request_.config.default_framing = FromProto(c.default_framing());
    }
    absl::Duration connect_timeout = absl::Seconds(30);
    if (request_.wait_until_connected() && request_.has_connect_timeout()) {
      connect_timeout = FromProto(request_.connect_timeout());
      if (connect_timeout < absl::Seconds(1) || connect_timeout > absl::Minutes(10)) {
        return InvalidOption("connect_timeout", "allowed 1 s..10 min");
      }
    }
    auto domain = core_->engine->GetDomain(parent->domain);
    if (!domain.ok()) return core_->DomainNotFound(parent->domain);
    if (domain->state == DomainState::kDying) {
      return ApiError(StatusCode::kUnavailable, v1::ERROR_REASON_DOMAIN_GONE,
                      absl::StrCat("domain ", domain->name, " is dying"))
          .Metadata("domain", FormatDomainName(domain->uuid));
    }
    domain_ = *domain;
    engine_request_.domain = domain->uuid.empty() ? parent->domain : domain->uuid;
    engine_request_.channel_id = request_.channel_id();
    engine_request_.config.buffer_limit_bytes = c.buffer_limit_bytes();
    engine_request_.config.write_queue_limit_bytes = c.write_queue_limit_bytes();
    if (c.overflow_policy() == v1::OVERFLOW_POLICY_BLOCK) {
      engine_request_.config.overflow_policy = OverflowPolicy::kBlock;
    } else if (c.overflow_policy() == v1::OVERFLOW_POLICY_DROP_OLDEST) {
      engine_request_.config.overflow_policy = OverflowPolicy::kDropOldest;
    }
    engine_request_.validate_only = request_.validate_only();
    engine_request_.wait_until_connected = request_.wait_until_connected();
    if (request_.wait_until_connected()) {
      // Bounded by the call's deadline too, ending early enough to answer.
      const absl::Time end =
          std::min(absl::Now() + connect_timeout, core_->WaitDeadline(deadline_));
      engine_request_.connect_timeout = std::max(absl::ZeroDuration(), end - absl::Now());
    }
    return absl::OkStatus();
  }

  void Answer(absl::StatusOr<ChannelInfo> result) {
    const std::string channel = FormatChannelName(domain_.uuid, request_.channel_id());
    absl::Status status;
    if (result.ok()) {
      ToProto(*result, response_->mutable_channel());
      if (core_->access.audit != nullptr && !request_.validate_only()) {
        core_->access.audit->Lifecycle(
            FormatChannelName(result->domain_uuid, result->channel_id), "created",
            absl::StrCat("by ", identity_.display(), " (devid ", result->devid, ")"));
      }
    } else {
      status = Classify(result.status(), channel);
    }
    MutexLock lock(&mu_);
    FinishLocked(status);
  }

  // Errors of Engine::CreateChannel.
  absl::Status Classify(const absl::Status& s, const std::string& channel) {
    auto existing = core_->engine->GetChannel(ChannelRef{domain_.uuid, request_.channel_id()});
    switch (s.code()) {
      case StatusCode::kInvalidArgument:
        return InvalidOption("config", std::string(s.message()));
      case StatusCode::kNotFound:
        if (!core_->engine->GetDomain(domain_.uuid).ok()) {
          return core_->DomainNotFound(domain_.uuid);
        }
        return core_->Removed(s, channel);
      case StatusCode::kUnavailable:
        return ApiError(StatusCode::kUnavailable, v1::ERROR_REASON_DOMAIN_GONE,
                        std::string(s.message()))
            .Metadata("domain", FormatDomainName(domain_.uuid));
      case StatusCode::kAlreadyExists: {
        ApiError e(StatusCode::kAlreadyExists, v1::ERROR_REASON_CHANNEL_EXISTS,
                   std::string(s.message()));
        e.Metadata("channel", channel);
        if (existing.ok()) e.Detail(core_->ChannelProto(*existing));
        return e;
      }
      case StatusCode::kResourceExhausted: {
        if (IsMemoryBudgetError(s)) {
          return core_->MemoryBudgetExhausted(s).Metadata("domain",
                                                          FormatDomainName(domain_.uuid));
        }
        v1::LimitExceeded limit;
        limit.set_limit("devids_per_domain");
        limit.set_limit_value(7);
        limit.set_requested_value(domain_.channel_count + 1);
        return ApiError(StatusCode::kResourceExhausted, v1::ERROR_REASON_NO_FREE_DEVID,
                        std::string(s.message()))
            .Metadata("domain", FormatDomainName(domain_.uuid))
            .Metadata("limit", "devids_per_domain")
            .Detail(limit);
      }
      case StatusCode::kDeadlineExceeded: {
        ApiError e(StatusCode::kDeadlineExceeded, v1::ERROR_REASON_GUEST_TIMEOUT,
                   std::string(s.message()));
        e.Metadata("channel", channel);
        if (existing.ok()) e.Detail(core_->ChannelProto(*existing));
        return e;
      }
      case StatusCode::kFailedPrecondition: {
        ApiError e(StatusCode::kFailedPrecondition, v1::ERROR_REASON_NOT_CONNECTED,
                   std::string(s.message()));
        e.Metadata("channel", channel);
        if (existing.ok()) e.Detail(core_->ChannelProto(*existing));
        return e;
      }
      default:
        return ApiError(StatusCode::kUnavailable, v1::ERROR_REASON_TRANSPORT_UNAVAILABLE,
                        absl::StrCat("xenstore: ", s.message()))
            .RetryAfter(absl::Seconds(1));
    }
  }

  const v1::CreateChannelRequest request_;
  v1::CreateChannelResponse* const response_;
  CreateChannelRequest engine_request_;
  DomainInfo domain_;
};

class DeleteReactor : public AsyncUnary {
 public:
  DeleteReactor(std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context,
                const v1::DeleteChannelRequest* request, v1::DeleteChannelResponse* response)
      : AsyncUnary(std::move(core), "DeleteChannel", context),
        request_(*request),
        response_(response) {}

  void Start(std::shared_ptr<ReactorBase> self) {
    Register(std::move(self));
    absl::Status s = Validate();
    if (!s.ok()) {
      MutexLock lock(&mu_);
      FinishLocked(s);
      return;
    }
    std::weak_ptr<ReactorBase> w = weak_from_this();
    std::shared_ptr<ServiceCore> core = core_;
    core_->engine->DeleteChannel(ref_, force_after_, [w, core](absl::StatusOr<DeleteResult> r) {
      core->scheduler->Run([w, r = std::move(r)]() mutable {
        if (auto s = w.lock()) static_cast<DeleteReactor*>(s.get())->Answer(std::move(r));
      });
    });
  }

 private:
  absl::Status Validate() {
    if (core_->shutting_down) return core_->ShuttingDownError();
    absl::Status valid = ValidateRequest(request_);
    if (!valid.ok()) return valid;
    auto name = ParseChannelName(request_.name(), "name");
    if (!name.ok()) return name.status();
    name_ = *name;
    if (request_.has_force_after()) {
      force_after_ = FromProto(request_.force_after());
      if (force_after_ < absl::ZeroDuration() || force_after_ > absl::Minutes(10)) {
        return InvalidOption("force_after", "allowed 0..10 min");
      }
    }
    absl::Status allowed =
        core_->Authorize(identity_, method_, name_.domain, name_.channel_id, Verb::kManage);
    if (!allowed.ok()) return allowed;
    auto info = core_->engine->GetChannel(ChannelRef{name_.domain, name_.channel_id});
    if (!info.ok()) return core_->ChannelNotFound(name_);
    if (info->transport != Transport::kRing) {
      return ApiError(StatusCode::kFailedPrecondition, v1::ERROR_REASON_TOOLSTACK_MANAGED,
                      "toolstack channels are declared in xl.cfg; remove them there")
          .Metadata("channel", FormatChannelName(info->domain_uuid, info->channel_id))
          .Detail(core_->ChannelProto(*info));
    }
    ref_ = ChannelRef{info->domain_uuid.empty() ? name_.domain : info->domain_uuid,
                      name_.channel_id};
    return absl::OkStatus();
  }

  void Answer(absl::StatusOr<DeleteResult> result) {
    absl::Status status;
    if (result.ok()) {
      *response_->mutable_channel() = core_->ChannelProto(result->channel);
      response_->set_forced(result->forced);
      if (core_->access.audit != nullptr) {
        core_->access.audit->Lifecycle(
            FormatChannelName(result->channel.domain_uuid, result->channel.channel_id), "deleted",
            absl::StrCat("by ", identity_.display(), result->forced ? " (forced)" : ""));
      }
    } else if (result.status().code() == StatusCode::kNotFound) {
      status = core_->ChannelNotFound(name_);
    } else if (result.status().code() == StatusCode::kFailedPrecondition) {
      status = ApiError(StatusCode::kFailedPrecondition, v1::ERROR_REASON_TOOLSTACK_MANAGED,
                        std::string(result.status().message()));
    } else if (result.status().code() == StatusCode::kUnavailable) {
      status = core_->Removed(result.status(), request_.name());
    } else {
      status = result.status();
    }
    MutexLock lock(&mu_);
    FinishLocked(status);
  }

  const v1::DeleteChannelRequest request_;
  v1::DeleteChannelResponse* const response_;
  ChannelName name_;
  ChannelRef ref_;
  absl::Duration force_after_ = absl::Seconds(10);
};

}  // namespace

grpc::ServerUnaryReactor* ChannelService::CreateChannel(grpc::CallbackServerContext* context,
                                                        const v1::CreateChannelRequest* request,
                                                        v1::CreateChannelResponse* response) {
  auto r = std::make_shared<CreateReactor>(core_, context, request, response);
  r->Start(r);
  return r.get();
}

grpc::ServerUnaryReactor* ChannelService::DeleteChannel(grpc::CallbackServerContext* context,
                                                        const v1::DeleteChannelRequest* request,
                                                        v1::DeleteChannelResponse* response) {
  auto r = std::make_shared<DeleteReactor>(core_, context, request, response);
  r->Start(r);
  return r.get();
}

// ---------------------------------------------------------------------------
// WatchChannels.

namespace {

class WatchReactor
    : public OutStream<v1::WatchChannelsResponse,
                       grpc::ServerWriteReactor<v1::WatchChannelsResponse>> {
 public:
  WatchReactor(std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context,
               const v1::WatchChannelsRequest* request)
      : OutStream(std::move(core), "WatchChannels", context), request_(*request) {}

  void Start(std::shared_ptr<ReactorBase> self) {
    Register(std::move(self));
    MutexLock lock(&mu_);
    absl::Status s = Open();
    if (!s.ok()) {
      EndNowLocked(s);
      return;
    }
    subscription_ = core_->engine->SubscribeEvents(Notifier(&WatchReactor::Pump));
    subscribed_ = true;
    heartbeat_ = TimerAt(absl::Now() + core_->options.watch_heartbeat, &WatchReactor::Heartbeat);
    FillLocked();
    FlushLocked();
  }

 private:
  absl::Status Open() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (core_->shutting_down) return core_->ShuttingDownError();
    absl::Status valid = ValidateRequest(request_);
    if (!valid.ok()) return valid;
    auto parent = ParseDomainName(request_.parent(), "parent", /*allow_all=*/true);
    if (!parent.ok()) return parent.status();
    absl::Status s = ValidateFilter(request_.filter(), "filter");
    if (!s.ok()) return s;
    s = parent->all() ? core_->AuthorizeListing(identity_, method_, "domains/-", "read")
                      : core_->AuthorizeDomain(identity_, method_, parent->domain, Verb::kRead);
    if (!s.ok()) return s;
    s = AcquireQuota(parent->all() ? "" : parent->domain, "");
    if (!s.ok()) return s;
    if (!parent->all()) {
      auto domain = core_->engine->GetDomain(parent->domain);
      if (!domain.ok()) return core_->DomainNotFound(parent->domain);
      domain_uuid_ = domain->uuid;
      one_domain_ = true;
    }
    if (request_.start_revision() == 0) {
      EngineSnapshot snap = core_->engine->Snapshot();
      std::sort(snap.channels.begin(), snap.channels.end(),
                [](const ChannelInfo& a, const ChannelInfo& b) {
                  return std::tie(a.domain_uuid, a.channel_id) <
                         std::tie(b.domain_uuid, b.channel_id);
                });
      const absl::Time now = absl::Now();
      for (const ChannelInfo& c : snap.channels) {
        if (!Matches(c)) continue;
        v1::WatchChannelsResponse m;
        m.set_revision(snap.revision);
        m.set_type(v1::CHANNEL_EVENT_TYPE_EXISTING);
        SetTime(now, m.mutable_event_time());
        *m.mutable_channel() = core_->ChannelProto(c);
        snapshot_.push_back(std::move(m));
      }
      cursor_ = snap.revision;
      sync_at_ = snap.revision;
      return absl::OkStatus();
    }
    const uint64_t current = core_->engine->revision();
    if (!core_->engine->EventsAfter(request_.start_revision(), 0).ok()) {
      // The smallest revision the log can resume from.
      uint64_t lo = 0, hi = current;
      while (lo < hi) {
        const uint64_t mid = lo + (hi - lo) / 2;
        if (core_->engine->EventsAfter(mid, 0).ok()) {
          hi = mid;
        } else {
          lo = mid + 1;
        }
      }
      v1::RetainedRevisions retained;
      retained.set_requested_revision(request_.start_revision());
      retained.set_earliest_revision(lo);
      retained.set_current_revision(current);
      return ApiError(StatusCode::kOutOfRange, v1::ERROR_REASON_REVISION_NOT_RETAINED,
                      absl::StrCat("revision ", request_.start_revision(),
                                   " cannot be resumed from; retained ", lo, "..", current))
          .Detail(retained);
    }
    cursor_ = request_.start_revision();
    sync_at_ = current;
    return absl::OkStatus();
  }

  // Whether the watcher gets events of `c`: its filter, and read access
  // under the policy in force when the event is sent (a reload applies to
  // open watches).
  bool Matches(const ChannelInfo& c) const {
    if (one_domain_ && c.domain_uuid != domain_uuid_) return false;
    if (!MatchesFilter(c, request_.filter())) return false;
    return core_->MayRead(*core_->Policy(), identity_, c);
  }

  void FillLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (HasRoom() && !snapshot_.empty()) {
      Enqueue(std::move(snapshot_.front()));
      snapshot_.pop_front();
    }
    while (HasRoom() && snapshot_.empty() && !ending()) {
      if (!synced_ && cursor_ >= sync_at_) {
        v1::WatchChannelsResponse m;
        m.set_revision(sync_at_);
        m.set_type(v1::CHANNEL_EVENT_TYPE_SYNCED);
        SetTime(absl::Now(), m.mutable_event_time());
        Enqueue(std::move(m));
        synced_ = true;
        sent_since_heartbeat_ = true;
        continue;
      }
      // Only events that happened since the watch began count: a resumed
      // watch catches up on everything up to sync_at_ at its own pace (the
      // retention bounds that part).
      const uint64_t newest = core_->engine->revision();
      const uint64_t floor = std::max(cursor_, sync_at_);
      if (newest > floor && newest - floor > core_->options.watch_backlog_events) {
        SlowConsumer(newest);
        return;
      }
      auto events = core_->engine->EventsAfter(cursor_, core_->options.stream_queue_messages);
      if (!events.ok()) {
        SlowConsumer(newest);
        return;
      }
      if (events->empty()) return;
      for (ChannelEvent& e : *events) {
        if (!HasRoom()) break;
        cursor_ = e.revision;
        if (!Matches(e.channel)) continue;
        Enqueue(Convert(e));
        sent_since_heartbeat_ = true;
        if (!synced_ && cursor_ >= sync_at_) break;
      }
    }
  }

  v1::WatchChannelsResponse Convert(const ChannelEvent& e) {
    v1::WatchChannelsResponse m;
    m.set_revision(e.revision);
    m.set_type(ToProto(e.type));
    SetTime(e.time, m.mutable_event_time());
    *m.mutable_channel() = core_->ChannelProto(e.channel);
    if (e.epoch_change.has_value()) ToProto(*e.epoch_change, m.mutable_epoch_change());
    if (e.drop_report.has_value()) {
      v1::DropReport* d = m.mutable_drop_report();
      d->set_dropped_bytes(e.drop_report->dropped_bytes);
      ToProto(e.drop_report->first_position, d->mutable_first_position());
      ToProto(e.drop_report->end_position, d->mutable_end_position());
    }
    if (e.lease_change.has_value()) {
      v1::LeaseChange* l = m.mutable_lease_change();
      if (e.lease_change->previous_holder.has_value()) {
        ToProto(*e.lease_change->previous_holder, l->mutable_previous_holder());
      }
      if (e.lease_change->holder.has_value()) {
        ToProto(*e.lease_change->holder, l->mutable_holder());
      }
      l->set_taken_over(e.lease_change->taken_over);
    }
    if (e.type == ChannelEventType::kRemoved) m.set_removal_reason(ToProto(e.removal_reason));
    return m;
  }

  void SlowConsumer(uint64_t newest) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::LimitExceeded limit;
    limit.set_limit("watch_backlog_events");
    limit.set_limit_value(core_->options.watch_backlog_events);
    limit.set_requested_value(newest - cursor_);
    EndLocked(ApiError(StatusCode::kResourceExhausted, v1::ERROR_REASON_SLOW_CONSUMER,
                       absl::StrCat("the watcher fell ", newest - cursor_,
                                    " events behind; resume from revision ", cursor_))
                  .Metadata("limit", "watch_backlog_events")
                  .Detail(limit));
  }

  void Heartbeat() {
    MutexLock lock(&mu_);
    if (ending()) return;
    if (!sent_since_heartbeat_ && synced_ && HasRoom()) {
      FillLocked();
      v1::WatchChannelsResponse m;
      m.set_revision(cursor_);
      m.set_type(v1::CHANNEL_EVENT_TYPE_PROGRESS);
      SetTime(absl::Now(), m.mutable_event_time());
      Enqueue(std::move(m));
      FlushLocked();
    }
    sent_since_heartbeat_ = false;
    heartbeat_ = TimerAt(absl::Now() + core_->options.watch_heartbeat, &WatchReactor::Heartbeat);
  }

  void Cleanup() override {
    uint64_t heartbeat;
    bool subscribed;
    {
      MutexLock lock(&mu_);
      heartbeat = heartbeat_;
      subscribed = subscribed_;
      subscribed_ = false;
    }
    core_->scheduler->Cancel(heartbeat);
    if (subscribed) core_->engine->UnsubscribeEvents(subscription_);
  }

  const v1::WatchChannelsRequest request_;
  bool one_domain_ = false;
  std::string domain_uuid_;
  uint64_t subscription_ = 0;
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t heartbeat_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::WatchChannelsResponse> snapshot_ ABSL_GUARDED_BY(mu_);
  uint64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;   // last revision processed
  uint64_t sync_at_ ABSL_GUARDED_BY(mu_) = 0;  // SYNCED once cursor_ reaches it
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  bool sent_since_heartbeat_ ABSL_GUARDED_BY(mu_) = false;
};

// ---------------------------------------------------------------------------
// Read.

class ReadReactor
    : public OutStream<v1::ReadResponse, grpc::ServerWriteReactor<v1::ReadResponse>> {
 public:
  ReadReactor(std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context,
              const v1::ReadRequest* request)
      : OutStream(std::move(core), "Read", context), request_(*request) {}

  void Start(std::shared_ptr<ReactorBase> self) {
    Register(std::move(self));
    MutexLock lock(&mu_);
    absl::Status s = Open();
    if (!s.ok()) {
      EndNowLocked(s);
      return;
    }
    FillLocked();
    FlushLocked();
  }

 private:
  absl::Status Open() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (core_->shutting_down) return core_->ShuttingDownError();
    absl::Status valid = ValidateRequest(request_);
    if (!valid.ok()) return valid;
    auto name = ParseChannelName(request_.channel(), "channel");
    if (!name.ok()) return name.status();
    absl::Status s = ValidateStart(request_.start(), "start");
    if (!s.ok()) return s;
    s = core_->Authorize(identity_, method_, name->domain, name->channel_id, Verb::kRead);
    if (!s.ok()) return s;
    s = AcquireQuota(name->domain, request_.channel());
    if (!s.ok()) return s;
    channel_ = request_.channel();
    SessionOptions options;
    options.role = SessionRole::kObserver;
    options.identity = identity_.display();
    options.start = EngineStart(request_.start(), ReadStart::Anchor::kEarliest);
    options.on_ready = Notifier(&ReadReactor::Pump);
    auto session = core_->engine->OpenSession(ChannelRef{name->domain, name->channel_id},
                                              std::move(options));
    if (!session.ok()) {
      std::optional<Position> requested;
      if (request_.start().has_position()) {
        requested = Position{request_.start().position().epoch(),
                             request_.start().position().offset()};
      }
      return core_->SessionOpenError(session.status(), *name, requested);
    }
    session_ = *std::move(session);
    core_->metrics->SessionOpened();
    const ChannelInfo& info = session_->info_at_open();
    AuditSessionOpened(FormatChannelName(info.domain_uuid, info.channel_id), session_->id(),
                       "reader");
    end_ = info.from_guest.next;
    pos_ = session_->start_position();
    return absl::OkStatus();
  }

  bool AtEnd() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pos_.epoch > end_.epoch || (pos_.epoch == end_.epoch && pos_.offset >= end_.offset);
  }

  void FillLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!session_) return;
    while (HasRoom() && !ending()) {
      if (!request_.follow() && AtEnd()) return EndLocked(absl::OkStatus());
      size_t want = kMaxChunk;
      if (request_.max_bytes() != 0) {
        want = std::min<uint64_t>(want, request_.max_bytes() - sent_);
      }
      if (Paced(&ReadReactor::Pump)) return;
      auto records = session_->Read(want);
      if (!records.ok()) return EndLocked(core_->Removed(records.status(), channel_));
      if (records->empty()) {
        if (!request_.follow()) EndLocked(absl::OkStatus());
        return;
      }
      for (SessionRecord& r : *records) {
        v1::ReadResponse m;
        switch (r.kind) {
          case SessionRecord::Kind::kData: {
            std::string data = std::move(r.data);
            if (!request_.follow() && r.position.epoch == end_.epoch &&
                r.position.offset + data.size() > end_.offset) {
              data.resize(end_.offset > r.position.offset ? end_.offset - r.position.offset : 0);
            }
            if (data.empty()) continue;
            m.mutable_data()->set_epoch(r.position.epoch);
            m.mutable_data()->set_offset(r.position.offset);
            pos_ = Position{r.position.epoch, r.position.offset + data.size()};
            sent_ += data.size();
            core_->metrics->BytesToClients(data.size());
            CountOut(data.size());
            ChargeRead(data.size());
            m.mutable_data()->set_data(std::move(data));
            break;
          }
          case SessionRecord::Kind::kGap:
            m.mutable_gap()->set_epoch(r.position.epoch);
            m.mutable_gap()->set_offset(r.position.offset);
            m.mutable_gap()->set_length(r.lost);
            pos_ = Position{r.position.epoch, r.position.offset + r.lost};
            core_->metrics->StreamGap(r.lost);
            break;
          case SessionRecord::Kind::kEpochChange:
            ToProto(r.epoch_change, m.mutable_epoch_change());
            pos_ = Position{r.epoch_change.epoch, 0};
            break;
          default:
            continue;  // notices are for Attach
        }
        Enqueue(std::move(m));
        if (request_.max_bytes() != 0 && sent_ >= request_.max_bytes()) {
          return EndLocked(absl::OkStatus());
        }
        if (!request_.follow() && AtEnd()) return EndLocked(absl::OkStatus());
      }
    }
  }

  void BeforeFinishLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (session_) session_->Close();  // Cleanup closes again: a no-op
  }

  void Cleanup() override {
    std::unique_ptr<Session> session;
    {
      MutexLock lock(&mu_);
      session = std::move(session_);
    }
    if (session) {
      session->Close();
      core_->metrics->SessionClosed();
    }
  }

  const v1::ReadRequest request_;
  std::string channel_;
  std::unique_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  Position end_ ABSL_GUARDED_BY(mu_);  // follow=false: stop here
  Position pos_ ABSL_GUARDED_BY(mu_);  // next position of the stream
  uint64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

grpc::ServerWriteReactor<v1::WatchChannelsResponse>* ChannelService::WatchChannels(
    grpc::CallbackServerContext* context, const v1::WatchChannelsRequest* request) {
  auto r = std::make_shared<WatchReactor>(core_, context, request);
  r->Start(r);
  return r.get();
}

grpc::ServerWriteReactor<v1::ReadResponse>* ChannelService::Read(
    grpc::CallbackServerContext* context, const v1::ReadRequest* request) {
  auto r = std::make_shared<ReadReactor>(core_, context, request);
  r->Start(r);
  return r.get();
}

// ---------------------------------------------------------------------------
// Attach.

namespace {

// Converts a session notice or data record of an Attach stream.
bool AttachMessage(SessionRecord& r, v1::AttachResponse* m, ServerMetrics* metrics) {
  switch (r.kind) {
    case SessionRecord::Kind::kData:
      if (r.data.empty()) return false;
      metrics->BytesToClients(r.data.size());
      m->mutable_data()->set_epoch(r.position.epoch);
      m->mutable_data()->set_offset(r.position.offset);
      m->mutable_data()->set_data(std::move(r.data));
      return true;
    case SessionRecord::Kind::kGap:
      metrics->StreamGap(r.lost);
      m->mutable_gap()->set_epoch(r.position.epoch);
      m->mutable_gap()->set_offset(r.position.offset);
      m->mutable_gap()->set_length(r.lost);
      return true;
    case SessionRecord::Kind::kEpochChange:
      ToProto(r.epoch_change, m->mutable_epoch_change());
      return true;
    case SessionRecord::Kind::kStall:
      m->mutable_stall()->set_stalled(r.stall.stalled);
      SetTime(r.stall.stall_start_time, m->mutable_stall()->mutable_stall_start_time());
      m->mutable_stall()->set_buffered_bytes(r.stall.buffered_bytes);
      return true;
    case SessionRecord::Kind::kStateChange: {
      v1::ChannelStateChange* s = m->mutable_state_change();
      s->set_state(ToProto(r.state.state));
      s->set_frontend_state(ToProto(r.state.frontend_state));
      s->set_backend_state(ToProto(r.state.backend_state));
      if (r.state.error.kind != ChannelErrorKind::kNone) {
        s->mutable_error()->set_kind(ToProto(r.state.error.kind));
        s->mutable_error()->set_message(r.state.error.message);
        SetTime(r.state.error.time, s->mutable_error()->mutable_time());
      }
      SetTime(r.state.time, s->mutable_time());
      return true;
    }
    case SessionRecord::Kind::kLeaseLost:
      if (r.new_holder.has_value()) {
        ToProto(*r.new_holder, m->mutable_lease_lost()->mutable_new_holder());
      } else {
        m->mutable_lease_lost();
      }
      return true;
  }
  return false;
}

class AttachReactor
    : public OutStream<v1::AttachResponse,
                       grpc::ServerBidiReactor<v1::AttachRequest, v1::AttachResponse>> {
 public:
  AttachReactor(std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context)
      : OutStream(std::move(core), "Attach", context) {}

  void Start(std::shared_ptr<ReactorBase> self) {
    Register(std::move(self));
    MutexLock lock(&mu_);
    if (core_->shutting_down) {
      EndNowLocked(core_->ShuttingDownError());
      return;
    }
    ReadNextLocked();
  }

  void OnReadDone(bool ok) override { Later(&AttachReactor::AfterRead, ok); }

 private:
  struct PendingWrite {
    uint64_t seq;
    uint64_t epoch;
    uint64_t end;
  };

  void ReadNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reading_ || half_closed_ || ending()) return;
    reading_ = true;
    StartRead(&request_);
  }

  absl::Status Violation(const std::string& why) {
    return ApiError(StatusCode::kInvalidArgument, v1::ERROR_REASON_STREAM_PROTOCOL_VIOLATION,
                    why)
        .Field("AttachRequest", why);
  }

  void AfterRead(bool ok) {
    MutexLock lock(&mu_);
    reading_ = false;
    if (ending()) return FlushLocked();
    if (!ok) {
      half_closed_ = true;
      if (!session_) return EndLocked(Violation("the stream ended before `open`"));
      if (role_ == SessionRole::kObserver) return EndLocked(absl::OkStatus());
      FillLocked();
      return FlushLocked();
    }
    v1::AttachRequest message = std::move(request_);
    request_.Clear();
    if (!session_) {
      if (message.kind_case() != v1::AttachRequest::kOpen) {
        return EndNowLocked(Violation("the first message must be `open`"));
      }
      absl::Status s = Open(message.open());
      if (!s.ok()) return EndNowLocked(s);
    } else if (message.kind_case() == v1::AttachRequest::kWrite) {
      const v1::AttachWrite& w = message.write();
      if (role_ != SessionRole::kWriter) {
        return EndLocked(Violation("an observer cannot write"));
      }
      if (w.sequence_id() == 0 || w.sequence_id() <= last_seq_) {
        return EndLocked(Violation(absl::StrCat("sequence_id ", w.sequence_id(),
                                                " does not increase (last ", last_seq_, ")")));
      }
      if (w.data().size() > Session::kMaxWrite) {
        return EndLocked(ApiError(StatusCode::kInvalidArgument,
                                  v1::ERROR_REASON_PAYLOAD_TOO_LARGE,
                                  absl::StrCat("write of ", w.data().size(),
                                               " bytes; at most 65536"))
                             .Field("write.data", "at most 65536 bytes"));
      }
      if (absl::Status q = ChargeBytes(w.data().size()); !q.ok()) return EndLocked(q);
      last_seq_ = w.sequence_id();
      pending_input_ = w;
    } else if (message.kind_case() == v1::AttachRequest::kOpen) {
      return EndLocked(Violation("`open` sent twice"));
    } else {
      return EndLocked(Violation("a message must set `open` or `write`"));
    }
    FillLocked();
    FlushLocked();
  }

  absl::Status Open(const v1::AttachOpen& open) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Status valid = ValidateAttachOpen(open);
    if (!valid.ok()) return valid;
    auto name = ParseChannelName(open.channel(), "open.channel");
    if (!name.ok()) return name.status();
    channel_ = open.channel();
    if (open.role() != v1::SESSION_ROLE_WRITER && open.role() != v1::SESSION_ROLE_OBSERVER) {
      return InvalidOption("open.role", "SESSION_ROLE_WRITER or SESSION_ROLE_OBSERVER");
    }
    absl::Status s = ValidateStart(open.start(), "open.start");
    if (!s.ok()) return s;
    if (!v1::AckLevel_IsValid(open.ack_level())) {
      return InvalidOption("open.ack_level", "unknown acknowledgement level");
    }
    const bool writer = open.role() == v1::SESSION_ROLE_WRITER;
    if (!writer) {
      if (open.ack_level() != v1::ACK_LEVEL_UNSPECIFIED) {
        return InvalidOption("open.ack_level", "observers do not write");
      }
      if (open.takeover()) return InvalidOption("open.takeover", "observers do not write");
      if (open.fail_fast()) return InvalidOption("open.fail_fast", "observers do not write");
    }
    // Observers need read; writers read and write; takeover also admin.
    s = core_->Authorize(identity_, method_, name->domain, name->channel_id, Verb::kRead);
    if (s.ok() && writer) {
      s = core_->Authorize(identity_, method_, name->domain, name->channel_id, Verb::kWrite);
    }
    if (s.ok() && open.takeover()) {
      s = core_->Authorize(identity_, method_, name->domain, name->channel_id, Verb::kAdmin);
    }
    if (!s.ok()) return s;
    s = AcquireQuota(name->domain, writer ? "" : open.channel());
    if (!s.ok()) return s;
    ack_level_ = FromProtoAck(open.ack_level());
    fail_fast_ = open.fail_fast();
    role_ = writer ? SessionRole::kWriter : SessionRole::kObserver;
    const ChannelRef ref{name->domain, name->channel_id};
    auto info = core_->engine->GetChannel(ref);
    if (!info.ok()) return core_->ChannelNotFound(*name);
    if (writer && static_cast<int>(ack_level_) > static_cast<int>(info->max_ack_level)) {
      return ApiError(StatusCode::kFailedPrecondition, v1::ERROR_REASON_ACK_LEVEL_NOT_SUPPORTED,
                      "the channel cannot report that acknowledgement level")
          .Metadata("channel", channel_)
          .Detail(core_->ChannelProto(*info));
    }
    SessionOptions options;
    options.role = role_;
    options.kind = SessionKind::kAttach;
    options.identity = identity_.display();
    options.start = EngineStart(open.start(), ReadStart::Anchor::kNext);
    options.takeover = open.takeover();
    options.on_ready = Notifier(&AttachReactor::Pump);
    auto session = core_->engine->OpenSession(ref, std::move(options));
    if (!session.ok()) {
      std::optional<Position> requested;
      if (open.start().has_position()) {
        requested = Position{open.start().position().epoch(), open.start().position().offset()};
      }
      return core_->SessionOpenError(session.status(), *name, requested);
    }
    session_ = *std::move(session);
    core_->metrics->SessionOpened();
    AuditSessionOpened(FormatChannelName(session_->info_at_open().domain_uuid,
                                         session_->info_at_open().channel_id),
                       session_->id(), writer ? "writer" : "observer");
    v1::AttachResponse m;
    v1::AttachOpened* opened = m.mutable_opened();
    opened->set_session_id(session_->id());
    opened->set_role(open.role());
    *opened->mutable_channel() = core_->ChannelProto(session_->info_at_open());
    if (session_->start_position().epoch != 0) {
      ToProto(session_->start_position(), opened->mutable_start_position());
    }
    Enqueue(std::move(m));
    return absl::OkStatus();
  }

  void Reject(uint64_t first, uint64_t last, AckLevel reached, uint64_t epoch, StatusCode code,
              v1::ErrorReason reason, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::AttachResponse m;
    v1::WriteRejection* r = m.mutable_write_rejection();
    r->set_first_sequence_id(first);
    r->set_last_sequence_id(last);
    r->set_reached_level(ToProto(reached));
    r->set_epoch(epoch);
    r->set_code(static_cast<int32_t>(code));
    r->set_reason(reason);
    r->set_message(message);
    Enqueue(std::move(m));
  }

  // Tries to place the pending input. False while it waits for room.
  bool PlaceInputLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!pending_input_.has_value()) return true;
    const v1::AttachWrite& w = *pending_input_;
    auto range = session_->Write(w.data(), w.expected_epoch());
    if (range.ok()) {
      core_->metrics->BytesFromClients(w.data().size());
      CountIn(w.data().size());
      pending_.push_back(PendingWrite{w.sequence_id(), range->epoch, range->end});
      pending_input_.reset();
      return true;
    }
    const absl::Status& s = range.status();
    switch (s.code()) {
      case StatusCode::kResourceExhausted:
        if (!fail_fast_) return false;
        if (IsMemoryBudgetError(s)) {
          Reject(w.sequence_id(), w.sequence_id(), AckLevel::kNone, 0,
                 StatusCode::kResourceExhausted, v1::ERROR_REASON_MEMORY_BUDGET_EXHAUSTED,
                 std::string(s.message()));
          break;
        }
        Reject(w.sequence_id(), w.sequence_id(), AckLevel::kNone, 0,
               StatusCode::kResourceExhausted, v1::ERROR_REASON_QUEUE_FULL,
               "the write queue is full");
        break;
      case StatusCode::kFailedPrecondition:
        Reject(w.sequence_id(), w.sequence_id(), AckLevel::kNone, 0,
               StatusCode::kFailedPrecondition, v1::ERROR_REASON_NOT_CONNECTED,
               std::string(s.message()));
        break;
      case StatusCode::kAborted:
        if (session_->has_lease()) {
          Reject(w.sequence_id(), w.sequence_id(), AckLevel::kNone, 0, StatusCode::kAborted,
                 v1::ERROR_REASON_EPOCH_CHANGED, std::string(s.message()));
        }
        // Otherwise the lease was taken over: the lease_lost notice follows.
        break;
      default:
        EndLocked(core_->Removed(s, channel_));
        break;
    }
    pending_input_.reset();
    return true;
  }

  // Sends acknowledgements and rejections of accepted writes.
  void UpdateAcksLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (pending_.empty()) return;
    const WriteStatus ws = session_->write_status();
    const int top = static_cast<int>(ack_level_);
    uint64_t best[4] = {0, 0, 0, 0};
    PendingWrite best_write[4] = {};
    bool blocked[4] = {false, false, false, false};
    std::deque<PendingWrite> keep;
    struct Failed {
      PendingWrite w;
      AckLevel reached;
      bool epoch_changed;
    };
    std::vector<Failed> failed;
    for (const PendingWrite& p : pending_) {
      AckLevel reached = AckLevel::kAccepted;
      const bool same_epoch = ws.epoch == p.epoch;
      if (same_epoch && ws.delivered_offset >= p.end) reached = AckLevel::kDelivered;
      if (same_epoch && ws.consumed_offset >= p.end) reached = AckLevel::kConsumed;
      const bool done = static_cast<int>(reached) >= top;
      if (!done && (!same_epoch || !ws.connected)) {
        failed.push_back(Failed{p, reached, !same_epoch});
        continue;
      }
      for (int l = 1; l <= top; ++l) {
        if (!blocked[l] && static_cast<int>(reached) >= l) {
          best[l] = p.seq;
          best_write[l] = p;
        } else {
          blocked[l] = true;
        }
      }
      if (!done) keep.push_back(p);
    }
    for (int l = 1; l <= top; ++l) {
      if (best[l] > acked_[l]) {
        acked_[l] = best[l];
        v1::AttachResponse m;
        v1::WriteAck* a = m.mutable_write_ack();
        a->set_sequence_id(best[l]);
        a->set_level(ToProto(static_cast<AckLevel>(l)));
        a->set_epoch(best_write[l].epoch);
        a->set_end_offset(best_write[l].end);
        Enqueue(std::move(m));
      }
    }
    for (size_t i = 0; i < failed.size();) {
      size_t j = i;
      while (j + 1 < failed.size() && failed[j + 1].reached == failed[i].reached &&
             failed[j + 1].epoch_changed == failed[i].epoch_changed) {
        ++j;
      }
      const bool ec = failed[i].epoch_changed;
      Reject(failed[i].w.seq, failed[j].w.seq, failed[i].reached, failed[i].w.epoch,
             ec ? StatusCode::kAborted : StatusCode::kFailedPrecondition,
             ec ? v1::ERROR_REASON_EPOCH_CHANGED : v1::ERROR_REASON_NOT_CONNECTED,
             ec ? "the epoch changed before the bytes reached the guest"
                : "the channel left CONNECTED before the bytes reached the guest");
      i = j + 1;
    }
    pending_ = std::move(keep);
  }

  void FillLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!session_ || ending()) return;
    if (role_ != SessionRole::kWriter || PlaceInputLocked()) ReadNextLocked();
    if (role_ == SessionRole::kWriter) UpdateAcksLocked();
    while (HasRoom() && !ending()) {
      if (Paced(&AttachReactor::Pump)) break;
      auto records = session_->Read(kMaxChunk);
      if (!records.ok()) {
        if (records.status().code() == StatusCode::kAborted) {
          ApiError e(StatusCode::kAborted, v1::ERROR_REASON_LEASE_TAKEN_OVER,
                     "an administrator's session took the write lease over");
          e.Metadata("channel", channel_);
          if (new_holder_.has_value()) e.Detail(*new_holder_);
          return EndLocked(e);
        }
        return EndLocked(core_->Removed(records.status(), channel_));
      }
      if (records->empty()) break;
      for (SessionRecord& r : *records) {
        v1::AttachResponse m;
        if (!AttachMessage(r, &m, core_->metrics)) continue;
        if (m.has_data()) {
          CountOut(m.data().data().size());
          ChargeRead(m.data().data().size());
        }
        if (m.has_lease_lost()) new_holder_ = m.lease_lost().new_holder();
        Enqueue(std::move(m));
      }
    }
    if (role_ == SessionRole::kWriter && half_closed_ && !pending_input_.has_value() &&
        pending_.empty() && !ending()) {
      EndLocked(absl::OkStatus());
    }
  }

  void BeforeFinishLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (session_) session_->Close();  // Cleanup closes again: a no-op
  }

  void Cleanup() override {
    std::unique_ptr<Session> session;
    {
      MutexLock lock(&mu_);
      session = std::move(session_);
    }
    if (session) {
      session->Close();
      core_->metrics->SessionClosed();
    }
  }

  v1::AttachRequest request_ ABSL_GUARDED_BY(mu_);
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
  std::string channel_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  SessionRole role_ ABSL_GUARDED_BY(mu_) = SessionRole::kObserver;
  AckLevel ack_level_ ABSL_GUARDED_BY(mu_) = AckLevel::kAccepted;
  bool fail_fast_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<v1::AttachWrite> pending_input_ ABSL_GUARDED_BY(mu_);
  std::deque<PendingWrite> pending_ ABSL_GUARDED_BY(mu_);
  uint64_t acked_[4] ABSL_GUARDED_BY(mu_) = {0, 0, 0, 0};
  std::optional<v1::LeaseHolder> new_holder_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerBidiReactor<v1::AttachRequest, v1::AttachResponse>* ChannelService::Attach(
    grpc::CallbackServerContext* context) {
  auto r = std::make_shared<AttachReactor>(core_, context);
  r->Start(r);
  return r.get();
}

// ---------------------------------------------------------------------------
// Write.

namespace {

class WriteReactor : public grpc::ServerReadReactor<v1::WriteRequest>, public ReactorBase {
 public:
  WriteReactor(std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context,
               v1::WriteResponse* response)
      : ReactorBase(std::move(core), "Write", context), response_(response) {}

  void Start(std::shared_ptr<ReactorBase> self) {
    Register(std::move(self));
    MutexLock lock(&mu_);
    if (core_->shutting_down) return FinishLocked(core_->ShuttingDownError());
    if (deadline_ != absl::InfiniteFuture()) {
      timer_ = TimerAt(core_->WaitDeadline(deadline_), &WriteReactor::Timeout);
    }
    reading_ = true;
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override { Later(&WriteReactor::AfterRead, ok); }
  void OnCancel() override { Later(&WriteReactor::Cancelled); }
  void OnDone() override { Later(&WriteReactor::Done); }
  void Shutdown() override {
    MutexLock lock(&mu_);
    FinishLocked(WithProgress(ApiError(core_->ShuttingDownError().code(),
                                       v1::ERROR_REASON_SHUTTING_DOWN,
                                       "xenchand is shutting down")
                                  .RetryAfter(core_->options.shutdown_retry_delay)));
  }

 private:
  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    final_code_ = status.code();
    if (status.ok()) *response_->mutable_progress() = ProgressLocked();
    // Release the lease before the client hears the end, so that its next
    // Write or Call finds the channel free (Cleanup closes again: a no-op).
    if (session_) session_->Close();
    Finish(ToGrpcStatus(status));
  }

  v1::WriteProgress ProgressLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::WriteProgress p;
    if (accepted_ == 0 || !session_) return p;
    const WriteStatus ws = session_->write_status();
    p.set_epoch(epoch_);
    p.set_start_offset(start_offset_);
    p.set_accepted_bytes(accepted_);
    // Copies: the thread-safety analysis does not follow mu_ into a lambda.
    const uint64_t epoch = epoch_, start = start_offset_, accepted = accepted_;
    auto part = [&](uint64_t offset) -> uint64_t {
      if (ws.epoch != epoch || offset <= start) return 0;
      return std::min<uint64_t>(offset - start, accepted);
    };
    p.set_delivered_bytes(std::max<uint64_t>(part(ws.delivered_offset), delivered_seen_));
    p.set_consumed_bytes(std::max<uint64_t>(part(ws.consumed_offset), consumed_seen_));
    return p;
  }

  // `e` with the WriteProgress detail (every error after the first message).
  absl::Status WithProgress(ApiError e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (opened_) e.Detail(ProgressLocked());
    return e.Build();
  }

  absl::Status Violation(const std::string& why) {
    return ApiError(StatusCode::kInvalidArgument, v1::ERROR_REASON_STREAM_PROTOCOL_VIOLATION,
                    why)
        .Field("WriteRequest", why);
  }

  void AfterRead(bool ok) {
    MutexLock lock(&mu_);
    reading_ = false;
    if (finished_) return;
    if (!ok) {
      half_closed_ = true;
      if (!opened_) return FinishLocked(InvalidName("channel", "required in the first message"));
      return PumpLocked();
    }
    v1::WriteRequest message = std::move(request_);
    request_.Clear();
    if (!opened_) {
      absl::Status s = Open(message);
      if (!s.ok()) return FinishLocked(s);
    } else if (!message.channel().empty() || message.ack_level() != 0 ||
               message.expected_epoch() != 0 || message.fail_fast() || message.takeover()) {
      return FinishLocked(WithProgress(
          ApiError(StatusCode::kInvalidArgument, v1::ERROR_REASON_STREAM_PROTOCOL_VIOLATION,
                   "only the first message may set fields other than data")
              .Field("WriteRequest", "later messages set only data")));
    }
    if (message.data().size() > Session::kMaxWrite) {
      return FinishLocked(WithProgress(
          ApiError(StatusCode::kInvalidArgument, v1::ERROR_REASON_PAYLOAD_TOO_LARGE,
                   absl::StrCat("message of ", message.data().size(), " bytes; at most 65536"))
              .Field("data", "at most 65536 bytes")));
    }
    if (absl::Status q = ChargeBytes(message.data().size()); !q.ok()) return FinishLocked(q);
    pending_ = std::move(*message.mutable_data());
    has_pending_ = true;
    PumpLocked();
  }

  absl::Status Open(const v1::WriteRequest& first) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Status valid = ValidateWriteMessage(first, /*first=*/true);
    if (!valid.ok()) return valid;
    auto name = ParseChannelName(first.channel(), "channel");
    if (!name.ok()) return name.status();
    channel_ = first.channel();
    if (!v1::AckLevel_IsValid(first.ack_level())) {
      return InvalidOption("ack_level", "unknown acknowledgement level");
    }
    absl::Status allowed =
        core_->Authorize(identity_, method_, name->domain, name->channel_id, Verb::kWrite);
    if (allowed.ok() && first.takeover()) {
      allowed = core_->Authorize(identity_, method_, name->domain, name->channel_id, Verb::kAdmin);
    }
    if (!allowed.ok()) return allowed;
    allowed = AcquireQuota(name->domain, "");
    if (!allowed.ok()) return allowed;
    ack_level_ = FromProtoAck(first.ack_level());
    fail_fast_ = first.fail_fast();
    const ChannelRef ref{name->domain, name->channel_id};
    auto info = core_->engine->GetChannel(ref);
    if (!info.ok()) return core_->ChannelNotFound(*name);
    if (static_cast<int>(ack_level_) > static_cast<int>(info->max_ack_level)) {
      return ApiError(StatusCode::kFailedPrecondition, v1::ERROR_REASON_ACK_LEVEL_NOT_SUPPORTED,
                      "the channel cannot report that acknowledgement level")
          .Metadata("channel", channel_)
          .Detail(core_->ChannelProto(*info));
    }
    SessionOptions options;
    options.role = SessionRole::kWriter;
    options.kind = SessionKind::kWrite;
    options.identity = identity_.display();
    options.takeover = first.takeover();
    options.on_ready = Notifier(&WriteReactor::Pump);
    auto session = core_->engine->OpenSession(ref, std::move(options));
    if (!session.ok()) return core_->SessionOpenError(session.status(), *name, std::nullopt);
    session_ = *std::move(session);
    core_->metrics->SessionOpened();
    opened_ = true;
    const ChannelInfo& at_open = session_->info_at_open();
    AuditSessionOpened(FormatChannelName(at_open.domain_uuid, at_open.channel_id), session_->id(),
                       "writer");
    if (at_open.state != ChannelState::kConnected) {
      return ApiError(StatusCode::kFailedPrecondition, v1::ERROR_REASON_NOT_CONNECTED,
                      absl::StrCat("the channel is ", ToString(at_open.state)))
          .Metadata("channel", channel_)
          .Detail(core_->ChannelProto(at_open))
          .Detail(v1::WriteProgress());
    }
    epoch_ = session_->write_status().epoch;
    if (first.expected_epoch() != 0 && first.expected_epoch() != epoch_) {
      v1::EpochMismatch mismatch;
      mismatch.set_expected_epoch(first.expected_epoch());
      mismatch.set_current_epoch(epoch_);
      return ApiError(StatusCode::kAborted, v1::ERROR_REASON_EPOCH_CHANGED,
                      absl::StrCat("the channel is in epoch ", epoch_, ", not ",
                                   first.expected_epoch()))
          .Metadata("channel", channel_)
          .Detail(mismatch)
          .Detail(v1::WriteProgress());
    }
    return absl::OkStatus();
  }

  void Pump() {
    MutexLock lock(&mu_);
    if (!finished_) PumpLocked();
  }

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!session_) return;
    if (!session_->has_lease()) {
      const ChannelInfo info = session_->info();
      ApiError e(StatusCode::kAborted, v1::ERROR_REASON_LEASE_TAKEN_OVER,
                 "an administrator's session took the write lease over");
      e.Metadata("channel", channel_);
      if (info.write_lease.has_value()) {
        v1::LeaseHolder holder;
        ToProto(*info.write_lease, &holder);
        e.Detail(holder);
      }
      return FinishLocked(WithProgress(e));
    }
    const WriteStatus ws = session_->write_status();
    if (ws.epoch != epoch_) {
      v1::EpochMismatch mismatch;
      mismatch.set_expected_epoch(epoch_);
      mismatch.set_current_epoch(ws.epoch);
      return FinishLocked(WithProgress(
          ApiError(StatusCode::kAborted, v1::ERROR_REASON_EPOCH_CHANGED,
                   "the channel's epoch changed; undelivered bytes were discarded")
              .Metadata("channel", channel_)
              .Detail(mismatch)));
    }
    // Remember progress while the epoch holds.
    const v1::WriteProgress progress = ProgressLocked();
    delivered_seen_ = progress.delivered_bytes();
    consumed_seen_ = progress.consumed_bytes();
    // Bytes delivered to the guest leave the caller's queued-bytes quota.
    if (queued_.amount() > accepted_ - delivered_seen_) {
      queued_.Shrink(queued_.amount() - (accepted_ - delivered_seen_));
    }
    const uint64_t reached = ack_level_ == AckLevel::kConsumed    ? consumed_seen_
                             : ack_level_ == AckLevel::kDelivered ? delivered_seen_
                                                                  : accepted_;
    if (!ws.connected && (has_pending_ || reached < accepted_)) {
      ApiError e(StatusCode::kFailedPrecondition, v1::ERROR_REASON_NOT_CONNECTED,
                 "the channel left CONNECTED; undelivered bytes were discarded");
      e.Metadata("channel", channel_).Detail(core_->ChannelProto(session_->info()));
      return FinishLocked(WithProgress(e));
    }
    if (has_pending_) {
      // The caller's queued bytes (accepted, not yet delivered, over all its
      // streams) must have room. A waiting writer whose own bytes hold the
      // quota waits for them to be delivered (on_ready brings it back);
      // otherwise the write is refused.
      auto lease = core_->quota.AcquireQueued(ServiceCore::QuotaKey(identity_), pending_.size());
      if (!lease.ok()) {
        if (!fail_fast_ && queued_.amount() > 0) return;
        std::optional<QuotaExceeded> q = QuotaExceededOf(lease.status());
        if (!q.has_value()) return FinishLocked(lease.status());
        return FinishLocked(WithProgress(core_->QuotaApiError(*q, lease.status())));
      }
      auto range = session_->Write(pending_, epoch_);
      if (range.ok()) queued_.Absorb(*std::move(lease));  // else given back here
      if (range.ok()) {
        if (accepted_ == 0) start_offset_ = range->start;
        accepted_ += pending_.size();
        core_->metrics->BytesFromClients(pending_.size());
        CountIn(pending_.size());
        pending_.clear();
        has_pending_ = false;
      } else if (range.status().code() == StatusCode::kResourceExhausted) {
        if (!fail_fast_) return;  // on_ready brings us back when room frees
        if (IsMemoryBudgetError(range.status())) {
          return FinishLocked(WithProgress(
              core_->MemoryBudgetExhausted(range.status()).Metadata("channel", channel_)));
        }
        v1::LimitExceeded limit;
        limit.set_limit("write_queue_bytes");
        limit.set_limit_value(session_->info().config.write_queue_limit_bytes);
        limit.set_requested_value(session_->info().to_guest.queued_bytes + pending_.size());
        return FinishLocked(WithProgress(
            ApiError(StatusCode::kResourceExhausted, v1::ERROR_REASON_QUEUE_FULL,
                     "the write queue is full")
                .Metadata("channel", channel_)
                .Metadata("limit", "write_queue_bytes")
                .Detail(limit)));
      } else if (range.status().code() == StatusCode::kFailedPrecondition) {
        ApiError e(StatusCode::kFailedPrecondition, v1::ERROR_REASON_NOT_CONNECTED,
                   std::string(range.status().message()));
        e.Metadata("channel", channel_).Detail(core_->ChannelProto(session_->info()));
        return FinishLocked(WithProgress(e));
      } else if (range.status().code() == StatusCode::kAborted) {
        if (!session_->has_lease()) return PumpLocked();  // reports LEASE_TAKEN_OVER
        v1::EpochMismatch mismatch;
        mismatch.set_expected_epoch(epoch_);
        mismatch.set_current_epoch(session_->write_status().epoch);
        return FinishLocked(WithProgress(
            ApiError(StatusCode::kAborted, v1::ERROR_REASON_EPOCH_CHANGED,
                     std::string(range.status().message()))
                .Metadata("channel", channel_)
                .Detail(mismatch)));
      } else {
        return FinishLocked(core_->Removed(range.status(), channel_));
      }
    }
    if (!half_closed_) {
      if (!reading_) {
        reading_ = true;
        StartRead(&request_);
      }
      return;
    }
    const uint64_t now_reached = ack_level_ == AckLevel::kConsumed    ? ProgressLocked().consumed_bytes()
                                 : ack_level_ == AckLevel::kDelivered ? ProgressLocked().delivered_bytes()
                                                                      : accepted_;
    if (now_reached >= accepted_) FinishLocked(absl::OkStatus());
  }

  void Timeout() {
    MutexLock lock(&mu_);
    if (finished_) return;
    FinishLocked(WithProgress(
        ApiError(StatusCode::kDeadlineExceeded, v1::ERROR_REASON_GUEST_TIMEOUT,
                 "the deadline passed before the bytes reached the requested level")
            .Metadata("channel", channel_)));
  }

  void Cancelled() {
    MutexLock lock(&mu_);
    FinishLocked(absl::CancelledError("the call was cancelled"));
  }

  void Done() {
    std::unique_ptr<Session> session;
    uint64_t timer;
    {
      MutexLock lock(&mu_);
      session = std::move(session_);
      timer = timer_;
      // The stream's end gives its share back (what it left in the channel's
      // write queue stays bounded by that queue and the memory budget).
      queued_.Release();
    }
    core_->scheduler->Cancel(timer);
    if (session) {
      session->Close();
      core_->metrics->SessionClosed();
    }
    Unregister();
  }

  v1::WriteResponse* const response_;
  v1::WriteRequest request_ ABSL_GUARDED_BY(mu_);
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool opened_ ABSL_GUARDED_BY(mu_) = false;
  std::string channel_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  AckLevel ack_level_ ABSL_GUARDED_BY(mu_) = AckLevel::kAccepted;
  bool fail_fast_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t start_offset_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t accepted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t delivered_seen_ ABSL_GUARDED_BY(mu_) = 0;
  // This stream's share of its caller's queued-bytes quota: accepted_ less
  // what has been delivered.
  QuotaManager::Lease queued_ ABSL_GUARDED_BY(mu_);
  uint64_t consumed_seen_ ABSL_GUARDED_BY(mu_) = 0;
  std::string pending_ ABSL_GUARDED_BY(mu_);
  bool has_pending_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t timer_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

grpc::ServerReadReactor<v1::WriteRequest>* ChannelService::Write(
    grpc::CallbackServerContext* context, v1::WriteResponse* response) {
  auto r = std::make_shared<WriteReactor>(core_, context, response);
  r->Start(r);
  return r.get();
}

// ---------------------------------------------------------------------------
// Call.

namespace {

class CallReactor : public AsyncUnary {
 public:
  CallReactor(std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context,
              const v1::CallRequest* request, v1::CallResponse* response)
      : AsyncUnary(std::move(core), "Call", context), request_(*request), response_(response) {}

  void Start(std::shared_ptr<ReactorBase> self) {
    Register(std::move(self));
    MutexLock lock(&mu_);
    absl::Status s = Open();
    if (!s.ok()) return FinishLocked(s);
    const absl::Time end = deadline_ == absl::InfiniteFuture()
                               ? absl::Now() + core_->options.max_call_time
                               : core_->WaitDeadline(deadline_);
    timer_ = TimerAt(end, &CallReactor::Timeout);
    PumpLocked();
  }

 private:
  absl::Status Open() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (core_->shutting_down) return core_->ShuttingDownError();
    absl::Status valid = ValidateRequest(request_);
    if (!valid.ok()) return valid;
    auto name = ParseChannelName(request_.channel(), "channel");
    if (!name.ok()) return name.status();
    channel_ = request_.channel();
    if (request_.request().size() > kMaxCallRequestBytes) {
      return ApiError(StatusCode::kInvalidArgument, v1::ERROR_REASON_PAYLOAD_TOO_LARGE,
                      absl::StrCat("request of ", request_.request().size(),
                                   " bytes; at most 65536"))
          .Field("request", "at most 65536 bytes");
    }
    if (request_.has_framing()) {
      absl::Status s = ValidateFraming(request_.framing(), "framing");
      if (!s.ok()) return s;
    }
    absl::Status allowed =
        core_->Authorize(identity_, method_, name->domain, name->channel_id, Verb::kCall);
    if (!allowed.ok()) return allowed;
    allowed = AcquireQuota(name->domain, "");
    if (allowed.ok()) allowed = ChargeBytes(request_.request().size());
    if (!allowed.ok()) return allowed;
    const ChannelRef ref{name->domain, name->channel_id};
    auto info = core_->engine->GetChannel(ref);
    if (!info.ok()) return core_->ChannelNotFound(*name);
    framing_ = request_.has_framing() ? FromProto(request_.framing())
                                      : info->config.default_framing.value_or(Framing{});
    sync_id_ = absl::Uniform<uint32_t>(bitgen_, 1, 1u << 30);
    auto encoded = EncodeCallRequest(framing_, request_.request(), sync_id_);
    if (!encoded.ok()) return InvalidOption("request", std::string(encoded.status().message()));
    out_ = *std::move(encoded);
    SessionOptions options;
    options.role = SessionRole::kWriter;
    options.kind = SessionKind::kCall;
    options.identity = identity_.display();
    options.queue_for_lease = true;
    options.start.anchor = ReadStart::Anchor::kNext;
    options.on_ready = Notifier(&CallReactor::Pump);
    auto session = core_->engine->OpenSession(ref, std::move(options));
    if (!session.ok()) return core_->SessionOpenError(session.status(), *name, std::nullopt);
    session_ = *std::move(session);
    core_->metrics->SessionOpened();
    AuditSessionOpened(FormatChannelName(info->domain_uuid, info->channel_id), session_->id(),
                       "call");
    return absl::OkStatus();
  }

  v1::PartialResponse PartialLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::PartialResponse p;
    p.set_epoch(epoch_);
    AckLevel level = AckLevel::kNone;
    if (written_ > 0) {
      level = AckLevel::kAccepted;
      const WriteStatus ws = session_->write_status();
      if (ws.epoch == epoch_ && written_ == out_.size()) {
        if (ws.delivered_offset >= request_end_) level = AckLevel::kDelivered;
        if (ws.consumed_offset >= request_end_) level = AckLevel::kConsumed;
      }
    }
    p.set_request_level(ToProto(level));
    p.set_request_offset(request_offset_);
    p.set_response_offset(response_offset_);
    // Bounded to fit gRPC's trailers (clients refuse metadata beyond 8 KiB
    // by default); the whole response can be read from response_offset.
    if (decoder_) p.set_response(decoder_->Partial().substr(0, kMaxPartialResponseDetailBytes));
    return p;
  }

  absl::Status WithPartial(ApiError e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    e.Metadata("channel", channel_);
    if (exchanging_) e.Detail(PartialLocked());
    return e.Build();
  }

  void Pump() {
    MutexLock lock(&mu_);
    if (!finished()) PumpLocked();
  }

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!session_ || finished()) return;
    if (!exchanging_) {
      if (!session_->has_lease()) {
        // Still queued; make sure the channel is still there.
        auto records = session_->Read(kMaxChunk);
        if (!records.ok()) return FinishLocked(core_->Removed(records.status(), channel_));
        return;
      }
      // Our turn. Bytes that arrived before are not part of the response.
      for (;;) {
        auto records = session_->Read(kMaxChunk);
        if (!records.ok()) return FinishLocked(core_->Removed(records.status(), channel_));
        if (records->empty()) break;
      }
      const WriteStatus ws = session_->write_status();
      if (!ws.connected) {
        const ChannelInfo info = session_->info();
        return FinishLocked(ApiError(StatusCode::kFailedPrecondition,
                                     v1::ERROR_REASON_NOT_CONNECTED,
                                     absl::StrCat("the channel is ", ToString(info.state)))
                                .Metadata("channel", channel_)
                                .Detail(core_->ChannelProto(info)));
      }
      const ChannelInfo info = session_->info();
      exchanging_ = true;
      epoch_ = ws.epoch;
      request_offset_ = ws.accepted_offset;
      request_end_ = request_offset_ + out_.size();
      response_offset_ = info.from_guest.next.epoch == epoch_ ? info.from_guest.next.offset : 0;
      decoder_ = NewResponseDecoder(framing_, sync_id_);
    }
    // Write what is left of the request.
    while (written_ < out_.size()) {
      const size_t n = std::min(Session::kMaxWrite, out_.size() - written_);
      auto range = session_->Write(absl::string_view(out_).substr(written_, n), epoch_);
      if (range.ok()) {
        if (written_ == 0) {
          request_offset_ = range->start;
          request_end_ = request_offset_ + out_.size();
        }
        written_ += n;
        core_->metrics->BytesFromClients(n);
        CountIn(n);
        continue;
      }
      const absl::Status& s = range.status();
      if (s.code() == StatusCode::kResourceExhausted) break;  // room frees: on_ready
      if (s.code() == StatusCode::kFailedPrecondition) {
        return FinishLocked(WithPartial(ApiError(
            StatusCode::kFailedPrecondition, v1::ERROR_REASON_NOT_CONNECTED,
            std::string(s.message()))));
      }
      if (s.code() == StatusCode::kAborted) return FinishLocked(AbortedLocked(s));
      return FinishLocked(core_->Removed(s, channel_));
    }
    // Read the response.
    for (;;) {
      auto records = session_->Read(kMaxChunk);
      if (!records.ok()) {
        if (records.status().code() == StatusCode::kAborted) {
          return FinishLocked(AbortedLocked(records.status()));
        }
        return FinishLocked(WithPartial(ApiError(
            records.status().code() == StatusCode::kNotFound ? StatusCode::kNotFound
                                                             : StatusCode::kUnavailable,
            records.status().code() == StatusCode::kNotFound ? v1::ERROR_REASON_CHANNEL_REMOVED
                                                             : v1::ERROR_REASON_DOMAIN_GONE,
            std::string(records.status().message()))));
      }
      if (records->empty()) return;
      for (SessionRecord& r : *records) {
        switch (r.kind) {
          case SessionRecord::Kind::kData: {
            if (!got_data_) {
              got_data_ = true;
              if (r.position.epoch == epoch_) response_offset_ = r.position.offset;
            }
            auto done = decoder_->Feed(r.data);
            if (!done.ok()) {
              return FinishLocked(WithPartial(
                  ApiError(StatusCode::kResourceExhausted, v1::ERROR_REASON_RESPONSE_TOO_LARGE,
                           "the response exceeds 1 MiB")
                      .Metadata("limit", "call_response_bytes")));
            }
            if (done->has_value()) {
              CountOut((*done)->size());
              ChargeRead((*done)->size());  // paces the caller's next reads
              response_->set_response(**done);
              response_->set_epoch(epoch_);
              response_->set_request_offset(request_offset_);
              response_->set_response_offset(response_offset_);
              return FinishLocked(absl::OkStatus());
            }
            break;
          }
          case SessionRecord::Kind::kEpochChange: {
            v1::EpochMismatch mismatch;
            mismatch.set_expected_epoch(epoch_);
            mismatch.set_current_epoch(r.epoch_change.epoch);
            return FinishLocked(WithPartial(
                ApiError(StatusCode::kAborted, v1::ERROR_REASON_EPOCH_CHANGED,
                         "the guest reconnected during the call")
                    .Detail(mismatch)));
          }
          case SessionRecord::Kind::kStateChange:
            if (r.state.state != ChannelState::kConnected) {
              return FinishLocked(WithPartial(
                  ApiError(StatusCode::kFailedPrecondition, v1::ERROR_REASON_NOT_CONNECTED,
                           absl::StrCat("the channel left CONNECTED (",
                                        ToString(r.state.state), ")"))));
            }
            break;
          case SessionRecord::Kind::kLeaseLost:
            return FinishLocked(AbortedLocked(absl::AbortedError("lease taken over")));
          default:
            break;
        }
      }
    }
  }

  absl::Status AbortedLocked(const absl::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!session_->has_lease()) {
      ApiError e(StatusCode::kAborted, v1::ERROR_REASON_LEASE_TAKEN_OVER,
                 "an administrator's session took the write lease over");
      const ChannelInfo info = session_->info();
      if (info.write_lease.has_value()) {
        v1::LeaseHolder holder;
        ToProto(*info.write_lease, &holder);
        e.Detail(holder);
      }
      return WithPartial(e);
    }
    v1::EpochMismatch mismatch;
    mismatch.set_expected_epoch(epoch_);
    mismatch.set_current_epoch(session_->write_status().epoch);
    return WithPartial(ApiError(StatusCode::kAborted, v1::ERROR_REASON_EPOCH_CHANGED,
                                std::string(s.message()))
                           .Detail(mismatch));
  }

  void Timeout() {
    MutexLock lock(&mu_);
    if (finished() || !session_) return;
    if (!exchanging_) {
      ApiError e(StatusCode::kDeadlineExceeded, v1::ERROR_REASON_LEASE_WAIT_TIMEOUT,
                 "the deadline passed while waiting for the write lease; nothing was sent");
      e.Metadata("channel", channel_);
      const ChannelInfo info = session_->info();
      if (info.write_lease.has_value()) {
        v1::LeaseHolder holder;
        ToProto(*info.write_lease, &holder);
        e.Detail(holder);
      }
      return FinishLocked(e);
    }
    FinishLocked(WithPartial(ApiError(StatusCode::kDeadlineExceeded,
                                      v1::ERROR_REASON_GUEST_TIMEOUT,
                                      "the guest did not answer in time")));
  }

  void OnFinishLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // Release the lease at once so the next Call can start.
    if (session_) {
      session_->Close();
      session_.reset();
      core_->metrics->SessionClosed();
    }
  }

  void Cleanup() override {
    uint64_t timer;
    {
      MutexLock lock(&mu_);
      timer = timer_;
    }
    core_->scheduler->Cancel(timer);
  }

  const v1::CallRequest request_;
  v1::CallResponse* const response_;
  absl::BitGen bitgen_;
  std::string channel_ ABSL_GUARDED_BY(mu_);
  Framing framing_ ABSL_GUARDED_BY(mu_);
  uint32_t sync_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::string out_ ABSL_GUARDED_BY(mu_);
  size_t written_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<ResponseDecoder> decoder_ ABSL_GUARDED_BY(mu_);
  bool exchanging_ ABSL_GUARDED_BY(mu_) = false;
  bool got_data_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t request_offset_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t request_end_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t response_offset_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t timer_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

grpc::ServerUnaryReactor* ChannelService::Call(grpc::CallbackServerContext* context,
                                               const v1::CallRequest* request,
                                               v1::CallResponse* response) {
  auto r = std::make_shared<CallReactor>(core_, context, request, response);
  r->Start(r);
  return r.get();
}

}  // namespace server
}  // namespace xenchan
