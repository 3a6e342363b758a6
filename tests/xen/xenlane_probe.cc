// xenlane_probe: the real-Xen lane's measuring and observing tool, run in
// dom0 (tests/xen/README.md).
//
//   xenlane_probe sock-echo SOCKET [--pings N] [--size B] [--bytes T]
//       round trips and echo throughput through a Unix socket that QEMU
//       serves for an xl.cfg channel (the guest runs guest_echo on it)
//   xenlane_probe attach-echo SERVER DOMAIN/CHANNEL [--pings N] [--size B] [--bytes T]
//       the same through xenchand's Attach stream
//   xenlane_probe watch-states SECONDS PATH...
//       prints "<ms> <path> <value>" (or "<gone>") for every xenstore change
//       at or below each PATH, for SECONDS or until SIGTERM; a special path
//       (@introduceDomain, @releaseDomain) prints "<event>". <ms> is the boot
//       clock (CLOCK_BOOTTIME, the clock of /proc/uptime) in milliseconds, so
//       traces compare with the scenario script's own stamps, taken when the
//       event is taken off the queue; the value is read after (it may be
//       newer than the event)
//   xenlane_probe stamp
//       copies stdin to stdout, each line prefixed with the boot clock in ms
//       (xl's log lines, timed as they are written)
//   xenlane_probe ring-peek DOMID GRANT_REF
//       maps a channel's ring page read-only and prints its four indices and
//       the bytes waiting in each direction
//
// Echo modes print one line "p50_us=.. p99_us=.. mean_us=.. pings=.. size=..
// mbps=.. bytes=.. ctx_per_rt=.. cpu_us_per_rt=.." (throughput: bytes that
// went to the guest and came back, per second, counted once; the last two:
// dom0's context switches and busy CPU time, all of dom0's vCPUs and every
// process, per round trip of the ping phase, from /proc/stat, so they count
// the whole path in dom0, QEMU or xenchand included). Exit status 0 on success, 1 on any failure
// (with a reason on stderr), 2 on a usage error.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

extern "C" {
#include <xengnttab.h>
}

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "clients/lib/client.h"

namespace {

namespace v1 = ::xenchan::v1;

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "xenlane_probe: %s\n", why.c_str());
  std::exit(1);
}

struct EchoOptions {
  int pings = 200;
  size_t size = 32;
  size_t bytes = 64 * 1024;
};

bool ParseEchoOptions(int argc, char** argv, int first, EchoOptions* o) {
  for (int i = first; i < argc; i += 2) {
    if (i + 1 >= argc) return false;
    const std::string k = argv[i];
    uint64_t v = 0;
    if (!absl::SimpleAtoi(argv[i + 1], &v) || v == 0) return false;
    if (k == "--pings") {
      o->pings = static_cast<int>(v);
    } else if (k == "--size") {
      o->size = v;
    } else if (k == "--bytes") {
      o->bytes = v;
    } else {
      return false;
    }
  }
  return true;
}

// A payload without newlines or bytes a cooked tty would act on, distinct
// per round trip.
std::string Payload(size_t size, int i) {
  std::string s(size, 'a');
  for (size_t k = 0; k < size; ++k) s[k] = static_cast<char>('a' + (k + i) % 26);
  return s;
}

// dom0-wide counters from /proc/stat: context switches ("ctxt") and busy
// CPU time (user, nice, system, irq, softirq of the "cpu" line) in µs.
struct Dom0Counters {
  double ctxt = 0;
  double busy_us = 0;
};

Dom0Counters ReadDom0Counters() {
  Dom0Counters c;
  FILE* f = std::fopen("/proc/stat", "r");
  if (f == nullptr) return c;
  char line[512];
  const double us_per_tick = 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    unsigned long long v[7] = {};
    if (std::sscanf(line, "cpu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                    &v[4], &v[5], &v[6]) == 7) {
      c.busy_us = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6]) * us_per_tick;
    }
    unsigned long long ctxt = 0;
    if (std::sscanf(line, "ctxt %llu", &ctxt) == 1) c.ctxt = static_cast<double>(ctxt);
  }
  std::fclose(f);
  return c;
}

void PrintEcho(std::vector<double> us, const EchoOptions& o, double mbps, size_t bytes,
               const Dom0Counters& per_rt) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double u : us) sum += u;
  const auto pct = [&](double p) {
    size_t idx = static_cast<size_t>(p * (us.size() - 1) + 0.5);
    return us[std::min(idx, us.size() - 1)];
  };
  std::printf(
      "p50_us=%.0f p99_us=%.0f mean_us=%.0f max_us=%.0f pings=%d size=%zu mbps=%.4f bytes=%zu "
      "ctx_per_rt=%.1f cpu_us_per_rt=%.0f\n",
      pct(0.5), pct(0.99), sum / us.size(), us.back(), o.pings, o.size, mbps, bytes, per_rt.ctxt,
      per_rt.busy_us);
}

