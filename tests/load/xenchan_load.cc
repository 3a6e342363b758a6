// xenchan_load: drives N concurrent client streams over M channels of G
// simulated guests through a real xenchand for a bounded time, and prints
// throughput, latency percentiles, errors by status and the server's peak
// memory, preceded by exactly how it was run.
//
// Set-up (default): starts `xensim serve` and `xenchand --platform=sim` (a
// child, Unix socket and 127.0.0.1:0), creates G domains and M channels
// (round-robin over the guests; at most 7 per guest) with CreateChannel
// (wait_until_connected), then runs one agent process per guest (this binary
// re-run with --guest_agent) that serves every channel tty of that guest, one
// thread per tty, in raw mode:
//   echo    writes every byte it reads back;
//   drain   reads and discards;
//   source  writes fixed-size records [u64 seq][u64 CLOCK_MONOTONIC ns][fill]
//           at --read_rate records/s (0: as fast as the tty takes them).
// With --target (and --sim_state_dir) it attaches to a running xenchand and
// xensim instead; only loopback targets are accepted (unix:, 127.0.0.0/8,
// [::1], localhost); anything else exits 2 before connecting.
//
// Streams (stream j uses channel j % M; kinds by --mode, mix: channel c is
// echo, write, read for c % 3 = 0, 1, 2):
//   echo   an Attach writer: write one payload, wait for the same bytes back
//          (latency = that round trip); checks the bytes.
//   write  an Attach writer with ack level CONSUMED, up to --window writes
//          outstanding (latency = send to the CONSUMED acknowledgement).
//   read   a following Read from NEXT of a source channel (latency = arrival
//          minus the timestamp the guest wrote into the record; both ends use
//          CLOCK_MONOTONIC of this host); checks record sequence numbers.
// echo and write hold the channel's write lease, so they need streams <=
// channels; read allows up to max-readers-per-channel per channel (the tool
// raises xenchand's limit when it starts it).
//
// Open loop (--rate R): every stream gets R/N messages per second on a fixed
// schedule (streams offset evenly within the interval); echo and write
// streams send each message at its scheduled time (at once if late, one at
// a time) and measure latency from the scheduled time, so a slow answer
// delays and counts against the messages behind it (no coordinated
// omission); read channels' guests emit R/N records per second.
//
// At the end: writers half-close and must finish OK; readers are cancelled
// (CANCELLED then is expected, not an error). Errors are counted by gRPC
// status code and xenchan reason, plus write rejections, gaps, unexpected
// epoch changes and mismatched data. Peak memory is VmHWM of xenchand's
// /proc/<pid>/status (pid: the child, SO_PEERCRED of a Unix target, or
// --server_pid).
//
// xenchand's CPU per message is its utime + stime (/proc/<pid>/stat) over
// the load divided by the messages of every stream.
//
// Output: a human-readable report, then one `RESULT name=value` line per
// figure (what the smoke test parses). Exit status 0 when the run completed
// (even with errors; see RESULT errors), 1 on set-up failure, 2 on bad flags.
//
// The pieces: load_streams.h (the stream kinds), load_pacer.h (the open-loop
// schedule), load_agent.h (the in-guest agent), load_server.h (xenchand's
// usage, the loopback check), load_report.h (the report); bench_process.h
// (Die; no child left behind on any exit).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/lib/client.h"
#include "grpcpp/grpcpp.h"
#include "tests/bench/bench_process.h"
#include "tests/load/load_agent.h"
#include "tests/load/load_pacer.h"
#include "tests/load/load_report.h"
#include "tests/load/load_server.h"
#include "tests/load/load_streams.h"
#include "tests/server/xenchand_process.h"
#include "tests/sim/xensim_process.h"
#include "xenchan/v1/channel_service.grpc.pb.h"

ABSL_FLAG(int32_t, channels, 20, "channels (M)");
ABSL_FLAG(int32_t, guests, 0, "guests (G); 0: as few as fit (7 channels each)");
ABSL_FLAG(int32_t, streams, 0, "concurrent client streams (N); 0: one per channel");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "how long the streams run");
ABSL_FLAG(int32_t, payload, 64, "bytes per message (read mode: at least 16)");
ABSL_FLAG(std::string, mode, "echo", "echo | write | read | mix");
ABSL_FLAG(int32_t, window, 4, "write mode: writes outstanding per stream");
ABSL_FLAG(int32_t, read_rate, 200, "read mode: records per second per channel (0: unthrottled)");
ABSL_FLAG(double, rate, 0,
          "open loop: messages per second in all, spread evenly over the streams (0: closed "
          "loop, each stream as fast as its answers come)");
