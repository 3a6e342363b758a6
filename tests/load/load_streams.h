// xenchan_load's stream kinds (see xenchan_load.cc for what each measures):
// echo and write (Attach writers) and read (a following Read of a source
// channel), and the figures they add to, shared by every stream thread.
#ifndef XENCHAN_TESTS_LOAD_LOAD_STREAMS_H_
#define XENCHAN_TESTS_LOAD_LOAD_STREAMS_H_

#include <stddef.h>
#include <stdint.h>

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backend/util/mutex.h"
#include "clients/lib/client.h"
#include "grpcpp/grpcpp.h"
#include "tests/load/load_pacer.h"
#include "xenchan/v1/channel_service.grpc.pb.h"

namespace xenchan {
namespace load {

enum class Kind { kEcho, kWrite, kRead };

inline const char* KindName(Kind k) {
  switch (k) {
    case Kind::kEcho:
      return "echo";
    case Kind::kWrite:
      return "write";
    case Kind::kRead:
      return "read";
  }
  return "?";
}

// What every stream counts: latencies, messages and bytes by kind, errors
// by what went wrong, and the final statuses. Thread-safe.
struct Figures {
  Mutex mu;
  std::map<std::string, int64_t> errors ABSL_GUARDED_BY(mu);
  std::map<std::string, int64_t> finished ABSL_GUARDED_BY(mu);  // final statuses
  std::map<Kind, std::vector<double>> latency_us ABSL_GUARDED_BY(mu);
  std::map<Kind, int64_t> messages ABSL_GUARDED_BY(mu);
  std::map<Kind, int64_t> bytes ABSL_GUARDED_BY(mu);

  void Error(const std::string& what, int64_t n = 1) {
    MutexLock l(&mu);
    errors[what] += n;
  }
  void Merge(Kind k, std::vector<double> us, int64_t msgs, int64_t b) {
    MutexLock l(&mu);
    auto& v = latency_us[k];
    v.insert(v.end(), us.begin(), us.end());
    messages[k] += msgs;
    bytes[k] += b;
  }
  // A stream's final status; `expected` codes are not errors.
  void Finished(const absl::Status& s, absl::StatusCode expected = absl::StatusCode::kOk) {
    const std::string reason = client::ReasonOf(s);
    std::string key = absl::StatusCodeToString(s.code());
    if (!reason.empty()) absl::StrAppend(&key, "/", reason);
    MutexLock l(&mu);
    finished[key]++;
    if (s.code() != expected) errors[key]++;
  }
};

// One stream: its kind, channel (resource name), connection and, in the
// open loop, its schedule.
struct StreamSpec {
  Kind kind;
  std::string channel;
  v1::ChannelService::Stub* stub;
  std::optional<Pacer> pacer;  // open loop
};

// The stream kinds, each on its own thread until `stop` (echo, write) or
// until `ctx` is cancelled (read); each merges its figures into `fig`.
void RunEcho(StreamSpec spec, size_t payload, const std::atomic<bool>& stop, absl::Time deadline,
             Figures* fig);
void RunWrite(StreamSpec spec, size_t payload, size_t window, const std::atomic<bool>& stop,
              absl::Time deadline, Figures* fig);
// Reads source records; cancelled from outside through `ctx`.
void RunRead(const StreamSpec& spec, size_t payload, grpc::ClientContext* ctx, Figures* fig);

}  // namespace load
}  // namespace xenchan

#endif  // XENCHAN_TESTS_LOAD_LOAD_STREAMS_H_
