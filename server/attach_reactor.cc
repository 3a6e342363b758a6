// Attach's gRPC shell: forwards gRPC's reactions to AttachLogic
// (attach_logic.h, the state machine): reads after the first and write
// completions inline on gRPC's thread, the rest posted to the scheduler;
// and the logic's reads, writes and finish to gRPC.
#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

#include "server/attach_logic.h"
#include "server/reactor_base.h"
#include "server/reactors.h"

namespace xenchan {
namespace server {
namespace {

class AttachReactor : public grpc::ServerBidiReactor<v1::AttachRequest, v1::AttachResponse>,
                      public ReactorBase,
                      private AttachPort {
 public:
  AttachReactor(std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context)
      : ReactorBase(std::move(core), "Attach", context), logic_(&call_state_, this) {}

  void Start(std::shared_ptr<ReactorBase> self) {
    Register(std::move(self));
    logic_.Start();
  }

  void OnReadDone(bool ok) override {
    // The first message opens the session (authorisation, quotas, audit):
    // on the scheduler. Later ones hand bytes to the engine's non-blocking
    // write path: inline.
    if (reads_.fetch_add(1, std::memory_order_relaxed) == 0) {
      return Later([this, ok] { logic_.OnReadDone(ok); });
    }
    Now([this, ok] { logic_.OnReadDone(ok); });
  }
  void OnWriteDone(bool ok) override {
    Now([this, ok] { logic_.OnWriteDone(ok); });
  }
  void OnCancel() override {
    Later([this] { logic_.OnCancel(); });
  }
  void OnDone() override {
    Later([this] {
      logic_.OnDone();
      Unregister();
    });
  }
  void Shutdown() override { logic_.OnShutdown(); }

 private:
  // AttachPort (called with the logic's lock held).
  void ReadNext(v1::AttachRequest* into) override {
    PortCall in_port;
    StartRead(into);
  }
  void WriteNext(const v1::AttachResponse* message) override {
    PortCall in_port;
    StartWrite(message);
  }
  void FinishWith(const absl::Status& status) override {
    PortCall in_port;
    Finish(ToGrpcStatus(status));
  }

  AttachLogic logic_;
  std::atomic<uint64_t> reads_{0};  // reads completed
};

}  // namespace

grpc::ServerBidiReactor<v1::AttachRequest, v1::AttachResponse>* StartAttach(
    std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context) {
  auto r = std::make_shared<AttachReactor>(std::move(core), context);
  r->Start(r);
  return r.get();
}

}  // namespace server
}  // namespace xenchan
