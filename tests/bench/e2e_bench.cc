// e2e_bench: end-to-end figures of xenchand on the simulated Xen host, each
// next to a reference measured in the same run on the same machine.
//
//  1. Echo latency (round trip of one small message):
//       grpc_echo      a plain gRPC bidirectional ping-pong: an in-process
//                      server on the callback API (tests/bench/echo/echo.proto)
//                      and a synchronous client stream, over a Unix socket;
//       attach_echo    xenchand's Attach: client -> Unix socket -> xenchand
//                      (a child process) -> engine -> ring -> simulated guest
//                      -> its tty -> an echo agent in the guest (a child
//                      process reading the tty in raw mode and writing every
//                      byte back) -> the same way back;
//       engine_echo    the same guest and agent driven through the engine's
//                      API in this process (xenchand stopped; the engine
//                      recovers the channels), i.e. without gRPC;
//       floor_echo     the sim-floor echo: the same guest and agent behind a
//                      minimal backend loop (sim_floor.h: map, bind, fill,
//                      drain, notify; the engine stopped), the floor of the
//                      path below gRPC.
//     p50 and p99, each run --repeats times (min/median/max of the runs),
//     the ratios attach/grpc, attach/engine and attach/(grpc + floor), and
//     per round trip the CPU time and context switches of every process
//     with the CPUs their threads ran on (proc_stats.h).
//  2. Write throughput to a guest whose agent drains its tty: the Write RPC
//     with ack level DELIVERED (in the ring) and CONSUMED (taken by the
//     guest), and the engine-only figure (a writer session, the same wait).
//
// Rate limits: the engine limits guest events per channel (EngineOptions
// event_allowance / event_cap); a fast ping-pong must never reach them
// (goal: 0 rate-limited periods). The options are printed, and the
// channel's rate_limited_periods are reported per phase. The goals of
// issue 14 are printed with their ratios before the RESULT lines.
//
// Usage: e2e_bench [--pings N] [--warmup N] [--message_bytes N] [--write_bytes N]
// Prints how it was run, the figures, then one `RESULT name=value` line each.
// (Internally it re-runs itself as the in-guest agent: --guest_agent=echo|drain --tty=PATH.)
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/engine/engine.h"
#include "backend/platform/sim/event_channels.h"
#include "backend/platform/sim/grant_tables.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "clients/lib/client.h"
#include "echo/echo.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "tests/bench/proc_stats.h"
#include "tests/bench/sim_floor.h"
#include "tests/server/xenchand_process.h"
#include "tests/sim/xensim_process.h"

ABSL_FLAG(int32_t, pings, 2000, "round trips measured per echo run");
ABSL_FLAG(int32_t, warmup, 100, "round trips before measuring");
ABSL_FLAG(int32_t, message_bytes, 32, "bytes per ping");
ABSL_FLAG(int64_t, write_bytes, 8 << 20, "bytes per Write throughput run");
ABSL_FLAG(int32_t, repeats, 3, "echo runs per figure (each of --pings round trips)");
ABSL_FLAG(std::string, guest_agent, "", "internal: run as the in-guest agent (echo|drain)");
ABSL_FLAG(std::string, tty, "", "internal: the agent's channel tty");

namespace xenchan {
namespace {

constexpr char kGuest[] = "bench0";
constexpr char kEcho[] = "org.bench.echo";
constexpr char kSink[] = "org.bench.sink";

std::vector<std::pair<std::string, std::string>> g_results;

void Result(const std::string& name, double value, const char* unit) {
  const std::string v = absl::StrFormat("%.6g", value);
  printf("  %-36s %s %s\n", name.c_str(), v.c_str(), unit);
  fflush(stdout);
  g_results.emplace_back(name, v);
}

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "e2e_bench: %s\n", what.c_str());
  exit(1);
}