ABSL_FLAG(int32_t, connections, 4, "gRPC connections the streams are spread over");
ABSL_FLAG(std::string, target, "",
          "attach to this xenchand (loopback only) instead of starting one");
ABSL_FLAG(std::string, sim_state_dir, "", "with --target: the state dir of its xensim");
ABSL_FLAG(int32_t, server_pid, 0, "with a TCP --target: xenchand's pid (for its memory)");
ABSL_FLAG(std::string, xenchand_args, "", "comma-separated extra flags for the started xenchand");
ABSL_FLAG(std::string, guest_agent, "", "internal: run as a guest's agent: kind:tty,...");

namespace xenchan {
namespace load {
namespace {

using bench::Die;
using client::FromGrpc;

int Main(int argc, char** argv) {
  const int channels = absl::GetFlag(FLAGS_channels);
  int guests = absl::GetFlag(FLAGS_guests);
  int streams = absl::GetFlag(FLAGS_streams);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const size_t payload = static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_payload)));
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const double rate = std::max(0.0, absl::GetFlag(FLAGS_rate));
  // Open loop: one message at a time per stream, each at its due time.
  const size_t window =
      rate > 0 ? 1 : static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_window)));
  const int connections = std::max(1, absl::GetFlag(FLAGS_connections));
  const std::string target = absl::GetFlag(FLAGS_target);
  std::string state_dir = absl::GetFlag(FLAGS_sim_state_dir);
  auto usage = [](const std::string& why) {
    fprintf(stderr, "xenchan_load: %s\n", why.c_str());
    return 2;
  };
  if (channels < 1) return usage("--channels must be >= 1");
  if (guests == 0) guests = (channels + 6) / 7;
  if (guests < 1 || channels > 7 * guests) return usage("at most 7 channels per guest");
  if (streams == 0) streams = channels;
  if (streams < 1) return usage("--streams must be >= 1");
  if (mode != "echo" && mode != "write" && mode != "read" && mode != "mix") {
    return usage("--mode must be echo, write, read or mix");
  }
  if (mode == "mix" && channels < 3) return usage("--mode=mix needs at least 3 channels");
  if ((mode == "read" || mode == "mix") && payload < 16) {
    return usage("read streams need --payload >= 16 (sequence number and timestamp)");
  }
  // Open loop: each read channel's guest emits one stream's share.
  if (rate > 0) {
    absl::SetFlag(&FLAGS_read_rate, std::max(1, static_cast<int>(rate / streams + 0.5)));
  }
  if (payload > 65536) return usage("--payload is at most 65536 (the API's message limit)");
  if (mode != "read" && streams > channels) {
    return usage("echo and write streams hold the channel's write lease: --streams <= --channels");
  }
  if (!target.empty()) {
    if (!IsLoopbackTarget(target)) {
      return usage("refusing non-loopback target '" + target +
                   "': the load tool runs against unix:, 127.0.0.0/8, [::1] or localhost only");
    }
    if (state_dir.empty()) return usage("--target needs --sim_state_dir of its xensim");
  }
  auto kind_of = [&](int c) {
    if (mode == "echo") return Kind::kEcho;
    if (mode == "write") return Kind::kWrite;
    if (mode == "read") return Kind::kRead;
    return c % 3 == 0 ? Kind::kEcho : c % 3 == 1 ? Kind::kWrite : Kind::kRead;
  };
  const int readers_per_channel = (streams + channels - 1) / channels;

  // --- Set-up. ---
  const absl::Time setup_start = absl::Now();
  std::vector<std::unique_ptr<GuestAgent>> agents;
  std::unique_ptr<simtest::XensimProcess> sim;
  std::unique_ptr<servertest::XenchandProcess> server;
  // On Die: the agents, then xenchand, then xensim (which removes its state
  // directory); whatever is left is killed by Die in any case.
  const bench::ScopedCleanup stop_children([&] {
    agents.clear();
    server.reset();
    sim.reset();
  });
  std::string server_target = target;
  int server_pid = absl::GetFlag(FLAGS_server_pid);
  std::vector<std::string> xenchand_args;
  for (absl::string_view a :
       absl::StrSplit(absl::GetFlag(FLAGS_xenchand_args), ',', absl::SkipEmpty())) {
    xenchand_args.emplace_back(a);
  }
  if (target.empty()) {
    auto s = simtest::XensimProcess::Start();
    if (!s.ok()) Die(s.status().ToString());
    sim = *std::move(s);
    state_dir = sim->state_dir();
    if (readers_per_channel > 16) {
      xenchand_args.push_back(absl::StrCat("--max-readers-per-channel=", readers_per_channel));
    }
    auto x = servertest::XenchandProcess::Start(state_dir, sim->scratch_dir() + "/x.sock",
                                                xenchand_args);
    if (!x.ok()) Die(x.status().ToString());
    server = *std::move(x);
    server_target = server->unix_target();
    server_pid = server->pid();
  } else if (absl::StartsWith(target, "unix:")) {
    if (server_pid == 0) server_pid = PeerPid(UnixPath(target));
  }

  std::vector<std::shared_ptr<grpc::Channel>> conns;
  std::vector<std::unique_ptr<v1::ChannelService::Stub>> stubs;
  for (int i = 0; i < connections; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    args.SetInt("xenchan.load.connection", i);
    conns.push_back(
        grpc::CreateCustomChannel(server_target, grpc::InsecureChannelCredentials(), args));
    stubs.push_back(v1::ChannelService::NewStub(conns.back()));
  }

  const std::string prefix = absl::StrCat("load", getpid() % 100000, "-");
  std::vector<std::string> guest_names;
  for (int g = 0; g < guests; ++g) guest_names.push_back(absl::StrCat(prefix, g));
  // channel c -> guest c % G, id org.xenchan.load.<c>
  auto channel_id = [](int c) { return absl::StrCat("org.xenchan.load.", c); };
  auto channel_name = [&](int c) {
    return absl::StrCat("domains/", guest_names[c % guests], "/channels/", channel_id(c));
  };
  {
    // Domains one by one (xensim serialises them anyway), then the channels
    // of each guest on a thread per guest.
    for (const std::string& g : guest_names) {
      auto r = simtest::RunProcess({simtest::XensimProcess::BinaryPath(), "--state-dir", state_dir,
                                    "domain", "create", "--name", g});
      if (r.exit_code != 0) Die("domain create " + g + ": " + r.err);
    }
    std::atomic<int> failures{0};
    std::vector<std::thread> creators;
    for (int g = 0; g < guests; ++g) {
      creators.emplace_back([&, g] {
        for (int c = g; c < channels; c += guests) {
          v1::CreateChannelRequest req;
          req.set_parent("domains/" + guest_names[g]);
          req.set_channel_id(channel_id(c));
          req.set_wait_until_connected(true);
          req.mutable_connect_timeout()->set_seconds(120);
          v1::CreateChannelResponse resp;
          absl::Status s;
          for (int attempt = 0; attempt < 3; ++attempt) {
            grpc::ClientContext ctx;
            ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(150)));
            ctx.set_wait_for_ready(true);
            s = FromGrpc(stubs[c % connections]->CreateChannel(&ctx, req, &resp));
            if (s.ok() || s.code() != absl::StatusCode::kUnavailable) break;
          }
          if (!s.ok()) {
            fprintf(stderr, "xenchan_load: create %s: %s\n", channel_name(c).c_str(),
                    s.ToString().c_str());
            failures++;
          }
        }
      });
    }
    for (std::thread& t : creators) t.join();
    if (failures > 0) Die(absl::StrCat(failures.load(), " channels could not be created"));
  }
  for (int g = 0; g < guests; ++g) {
    std::vector<std::string> spec;
    for (int c = g; c < channels; c += guests) {
      const Kind k = kind_of(c);
      spec.push_back(absl::StrCat(k == Kind::kEcho    ? "echo"
                                  : k == Kind::kWrite ? "drain"
                                                      : "source",
                                  ":", state_dir, "/guests/", guest_names[g],
                                  "/root/dev/xen-channel/", channel_id(c)));
    }
    agents.push_back(std::make_unique<GuestAgent>(
        absl::StrJoin(spec, ","), absl::GetFlag(FLAGS_payload), absl::GetFlag(FLAGS_read_rate)));
  }
  for (auto& a : agents) a->WaitReady();
  const absl::Duration setup = absl::Now() - setup_start;
  const ServerUsage before = SampleServer(server_pid);

  std::map<Kind, int> stream_kinds;
  for (int j = 0; j < streams; ++j) stream_kinds[kind_of(j % channels)]++;

  printf("xenchan_load: how it was run\n");
  std::vector<std::string> args(argv, argv + argc);
  printf("  command: %s\n", absl::StrJoin(args, " ").c_str());
  printf(
      "  mode=%s channels=%d guests=%d streams=%d (echo %d, write %d, read %d) duration=%s "
      "payload=%zu window=%zu read_rate=%d/s/channel connections=%d\n",
      mode.c_str(), channels, guests, streams, stream_kinds[Kind::kEcho],
      stream_kinds[Kind::kWrite], stream_kinds[Kind::kRead], absl::FormatDuration(duration).c_str(),
      payload, window, absl::GetFlag(FLAGS_read_rate), connections);
  if (rate > 0) {
    printf(
        "  open loop: %.0f msgs/s in all, %.2f per stream; latency from each message's scheduled "
        "send time\n",
        rate, rate / streams);
  } else {
    printf("  closed loop: each stream sends as fast as its answers come\n");
  }
  printf("  server: xenchand pid %d at %s (%s)%s%s\n", server_pid, server_target.c_str(),
         server ? "started by this tool, --platform=sim" : "attached",
         xenchand_args.empty() ? "" : ", extra args ", absl::StrJoin(xenchand_args, " ").c_str());
  printf(
      "  host: %ld cpus; xensim state dir %s (%s); one xensim guest process per domain; one "
      "agent process per guest (this binary; echo | drain | source per tty)\n",
      sysconf(_SC_NPROCESSORS_ONLN), state_dir.c_str(), sim ? "started by this tool" : "attached");
  printf(
      "  set-up: %d domains and %d connected channels in %s; xenchand VmRSS %lld kB, VmHWM %lld "
      "kB before the load\n\n",
      guests, channels, absl::FormatDuration(absl::Trunc(setup, absl::Milliseconds(1))).c_str(),
      static_cast<long long>(before.rss_kb), static_cast<long long>(before.hwm_kb));
  fflush(stdout);

  // --- Load. ---
  Figures fig;
  std::atomic<bool> stop{false};
  const absl::Time deadline = absl::Now() + duration + absl::Seconds(60);
  std::vector<std::unique_ptr<grpc::ClientContext>> read_contexts;
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  const uint64_t start_ns = MonoNs();
  for (int j = 0; j < streams; ++j) {
    const int c = j % channels;
    StreamSpec spec{kind_of(c), channel_name(c), stubs[j % connections].get(), std::nullopt};
    if (rate > 0) {
      const uint64_t interval = static_cast<uint64_t>(1e9 * streams / rate);
      spec.pacer.emplace(start_ns, interval * j / streams, interval);
    }
    switch (spec.kind) {
      case Kind::kEcho:
        threads.emplace_back([=, &stop, &fig] { RunEcho(spec, payload, stop, deadline, &fig); });
        break;
      case Kind::kWrite:
        threads.emplace_back(
            [=, &stop, &fig] { RunWrite(spec, payload, window, stop, deadline, &fig); });
        break;
      case Kind::kRead: {
        read_contexts.push_back(std::make_unique<grpc::ClientContext>());
        read_contexts.back()->set_deadline(absl::ToChronoTime(deadline));
        grpc::ClientContext* ctx = read_contexts.back().get();
        threads.emplace_back([=, &fig] { RunRead(spec, payload, ctx, &fig); });
        break;
      }
    }
  }
  // The run's length is the tool's purpose: wait it out.
  absl::SleepFor(duration);
  stop = true;
  const absl::Duration elapsed = absl::Now() - start;
  for (auto& ctx : read_contexts) ctx->TryCancel();
  for (std::thread& t : threads) t.join();
  const ServerUsage after = SampleServer(server_pid);
  agents.clear();

  // --- Report. ---
  PrintReport(fig, stream_kinds, channels, streams, elapsed, before, after);

  if (!sim) {
    for (const std::string& g : guest_names) {
      simtest::RunProcess(
          {simtest::XensimProcess::BinaryPath(), "--state-dir", state_dir, "domain", "destroy", g});
    }
  }
  return 0;
}

}  // namespace
}  // namespace load
}  // namespace xenchan

int main(int argc, char** argv) {
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  if (rest.size() > 1) {
    fprintf(stderr, "xenchan_load: unexpected argument '%s'\n", rest[1]);
    return 2;
  }
  // The in-guest agent is a leaf: no cleanup of its own (see e2e_bench).
  if (!absl::GetFlag(FLAGS_guest_agent).empty()) {
    return xenchan::load::RunGuestAgent(absl::GetFlag(FLAGS_guest_agent),
                                        static_cast<size_t>(absl::GetFlag(FLAGS_payload)),
                                        absl::GetFlag(FLAGS_read_rate));
  }
  xenchan::bench::InitTool("xenchan_load");
  // The helpers find xensim and xenchand in the runfiles (TEST_SRCDIR under
  // `bazel test`; next to the binary under `bazel run` or when run directly).
  xenchan::bench::UseOwnRunfiles();
  return xenchan::load::Main(argc, argv);
}
