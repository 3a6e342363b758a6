// FleetService: the adapter gRPC calls, and WatchFleet's gRPC shell (see the
// header for the design).
#include "server/fleet_service.h"

#include <atomic>
#include <map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "backend/util/mutex.h"
#include "server/fleet_queries.h"
#include "server/fleet_watch_logic.h"
#include "server/status.h"
#include "server/stream_ports.h"

namespace xenchan {
namespace server {

class FleetWatchReactor;

// What the service shares with its open streams.
struct FleetServiceState {
  FleetServiceState(std::unique_ptr<fleet::FleetReader> r, AccessControl a)
      : reader(std::move(r)), access(std::move(a)) {}

  FleetContext context() const { return FleetContext{reader.get(), &access}; }

  const std::unique_ptr<fleet::FleetReader> reader;  // null: not part of a fleet
  const FleetAccess access;
  std::atomic<bool> shutting_down{false};

  Mutex mu;
  std::map<FleetWatchReactor*, std::weak_ptr<FleetWatchReactor>> live ABSL_GUARDED_BY(mu);
};

namespace {

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                      const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

// One WatchFleet stream: forwards gRPC's reactions to FleetWatchLogic and its
// writes and finish to gRPC. Kept alive by `self_` until OnDone.
class FleetWatchReactor : public grpc::ServerWriteReactor<v1::WatchFleetResponse>,
                          private OutStreamPort<v1::WatchFleetResponse> {
 public:
  FleetWatchReactor(std::shared_ptr<FleetServiceState> state, Identity id,
                    const v1::WatchFleetRequest& request)
      : state_(std::move(state)), logic_(state_->context(), std::move(id), request, this) {}

  void Start(std::shared_ptr<FleetWatchReactor> self) {
    self_ = self;
    {
      MutexLock lock(&state_->mu);
      state_->live[this] = self;
    }
    std::weak_ptr<FleetWatchReactor> weak = self;
    fleet::FleetReader* reader = state_->reader.get();
    logic_.Start(
        [reader](std::function<void()> on_change) -> uint64_t {
          return reader != nullptr ? reader->Subscribe(std::move(on_change)) : 0;
        },
        [weak] {
          if (auto r = weak.lock()) r->logic_.OnChange();
        });
    if (state_->shutting_down) logic_.OnShutdown();
  }

  void Shutdown() { logic_.OnShutdown(); }

  void OnWriteDone(bool ok) override { logic_.OnWriteDone(ok); }
  void OnCancel() override { logic_.OnCancel(); }
  void OnDone() override {
    fleet::FleetReader* reader = state_->reader.get();
    logic_.OnDone([reader](uint64_t id) {
      if (reader != nullptr) reader->Unsubscribe(id);
    });
    {
      MutexLock lock(&state_->mu);
      state_->live.erase(this);
    }
    std::shared_ptr<FleetWatchReactor> last = std::move(self_);  // may free this
  }

 private:
  // OutStreamPort (called with the logic's lock held).
  void WriteNext(const v1::WatchFleetResponse* message) override { StartWrite(message); }
  void FinishWith(const absl::Status& status) override { Finish(ToGrpcStatus(status)); }

  const std::shared_ptr<FleetServiceState> state_;
  FleetWatchLogic logic_;
  std::shared_ptr<FleetWatchReactor> self_;
};

absl::StatusOr<std::unique_ptr<FleetService>> FleetService::Create(
    std::shared_ptr<etcd::Client> etcd, std::string prefix, AccessControl access,
    fleet::FleetReaderOptions options) {
  std::unique_ptr<fleet::FleetReader> reader;
  if (etcd != nullptr) {
    auto started = fleet::FleetReader::Start(std::move(etcd), std::move(prefix), options);
    if (!started.ok()) return started.status();
    reader = *std::move(started);
  }
  return std::unique_ptr<FleetService>(
      new FleetService(std::make_shared<FleetServiceState>(std::move(reader), std::move(access))));
}

FleetService::FleetService(std::shared_ptr<FleetServiceState> state) : state_(std::move(state)) {}

FleetService::~FleetService() { BeginShutdown(); }

void FleetService::BeginShutdown() {
  if (state_->shutting_down.exchange(true)) return;
  std::vector<std::shared_ptr<FleetWatchReactor>> live;
  {
    MutexLock lock(&state_->mu);
    for (auto& [ptr, weak] : state_->live) {
      if (auto r = weak.lock()) live.push_back(std::move(r));
    }
  }
  for (auto& r : live) r->Shutdown();
}

const fleet::FleetReader* FleetService::reader() const { return state_->reader.get(); }

fleet::FleetReader* FleetService::reader() { return state_->reader.get(); }

grpc::ServerUnaryReactor* FleetService::ListHosts(grpc::CallbackServerContext* context,
                                                  const v1::ListHostsRequest* request,
                                                  v1::ListHostsResponse* response) {
  if (state_->shutting_down) return FinishUnary(context, FleetShuttingDown());
  return FinishUnary(
      context, server::ListHosts(state_->context(), state_->access.Authenticate(*context), *request,
                                 response));
}

grpc::ServerUnaryReactor* FleetService::LocateDomain(grpc::CallbackServerContext* context,
                                                     const v1::LocateDomainRequest* request,
                                                     v1::LocateDomainResponse* response) {
  if (state_->shutting_down) return FinishUnary(context, FleetShuttingDown());
  return FinishUnary(context,
                     server::LocateDomain(state_->context(), state_->access.Authenticate(*context),
                                          *request, response));
}

grpc::ServerWriteReactor<v1::WatchFleetResponse>* FleetService::WatchFleet(
    grpc::CallbackServerContext* context, const v1::WatchFleetRequest* request) {
  auto r =
      std::make_shared<FleetWatchReactor>(state_, state_->access.Authenticate(*context), *request);
  r->Start(r);
  return r.get();
}

}  // namespace server
}  // namespace xenchan