// One transport for the echo measurements: send bytes, receive what came
// back (blocking, bounded by `deadline`).
struct Transport {
  std::function<void(const std::string&)> send;
  std::function<std::string(absl::Time deadline)> receive;
};

void RunEcho(Transport& t, const EchoOptions& o) {
  // Resynchronise: anything the guest had queued before we came is dropped.
  std::vector<double> us;
  Dom0Counters before;
  for (int i = -5; i < o.pings; ++i) {
    if (i == 0) before = ReadDom0Counters();  // after the warm-up round trips
    const std::string data = Payload(o.size, i + 5);
    const absl::Time start = absl::Now();
    t.send(data);
    std::string got;
    const absl::Time deadline = start + absl::Seconds(10);
    while (got.size() < data.size()) {
      std::string more = t.receive(deadline);
      if (more.empty())
        Die(absl::StrCat("round trip ", i, ": only ", got.size(), " of ", data.size(),
                         " bytes back in 10 s"));
      got += more;
    }
    if (got != data) Die(absl::StrCat("round trip ", i, ": echo mismatch: '", got, "'"));
    if (i >= 0) us.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
  }
  const Dom0Counters after = ReadDom0Counters();
  Dom0Counters per_rt;
  if (o.pings > 0) {
    per_rt.ctxt = (after.ctxt - before.ctxt) / o.pings;
    per_rt.busy_us = (after.busy_us - before.busy_us) / o.pings;
  }
  // Throughput: a sender thread streams o.bytes while this one reads them back.
  const size_t chunk = 512;
  std::atomic<bool> send_failed{false};
  const absl::Time start = absl::Now();
  std::thread sender([&] {
    size_t sent = 0;
    int i = 0;
    while (sent < o.bytes) {
      const size_t n = std::min(chunk, o.bytes - sent);
      t.send(Payload(n, i++));
      sent += n;
    }
  });
  size_t back = 0;
  const absl::Time deadline = start + absl::Seconds(120);
  while (back < o.bytes) {
    std::string more = t.receive(deadline);
    if (more.empty()) {
      sender.detach();
      Die(absl::StrCat("throughput: only ", back, " of ", o.bytes, " bytes back in 120 s"));
    }
    back += more.size();
  }
  sender.join();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  if (send_failed) Die("throughput: send failed");
  PrintEcho(us, o, back / secs / 1e6, back, per_rt);
}

int SockEcho(const std::string& path, const EchoOptions& o) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof(a.sun_path)) Die("socket path too long");
  std::memcpy(a.sun_path, path.c_str(), path.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    Die(absl::StrCat("connect ", path, ": ", strerror(errno)));
  }
  Transport t;
  t.send = [fd](const std::string& d) {
    size_t off = 0;
    while (off < d.size()) {
      ssize_t n = write(fd, d.data() + off, d.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) Die(absl::StrCat("socket write: ", strerror(errno)));
      off += n;
    }
  };
  t.receive = [fd](absl::Time deadline) -> std::string {
    for (;;) {
      const int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      if (ms <= 0) return "";
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, ms) <= 0) continue;
      char buf[8192];
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) Die("socket closed by QEMU");
      return std::string(buf, n);
    }
  };
  RunEcho(t, o);
  close(fd);
  return 0;
}

int AttachEcho(const std::string& server, const std::string& channel, const EchoOptions& o) {
  auto client = xenchan::client::Client::Connect(server);
  if (!client.ok()) Die(client.status().ToString());
  auto stream = (*client)->Attach(absl::Minutes(10));
  v1::AttachRequest open;
  open.mutable_open()->set_channel(xenchan::client::ChannelName(channel));
  open.mutable_open()->set_role(v1::SESSION_ROLE_WRITER);
  if (!stream->Send(open)) Die("attach: cannot send open: " + stream->Finish().ToString());
  v1::AttachResponse m;
  if (!stream->Receive(&m) || !m.has_opened()) {
    Die("attach: not opened: " + stream->Finish().ToString());
  }
  uint64_t seq = 0;
  std::string pending;
  Transport t;
  t.send = [&](const std::string& d) {
    v1::AttachRequest w;
    w.mutable_write()->set_sequence_id(++seq);
    w.mutable_write()->set_data(d);
    if (!stream->Send(w)) Die("attach: send failed");
  };
  // Receive blocks in gRPC; the lane's own deadline (boot.py) bounds a hang.
  t.receive = [&](absl::Time) -> std::string {
    while (stream->Receive(&m)) {
      if (m.has_write_rejection()) Die("attach: write rejected: " + m.DebugString());
      if (m.has_lease_lost() || m.has_epoch_change()) Die("attach: " + m.DebugString());
      if (m.has_data() && !m.data().data().empty()) return m.data().data();
    }
    Die("attach: stream ended: " + stream->Finish().ToString());
  };
  RunEcho(t, o);
  stream->HalfClose();
  while (stream->Receive(&m)) {
  }
  const absl::Status s = stream->Finish();
  if (!s.ok()) Die("attach did not finish cleanly: " + s.ToString());
  return 0;
}

