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
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <fstream>
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
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/util/mutex.h"
#include "clients/lib/client.h"
#include "grpcpp/grpcpp.h"
#include "tests/common/io.h"
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
namespace {

using client::FromGrpc;
using client::ReasonOf;

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "xenchan_load: %s\n", what.c_str());
  fflush(stderr);
  _exit(1);
}

std::string SelfPath() {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) Die("readlink /proc/self/exe");
  self[n] = 0;
  return self;
}

uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

enum class Kind { kEcho, kWrite, kRead };

const char* KindName(Kind k) {
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

// ---------------------------------------------------------------------------
// The in-guest agent.

bool WriteFully(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void ServeTty(const std::string& kind, int fd, size_t payload, int rate) {
  if (kind == "source") {
    std::string record(payload, 'r');
    uint64_t next = MonoNs();
    for (uint64_t seq = 0;; ++seq) {
      if (rate > 0) {
        next += 1000000000u / static_cast<uint64_t>(rate);
        timespec ts{static_cast<time_t>(next / 1000000000u), static_cast<long>(next % 1000000000u)};
        // Pacing of the generator (its send schedule), not a synchronisation.
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
        }
      }
      const uint64_t now = MonoNs();
      memcpy(&record[0], &seq, 8);
      memcpy(&record[8], &now, 8);
      if (!WriteFully(fd, record.data(), record.size())) return;
    }
  }
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // hung up
    if (kind == "echo" && !WriteFully(fd, buf, static_cast<size_t>(n))) return;
  }
}

int RunGuestAgent(const std::string& spec) {
  const size_t payload = static_cast<size_t>(absl::GetFlag(FLAGS_payload));
  const int rate = absl::GetFlag(FLAGS_read_rate);
  std::vector<std::pair<std::string, int>> ttys;
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    const std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits(':', 1));
    const int fd = testcommon::OpenGuestTty(kv.second, absl::Seconds(60));
    if (fd < 0) Die("agent: cannot open " + kv.second);
    ttys.emplace_back(kv.first, fd);
  }
  printf("ready\n");
  fflush(stdout);
  std::vector<std::thread> threads;
  for (const auto& [kind, fd] : ttys) {
    threads.emplace_back(
        [kind = kind, fd = fd, payload, rate] { ServeTty(kind, fd, payload, rate); });
  }
  for (std::thread& t : threads) t.join();
  return 0;
}

class GuestAgent {
 public:
  explicit GuestAgent(const std::string& spec) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) Die("pipe");
    const std::string self = SelfPath();
    const std::string a1 = "--guest_agent=" + spec;
    const std::string a2 = absl::StrCat("--payload=", absl::GetFlag(FLAGS_payload));
    const std::string a3 = absl::StrCat("--read_rate=", absl::GetFlag(FLAGS_read_rate));
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      execl(self.c_str(), self.c_str(), a1.c_str(), a2.c_str(), a3.c_str(), nullptr);
      _exit(127);
    }
    close(out[1]);
    fd_ = out[0];
  }
  // Waits for the agent's ready line.
  void WaitReady() {
    std::string line;
    char c;
    while (read(fd_, &c, 1) == 1 && c != '\n') line += c;
    close(fd_);
    fd_ = -1;
    if (line != "ready") Die("guest agent did not start");
  }
  ~GuestAgent() {
    if (fd_ >= 0) close(fd_);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
};

// ---------------------------------------------------------------------------
// Results.

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
    const std::string reason = ReasonOf(s);
    std::string key = absl::StatusCodeToString(s.code());
    if (!reason.empty()) absl::StrAppend(&key, "/", reason);
    MutexLock l(&mu);
    finished[key]++;
    if (s.code() != expected) errors[key]++;
  }
};

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
  size_t n = 0;
};

Percentiles Compute(std::vector<double> v) {
  Percentiles p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  p.p50 = at(0.5);
  p.p90 = at(0.9);
  p.p99 = at(0.99);
  p.max = v.back();
  return p;
}

