// A test base for the gRPC-free call logics (server/*_logic.h): a real
// engine on the in-memory Xen platform (tests/engine/fake_engine_fixture.h),
// a ServiceCore over it whose policy lets the test's caller do everything,
// and, instead of gRPC and the scheduler, plain threads:
//  - LogicWakeups runs every engine wake-up and timer of a logic on its own
//    "engine-event" thread;
//  - RecordingPort stands in for the gRPC shell: it records the reads,
//    writes and finish the logic starts, and lets a "client" thread wait
//    for them and complete them (OnReadDone / OnWriteDone), as gRPC would.
// No gRPC frame is ever on these threads' stacks, so ThreadSanitizer sees
// and reports every race between the logic, the engine and the client
// (tools/tsan/suppressions.cc explains why the server's own threads cannot
// show that).
#ifndef XENCHAN_TESTS_SERVER_LOGIC_TEST_FIXTURE_H_
#define XENCHAN_TESTS_SERVER_LOGIC_TEST_FIXTURE_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/util/mutex.h"
#include "server/call_state.h"
#include "server/metrics.h"
#include "server/service_core.h"
#include "server/stream_ports.h"
#include "tests/engine/fake_engine_fixture.h"

namespace xenchan {
namespace logictest {

// CallWakeups on one plain thread: notifications and due timers run there,
// in order. Destroying it (or Stop) joins the thread; tasks not yet run are
// dropped. Thread-safe.
class LogicWakeups : public server::CallWakeups {
 public:
  LogicWakeups();
  ~LogicWakeups() override;
  // Joins the thread; later wake-ups are dropped. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(state_->mu);

  std::function<void()> Notifier(std::function<void()> task) override;
  uint64_t RunAt(absl::Time when, std::function<void()> task) override;
  void Cancel(uint64_t id) override;
  // Timers still pending.
  size_t timers() const;
  // How many times a notifier made here was called (each an engine wake-up
  // of the logic; calls dropped after Stop count too).
  int notified() const { return state_->notified.load(); }

 private:
  // Shared with the notifiers the engine holds, which may outlive this.
  struct State {
    Mutex mu;
    CondVar cv;
    bool stop ABSL_GUARDED_BY(mu) = false;
    std::deque<std::function<void()>> ready ABSL_GUARDED_BY(mu);
    std::map<uint64_t, std::pair<absl::Time, std::function<void()>>> timers ABSL_GUARDED_BY(mu);
    uint64_t next_id ABSL_GUARDED_BY(mu) = 1;
    std::atomic<int> notified{0};
  };
  void Run();

  std::shared_ptr<State> state_;
  std::thread thread_;
};

// Records what a logic asks of its shell. For calls without client or
// server messages, Req or Resp is a placeholder (int). Thread-safe.
template <class Req, class Resp>
class RecordingPort : public server::BidiStreamPort<Req, Resp> {
 public:
  RecordingPort() : in_stream_(this) {}
  RecordingPort(const RecordingPort&) = delete;
  RecordingPort& operator=(const RecordingPort&) = delete;

  // This port as a client stream's (Write's).
  server::InStreamPort<Req>* in_stream() { return &in_stream_; }

  // --- The logic's side (called with its lock held). ---
  void ReadNext(Req* into) override {
    MutexLock lock(&mu_);
    read_into_ = into;
    cv_.SignalAll();
  }
  void WriteNext(const Resp* message) override {
    MutexLock lock(&mu_);
    writing_ = true;
    written_.push_back(*message);
    cv_.SignalAll();
  }
  void FinishWith(const absl::Status& status) override {
    MutexLock lock(&mu_);
    finish_ = status;
    cv_.SignalAll();
  }