volatile sig_atomic_t g_stop = 0;

// Milliseconds of CLOCK_BOOTTIME: /proc/uptime's clock, which the lane's
// scripts stamp their own events with.
long long BootMs() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int WatchStates(int seconds, const std::vector<std::string>& paths) {
  signal(SIGTERM, [](int) { g_stop = 1; });
  signal(SIGINT, [](int) { g_stop = 1; });
  auto xs = xenchan::LibXenStore::Open("");
  if (!xs.ok()) Die(xs.status().ToString());
  for (size_t i = 0; i < paths.size(); ++i) {
    absl::Status s = (*xs)->Watch(paths[i], absl::StrCat("w", i));
    if (!s.ok()) Die(s.ToString());
  }
  const absl::Time end = absl::Now() + absl::Seconds(seconds);
  std::printf("%lld watching %zu paths\n", BootMs(), paths.size());
  std::fflush(stdout);
  while (!g_stop && absl::Now() < end) {
    pollfd p{(*xs)->WatchFd(), POLLIN, 0};
    poll(&p, 1, 200);
    // Every queued event is stamped as it is taken, before any value is
    // read: under TCG each read takes tens of ms, which would otherwise
    // delay the stamps of the events behind it.
    std::vector<std::pair<long long, std::string>> batch;
    while (auto ev = (*xs)->ReadWatch()) batch.emplace_back(BootMs(), ev->path);
    for (const auto& [ms, path] : batch) {
      if (!path.empty() && path[0] == '@') {
        std::printf("%lld %s <event>\n", ms, path.c_str());
        continue;
      }
      auto v = (*xs)->Read(xenchan::kNoTransaction, path);
      std::printf("%lld %s %s\n", ms, path.c_str(),
                  v.ok() ? (v->empty() ? "<empty>" : v->c_str()) : "<gone>");
    }
    std::fflush(stdout);
  }
  return 0;
}

int RingPeek(uint32_t domid, uint32_t ref) {
  xengnttab_handle* g = xengnttab_open(nullptr, 0);
  if (g == nullptr) Die(absl::StrCat("xengnttab_open: ", strerror(errno)));
  void* page = xengnttab_map_grant_ref(g, domid, ref, PROT_READ);
  if (page == nullptr) Die(absl::StrCat("map grant ", ref, " of ", domid, ": ", strerror(errno)));
  const volatile uint32_t* idx =
      reinterpret_cast<const volatile uint32_t*>(static_cast<char*>(page) + 3072);
  const uint32_t in_cons = idx[0], in_prod = idx[1], out_cons = idx[2], out_prod = idx[3];
  std::printf("in_cons=%u in_prod=%u out_cons=%u out_prod=%u in_pending=%u out_pending=%u\n",
              in_cons, in_prod, out_cons, out_prod, in_prod - in_cons, out_prod - out_cons);
  xengnttab_unmap(g, page, 1);
  xengnttab_close(g);
  return 0;
}

int Stamp() {
  std::string line;
  int c;
  while ((c = std::getchar()) != EOF) {
    if (c != '\n') {
      line.push_back(static_cast<char>(c));
      continue;
    }
    std::printf("%lld %s\n", BootMs(), line.c_str());
    line.clear();
  }
  if (!line.empty()) std::printf("%lld %s\n", BootMs(), line.c_str());
  return 0;
}

int Usage() {
  std::fputs(
      "usage: xenlane_probe sock-echo SOCKET [--pings N] [--size B] [--bytes T]\n"
      "       xenlane_probe attach-echo SERVER DOMAIN/CHANNEL [--pings N] [--size B] [--bytes T]\n"
      "       xenlane_probe watch-states SECONDS PATH...\n"
      "       xenlane_probe ring-peek DOMID GRANT_REF\n"
      "       xenlane_probe stamp\n",
      stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc < 2) return Usage();
  const std::string mode = argv[1];
  EchoOptions o;
  if (mode == "sock-echo" && argc >= 3) {
    if (!ParseEchoOptions(argc, argv, 3, &o)) return Usage();
    return SockEcho(argv[2], o);
  }
  if (mode == "attach-echo" && argc >= 4) {
    if (!ParseEchoOptions(argc, argv, 4, &o)) return Usage();
    return AttachEcho(argv[2], argv[3], o);
  }
  if (mode == "watch-states" && argc >= 4) {
    int secs = 0;
    if (!absl::SimpleAtoi(argv[2], &secs) || secs <= 0) return Usage();
    return WatchStates(secs, std::vector<std::string>(argv + 3, argv + argc));
  }
  if (mode == "stamp" && argc == 2) return Stamp();
  if (mode == "ring-peek" && argc == 4) {
    uint32_t domid = 0, ref = 0;
    if (!absl::SimpleAtoi(argv[2], &domid) || !absl::SimpleAtoi(argv[3], &ref)) return Usage();
    return RingPeek(domid, ref);
  }
  return Usage();
}