// ---------------------------------------------------------------------------
// Streams.

// The open-loop schedule of one stream: message i is due at
// start + phase + i * interval (CLOCK_MONOTONIC ns).
class Pacer {
 public:
  Pacer(uint64_t start_ns, uint64_t phase_ns, uint64_t interval_ns)
      : next_(start_ns + phase_ns), interval_(interval_ns) {}
  // Waits until the next message is due (or `stop`); returns when it was due.
  uint64_t Wait(const std::atomic<bool>& stop) {
    const uint64_t due = next_;
    next_ += interval_;
    for (uint64_t now = MonoNs(); now < due && !stop.load(std::memory_order_relaxed);
         now = MonoNs()) {
      absl::SleepFor(absl::Nanoseconds(std::min<uint64_t>(due - now, 50'000'000)));
    }
    return due;
  }

 private:
  uint64_t next_;
  const uint64_t interval_;
};

struct StreamSpec {
  Kind kind;
  std::string channel;
  v1::ChannelService::Stub* stub;
  std::optional<Pacer> pacer;  // open loop
};

std::string EchoPayload(size_t n, uint64_t seq) {
  std::string s = absl::StrFormat("%016x", seq);
  s.resize(n, static_cast<char>('a' + seq % 26));
  return s.substr(0, n);
}

void RunEcho(StreamSpec spec, size_t payload, const std::atomic<bool>& stop, absl::Time deadline,
             Figures* fig) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(deadline));
  auto stream = spec.stub->Attach(&ctx);
  v1::AttachRequest open;
  open.mutable_open()->set_channel(spec.channel);
  open.mutable_open()->set_role(v1::SESSION_ROLE_WRITER);
  v1::AttachResponse m;
  std::vector<double> us;
  int64_t msgs = 0;
  bool ok = stream->Write(open) && stream->Read(&m) && m.has_opened();
  v1::AttachRequest w;
  for (uint64_t seq = 1; ok && !stop.load(std::memory_order_relaxed); ++seq) {
    const std::string data = EchoPayload(payload, seq);
    w.mutable_write()->set_sequence_id(seq);
    w.mutable_write()->set_data(data);
    const uint64_t t0 = spec.pacer.has_value() ? spec.pacer->Wait(stop) : MonoNs();
    if (stop.load(std::memory_order_relaxed)) break;
    if (!stream->Write(w)) break;
    std::string got;
    while (got.size() < data.size()) {
      if (!stream->Read(&m)) {
        ok = false;
        break;
      }
      if (m.has_data()) got += m.data().data();
      if (m.has_write_rejection())
        fig->Error(
            absl::StrCat("WRITE_REJECTED/", v1::ErrorReason_Name(m.write_rejection().reason())));
      if (m.has_gap()) fig->Error("GAP");
      if (m.has_epoch_change()) fig->Error("EPOCH_CHANGE");
    }
    if (!ok) break;
    us.push_back((MonoNs() - t0) / 1e3);
    ++msgs;
    if (got != data) {
      fig->Error("MISMATCH");
      break;
    }
  }
  stream->WritesDone();
  while (stream->Read(&m)) {
  }
  fig->Finished(FromGrpc(stream->Finish()));
  fig->Merge(Kind::kEcho, std::move(us), msgs, msgs * static_cast<int64_t>(payload));
}

