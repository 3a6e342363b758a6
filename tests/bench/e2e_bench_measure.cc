// See e2e_bench_measure.h.
#include "tests/bench/e2e_bench_measure.h"

#include <stdint.h>
#include <stdio.h>

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "echo/echo.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "tests/bench/bench_process.h"
#include "tests/bench/bench_report.h"
#include "tests/bench/proc_stats.h"

namespace xenchan {
namespace bench {
namespace {

// p50 and p99 of round-trip times in microseconds.
Latency Percentiles(std::vector<double> us) {
  if (us.empty()) Die("no samples");
  std::sort(us.begin(), us.end());
  return Latency{Percentile(us, 0.5), Percentile(us, 0.99)};
}

std::string Payload(size_t n, int i) {
  std::string s = absl::StrFormat("%08d", i);
  s.resize(n, 'p');
  return s;
}

// Runs warmup + pings round trips of `rt(i)`; the measured ones' latencies.
template <class RoundTrip>
Latency MeasureEcho(int warmup, int pings, RoundTrip rt) {
  for (int i = 0; i < warmup; ++i) rt(i);
  return Percentiles(TimeCalls(pings, warmup, rt));
}

// Runs `MeasureEcho` --repeats times: the median run's p50 and p99 (and
// prints min/median/max of both), with per-round-trip process figures.
template <class RoundTrip>
EchoFigures RepeatEcho(const std::string& name, int repeats, int warmup, int pings, RoundTrip rt) {
  std::vector<double> p50, p99;
  const auto before = SampleTree();
  int base = 0;  // round trips so far: their indices keep increasing across runs
  for (int r = 0; r < repeats; ++r) {
    const int w = r == 0 ? warmup : 0;
    const Latency l = MeasureEcho(w, pings, [&](int i) { rt(base + i); });
    base += w + pings;
    p50.push_back(l.p50_us);
    p99.push_back(l.p99_us);
  }
  const auto after = SampleTree();
  const Spread a = SpreadOf(p50), b = SpreadOf(p99);
  printf("  %s p50 %.1f us (min %.1f, max %.1f), p99 %.1f us (min %.1f, max %.1f), n=%d x %d\n",
         name.c_str(), a.median, a.min, a.max, b.median, b.min, b.max, repeats, pings);
  EchoFigures f;
  f.median = Latency{a.median, b.median};
  const double rts = static_cast<double>(repeats) * pings + warmup;
  f.switches_per_rt = PrintPerMessage("round trip", before, after, rts);
  for (const auto& [label, c] : after) {
    ProcCounters b0;
    if (auto it = before.find(label); it != before.end()) b0 = it->second;
    f.own[label] = static_cast<double>(
                       (c.voluntary + c.nonvoluntary) -
                       std::min(c.voluntary + c.nonvoluntary, b0.voluntary + b0.nonvoluntary)) /
                   rts;
  }
  return f;
}

// The echo server of 1a: every message written back, one stream at a time.
class EchoService final : public Echo::CallbackService {
  grpc::ServerBidiReactor<EchoMessage, EchoMessage>* PingPong(
      grpc::CallbackServerContext* context) override {
    class Reactor : public grpc::ServerBidiReactor<EchoMessage, EchoMessage> {
     public:
      Reactor() { StartRead(&message_); }
      void OnReadDone(bool ok) override {
        if (!ok) return Finish(grpc::Status::OK);
        StartWrite(&message_);
      }
      void OnWriteDone(bool ok) override {
        if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
        StartRead(&message_);
      }
      void OnDone() override { delete this; }

     private:
      EchoMessage message_;
    };
    return new Reactor();
  }
};

}  // namespace

// 1a. The plain gRPC reference.
EchoFigures GrpcEcho(const std::string& socket, int repeats, int warmup, int pings, size_t size) {
  EchoService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + socket, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) Die("cannot start the echo server on " + socket);
  auto stub =
      Echo::NewStub(grpc::CreateChannel("unix://" + socket, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  auto stream = stub->PingPong(&ctx);
  EchoMessage out, in;
  const EchoFigures l = RepeatEcho("grpc_echo", repeats, warmup, pings, [&](int i) {
    out.set_data(Payload(size, i));
    if (!stream->Write(out) || !stream->Read(&in) || in.data() != out.data()) {
      Die("grpc echo failed");
    }
  });
  stream->WritesDone();
  if (!stream->Finish().ok()) Die("grpc echo did not finish cleanly");
  server->Shutdown();
  return l;
}

// 1b. Attach through xenchand.
EchoFigures AttachEcho(client::Client& client, const std::string& channel, int repeats, int warmup,
                       int pings, size_t size) {
  auto stream = client.Attach(absl::Minutes(10));
  v1::AttachRequest open;
  open.mutable_open()->set_channel(channel);
  open.mutable_open()->set_role(v1::SESSION_ROLE_WRITER);
  if (!stream->Send(open)) Die("attach: send open");
  v1::AttachResponse m;
  if (!stream->Receive(&m) || !m.has_opened()) Die("attach: not opened: " + m.DebugString());
  v1::AttachRequest w;
  const EchoFigures l = RepeatEcho("attach_echo", repeats, warmup, pings, [&](int i) {
    const std::string data = Payload(size, i);
    w.mutable_write()->set_sequence_id(static_cast<uint64_t>(i) + 1);
    w.mutable_write()->set_data(data);
    if (!stream->Send(w)) Die("attach: send");
    std::string got;
    while (got.size() < data.size()) {
      if (!stream->Receive(&m)) Die("attach: stream ended: " + stream->Finish().ToString());
      if (m.has_data()) got += m.data().data();
      if (m.has_write_rejection()) Die("attach: rejected: " + m.DebugString());
    }
    if (got != data) Die("attach: echo mismatch");
  });
  stream->HalfClose();
  while (stream->Receive(&m)) {
  }
  if (!stream->Finish().ok()) Die("attach did not finish cleanly");
  return l;
}

// 2a. Write through xenchand; MB/s until the Write RPC returned.
double GrpcWrite(client::Client& client, const std::string& channel, size_t total,
                 v1::AckLevel level) {
  const std::string chunk(Session::kMaxWrite, 'w');
  size_t sent = std::min(total, chunk.size());
  v1::WriteRequest first;
  first.set_channel(channel);
  first.set_ack_level(level);
  first.set_data(chunk.substr(0, sent));
  const absl::Time t0 = absl::Now();
  auto r = client.Write(
      first,
      [&](std::string* more) {
        if (sent >= total) return false;
        const size_t n = std::min(chunk.size(), total - sent);
        more->assign(chunk, 0, n);
        sent += n;
        return true;
      },
      absl::Minutes(5));
  const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  if (!r.ok()) Die("write: " + r.status().ToString());
  const uint64_t reached = level == v1::ACK_LEVEL_CONSUMED ? r->progress().consumed_bytes()
                                                           : r->progress().delivered_bytes();
  if (reached != total) Die(absl::StrCat("write: only ", reached, " of ", total, " reached"));
  return total / secs / 1e6;
}

// 1c. The engine directly.
EchoFigures EngineEcho(Engine& engine, int repeats, int warmup, int pings, size_t size) {
  SessionOptions so;
  so.role = SessionRole::kWriter;
  so.start.anchor = ReadStart::Anchor::kNext;
  auto session = engine.OpenSession({kGuest, kEcho}, so);
  if (!session.ok()) Die("engine echo: " + session.status().ToString());
  return RepeatEcho("engine_echo", repeats, warmup, pings, [&](int i) {
    const std::string data = Payload(size, i);
    auto w = (*session)->Write(data);
    if (!w.ok()) Die("engine echo write: " + w.status().ToString());
    std::string got;
    while (got.size() < data.size()) {
      auto recs = (*session)->Read(1 << 16);
      if (!recs.ok()) Die("engine echo read: " + recs.status().ToString());
      for (const auto& r : *recs) {
        if (r.kind == SessionRecord::Kind::kData) got += r.data;
      }
      if (got.size() < data.size() && recs->empty()) WaitFd((*session)->notify_fd());
    }
    if (got != data) Die("engine echo mismatch");
  });
}

// 1d. The sim-floor echo: the same guest and agent, a minimal backend.
EchoFigures FloorEcho(SimFloor& floor, int repeats, int warmup, int pings, size_t size) {
  return RepeatEcho("floor_echo", repeats, warmup, pings, [&](int i) {
    if (!floor.Echo(Payload(size, i))) Die("floor echo failed");
  });
}

// 2b. Engine writes until `level` is reached for all of them; MB/s.
double EngineWrite(Engine& engine, size_t total, AckLevel level) {
  SessionOptions so;
  so.role = SessionRole::kWriter;
  auto session = engine.OpenSession({kGuest, kSink}, so);
  if (!session.ok()) Die("engine write: " + session.status().ToString());
  const std::string chunk(Session::kMaxWrite, 'e');
  const absl::Time t0 = absl::Now();
  uint64_t start = 0, end = 0;
  for (size_t sent = 0; sent < total;) {
    const size_t n = std::min(chunk.size(), total - sent);
    auto r = (*session)->Write(absl::string_view(chunk.data(), n));
    if (r.ok()) {
      if (sent == 0) start = r->start;
      end = r->end;
      sent += n;
    } else if (r.status().code() == absl::StatusCode::kResourceExhausted) {
      WaitFd((*session)->notify_fd());
    } else {
      Die("engine write: " + r.status().ToString());
    }
  }
  for (;;) {
    const WriteStatus ws = (*session)->write_status();
    const uint64_t reached =
        level == AckLevel::kConsumed ? ws.consumed_offset : ws.delivered_offset;
    if (reached >= end) break;
    WaitFd((*session)->notify_fd());
    (void)(*session)->Read(1 << 16);  // clears the notification
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  if (end - start != total) Die("engine write: range mismatch");
  return total / secs / 1e6;
}

}  // namespace bench
}  // namespace xenchan
