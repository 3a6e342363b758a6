// Read's gRPC shell: forwards gRPC's reactions to ReadLogic (read_logic.h,
// the state machine): write completions inline on gRPC's thread, the rest
// posted to the scheduler; and the logic's writes and finish to gRPC.
#include <memory>
#include <utility>

#include "server/reactor_base.h"
#include "server/reactors.h"
#include "server/read_logic.h"

namespace xenchan {
namespace server {
namespace {

class ReadReactor : public grpc::ServerWriteReactor<v1::ReadResponse>,
                    public ReactorBase,
                    private OutStreamPort<v1::ReadResponse> {
 public:
  ReadReactor(std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context,
              const v1::ReadRequest* request)
      : ReactorBase(std::move(core), "Read", context), logic_(&call_state_, this, *request) {}

  void Start(std::shared_ptr<ReactorBase> self) {
    Register(std::move(self));
    logic_.Start();
  }

  void OnWriteDone(bool ok) override {
    Now([this, ok] { logic_.OnWriteDone(ok); });  // starts the next write
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
  // OutStreamPort (called with the logic's lock held).
  void WriteNext(const v1::ReadResponse* message) override {
    PortCall in_port;
    StartWrite(message);
  }
  void FinishWith(const absl::Status& status) override {
    PortCall in_port;
    Finish(ToGrpcStatus(status));
  }

  ReadLogic logic_;
};

}  // namespace

grpc::ServerWriteReactor<v1::ReadResponse>* StartRead(std::shared_ptr<ServiceCore> core,
                                                      grpc::CallbackServerContext* context,
                                                      const v1::ReadRequest* request) {
  auto r = std::make_shared<ReadReactor>(std::move(core), context, request);
  r->Start(r);
  return r.get();
}

}  // namespace server
}  // namespace xenchan