void RunWrite(StreamSpec spec, size_t payload, size_t window, const std::atomic<bool>& stop,
              absl::Time deadline, Figures* fig) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(deadline));
  auto stream = spec.stub->Attach(&ctx);
  v1::AttachRequest open;
  open.mutable_open()->set_channel(spec.channel);
  open.mutable_open()->set_role(v1::SESSION_ROLE_WRITER);
  open.mutable_open()->set_ack_level(v1::ACK_LEVEL_CONSUMED);
  v1::AttachResponse m;
  std::vector<double> us;
  int64_t msgs = 0;
  bool ok = stream->Write(open) && stream->Read(&m) && m.has_opened();
  std::deque<std::pair<uint64_t, uint64_t>> outstanding;  // (seq, sent at)
  v1::AttachRequest w;
  w.mutable_write()->set_data(std::string(payload, 'w'));
  uint64_t seq = 0;
  while (ok) {
    while (!stop.load(std::memory_order_relaxed) && outstanding.size() < window) {
      const uint64_t due = spec.pacer.has_value() ? spec.pacer->Wait(stop) : MonoNs();
      if (stop.load(std::memory_order_relaxed)) break;
      w.mutable_write()->set_sequence_id(++seq);
      outstanding.emplace_back(seq, due);
      if (!stream->Write(w)) {
        ok = false;
        break;
      }
    }
    if (!ok || outstanding.empty()) break;
    if (!stream->Read(&m)) break;
    if (m.has_write_ack() && m.write_ack().level() == v1::ACK_LEVEL_CONSUMED) {
      const uint64_t now = MonoNs();
      while (!outstanding.empty() && outstanding.front().first <= m.write_ack().sequence_id()) {
        us.push_back((now - outstanding.front().second) / 1e3);
        ++msgs;
        outstanding.pop_front();
      }
    }
    if (m.has_write_rejection()) {
      const auto& r = m.write_rejection();
      int64_t n = 0;
      while (!outstanding.empty() && outstanding.front().first <= r.last_sequence_id()) {
        outstanding.pop_front();
        ++n;
      }
      fig->Error(absl::StrCat("WRITE_REJECTED/", v1::ErrorReason_Name(r.reason())), n);
    }
  }
  stream->WritesDone();
  while (stream->Read(&m)) {
  }
  fig->Finished(FromGrpc(stream->Finish()));
  fig->Merge(Kind::kWrite, std::move(us), msgs, msgs * static_cast<int64_t>(payload));
}

// Reads source records; cancelled from outside through `ctx`.
void RunRead(const StreamSpec& spec, size_t payload, grpc::ClientContext* ctx, Figures* fig) {
  v1::ReadRequest req;
  req.set_channel(spec.channel);
  req.set_follow(true);
  req.mutable_start()->set_anchor(v1::START_ANCHOR_NEXT);
  auto stream = spec.stub->Read(ctx, req);
  v1::ReadResponse m;
  std::vector<double> us;
  int64_t msgs = 0;
  std::string buf;
  bool aligned = false;
  uint64_t next_offset = 0;
  bool have_seq = false;
  uint64_t last_seq = 0;
  while (stream->Read(&m)) {
    if (m.has_gap()) {
      fig->Error("GAP");
      aligned = false;
      have_seq = false;
      continue;
    }
    if (m.has_epoch_change()) {
      fig->Error("EPOCH_CHANGE");
      aligned = false;
      have_seq = false;
      continue;
    }
    if (!m.has_data()) continue;
    const std::string& d = m.data().data();
    size_t from = 0;
    if (!aligned || m.data().offset() != next_offset) {
      buf.clear();
      from = (payload - m.data().offset() % payload) % payload;
      aligned = true;
    }
    next_offset = m.data().offset() + d.size();
    if (from < d.size()) buf.append(d, from, std::string::npos);
    const uint64_t now = MonoNs();
    size_t pos = 0;
    for (; pos + payload <= buf.size(); pos += payload) {
      uint64_t seq, ts;
      memcpy(&seq, buf.data() + pos, 8);
      memcpy(&ts, buf.data() + pos + 8, 8);
      if (have_seq && seq != last_seq + 1) fig->Error("MISMATCH");
      have_seq = true;
      last_seq = seq;
      us.push_back(now > ts ? (now - ts) / 1e3 : 0);
      ++msgs;
    }
    buf.erase(0, pos);
  }
  fig->Finished(FromGrpc(stream->Finish()), absl::StatusCode::kCancelled);
  fig->Merge(Kind::kRead, std::move(us), msgs, msgs * static_cast<int64_t>(payload));
}

// ---------------------------------------------------------------------------
// Server side facts.