// One goal of issue 14: the figure, the bound and whether it is met.
std::vector<std::string> g_goals;
void Goal(const std::string& what, double figure, double bound, bool at_most) {
  const bool met = at_most ? figure <= bound : figure >= bound;
  g_goals.push_back(absl::StrFormat("  %-58s %10.4g %s %-8.4g %s", what, figure,
                                    at_most ? "<=" : ">=", bound, met ? "met" : "MISSED"));
}

std::string SelfPath() {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) Die("readlink /proc/self/exe");
  self[n] = 0;
  return self;
}

// ---------------------------------------------------------------------------
// The in-guest agent (this binary, re-run in a child process).

int RunGuestAgent(const std::string& mode, const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) Die("agent: open " + path);
  termios t;
  if (tcgetattr(fd, &t) != 0) Die("agent: tcgetattr");
  cfmakeraw(&t);
  if (tcsetattr(fd, TCSANOW, &t) != 0) Die("agent: tcsetattr");
  printf("ready\n");
  fflush(stdout);
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;  // hung up
    if (mode == "drain") continue;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = write(fd, buf + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return 0;
      done += w;
    }
  }
}

class GuestAgent {
 public:
  GuestAgent(const std::string& mode, const std::string& tty) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) Die("pipe");
    const std::string self = SelfPath();
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      execl(self.c_str(), self.c_str(), ("--guest_agent=" + mode).c_str(), ("--tty=" + tty).c_str(),
            nullptr);
      _exit(127);
    }
    close(out[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    if (line != "ready") Die("guest agent did not start on " + tty);
  }
  ~GuestAgent() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }

 private:
  pid_t pid_ = -1;
};

// ---------------------------------------------------------------------------
// Figures.

struct Latency {
  double p50_us = 0;
  double p99_us = 0;
};

Latency Percentiles(std::vector<double> us) {
  if (us.empty()) Die("no samples");
  std::sort(us.begin(), us.end());
  auto at = [&](double p) {
    return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))];
  };
  return Latency{at(0.5), at(0.99)};
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
  std::vector<double> us;
  us.reserve(pings);
  for (int i = 0; i < pings; ++i) {
    const absl::Time t0 = absl::Now();
    rt(warmup + i);
    us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
  }
  return Percentiles(std::move(us));
}

// Runs `MeasureEcho` --repeats times: the median run's p50 and p99 (and
// prints min/median/max of both), with per-round-trip process figures.
struct EchoFigures {
  Latency median;
  double switches_per_rt = 0;         // whole system
  std::map<std::string, double> own;  // context switches per round trip, by process
};
template <class RoundTrip>
EchoFigures RepeatEcho(const std::string& name, int repeats, int warmup, int pings, RoundTrip rt) {
  std::vector<double> p50, p99;
  const auto before = bench::SampleTree();
  int base = 0;  // round trips so far: their indices keep increasing across runs
  for (int r = 0; r < repeats; ++r) {
    const int w = r == 0 ? warmup : 0;
    const Latency l = MeasureEcho(w, pings, [&](int i) { rt(base + i); });
    base += w + pings;
    p50.push_back(l.p50_us);
    p99.push_back(l.p99_us);
  }
  const auto after = bench::SampleTree();
  const bench::Spread a = bench::SpreadOf(p50), b = bench::SpreadOf(p99);
  printf("  %s p50 %.1f us (min %.1f, max %.1f), p99 %.1f us (min %.1f, max %.1f), n=%d x %d\n",
         name.c_str(), a.median, a.min, a.max, b.median, b.min, b.max, repeats, pings);
  EchoFigures f;
  f.median = Latency{a.median, b.median};
  const double rts = static_cast<double>(repeats) * pings + warmup;
  f.switches_per_rt = bench::PrintPerMessage("round trip", before, after, rts);
  for (const auto& [label, c] : after) {
    bench::ProcCounters b0;
    if (auto it = before.find(label); it != before.end()) b0 = it->second;
    f.own[label] = static_cast<double>(
                       (c.voluntary + c.nonvoluntary) -
                       std::min(c.voluntary + c.nonvoluntary, b0.voluntary + b0.nonvoluntary)) /
                   rts;
  }
  return f;
}

