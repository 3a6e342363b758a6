// ChannelService: the xenchan.v1.ChannelService gRPC service, a thin adapter
// over the channel engine (backend/engine/engine.h), on gRPC's callback
// (reactor) API.
//
// Shape (STYLE.md, "TensorFlow Serving" and "gRPC's own guidance"):
//  - Every request field is validated first (INVALID_ARGUMENT with a stable
//    reason and a google.rpc.BadRequest; server/validate.h). Then one engine
//    call; engine statuses are classified into API errors with reasons and
//    details in one place (server/engine_errors.h), and converted to the wire
//    exactly once (server/status.h).
//  - Unary queries (List*, Get*) answer inline (server/queries.h): engine
//    queries only take short locks. CreateChannel, UpdateChannel,
//    DeleteChannel and Call are posted to the engine and answered from its
//    callbacks.
//  - One reactor object per stream. Reactions never block and never run
//    stream work themselves: they post to the service's Scheduler and return.
//    Engine sessions signal new data through on_ready, which also only posts.
//  - Each stream has one read and one write in flight and a small bounded
//    outbound queue (`stream_queue_messages`). A stream reads from its engine
//    session only when its queue has room, so a slow client slows only its
//    own stream (the engine's buffer policy decides what the guest sees:
//    BLOCK stalls it only on the fastest reader, slower readers get gaps).
//  - Deadlines: waits (connect, consume, a Call's reply) end slightly before
//    the gRPC deadline (`deadline_margin`) so the client still receives the
//    DEADLINE_EXCEEDED with its details (GUEST_TIMEOUT, PartialResponse,
//    WriteProgress). Cancellation ends the stream at once and releases its
//    session; work committed in the engine (a created channel, an unplug,
//    accepted bytes) is not undone.
//  - Shutdown: BeginShutdown() ends every open call with UNAVAILABLE
//    (SHUTTING_DOWN) and refuses new ones the same way.
//  - Authorization (AccessControl, server/authorizer.h): every handler
//    authenticates its caller (identity.h) and checks the verbs the proto
//    names for it against the policy in force, after validating the request's fields and BEFORE
//    looking the resource up, so PERMISSION_DENIED never depends on whether
//    the domain or channel exists (an unauthorized caller learns nothing
//    about existence). The domain of a check is the one the engine resolves
//    the requested name to (toolstack UUID and name), or, for an unknown
//    domain, the name as given. Callers without principals get
//    UNAUTHENTICATED. Lists and watches show only what the caller may read
//    (domains: any verb). Every decision, session open/close (with byte
//    counts) and channel create/delete goes to the audit log, if any.
//
// Where things are: this class is the adapter gRPC calls; the state it shares
// with its reactors is ServiceCore (service_core.h); the reactors and their
// common machinery are in reactors.h and reactor_base.h.
//
// Thread safety: all methods may be called from any thread.
#ifndef XENCHAN_SERVER_CHANNEL_SERVICE_H_
#define XENCHAN_SERVER_CHANNEL_SERVICE_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "backend/engine/engine.h"
#include "server/authorizer.h"
#include "server/metrics.h"
#include "server/quota/quota_manager.h"
#include "xenchan/v1/channel_service.grpc.pb.h"