// CPU seconds (utime + stime, fields 14 and 15 of /proc/<pid>/stat) a
// process has used; -1 if unknown.
double ProcCpuSeconds(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (pid <= 0 || close == std::string::npos) return -1;
  std::vector<std::string> f = absl::StrSplit(stat.substr(close + 2), ' ');
  double utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtod(f[11], &utime) || !absl::SimpleAtod(f[12], &stime)) {
    return -1;
  }
  return (utime + stime) / sysconf(_SC_CLK_TCK);
}

// "VmHWM" / "VmRSS" of a process in kB; -1 if unknown.
int64_t ProcStatusKb(int pid, const std::string& key) {
  if (pid <= 0) return -1;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, key + ":")) continue;
    int64_t kb = -1;
    std::string v(absl::StripAsciiWhitespace(line.substr(key.size() + 1)));
    v = std::string(absl::StripSuffix(v, " kB"));
    return absl::SimpleAtoi(v, &kb) ? kb : -1;
  }
  return -1;
}

// The pid of the process serving a Unix socket (SO_PEERCRED); 0 if unknown.
int PeerPid(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return 0;
  memcpy(addr.sun_path, path.c_str(), path.size());
  int pid = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) pid = cred.pid;
  }
  close(fd);
  return pid;
}

// True for targets that stay on this host.
bool IsLoopbackTarget(const std::string& target) {
  if (absl::StartsWith(target, "unix:")) return true;
  std::string host;
  if (absl::StartsWith(target, "[")) {
    const size_t end = target.find(']');
    if (end == std::string::npos) return false;
    host = target.substr(1, end - 1);
    return host == "::1";
  }
  host = target.substr(0, target.rfind(':'));
  if (host == "localhost") return true;
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
  return (ntohl(a.s_addr) >> 24) == 127;
}

std::string UnixPath(const std::string& target) {
  std::string p(absl::StripPrefix(target, "unix:"));
  if (absl::StartsWith(p, "//")) p = p.substr(2);
  return p;
}

