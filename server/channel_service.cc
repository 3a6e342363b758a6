// ChannelService: the adapter gRPC calls (see the header for the design).
// Queries answer inline through server/queries.h; every other method starts
// its reactor (server/reactors.h).
#include "server/channel_service.h"

#include <memory>
#include <utility>

#include "server/queries.h"
#include "server/reactor_base.h"
#include "server/reactors.h"
#include "server/service_core.h"
#include "server/status.h"

namespace xenchan {
namespace server {
namespace {

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

}  // namespace

ChannelService::ChannelService(Engine* engine, ServerMetrics* metrics,
                               ChannelServiceOptions options, AccessControl access)
    : core_(std::make_shared<ServiceCore>(engine, metrics, std::move(options), std::move(access))) {
  // Lifecycle events (stalls, gaps, epochs, ...) and engine figures for the
  // metrics, counted once here rather than per watcher.
  core_->StartCountingEvents();
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
  // The gRPC server stopped first (Server::Shutdown), so every OnDone was
  // delivered; those whose task was still queued were dropped with it.
  for (auto& r : core_->Live()) r->ReleaseAfterServerStopped();
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

#define XENCHAN_UNARY_QUERY(Method)                                                                \
  grpc::ServerUnaryReactor* ChannelService::Method(grpc::CallbackServerContext* context,           \
                                                   const v1::Method##Request* request,             \
                                                   v1::Method##Response* response) {               \
    const absl::Time start = absl::Now();                                                          \
    const QueryContext q{&core_->view, &core_->authz, &core_->errors};                             \
    absl::Status s = core_->shutting_down ? core_->ShuttingDownError()                             \
                                          : server::Method(q, core_->authz.Authenticate(*context), \
                                                           *request, response);                    \
    return FinishUnary(*core_, context, #Method, start, s);                                        \
  }

XENCHAN_UNARY_QUERY(ListDomains)
XENCHAN_UNARY_QUERY(GetDomain)
XENCHAN_UNARY_QUERY(ListChannels)
XENCHAN_UNARY_QUERY(GetChannel)

#undef XENCHAN_UNARY_QUERY

grpc::ServerUnaryReactor* ChannelService::CreateChannel(grpc::CallbackServerContext* context,
                                                        const v1::CreateChannelRequest* request,
                                                        v1::CreateChannelResponse* response) {
  return StartCreateChannel(core_, context, request, response);
}

grpc::ServerUnaryReactor* ChannelService::UpdateChannel(grpc::CallbackServerContext* context,
                                                        const v1::UpdateChannelRequest* request,
                                                        v1::UpdateChannelResponse* response) {
  return StartUpdateChannel(core_, context, request, response);
}

grpc::ServerUnaryReactor* ChannelService::DeleteChannel(grpc::CallbackServerContext* context,
                                                        const v1::DeleteChannelRequest* request,
                                                        v1::DeleteChannelResponse* response) {
  return StartDeleteChannel(core_, context, request, response);
}

grpc::ServerWriteReactor<v1::WatchChannelsResponse>* ChannelService::WatchChannels(
    grpc::CallbackServerContext* context, const v1::WatchChannelsRequest* request) {
  return StartWatchChannels(core_, context, request);
}

grpc::ServerWriteReactor<v1::ReadResponse>* ChannelService::Read(
    grpc::CallbackServerContext* context, const v1::ReadRequest* request) {
  return StartRead(core_, context, request);
}

grpc::ServerBidiReactor<v1::AttachRequest, v1::AttachResponse>* ChannelService::Attach(
    grpc::CallbackServerContext* context) {
  return StartAttach(core_, context);
}

grpc::ServerReadReactor<v1::WriteRequest>* ChannelService::Write(
    grpc::CallbackServerContext* context, v1::WriteResponse* response) {
  return StartWrite(core_, context, response);
}

grpc::ServerUnaryReactor* ChannelService::Call(grpc::CallbackServerContext* context,
                                               const v1::CallRequest* request,
                                               v1::CallResponse* response) {
  return StartCall(core_, context, request, response);
}

}  // namespace server
}  // namespace xenchan
