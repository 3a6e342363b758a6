// CreateChannel and DeleteChannel: validated and authorized inline, posted to
// the engine, answered from its callback (on the scheduler).
#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
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
  // Every field's range is checked by ValidateRequest (server/validate.cc);
  // here the caller is authorized and the engine request is built.
  absl::Status Validate() {
    if (core_->shutting_down) return core_->ShuttingDownError();
    absl::Status valid = ValidateRequest(request_);
    if (!valid.ok()) return valid;
    auto parent = ParseDomainName(request_.parent(), "parent", /*allow_all=*/false);
    if (!parent.ok()) return parent.status();
    absl::Status allowed =
        core_->authz.Authorize(call_state_.identity(), call_state_.method(), parent->domain,
                               request_.channel_id(), Verb::kManage);
    if (!allowed.ok()) return allowed;
    absl::Duration connect_timeout = absl::Seconds(30);
    if (request_.wait_until_connected() && request_.has_connect_timeout()) {
      connect_timeout = FromProto(request_.connect_timeout());
    }
    auto domain = core_->engine->GetDomain(parent->domain);
    if (!domain.ok()) return EngineErrors::DomainNotFound(parent->domain);
    // A domain known only by its durable channels has no incarnation to
    // hot-add to, just like a dying one.
    if (domain->state == DomainState::kDying || domain->state == DomainState::kNotRunning) {
      const char* why = domain->state == DomainState::kDying ? " is dying" : " is not running";
      return ApiError(StatusCode::kUnavailable, v1::ERROR_REASON_DOMAIN_GONE,
                      absl::StrCat("domain ", domain->name, why))
          .Metadata("domain", FormatDomainName(domain->uuid));
    }
    domain_ = *domain;
    engine_request_.domain = domain->uuid.empty() ? parent->domain : domain->uuid;
    engine_request_.channel_id = request_.channel_id();
    // Every config field, lifetime included (server/convert.cc).
    engine_request_.config = FromProto(request_.config());
    engine_request_.validate_only = request_.validate_only();
    engine_request_.wait_until_connected = request_.wait_until_connected();
    if (request_.wait_until_connected()) {
      // Bounded by the call's deadline too, ending early enough to answer.
      const absl::Time end =
          std::min(absl::Now() + connect_timeout, core_->WaitDeadline(call_state_.deadline()));
      engine_request_.connect_timeout = std::max(absl::ZeroDuration(), end - absl::Now());
    }
    return absl::OkStatus();
  }

  void Answer(absl::StatusOr<ChannelInfo> result) {
    absl::Status status;
    if (result.ok()) {
      ToProto(*result, response_->mutable_channel());
      audit::AuditLog* audit = core_->authz.audit();
      if (audit != nullptr && !request_.validate_only()) {
        audit->Lifecycle(
            FormatChannelName(result->domain_uuid, result->channel_id), "created",
            absl::StrCat("by ", call_state_.identity().display(), " (devid ", result->devid, ")"));
      }
    } else {
      status = core_->errors.CreateChannel(result.status(), domain_, request_.channel_id());
    }
    MutexLock lock(&mu_);
    FinishLocked(status);
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
  // Field ranges are checked by ValidateRequest (server/validate.cc).
  absl::Status Validate() {
    if (core_->shutting_down) return core_->ShuttingDownError();
    absl::Status valid = ValidateRequest(request_);
    if (!valid.ok()) return valid;
    auto name = ParseChannelName(request_.name(), "name");
    if (!name.ok()) return name.status();
    name_ = *name;
    if (request_.has_force_after()) force_after_ = FromProto(request_.force_after());
    absl::Status allowed = core_->authz.Authorize(call_state_.identity(), call_state_.method(),
                                                  name_.domain, name_.channel_id, Verb::kManage);
    if (!allowed.ok()) return allowed;
    auto info = core_->engine->GetChannel(ChannelRef{name_.domain, name_.channel_id});
    if (!info.ok()) return core_->errors.ChannelNotFound(name_);
    if (info->transport != Transport::kRing) {
      return ApiError(StatusCode::kFailedPrecondition, v1::ERROR_REASON_TOOLSTACK_MANAGED,
                      "toolstack channels are declared in xl.cfg; remove them there")
          .Metadata("channel", FormatChannelName(info->domain_uuid, info->channel_id))
          .Detail(ChannelProto(*info));
    }
    ref_ =
        ChannelRef{info->domain_uuid.empty() ? name_.domain : info->domain_uuid, name_.channel_id};
    return absl::OkStatus();
  }

  void Answer(absl::StatusOr<DeleteResult> result) {
    absl::Status status;
    if (result.ok()) {
      *response_->mutable_channel() = ChannelProto(result->channel);
      response_->set_forced(result->forced);
      audit::AuditLog* audit = core_->authz.audit();
      if (audit != nullptr) {
        audit->Lifecycle(FormatChannelName(result->channel.domain_uuid, result->channel.channel_id),
                         "deleted",
                         absl::StrCat("by ", call_state_.identity().display(),
                                      result->forced ? " (forced)" : ""));
      }
    } else {
      status = core_->errors.DeleteChannel(result.status(), name_, request_.name());
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

grpc::ServerUnaryReactor* StartCreateChannel(std::shared_ptr<ServiceCore> core,
                                             grpc::CallbackServerContext* context,
                                             const v1::CreateChannelRequest* request,
                                             v1::CreateChannelResponse* response) {
  auto r = std::make_shared<CreateReactor>(std::move(core), context, request, response);
  r->Start(r);
  return r.get();
}

grpc::ServerUnaryReactor* StartDeleteChannel(std::shared_ptr<ServiceCore> core,
                                             grpc::CallbackServerContext* context,
                                             const v1::DeleteChannelRequest* request,
                                             v1::DeleteChannelResponse* response) {
  auto r = std::make_shared<DeleteReactor>(std::move(core), context, request, response);
  r->Start(r);
  return r.get();
}

}  // namespace server
}  // namespace xenchan