// 1a. The plain gRPC reference.
class EchoService final : public bench::Echo::CallbackService {
  grpc::ServerBidiReactor<bench::EchoMessage, bench::EchoMessage>* PingPong(
      grpc::CallbackServerContext* context) override {
    class Reactor : public grpc::ServerBidiReactor<bench::EchoMessage, bench::EchoMessage> {
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
      bench::EchoMessage message_;
    };
    return new Reactor();
  }
};

EchoFigures GrpcEcho(const std::string& socket, int repeats, int warmup, int pings, size_t size) {
  EchoService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + socket, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) Die("cannot start the echo server on " + socket);
  auto stub = bench::Echo::NewStub(
      grpc::CreateChannel("unix://" + socket, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  auto stream = stub->PingPong(&ctx);
  bench::EchoMessage out, in;
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

void WaitFd(int fd) {
  pollfd p{fd, POLLIN, 0};
  poll(&p, 1, 100);
  uint64_t v;
  [[maybe_unused]] ssize_t n = read(fd, &v, sizeof(v));
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
EchoFigures FloorEcho(bench::SimFloor& floor, int repeats, int warmup, int pings, size_t size) {
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

std::string Name(const std::string& channel) {
  return absl::StrCat("domains/", kGuest, "/channels/", channel);
}

int Main() {
  const int pings = std::max(1, absl::GetFlag(FLAGS_pings));
  const int warmup = std::max(0, absl::GetFlag(FLAGS_warmup));
  const int repeats = std::max(1, absl::GetFlag(FLAGS_repeats));
  const size_t size = static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_message_bytes)));
  const size_t write_bytes =
      static_cast<size_t>(std::max<int64_t>(1, absl::GetFlag(FLAGS_write_bytes)));
  const EngineOptions defaults;
  printf("e2e_bench: how it was run\n");
  printf(
      "  echo: %d runs of %d round trips of %zu bytes after %d warm-up; write: %zu bytes per run\n",
      repeats, pings, size, warmup, write_bytes);
  printf(
      "  cpus: %ld (bench main thread on cpu %d); host: xensim serve (child); guest %s: xensim "
      "guest process; agents: this binary re-run in the guest (raw tty; echo | drain)\n",
      sysconf(_SC_NPROCESSORS_ONLN), bench::CurrentCpu(), kGuest);
  printf("  xenchand: %s --platform=sim, Unix socket; client: clients/lib (sync stubs)\n",
         servertest::XenchandProcess::BinaryPath().c_str());
  printf("  grpc reference: in-process callback-API echo server, Unix socket, sync client\n");
  printf(
      "  engine options (xenchand's defaults, used by both): event_allowance %u / %s, "
      "event_cap %u / %s, buffer_limit %zu, write_queue_limit %zu\n\n",
      defaults.event_allowance, absl::FormatDuration(defaults.event_period).c_str(),
      defaults.event_cap, absl::FormatDuration(defaults.event_cap_period).c_str(),
      defaults.buffer_limit_bytes, defaults.write_queue_limit_bytes);

  auto sim = simtest::XensimProcess::Start();
  if (!sim.ok()) Die(sim.status().ToString());
  if (!(*sim)->CreateDomain(kGuest).ok()) Die("domain create");

  printf("plain gRPC bidirectional ping-pong:\n");
  const EchoFigures grpc_figures =
      GrpcEcho((*sim)->scratch_dir() + "/echo.sock", repeats, warmup, pings, size);
  const Latency grpc = grpc_figures.median;
  Result("grpc_echo_p50_us", grpc.p50_us, "us");
  Result("grpc_echo_p99_us", grpc.p99_us, "us");

  auto server =
      servertest::XenchandProcess::Start((*sim)->state_dir(), (*sim)->scratch_dir() + "/x.sock");
  if (!server.ok()) Die(server.status().ToString());
  auto client = client::Client::Connect((*server)->unix_target());
  if (!client.ok()) Die(client.status().ToString());
  for (const char* id : {kEcho, kSink}) {
    v1::CreateChannelRequest req;
    req.set_parent(absl::StrCat("domains/", kGuest));
    req.set_channel_id(id);
    req.set_wait_until_connected(true);
    auto ch = (*client)->CreateChannel(req, absl::Seconds(60));
    if (!ch.ok()) Die(ch.status().ToString());
  }
  const std::string dev = (*sim)->guest_root(kGuest) + "/dev/xen-channel/";
  GuestAgent echo("echo", dev + kEcho);
  GuestAgent sink("drain", dev + kSink);
  auto limited = [&](const std::string& id) -> uint64_t {
    auto ch = (*client)->GetChannel(Name(id));
    if (!ch.ok()) Die(ch.status().ToString());
    return ch->counters().rate_limited_periods();
  };

  printf("\nxenchand Attach echo through the guest's echo agent:\n");
  const uint64_t limited0 = limited(kEcho);
  const EchoFigures attach_figures =
      AttachEcho(**client, Name(kEcho), repeats, warmup, pings, size);
  const Latency attach = attach_figures.median;
  Result("attach_echo_p50_us", attach.p50_us, "us");
  Result("attach_echo_p99_us", attach.p99_us, "us");
  Result("attach_vs_grpc_p50_ratio", attach.p50_us / grpc.p50_us, "");
  Result("attach_vs_grpc_p99_ratio", attach.p99_us / grpc.p99_us, "");
  const double attach_limited = static_cast<double>(limited(kEcho) - limited0);
  Result("attach_echo_rate_limited_periods", attach_limited, "");
  Result("attach_switches_per_round_trip", attach_figures.switches_per_rt, "");
  Result("attach_xenchand_switches_per_round_trip",
         attach_figures.own.count("xenchand") != 0 ? attach_figures.own.at("xenchand") : 0.0, "");

  printf("\nxenchand Write to the guest's draining agent:\n");
  const uint64_t limited1 = limited(kSink);
  const double write_delivered =
      GrpcWrite(**client, Name(kSink), write_bytes, v1::ACK_LEVEL_DELIVERED);
  const double write_consumed =
      GrpcWrite(**client, Name(kSink), write_bytes, v1::ACK_LEVEL_CONSUMED);
  Result("write_delivered_mbps", write_delivered, "MB/s");
  Result("write_consumed_mbps", write_consumed, "MB/s");
  Result("write_rate_limited_periods", static_cast<double>(limited(kSink) - limited1), "");

  // The engine alone: stop xenchand; an engine in this process recovers the
  // channels (same guest, same agents).
  client->reset();
  if ((*server)->Stop() != 0) Die("xenchand did not stop cleanly:\n" + (*server)->log());
  EngineOptions o;
  auto xs = LibXenStore::Open((*sim)->xenstored_socket());
  auto ev = SimEventChannels::Create((*sim)->hypervisor_socket());
  auto gt = SimGrantTables::Create((*sim)->hypervisor_socket());
  if (!xs.ok() || !ev.ok() || !gt.ok()) Die("cannot connect to xensim");
  o.xenstore = *std::move(xs);
  o.event_channels = *std::move(ev);
  o.grant_tables = *std::move(gt);
  auto engine = Engine::Create(std::move(o));
  if (!engine.ok()) Die(engine.status().ToString());
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (const char* id : {kEcho, kSink}) {
    for (;;) {
      auto c = (*engine)->GetChannel({kGuest, id});
      if (c.ok() && c->state == ChannelState::kConnected) break;
      if (absl::Now() > deadline) Die(absl::StrCat("engine did not recover ", id));
      absl::SleepFor(absl::Milliseconds(5));  // bench setup only
    }
  }
  auto engine_limited = [&](const char* id) -> uint64_t {
    auto c = (*engine)->GetChannel({kGuest, id});
    if (!c.ok()) Die(c.status().ToString());
    return c->counters.rate_limited_periods;
  };

  printf("\nengine only (this process), same guest and agents:\n");
  const uint64_t limited2 = engine_limited(kEcho);
  const Latency eng = EngineEcho(**engine, repeats, warmup, pings, size).median;
  Result("engine_echo_p50_us", eng.p50_us, "us");
  Result("engine_echo_p99_us", eng.p99_us, "us");
  Result("attach_vs_engine_p50_ratio", attach.p50_us / eng.p50_us, "");
  const double engine_echo_limited = static_cast<double>(engine_limited(kEcho) - limited2);
  Result("engine_echo_rate_limited_periods", engine_echo_limited, "");
  const double engine_delivered = EngineWrite(**engine, write_bytes, AckLevel::kDelivered);
  const double engine_consumed = EngineWrite(**engine, write_bytes, AckLevel::kConsumed);
  Result("engine_write_delivered_mbps", engine_delivered, "MB/s");
  Result("engine_write_consumed_mbps", engine_consumed, "MB/s");
  Result("write_consumed_vs_engine_ratio", write_consumed / engine_consumed, "");
  Result("write_delivered_vs_engine_ratio", write_delivered / engine_delivered, "");
  auto echo_info = (*engine)->GetChannel({kGuest, kEcho});
  if (!echo_info.ok()) Die(echo_info.status().ToString());
  engine->reset();

  // The floor: the engine is gone (port unbound, page unmapped, xenstore
  // kept); a minimal backend serves the echo channel's ring and port.
  printf("\nsim-floor echo (a minimal backend loop, same guest and agent, no engine):\n");
  auto fxs = LibXenStore::Open((*sim)->xenstored_socket());
  auto fev = SimEventChannels::Create((*sim)->hypervisor_socket());
  auto fgt = SimGrantTables::Create((*sim)->hypervisor_socket());
  if (!fxs.ok() || !fev.ok() || !fgt.ok()) Die("cannot connect to xensim");
  auto floor =
      bench::SimFloor::Attach(**fxs, *std::move(fev), **fgt, echo_info->domid, echo_info->devid);
  if (!floor.ok()) Die("floor: " + floor.status().ToString());
  const Latency fl = FloorEcho(**floor, repeats, warmup, pings, size).median;
  Result("floor_echo_p50_us", fl.p50_us, "us");
  Result("floor_echo_p99_us", fl.p99_us, "us");
  Result("engine_vs_floor_p50_ratio", eng.p50_us / fl.p50_us, "");
  const double attach_goal = attach.p50_us / (grpc.p50_us + fl.p50_us);
  Result("attach_vs_grpc_plus_floor_p50_ratio", attach_goal, "");
  floor->reset();

  Goal("Attach echo p50 / (gRPC echo p50 + sim-floor echo p50)", attach_goal, 1.2, true);
  Goal("whole-system context switches per Attach round trip", attach_figures.switches_per_rt, 20,
       true);
  Goal("xenchand context switches per Attach round trip",
       attach_figures.own.count("xenchand") != 0 ? attach_figures.own.at("xenchand") : 0.0, 10,
       true);
  Goal("rate-limited periods in the echo runs (Attach + engine)",
       attach_limited + engine_echo_limited, 0, true);
  printf("\ngoals (issue 14; ratios from this run, medians):\n");
  for (const std::string& g : g_goals) printf("%s\n", g.c_str());
  printf("\n");
  for (const auto& [name, value] : g_results) printf("RESULT %s=%s\n", name.c_str(), value.c_str());
  return 0;
}

}  // namespace
}  // namespace xenchan

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  if (!absl::GetFlag(FLAGS_guest_agent).empty()) {
    return xenchan::RunGuestAgent(absl::GetFlag(FLAGS_guest_agent), absl::GetFlag(FLAGS_tty));
  }
  // The helpers find xensim and xenchand in the runfiles (TEST_SRCDIR under
  // `bazel test`; next to the binary under `bazel run` or when run directly).
  if (getenv("TEST_SRCDIR") == nullptr) {
    setenv("TEST_SRCDIR", (xenchan::SelfPath() + ".runfiles").c_str(), 1);
  }
  return xenchan::Main();
}
