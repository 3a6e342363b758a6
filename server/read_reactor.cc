// Read: one observer session on a channel's guest-to-host stream, from a
// start point to its current end (or on, with `follow`), as data, gap and
// epoch-change messages; paced by the caller's read quota.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "server/convert.h"
#include "server/reactor_base.h"
#include "server/reactors.h"
#include "server/resource_names.h"
#include "server/validate.h"

namespace xenchan {
namespace server {
namespace {

using policy::Verb;

class ReadReactor
    : public OutStream<v1::ReadResponse, grpc::ServerWriteReactor<v1::ReadResponse>> {
 public:
  ReadReactor(std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context,
              const v1::ReadRequest* request)
      : OutStream(std::move(core), "Read", context), request_(*request) {}

  void Start(std::shared_ptr<ReactorBase> self) {
    Register(std::move(self));
    MutexLock lock(&mu_);
    absl::Status s = Open();
    if (!s.ok()) {
      EndNowLocked(s);
      return;
    }
    FillLocked();
    FlushLocked();
  }

 private:
  absl::Status Open() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (core_->shutting_down) return core_->ShuttingDownError();
    absl::Status valid = ValidateRequest(request_);
    if (!valid.ok()) return valid;
    auto name = ParseChannelName(request_.channel(), "channel");
    if (!name.ok()) return name.status();
    absl::Status s = ValidateStart(request_.start(), "start");
    if (!s.ok()) return s;
    s = core_->authz.Authorize(identity_, method_, name->domain, name->channel_id, Verb::kRead);
    if (!s.ok()) return s;
    s = AcquireQuota(name->domain, request_.channel());
    if (!s.ok()) return s;
    channel_ = request_.channel();
    SessionOptions options;
    options.role = SessionRole::kObserver;
    options.identity = identity_.holder();
    options.start = EngineStart(request_.start(), ReadStart::Anchor::kEarliest);
    options.on_ready = Notifier(&ReadReactor::Pump);
    auto session = core_->engine->OpenSession(ChannelRef{name->domain, name->channel_id},
                                              std::move(options));
    if (!session.ok()) {
      std::optional<Position> requested;
      if (request_.start().has_position()) {
        requested = Position{request_.start().position().epoch(),
                             request_.start().position().offset()};
      }
      return core_->errors.SessionOpen(session.status(), *name, requested);
    }
    session_ = *std::move(session);
    core_->metrics->SessionOpened();
    const ChannelInfo& info = session_->info_at_open();
    AuditSessionOpened(FormatChannelName(info.domain_uuid, info.channel_id), session_->id(),
                       "reader");
    end_ = info.from_guest.next;
    pos_ = session_->start_position();
    return absl::OkStatus();
  }

  bool AtEnd() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pos_.epoch > end_.epoch || (pos_.epoch == end_.epoch && pos_.offset >= end_.offset);
  }

  void FillLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!session_) return;
    while (HasRoom() && !ending()) {
      if (!request_.follow() && AtEnd()) return EndLocked(absl::OkStatus());
      size_t want = kMaxChunk;
      if (request_.max_bytes() != 0) {
        want = std::min<uint64_t>(want, request_.max_bytes() - sent_);
      }
      if (Paced(&ReadReactor::Pump)) return;
      auto records = session_->Read(want);
      if (!records.ok()) return EndLocked(core_->Removed(records.status(), channel_));
      if (records->empty()) {
        if (!request_.follow()) EndLocked(absl::OkStatus());
        return;
      }
      for (SessionRecord& r : *records) {
        v1::ReadResponse m;
        switch (r.kind) {
          case SessionRecord::Kind::kData: {
            std::string data = std::move(r.data);
            if (!request_.follow() && r.position.epoch == end_.epoch &&
                r.position.offset + data.size() > end_.offset) {
              data.resize(end_.offset > r.position.offset ? end_.offset - r.position.offset : 0);
            }
            if (data.empty()) continue;
            m.mutable_data()->set_epoch(r.position.epoch);
            m.mutable_data()->set_offset(r.position.offset);
            pos_ = Position{r.position.epoch, r.position.offset + data.size()};
            sent_ += data.size();
            core_->metrics->BytesToClients(data.size());
            CountOut(data.size());
            ChargeRead(data.size());
            m.mutable_data()->set_data(std::move(data));
            break;
          }
          case SessionRecord::Kind::kGap:
            m.mutable_gap()->set_epoch(r.position.epoch);
            m.mutable_gap()->set_offset(r.position.offset);
            m.mutable_gap()->set_length(r.lost);
            pos_ = Position{r.position.epoch, r.position.offset + r.lost};
            core_->metrics->StreamGap(r.lost);
            break;
          case SessionRecord::Kind::kEpochChange:
            ToProto(r.epoch_change, m.mutable_epoch_change());
            pos_ = Position{r.epoch_change.epoch, 0};
            break;
          default:
            continue;  // notices are for Attach
        }
        Enqueue(std::move(m));
        if (request_.max_bytes() != 0 && sent_ >= request_.max_bytes()) {
          return EndLocked(absl::OkStatus());
        }
        if (!request_.follow() && AtEnd()) return EndLocked(absl::OkStatus());
      }
    }
  }

  void BeforeFinishLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (session_) session_->Close();  // Cleanup closes again: a no-op
  }

  void Cleanup() override {
    std::unique_ptr<Session> session;
    {
      MutexLock lock(&mu_);
      session = std::move(session_);
    }
    if (session) {
      session->Close();
      core_->metrics->SessionClosed();
    }
  }

  const v1::ReadRequest request_;
  std::string channel_;
  std::unique_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  Position end_ ABSL_GUARDED_BY(mu_);  // follow=false: stop here
  Position pos_ ABSL_GUARDED_BY(mu_);  // next position of the stream
  uint64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
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
