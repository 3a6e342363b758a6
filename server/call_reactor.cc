// Call's gRPC shell: forwards gRPC's reactions (posted to the scheduler) to
// CallLogic (call_logic.h, the state machine) and the logic's finish to
// gRPC.
#include <memory>
#include <utility>

#include "server/call_logic.h"
#include "server/reactor_base.h"
#include "server/reactors.h"

namespace xenchan {
namespace server {
namespace {

class CallReactor : public grpc::ServerUnaryReactor, public ReactorBase, private FinishPort {
 public:
  CallReactor(std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context,
              const v1::CallRequest* request, v1::CallResponse* response)
      : ReactorBase(std::move(core), "Call", context),
        logic_(&call_state_, this, *request, response) {}

  void Start(std::shared_ptr<ReactorBase> self) {
    Register(std::move(self));
    logic_.Start();
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
  // FinishPort (called with the logic's lock held).
  void FinishWith(const absl::Status& status) override { Finish(ToGrpcStatus(status)); }

  CallLogic logic_;
};

}  // namespace

grpc::ServerUnaryReactor* StartCall(std::shared_ptr<ServiceCore> core,
                                    grpc::CallbackServerContext* context,
                                    const v1::CallRequest* request, v1::CallResponse* response) {
  auto r = std::make_shared<CallReactor>(std::move(core), context, request, response);
  r->Start(r);
  return r.get();
}

}  // namespace server
}  // namespace xenchan
