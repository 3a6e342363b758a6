// Write's gRPC shell: forwards gRPC's reactions to WriteLogic
// (write_logic.h, the state machine): reads after the first inline on
// gRPC's thread, the rest posted to the scheduler; and the logic's reads and
// finish to gRPC.
#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

#include "server/reactor_base.h"
#include "server/reactors.h"
#include "server/write_logic.h"

namespace xenchan {
namespace server {
namespace {

class WriteReactor : public grpc::ServerReadReactor<v1::WriteRequest>,
                     public ReactorBase,
                     private WriteLogic::WritePort {
 public:
  WriteReactor(std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context,
               v1::WriteResponse* response)
      : ReactorBase(std::move(core), "Write", context), logic_(&call_state_, this, response) {}

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
  // WriteLogic::WritePort (called with the logic's lock held).
  void ReadNext(v1::WriteRequest* into) override {
    PortCall in_port;
    StartRead(into);
  }
  void FinishWith(const absl::Status& status) override {
    PortCall in_port;
    Finish(ToGrpcStatus(status));
  }

  WriteLogic logic_;
  std::atomic<uint64_t> reads_{0};  // reads completed
};

}  // namespace

grpc::ServerReadReactor<v1::WriteRequest>* StartWrite(std::shared_ptr<ServiceCore> core,
                                                      grpc::CallbackServerContext* context,
                                                      v1::WriteResponse* response) {
  auto r = std::make_shared<WriteReactor>(std::move(core), context, response);
  r->Start(r);
  return r.get();
}

}  // namespace server
}  // namespace xenchan
