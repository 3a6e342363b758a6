// The etcd Watch over one gRPC Watch stream: a reader thread turns responses
// into batches of events for Next, bounded so that a consumer that stops
// calling Next cannot make the queue grow without limit.
#include <deque>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "backend/util/mutex.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "server/etcd/client_internal.h"

namespace xenchan {
namespace etcd {
namespace internal {
namespace {

namespace pb = etcdserverpb;

// Batches waiting for Next before the watch gives up with RESOURCE_EXHAUSTED.
constexpr size_t kMaxQueuedBatches = 1024;

class GrpcWatch : public Watch {
 public:
  GrpcWatch(std::shared_ptr<grpc::Channel> channel, std::string prefix, int64_t start_revision,
            std::function<void()> on_unavailable)
      : stub_(pb::Watch::NewStub(std::move(channel))), on_unavailable_(std::move(on_unavailable)) {
    thread_ = std::thread(
        [this, prefix = std::move(prefix), start_revision] { Run(prefix, start_revision); });
  }

  ~GrpcWatch() override {
    Cancel();
    thread_.join();
  }

  absl::StatusOr<std::vector<Event>> Next(absl::Duration timeout) override {
    const absl::Time deadline = absl::Now() + timeout;
    MutexLock lock(&mu_);
    while (queue_.empty() && !done_) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) break;
    }
    if (!queue_.empty()) {
      std::vector<Event> batch = std::move(queue_.front());
      queue_.pop_front();
      return batch;
    }
    if (done_) return end_;
    return std::vector<Event>();
  }

  void Cancel() override {
    {
      MutexLock lock(&mu_);
      cancelled_ = true;
    }
    ctx_.TryCancel();
  }

 private:
  void Run(const std::string& prefix, int64_t start_revision) {
    auto stream = stub_->Watch(&ctx_);
    pb::WatchRequest req;
    pb::WatchCreateRequest* create = req.mutable_create_request();
    create->set_key(prefix);
    create->set_range_end(PrefixEnd(prefix));
    create->set_start_revision(start_revision);
    absl::Status end;
    if (stream->Write(req)) {
      pb::WatchResponse resp;
      while (stream->Read(&resp)) {
        if (resp.canceled()) {
          end = resp.compact_revision() > 0
                    ? absl::OutOfRangeError(absl::StrCat(
                          "etcd compacted the history up to revision ", resp.compact_revision()))
                    : absl::UnavailableError(
                          absl::StrCat("etcd cancelled the watch: ", resp.cancel_reason()));
          break;
        }
        if (resp.events_size() == 0) continue;  // created, or a progress notice
        std::vector<Event> batch(resp.events_size());
        for (int i = 0; i < resp.events_size(); ++i) {
          const mvccpb::Event& e = resp.events(i);
          batch[i].type =
              e.type() == mvccpb::Event::DELETE ? Event::Type::kDelete : Event::Type::kPut;
          const mvccpb::KeyValue& kv = e.kv();
          batch[i].kv.key = kv.key();
          batch[i].kv.value = kv.value();
          batch[i].kv.create_revision = kv.create_revision();
          batch[i].kv.mod_revision = kv.mod_revision();
          batch[i].kv.version = kv.version();
          batch[i].kv.lease = kv.lease();
        }
        MutexLock lock(&mu_);
        if (queue_.size() >= kMaxQueuedBatches) {
          end = absl::ResourceExhaustedError(
              "the watch's reader fell behind by more than 1024 batches: re-read and watch again");
          break;
        }
        queue_.push_back(std::move(batch));
        cv_.SignalAll();
      }
    }
    ctx_.TryCancel();
    const grpc::Status finished = stream->Finish();
    bool unavailable = false;
    {
      MutexLock lock(&mu_);
      if (cancelled_) {
        end_ = absl::CancelledError("the watch was cancelled");
      } else if (!end.ok()) {
        end_ = end;
      } else {
        end_ = absl::UnavailableError(
            absl::StrCat("the etcd watch stream ended: ", finished.error_message()));
        unavailable = true;
      }
      done_ = true;
      cv_.SignalAll();
    }
    if (unavailable && on_unavailable_) on_unavailable_();
  }

  const std::unique_ptr<pb::Watch::Stub> stub_;
  const std::function<void()> on_unavailable_;
  grpc::ClientContext ctx_;
  std::thread thread_;

  Mutex mu_;
  CondVar cv_;
  std::deque<std::vector<Event>> queue_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<Watch> NewGrpcWatch(std::shared_ptr<grpc::Channel> channel,
                                    const std::string& prefix, int64_t start_revision,
                                    std::function<void()> on_unavailable) {
  return std::make_unique<GrpcWatch>(std::move(channel), prefix, start_revision,
                                     std::move(on_unavailable));
}

}  // namespace internal
}  // namespace etcd
}  // namespace xenchan
