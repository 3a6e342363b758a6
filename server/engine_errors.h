// EngineErrors: the one place where statuses of the channel engine become API
// errors: the google.rpc code the caller acts on, the stable reason
// (proto/xenchan/v1/errors.proto) and the typed details (the channel, the
// lease holder, the retained range, the limit). The engine answers with plain
// absl::Status codes (backend/engine/engine.h, session.h); which reason a code
// means depends on the operation and on the engine's state now (is the
// domain still there, is the channel closing, who holds the lease), so the
// classification consults an EngineView. The reactors only pick the
// operation; the wire form is made later, once (server/status.h).
//
// Thread safety: const methods, callable from any thread.
#ifndef XENCHAN_SERVER_ENGINE_ERRORS_H_
#define XENCHAN_SERVER_ENGINE_ERRORS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/engine/types.h"
#include "backend/util/api_limits.h"
#include "server/engine_view.h"
#include "server/resource_names.h"
#include "server/status.h"

namespace xenchan {
namespace server {

class EngineErrors {
 public:
  struct Options {
    // Readers per channel the engine allows (for LimitExceeded details).
    size_t max_readers_per_channel = 16;
    // Suggested retry delay sent with SHUTTING_DOWN.
    absl::Duration shutdown_retry_delay = absl::Seconds(1);
    // Ring channels per domain the engine allows (EngineOptions), for the
    // NO_FREE_DEVID LimitExceeded detail.
    uint32_t max_channels_per_domain = kMaxChannelsPerDomain;
  };

  // `engine` must outlive this. `shutting_down` (may be null) turns every
  // "the channel went away" into SHUTTING_DOWN once set: the engine removes
  // its channels when it stops.
  EngineErrors(const EngineView* engine, Options options,
               const std::atomic<bool>* shutting_down = nullptr)
      : engine_(engine), options_(options), shutting_down_(shutting_down) {}

  // UNAVAILABLE (SHUTTING_DOWN) with the retry delay.
  absl::Status ShuttingDown() const;

  // NOT_FOUND (DOMAIN_NOT_FOUND).
  static absl::Status DomainNotFound(const std::string& domain);
  // NOT_FOUND for `name`: which of domain (DOMAIN_NOT_FOUND) or channel
  // (CHANNEL_NOT_FOUND) is missing.
  absl::Status ChannelNotFound(const ChannelName& name) const;

  // The status that ends a stream or call on `channel` (its resource name)
  // when the engine reports the channel gone: NOT_FOUND becomes
  // CHANNEL_REMOVED, UNAVAILABLE becomes DOMAIN_GONE (with a retry delay),
  // both SHUTTING_DOWN while the server stops; other statuses as they are.
  absl::Status ChannelGone(const absl::Status& s, const std::string& channel) const;

  // Errors of Engine::OpenSession (see Session::Open): NOT_FOUND and
  // UNAVAILABLE as ChannelGone (or CHANNEL/DOMAIN_NOT_FOUND if it never
  // existed), RESOURCE_EXHAUSTED (TOO_MANY_OBSERVERS or
  // MEMORY_BUDGET_EXHAUSTED), FAILED_PRECONDITION (LEASE_HELD with the
  // holder, or NOT_CONNECTED while closing), OUT_OF_RANGE
  // (OFFSET_NOT_RETAINED with the retained range; `requested` is the start
  // position asked for, if any).
  absl::Status SessionOpen(const absl::Status& s, const ChannelName& name,
                           const std::optional<Position>& requested) const;

  // Errors of Engine::CreateChannel of `channel_id` in `domain` (as resolved
  // before the call).
  absl::Status CreateChannel(const absl::Status& s, const DomainInfo& domain,
                             const std::string& channel_id) const;

  // Errors of Engine::UpdateChannel of `name` (`channel` its resource
  // name): INVALID_ARGUMENT (INVALID_OPTION), NOT_FOUND
  // (DOMAIN/CHANNEL_NOT_FOUND), FAILED_PRECONDITION (UPDATE_NOT_POSSIBLE,
  // with the channel as it is), UNAVAILABLE as ChannelGone; a store or
  // xenstore failure is UNAVAILABLE (TRANSPORT_UNAVAILABLE) with a retry
  // delay (nothing changed).
  absl::Status UpdateChannel(const absl::Status& s, const ChannelName& name,
                             const std::string& channel) const;

  // Errors of Engine::DeleteChannel of `name`.
  absl::Status DeleteChannel(const absl::Status& s, const ChannelName& name,
                             const std::string& channel) const;

  // RESOURCE_EXHAUSTED (MEMORY_BUDGET_EXHAUSTED) for an engine refusal
  // because the memory budget is full (IsMemoryBudgetError), with the
  // budget's figures.
  ApiError MemoryBudgetExhausted(const absl::Status& s) const;

  // ABORTED (LEASE_TAKEN_OVER), naming the new holder if known.
  static ApiError LeaseTakenOver(const std::optional<LeaseHolder>& holder);
  // ABORTED (EPOCH_CHANGED) with an EpochMismatch detail.
  static ApiError EpochChanged(uint64_t expected, uint64_t current, const std::string& message);
  // FAILED_PRECONDITION (NOT_CONNECTED), with the channel as it is now if
  // given.
  static ApiError NotConnected(const std::string& message, const std::string& channel,
                               const std::optional<ChannelInfo>& info);
  // FAILED_PRECONDITION (ACK_LEVEL_NOT_SUPPORTED).
  static ApiError AckLevelNotSupported(const std::string& channel, const ChannelInfo& info);

 private:
  const EngineView* const engine_;
  const Options options_;
  const std::atomic<bool>* const shutting_down_;
};

// The API form of an engine channel (a shorthand for convert.h's ToProto).
v1::Channel ChannelProto(const ChannelInfo& info);

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_ENGINE_ERRORS_H_