  // --- The client's side. ---
  // Waits until a read is in flight and fills it with `message`; false if
  // the call finished first (or on timeout).
  bool Deliver(Req message, absl::Duration timeout = absl::Seconds(20)) {
    MutexLock lock(&mu_);
    if (!WaitLocked(
            [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
              return read_into_ != nullptr || finish_.has_value();
            },
            timeout)) {
      return false;
    }
    if (read_into_ == nullptr) return false;
    *read_into_ = std::move(message);
    read_into_ = nullptr;
    return true;
  }
  // Waits until a read is in flight (or the call finished); true if a read
  // is in flight, which the caller then completes with OnReadDone(false).
  bool ReadPending(absl::Duration timeout = absl::Seconds(20)) {
    MutexLock lock(&mu_);
    WaitLocked(
        [this]()
            ABSL_NO_THREAD_SAFETY_ANALYSIS { return read_into_ != nullptr || finish_.has_value(); },
        timeout);
    const bool pending = read_into_ != nullptr;
    read_into_ = nullptr;
    return pending;
  }
  // Waits until a write is in flight; false if the call finished first (or
  // on timeout). The caller completes it with OnWriteDone.
  bool TakeWrite(absl::Duration timeout = absl::Seconds(20)) {
    MutexLock lock(&mu_);
    WaitLocked([this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return writing_ || finish_.has_value(); },
               timeout);
    const bool was = writing_;
    writing_ = false;
    return was;
  }
  // Waits for the finish.
  std::optional<absl::Status> WaitFinish(absl::Duration timeout = absl::Seconds(20)) {
    MutexLock lock(&mu_);
    WaitLocked([this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return finish_.has_value(); }, timeout);
    return finish_;
  }
  std::vector<Resp> written() const {
    MutexLock lock(&mu_);
    return written_;
  }

 private:
  class InStream : public server::InStreamPort<Req> {
   public:
    explicit InStream(RecordingPort* port) : port_(port) {}
    void ReadNext(Req* into) override { port_->ReadNext(into); }
    void FinishWith(const absl::Status& status) override { port_->FinishWith(status); }

   private:
    RecordingPort* const port_;
  };

  bool WaitLocked(const std::function<bool()>& done, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!done()) {
      if (absl::Now() >= deadline) return false;
      cv_.WaitWithDeadline(&mu_, std::min(deadline, absl::Now() + absl::Milliseconds(50)));
    }
    return true;
  }

  InStream in_stream_;
  mutable Mutex mu_;
  CondVar cv_;
  Req* read_into_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Resp> written_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> finish_ ABSL_GUARDED_BY(mu_);
};

// Stops `wakeups` when it goes out of scope: declare it after the logic it
// runs, so that no wake-up runs while the logic is destroyed.
class WakeupsStopper {
 public:
  explicit WakeupsStopper(LogicWakeups* wakeups) : wakeups_(wakeups) {}
  ~WakeupsStopper() { wakeups_->Stop(); }
  WakeupsStopper(const WakeupsStopper&) = delete;
  WakeupsStopper& operator=(const WakeupsStopper&) = delete;

 private:
  LogicWakeups* const wakeups_;
};

class LogicTest : public testing_fake::FakeEngineTest {
 protected:
  // Starts the engine, creates domain `web` with a CONNECTED channel
  // `org.example.a` (its scripted frontend in fe_), and the ServiceCore.
  void SetUp() override;
  void TearDown() override;

  // A CallState for `method` by uid 0 (allowed everything), woken through
  // `wakeups` (null: wakeups_).
  std::unique_ptr<server::CallState> NewCall(const std::string& method,
                                             absl::Time deadline = absl::InfiniteFuture(),
                                             server::CallWakeups* wakeups = nullptr);
  // "domains/web/channels/org.example.a".
  static std::string ChannelName() { return "domains/web/channels/org.example.a"; }
  // Waits until the channel's xenbus states have settled (SetUp returns
  // once the channel is CONNECTED; the frontend's state may still be
  // reported after, waking every session), so that nothing but the test
  // wakes the streams.
  void Settle();

  std::shared_ptr<server::ServiceCore> core_;
  std::unique_ptr<server::ServerMetrics> metrics_;
  LogicWakeups wakeups_;
  testing_fake::Frontend* fe_ = nullptr;
};

}  // namespace logictest
}  // namespace xenchan

#endif  // XENCHAN_TESTS_SERVER_LOGIC_TEST_FIXTURE_H_