namespace xenchan {
namespace server {

struct ChannelServiceOptions {
  // Longest Call without a gRPC deadline (proto: default 60 s).
  absl::Duration max_call_time = absl::Seconds(60);
  // Outbound messages queued per stream beyond the one being written.
  size_t stream_queue_messages = 8;
  // A watcher further behind the newest event than this is ended with
  // RESOURCE_EXHAUSTED (SLOW_CONSUMER). Only events since the watch began
  // count: a watch resumed from an older (retained) revision may replay any
  // amount before it.
  size_t watch_backlog_events = 5000;
  // PROGRESS heartbeat after this long without a watch event.
  absl::Duration watch_heartbeat = absl::Seconds(60);
  // Waits end this long before the call's deadline (see the file comment);
  // at most a tenth of the time left is used.
  absl::Duration deadline_margin = absl::Milliseconds(200);
  // Worker threads of the scheduler.
  int worker_threads = 2;
  // Suggested retry delay sent with SHUTTING_DOWN.
  absl::Duration shutdown_retry_delay = absl::Seconds(1);
  // Readers per channel the engine allows (for LimitExceeded details).
  size_t max_readers_per_channel = 16;
  // Ring channels per domain the engine allows (EngineOptions), idem.
  uint32_t max_channels_per_domain = kMaxChannelsPerDomain;
  // Per-caller and per-domain quotas (server/quota/quota_manager.h). The
  // caller is the authenticated principal set (its peer when it has none).
  // Every streaming RPC and Call holds one stream of its caller and domain
  // for its whole life; Read and Attach observers also one observer of
  // their channel; bytes a caller writes to guests (Write, Attach, Call) are
  // charged to its bytes-per-second bucket. Exceeding: RESOURCE_EXHAUSTED
  // QUOTA_EXCEEDED with LimitExceeded, counted in the metrics.
  quota::QuotaLimits quota;
};

class ServiceCore;  // shared state of the service and its reactors

class ChannelService final : public v1::ChannelService::CallbackService {
 public:
  // `engine` and `metrics` must outlive the service, and the engine must
  // outlive every call (destroy the grpc::Server first). `access` must have
  // an authenticator and a policy.
  ChannelService(Engine* engine, ServerMetrics* metrics, ChannelServiceOptions options,
                 AccessControl access);
  ~ChannelService() override;

  // Ends every open call with UNAVAILABLE (SHUTTING_DOWN); later calls are
  // refused the same way. Does not wait. Idempotent.
  void BeginShutdown();

  grpc::ServerUnaryReactor* ListDomains(grpc::CallbackServerContext* context,
                                        const v1::ListDomainsRequest* request,
                                        v1::ListDomainsResponse* response) override;
  grpc::ServerUnaryReactor* GetDomain(grpc::CallbackServerContext* context,
                                      const v1::GetDomainRequest* request,
                                      v1::GetDomainResponse* response) override;
  grpc::ServerUnaryReactor* ListChannels(grpc::CallbackServerContext* context,
                                         const v1::ListChannelsRequest* request,
                                         v1::ListChannelsResponse* response) override;
  grpc::ServerUnaryReactor* GetChannel(grpc::CallbackServerContext* context,
                                       const v1::GetChannelRequest* request,
                                       v1::GetChannelResponse* response) override;
  grpc::ServerUnaryReactor* CreateChannel(grpc::CallbackServerContext* context,
                                          const v1::CreateChannelRequest* request,
                                          v1::CreateChannelResponse* response) override;
  grpc::ServerUnaryReactor* UpdateChannel(grpc::CallbackServerContext* context,
                                          const v1::UpdateChannelRequest* request,
                                          v1::UpdateChannelResponse* response) override;
  grpc::ServerUnaryReactor* DeleteChannel(grpc::CallbackServerContext* context,
                                          const v1::DeleteChannelRequest* request,
                                          v1::DeleteChannelResponse* response) override;
  grpc::ServerWriteReactor<v1::WatchChannelsResponse>* WatchChannels(
      grpc::CallbackServerContext* context, const v1::WatchChannelsRequest* request) override;
  grpc::ServerBidiReactor<v1::AttachRequest, v1::AttachResponse>* Attach(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<v1::ReadResponse>* Read(grpc::CallbackServerContext* context,
                                                   const v1::ReadRequest* request) override;
  grpc::ServerReadReactor<v1::WriteRequest>* Write(grpc::CallbackServerContext* context,
                                                   v1::WriteResponse* response) override;
  grpc::ServerUnaryReactor* Call(grpc::CallbackServerContext* context,
                                 const v1::CallRequest* request,
                                 v1::CallResponse* response) override;

 private:
  std::shared_ptr<ServiceCore> core_;
  uint64_t event_subscription_ = 0;
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_CHANNEL_SERVICE_H_
