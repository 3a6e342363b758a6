// UpdateChannel: validated and authorized inline (the mask, the values, the
// manage verb, a RING channel), posted to the engine, answered from its
// callback (on the scheduler), as CreateChannel and DeleteChannel are.
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/convert.h"
#include "server/reactor_base.h"
#include "server/reactors.h"
#include "server/resource_names.h"
#include "server/validate.h"

namespace xenchan {
namespace server {
namespace {

using absl::StatusCode;
using policy::Verb;

class UpdateReactor : public AsyncUnary {
 public:
  UpdateReactor(std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context,
                const v1::UpdateChannelRequest* request, v1::UpdateChannelResponse* response)
      : AsyncUnary(std::move(core), "UpdateChannel", context),
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
    core_->engine->UpdateChannel(
        ref_, FromProto(request_.channel().config(), request_.update_mask()),
        request_.validate_only(), [w, core](absl::StatusOr<ChannelInfo> r) {
          // On the engine thread: hand over and return.
          core->scheduler->Run([w, r = std::move(r)]() mutable {
            if (auto s = w.lock()) static_cast<UpdateReactor*>(s.get())->Answer(std::move(r));
          });
        });
  }

 private:
  // The mask and the values are checked by ValidateRequest
  // (server/validate.cc); here the caller is authorized and the channel
  // must be one xenchan serves.
  absl::Status Validate() {
    if (core_->shutting_down) return core_->ShuttingDownError();
    absl::Status valid = ValidateRequest(request_);
    if (!valid.ok()) return valid;
    auto name = ParseChannelName(request_.channel().name(), "channel.name");
    if (!name.ok()) return name.status();
    name_ = *name;
    absl::Status allowed = core_->authz.Authorize(call_state_.identity(), call_state_.method(),
                                                  name_.domain, name_.channel_id, Verb::kManage);
    if (!allowed.ok()) return allowed;
    auto info = core_->engine->GetChannel(ChannelRef{name_.domain, name_.channel_id});
    if (!info.ok()) return core_->errors.ChannelNotFound(name_);
    channel_ = FormatChannelName(info->domain_uuid, info->channel_id);
    if (info->transport != Transport::kRing) {
      return ApiError(StatusCode::kFailedPrecondition, v1::ERROR_REASON_TOOLSTACK_MANAGED,
                      "toolstack channels take their settings from QEMU and xl.cfg; change "
                      "them there")
          .Metadata("channel", channel_)
          .Detail(ChannelProto(*info));
    }
    ref_ =
        ChannelRef{info->domain_uuid.empty() ? name_.domain : info->domain_uuid, name_.channel_id};
    return absl::OkStatus();
  }

  void Answer(absl::StatusOr<ChannelInfo> result) {
    absl::Status status;
    if (result.ok()) {
      ToProto(*result, response_->mutable_channel());
      audit::AuditLog* audit = core_->authz.audit();
      if (audit != nullptr && !request_.validate_only()) {
        audit->Lifecycle(channel_, "updated",
                         absl::StrCat("by ", call_state_.identity().display(), " (",
                                      absl::StrJoin(request_.update_mask().paths(), ", "), ")"));
      }
    } else {
      status = core_->errors.UpdateChannel(result.status(), name_, channel_);
    }
    MutexLock lock(&mu_);
    FinishLocked(status);
  }

  const v1::UpdateChannelRequest request_;
  v1::UpdateChannelResponse* const response_;
  ChannelName name_;
  std::string channel_;  // resource name with the domain's UUID
  ChannelRef ref_;
};

}  // namespace

grpc::ServerUnaryReactor* StartUpdateChannel(std::shared_ptr<ServiceCore> core,
                                             grpc::CallbackServerContext* context,
                                             const v1::UpdateChannelRequest* request,
                                             v1::UpdateChannelResponse* response) {
  auto r = std::make_shared<UpdateReactor>(std::move(core), context, request, response);
  r->Start(r);
  return r.get();
}

}  // namespace server
}  // namespace xenchan