// ---------------------------------------------------------------------------

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
  std::unique_ptr<simtest::XensimProcess> sim;
  std::unique_ptr<servertest::XenchandProcess> server;
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
  std::vector<std::unique_ptr<GuestAgent>> agents;
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
    agents.push_back(std::make_unique<GuestAgent>(absl::StrJoin(spec, ",")));
  }
  for (auto& a : agents) a->WaitReady();
  const absl::Duration setup = absl::Now() - setup_start;
  const int64_t rss_before = ProcStatusKb(server_pid, "VmRSS");
  const int64_t hwm_before = ProcStatusKb(server_pid, "VmHWM");
  const double cpu_before = ProcCpuSeconds(server_pid);

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
      static_cast<long long>(rss_before), static_cast<long long>(hwm_before));
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
  const int64_t rss_after = ProcStatusKb(server_pid, "VmRSS");
  const int64_t hwm_after = ProcStatusKb(server_pid, "VmHWM");
  const double cpu_after = ProcCpuSeconds(server_pid);
  agents.clear();

  // --- Report. ---
  MutexLock l(&fig.mu);
  std::vector<std::pair<std::string, std::string>> results;
  auto result = [&](const std::string& name, double v) {
    results.emplace_back(name, absl::StrFormat("%.6g", v));
  };
  const double secs = absl::ToDoubleSeconds(elapsed);
  std::vector<double> all;
  int64_t msgs = 0, bytes = 0;
  printf("results over %.3f s:\n", secs);
  for (Kind k : {Kind::kEcho, Kind::kWrite, Kind::kRead}) {
    if (stream_kinds[k] == 0) continue;
    const Percentiles p = Compute(fig.latency_us[k]);
    printf(
        "  %-5s %d streams: %lld msgs, %.1f msgs/s, %.3f MB/s; latency us p50 %.0f p90 %.0f "
        "p99 %.0f max %.0f\n",
        KindName(k), stream_kinds[k], static_cast<long long>(fig.messages[k]),
        fig.messages[k] / secs, fig.bytes[k] / secs / 1e6, p.p50, p.p90, p.p99, p.max);
    result(absl::StrCat(KindName(k), "_msgs_per_s"), fig.messages[k] / secs);
    result(absl::StrCat(KindName(k), "_p99_us"), p.p99);
    all.insert(all.end(), fig.latency_us[k].begin(), fig.latency_us[k].end());
    msgs += fig.messages[k];
    bytes += fig.bytes[k];
  }
  const Percentiles p = Compute(std::move(all));
  printf(
      "  all   %d streams: %lld msgs, %.1f msgs/s, %.3f MB/s; latency us p50 %.0f p90 %.0f "
      "p99 %.0f max %.0f\n",
      streams, static_cast<long long>(msgs), msgs / secs, bytes / secs / 1e6, p.p50, p.p90, p.p99,
      p.max);
  int64_t errors = 0;
  for (const auto& [k, n] : fig.errors) errors += n;
  printf("  stream ends:");
  for (const auto& [k, n] : fig.finished) printf(" %s=%lld", k.c_str(), static_cast<long long>(n));
  printf("\n  errors: %lld", static_cast<long long>(errors));
  for (const auto& [k, n] : fig.errors) printf(" %s=%lld", k.c_str(), static_cast<long long>(n));
  // xenchand's CPU per message (all its threads; every message the streams
  // counted, each kind once).
  const double server_cpu_us_per_msg =
      cpu_before >= 0 && cpu_after >= 0 && msgs > 0 ? (cpu_after - cpu_before) * 1e6 / msgs : -1;
  printf("\n  xenchand CPU: %.1f us per message (%.2f s in all)", server_cpu_us_per_msg,
         cpu_after - cpu_before);
  printf(
      "\n  xenchand memory: VmHWM %lld kB (peak; %lld kB before the load), VmRSS %lld kB "
      "after (%lld kB before)\n\n",
      static_cast<long long>(hwm_after), static_cast<long long>(hwm_before),
      static_cast<long long>(rss_after), static_cast<long long>(rss_before));
  result("channels", channels);
  result("streams", streams);
  result("duration_s", secs);
  result("msgs", static_cast<double>(msgs));
  result("msgs_per_s", msgs / secs);
  result("mb_per_s", bytes / secs / 1e6);
  result("p50_us", p.p50);
  result("p90_us", p.p90);
  result("p99_us", p.p99);
  result("max_us", p.max);
  result("errors", static_cast<double>(errors));
  for (const auto& [k, n] : fig.errors) result("errors_" + k, static_cast<double>(n));
  result("server_vmhwm_kb", static_cast<double>(hwm_after));
  result("server_vmrss_kb", static_cast<double>(rss_after));
  result("server_cpu_us_per_msg", server_cpu_us_per_msg);
  for (const auto& [name, value] : results) printf("RESULT %s=%s\n", name.c_str(), value.c_str());
  fflush(stdout);

  if (!sim) {
    for (const std::string& g : guest_names) {
      simtest::RunProcess(
          {simtest::XensimProcess::BinaryPath(), "--state-dir", state_dir, "domain", "destroy", g});
    }
  }
  return 0;
}

}  // namespace
}  // namespace xenchan

int main(int argc, char** argv) {
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  if (rest.size() > 1) {
    fprintf(stderr, "xenchan_load: unexpected argument '%s'\n", rest[1]);
    return 2;
  }
  if (!absl::GetFlag(FLAGS_guest_agent).empty()) {
    return xenchan::RunGuestAgent(absl::GetFlag(FLAGS_guest_agent));
  }
  // The helpers find xensim and xenchand in the runfiles (TEST_SRCDIR under
  // `bazel test`; next to the binary under `bazel run` or when run directly).
  if (getenv("TEST_SRCDIR") == nullptr) {
    setenv("TEST_SRCDIR", (xenchan::SelfPath() + ".runfiles").c_str(), 1);
  }
  return xenchan::Main(argc, argv);
}
