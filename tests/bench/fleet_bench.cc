// fleet_bench: the fleet's scale and cost (issue 13 item 8, docs/FLEET.md
// "Scale and cost"). A real fleet on this machine: a 3-member etcd cluster
// (Debian's etcd, members on Unix sockets), --hosts xensim hosts, each with
// its real xenchand in the fleet (--fleet-etcd), and --domains_per_host
// domains per host, each with one durable channel (hot-added through
// xenchand, connected by the simulated guest's hvc_xen; no in-guest agent is
// needed for any figure). Then:
//
//  1. setup: how long etcd, the hosts, the domains (`xensim domain create`,
//     one simulated guest process each) and the channels took, and until
//     every record and declaration was in etcd and in a xenchand's view;
//  2. steady state, nothing changing, over --window_seconds: etcd writes per
//     host (a watch of the fleet prefix, each write attributed to the host
//     its record names) and the store revision's delta, goal 0; lease
//     keep-alives counted apart (etcd's lease_renewed metric); xenchand CPU
//     microseconds per second, RSS, fds and threads per host (/proc), and
//     every process's CPU with the CPUs its threads ran on (proc_stats.h);
//  3. LocateDomain through one xenchand for random domains of every host, by
//     UUID and by name (--locates calls per run, --repeats runs:
//     p50/p99/min/max), ListHosts, and the fleet's domain list (WatchFleet's
//     snapshot up to SYNCED, what `xenchanctl --fleet domains` reads);
//  4. migration: --migrations times `xensim domain migrate` of a domain never
//     moved before to the next host; the time until the CLI returned, until
//     the destination's WatchChannels shows the durable channel CONNECTED, and
//     until another host's WatchFleet shows the domain on the destination
//     (min/median/max);
//  5. steady state again after the migrations (goal 0 writes again).
//
// Usage: fleet_bench [--hosts 3] [--domains_per_host 100] [--repeats 3]
//   [--locates 1000] [--migrations 5] [--window_seconds 10] [--lease_ttl_seconds 10]
// Prints how it was run, the figures with their goals, then one
// `RESULT name=value` line each.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/lib/client.h"
#include "clients/lib/fleet_client.h"
#include "server/etcd/client.h"
#include "server/fleet/records.h"
#include "tests/bench/bench_process.h"
#include "tests/bench/bench_report.h"
#include "tests/bench/fleet_bench_etcd.h"
#include "tests/bench/fleet_bench_proc.h"
#include "tests/bench/proc_stats.h"
#include "tests/etcd/etcd_cluster.h"
#include "tests/server/xenchand_process.h"
#include "tests/sim/xensim_process.h"

ABSL_FLAG(int32_t, hosts, 3, "simulated Xen hosts (xensim + xenchand each)");
ABSL_FLAG(int32_t, domains_per_host, 100, "domains per host, one durable channel each");
ABSL_FLAG(int32_t, repeats, 3, "runs per latency figure");
ABSL_FLAG(int32_t, locates, 1000, "LocateDomain calls per run (ListHosts: a fifth, lists: 1/50)");
ABSL_FLAG(int32_t, migrations, 5, "migrations measured (each of a domain never moved before)");
ABSL_FLAG(double, window_seconds, 10, "steady-state window");
ABSL_FLAG(int32_t, lease_ttl_seconds, 10, "xenchand --fleet-lease-ttl (keep-alive every TTL/3)");
ABSL_FLAG(double, quiet_seconds, 2, "no etcd write for this long before a window starts");
ABSL_FLAG(uint32_t, seed, 1, "random seed of the domains located");

namespace xenchan {
namespace bench {
namespace {

constexpr char kPrefix[] = "/xenchan/v1/";
constexpr char kChannel[] = "org.xenchan.bench.0";

// The figures and goals of this run (main thread only); every goal here is
// an upper bound.
Report::Style ReportStyle() {
  Report::Style style;
  style.goal_width = 62;
  style.bound_width = 6;
  return style;
}
Report g_report(ReportStyle());

void Result(const std::string& name, double value, const char* unit) {
  g_report.Result(name, value, unit);
}

void Goal(const std::string& what, double figure, double bound) {
  g_report.Goal(what, figure, bound, /*at_most=*/true);
}

double Since(absl::Time t0) { return absl::ToDoubleSeconds(absl::Now() - t0); }

// Repeated samples of one figure: p50/p99 per run, min/median/max of runs.
struct Latency {
  Spread p50, p99;
  double min = 0, max = 0;
};
Latency Repeat(const std::string& name, int repeats, int calls, const std::function<void(int)>& f) {
  std::vector<double> p50, p99, all;
  for (int r = 0; r < repeats; ++r) {
    std::vector<double> us = TimeCalls(calls, r * calls, f);
    std::sort(us.begin(), us.end());
    p50.push_back(Percentile(us, 0.5));
    p99.push_back(Percentile(us, 0.99));
    all.insert(all.end(), us.begin(), us.end());
  }
  Latency l{SpreadOf(p50), SpreadOf(p99), *std::min_element(all.begin(), all.end()),
            *std::max_element(all.begin(), all.end())};
  printf(
      "  %s: p50 %.1f us (runs %.1f-%.1f), p99 %.1f us (runs %.1f-%.1f), min %.1f, max %.1f, "
      "n=%d x %d\n",
      name.c_str(), l.p50.median, l.p50.min, l.p50.max, l.p99.median, l.p99.min, l.p99.max, l.min,
      l.max, repeats, calls);
  return l;
}

struct Domain {
  std::string name;
  std::string uuid;
};

struct Host {
  std::string id;
  std::unique_ptr<simtest::XensimProcess> sim;
  std::unique_ptr<servertest::XenchandProcess> server;
  std::unique_ptr<client::Client> client;
  std::vector<Domain> domains;
  double create_seconds = 0;   // xensim domain create, all of this host's domains
  double channel_seconds = 0;  // CreateChannel (durable, wait until connected), all of them
  std::string error;
};

// One host's domains and their durable channels (on its own thread).
void PopulateHost(Host& h, int count) {
  absl::Time t0 = absl::Now();
  for (int i = 0; i < count; ++i) {
    const std::string name = absl::StrFormat("%s-d%03d", h.id, i);
    auto domid = h.sim->CreateDomain(name);
    if (!domid.ok()) {
      h.error = absl::StrCat("domain create ", name, ": ", domid.status().ToString());
      return;
    }
    h.domains.push_back(Domain{name, ""});
  }
  h.create_seconds = Since(t0);
  t0 = absl::Now();
  for (Domain& d : h.domains) {
    v1::CreateChannelRequest req;
    req.set_parent("domains/" + d.name);
    req.set_channel_id(kChannel);
    req.mutable_config()->set_lifetime(v1::CHANNEL_LIFETIME_DURABLE);
    req.set_wait_until_connected(true);
    auto ch = h.client->CreateChannel(req, absl::Seconds(60));
    if (!ch.ok()) {
      h.error = absl::StrCat("create channel on ", d.name, ": ", ch.status().ToString());
      return;
    }
    d.uuid = ch->domain_uuid();
  }
  h.channel_seconds = Since(t0);
}

// Everything the fleet published: host, domain and declaration keys.
struct KeyCounts {
  size_t hosts = 0, domains = 0, declarations = 0;
};
KeyCounts CountKeys(etcd::Client& etcd) {
  KeyCounts k;
  auto count = [&](const std::string& prefix) -> size_t {
    auto r = etcd.GetPrefix(prefix);
    return r.ok() ? r->kvs.size() : 0;
  };
  k.hosts = count(fleet::HostsPrefix(kPrefix));
  k.domains = count(fleet::DomainsPrefix(kPrefix));
  k.declarations = count(fleet::DeclarationsPrefix(kPrefix));
  return k;
}

// The fleet's domains as one xenchand's WatchFleet snapshot shows them.
size_t SnapshotDomains(client::FleetClient& fleet, const std::string& host_filter = "") {
  size_t n = 0;
  v1::WatchFleetRequest req;
  absl::Status s = fleet.WatchFleet(req, [&](const v1::WatchFleetResponse& m) {
    if (m.type() == v1::FLEET_EVENT_TYPE_SYNCED) return false;
    if (m.has_domain() && (host_filter.empty() || m.domain().host() == host_filter)) ++n;
    return true;
  });
  if (!s.ok()) Die("WatchFleet: " + s.ToString());
  return n;
}

// Steady state over `seconds`: writes per host from etcd's side, keep-alives,
// and every xenchand's CPU and memory, as RESULT lines and goals.
void SteadyWindow(const std::string& tag, std::vector<Host>& hosts, FleetWriteCounter& counter,
                  etcd::Client& etcd, const std::vector<std::string>& endpoints, double seconds,
                  double quiet, int ttl_seconds) {
  const absl::Time q0 = absl::Now();
  if (!counter.WaitQuiet(absl::Seconds(quiet), absl::Seconds(120))) {
    Die("the fleet never went quiet in etcd (120 s)");
  }
  printf("  quiet (no etcd write for %.1f s) after %.2f s\n", quiet, Since(q0));
  const auto tree0 = SampleTree();
  std::vector<PidSample> p0;
  for (Host& h : hosts) p0.push_back(SamplePid(h.server->pid()));
  const FleetWriteCounter::Counts c0 = counter.counts();
  auto rev0 = StoreRevision(etcd);
  auto ka0 = LeaseRenewals(endpoints);
  if (!rev0.ok() || !ka0.ok()) Die("etcd: " + rev0.status().ToString() + ka0.status().ToString());
  const absl::Time t0 = absl::Now();
  absl::SleepFor(absl::Seconds(seconds));
  const double elapsed = Since(t0);
  const FleetWriteCounter::Counts c1 = counter.counts();
  auto rev1 = StoreRevision(etcd);
  auto ka1 = LeaseRenewals(endpoints);
  if (!rev1.ok() || !ka1.ok()) Die("etcd: " + rev1.status().ToString() + ka1.status().ToString());
  std::vector<PidSample> p1;
  for (Host& h : hosts) p1.push_back(SamplePid(h.server->pid()));
  const auto tree1 = SampleTree();

  double total = 0, cpu_max = 0, rss_max = 0;
  for (size_t i = 0; i < hosts.size(); ++i) {
    auto before = c0.per_host.find(hosts[i].id);
    auto after = c1.per_host.find(hosts[i].id);
    const uint64_t w = (after == c1.per_host.end() ? 0 : after->second) -
                       (before == c0.per_host.end() ? 0 : before->second);
    const double cpu_us = (p1[i].cpu_seconds - p0[i].cpu_seconds) * 1e6 / elapsed;
    total += w;
    cpu_max = std::max(cpu_max, cpu_us);
    rss_max = std::max(rss_max, p1[i].rss_kib / 1024.0);
    printf(
        "  %-8s etcd writes %llu (%.3g/s, goal 0)  xenchand cpu %.0f us/s  rss %.1f MiB  "
        "fds %d  threads %d\n",
        hosts[i].id.c_str(), static_cast<unsigned long long>(w), w / elapsed, cpu_us,
        p1[i].rss_kib / 1024.0, p1[i].fds, p1[i].threads);
  }
  const uint64_t unattributed = c1.events - c0.events - static_cast<uint64_t>(total);
  const double revisions = static_cast<double>(*rev1 - *rev0);
  const double keepalives = *ka1 - *ka0;
  printf(
      "  whole cluster: %.0f revisions (every write bumps it; goal 0), %llu fleet writes "
      "unattributed; lease keep-alives %.0f = %.3g/s per host (expected 1 per TTL/3 = %.3g/s)\n",
      revisions, static_cast<unsigned long long>(unattributed), keepalives,
      keepalives / elapsed / hosts.size(), 3.0 / ttl_seconds);
  PrintPerMessage("second of steady state", tree0, tree1, elapsed);
  const double rate = (total + unattributed) / elapsed;
  Result(tag + "_writes_per_second", rate, "/s (all hosts)");
  Result(tag + "_writes_per_second_per_host", rate / hosts.size(), "/s");
  Result(tag + "_revisions", revisions, "");
  Result(tag + "_keepalives_per_second_per_host", keepalives / elapsed / hosts.size(), "/s");
  Result(tag + "_xenchand_cpu_us_per_second_max", cpu_max, "us/s");
  Result(tag + "_xenchand_rss_mib_max", rss_max, "MiB");
  Goal(tag + ": etcd writes/s per host (nothing changing)", rate / hosts.size(), 0);
  Goal(tag + ": etcd revisions in the window", revisions, 0);
}

// Migration `k`: a domain never moved before, from host k % H to the next.
struct MigrationTimes {
  double cli_ms = 0, connected_ms = 0, located_ms = 0;
};
MigrationTimes Migrate(std::vector<Host>& hosts, int k) {
  const size_t n = hosts.size();
  Host& src = hosts[k % n];
  Host& dst = hosts[(k + 1) % n];
  Host& observer = hosts[(k + 2) % n];
  const Domain d = src.domains[k / n];
  std::atomic<int64_t> connected_ns{0}, located_ns{0};
  std::atomic<bool> synced_dst{false}, synced_obs{false};
  grpc::ClientContext dst_ctx, obs_ctx;
  std::thread dst_watch([&] {
    v1::WatchChannelsRequest req;
    req.set_parent("domains/-");
    (void)dst.client->Watch(
        req,
        [&](const v1::WatchChannelsResponse& m) {
          if (m.type() == v1::CHANNEL_EVENT_TYPE_SYNCED) synced_dst = true;
          if (m.has_channel() && m.channel().domain_uuid() == d.uuid &&
              m.channel().state() == v1::CHANNEL_STATE_CONNECTED) {
            connected_ns = absl::ToUnixNanos(absl::Now());
            return false;
          }
          return true;
        },
        &dst_ctx);
  });
  auto fleet = client::FleetClient::Connect(observer.server->unix_target());
  if (!fleet.ok()) Die(fleet.status().ToString());
  std::thread obs_watch([&] {
    (void)(*fleet)->WatchFleet(
        v1::WatchFleetRequest(),
        [&](const v1::WatchFleetResponse& m) {
          if (m.type() == v1::FLEET_EVENT_TYPE_SYNCED) synced_obs = true;
          if (synced_obs && m.has_domain() && m.domain().uuid() == d.uuid &&
              m.domain().host() == "hosts/" + dst.id) {
            located_ns = absl::ToUnixNanos(absl::Now());
            return false;
          }
          return true;
        },
        &obs_ctx);
  });
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  auto until = [&](const std::function<bool()>& cond) {
    while (!cond() && absl::Now() < deadline) absl::SleepFor(absl::Microseconds(200));
    return cond();
  };
  if (!until([&] { return synced_dst && synced_obs; })) Die("the watches did not sync");
  const absl::Time t0 = absl::Now();
  auto r = src.sim->Cli({"domain", "migrate", d.name, "--to", dst.sim->state_dir()});
  const double cli_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  if (r.exit_code != 0) Die("migrate " + d.name + ": " + r.err);
  const bool ok = until([&] { return connected_ns != 0 && located_ns != 0; });
  dst_ctx.TryCancel();
  obs_ctx.TryCancel();
  dst_watch.join();
  obs_watch.join();
  if (!ok) {
    Die(absl::StrCat("migration of ", d.name, " to ", dst.id, ": connected ", connected_ns != 0,
                     ", located ", located_ns != 0, "\n", dst.server->log()));
  }
  const int64_t t0_ns = absl::ToUnixNanos(t0);
  MigrationTimes m{cli_ms, (connected_ns - t0_ns) / 1e6, (located_ns - t0_ns) / 1e6};
  printf("  %s %s -> %s: cli %.1f ms, connected on %s %.1f ms, located there via %s %.1f ms\n",
         d.name.c_str(), src.id.c_str(), dst.id.c_str(), m.cli_ms, dst.id.c_str(), m.connected_ms,
         observer.id.c_str(), m.located_ms);
  return m;
}

void Spread3(const std::string& name, std::vector<double> v, const char* unit) {
  const Spread s = SpreadOf(std::move(v));
  printf("  %s: median %.1f %s (min %.1f, max %.1f)\n", name.c_str(), s.median, unit, s.min, s.max);
  Result(name + "_median", s.median, unit);
  Result(name + "_max", s.max, unit);
}

int Main() {
  const int nhosts = std::max(1, absl::GetFlag(FLAGS_hosts));
  const int per_host = std::max(1, absl::GetFlag(FLAGS_domains_per_host));
  const int repeats = std::max(1, absl::GetFlag(FLAGS_repeats));
  const int locates = std::max(1, absl::GetFlag(FLAGS_locates));
  const int migrations =
      std::min(std::max(0, absl::GetFlag(FLAGS_migrations)), nhosts > 1 ? nhosts * per_host : 0);
  const double window = std::max(0.1, absl::GetFlag(FLAGS_window_seconds));
  const double quiet = std::max(0.0, absl::GetFlag(FLAGS_quiet_seconds));
  const int ttl = std::max(2, absl::GetFlag(FLAGS_lease_ttl_seconds));
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  printf("fleet_bench: how it was run\n");
  printf(
      "  %d hosts x %d domains, one durable channel each; %d runs per latency figure, %d "
      "LocateDomain calls per run; %d migrations; steady-state windows of %.1f s after %.1f s "
      "without an etcd write; lease TTL %d s\n",
      nhosts, per_host, repeats, locates, migrations, window, quiet, ttl);
  printf(
      "  cpus: %ld (bench main thread on cpu %d); load average %.2f %.2f %.2f at start\n"
      "  etcd: 3 members (/usr/bin/etcd, Unix sockets, heartbeat 50 ms, election 500 ms); per "
      "host: xensim serve + xenchand --platform=sim --fleet-etcd=<the 3 members> (children)\n"
      "  client: clients/lib over xenchand's Unix socket (sync stubs)\n\n",
      sysconf(_SC_NPROCESSORS_ONLN), CurrentCpu(), load[0], load[1], load[2]);

  // -- 1. setup ----------------------------------------------------------
  printf("setup:\n");
  // One per guest, and one per xenchand (its policy file watcher).
  {
    const InotifyRoom room = CheckInotifyRoom();
    const int needed = nhosts * per_host + nhosts;
    printf("  inotify instances: %d in use by uid %d, limit %d, this run needs about %d more\n",
           room.used, static_cast<int>(getuid()), room.limit, needed);
    if (room.limit > 0 && room.limit - room.used < needed) {
      Die(absl::StrCat("not enough inotify instances for ", needed,
                       " simulated guests (one each): raise the limit, e.g. "
                       "`sysctl fs.inotify.max_user_instances=",
                       std::max(1024, room.used + needed + 64), "`"));
    }
  }
  const absl::Time setup0 = absl::Now();
  auto cluster = etcdtest::EtcdCluster::Start(3);
  if (!cluster.ok()) Die(cluster.status().ToString());
  std::unique_ptr<etcdtest::EtcdCluster> etcd_cluster = *std::move(cluster);
  const std::vector<std::string> endpoints = etcd_cluster->endpoints();
  etcd::ClientOptions eo;
  eo.endpoints = endpoints;
  auto etcd_client = etcd::Client::Create(eo);
  if (!etcd_client.ok()) Die(etcd_client.status().ToString());
  std::shared_ptr<etcd::Client> etcd = *std::move(etcd_client);
  const double etcd_s = Since(setup0);

  std::vector<Host> hosts(nhosts);
  // Stops every child process, gracefully: at the end, and on Die.
  auto stop_all = [&] {
    for (Host& h : hosts) h.client.reset();
    for (Host& h : hosts) {
      if (h.server) h.server->Stop();
    }
    for (Host& h : hosts) h.sim.reset();
    etcd_cluster.reset();
  };
  const ScopedCleanup cleanup(stop_all);
  const absl::Time hosts0 = absl::Now();
  for (int i = 0; i < nhosts; ++i) {
    Host& h = hosts[i];
    h.id = absl::StrCat("host", i + 1);
    auto sim = simtest::XensimProcess::Start();
    if (!sim.ok()) Die(sim.status().ToString());
    h.sim = *std::move(sim);
    const std::string sock = h.sim->scratch_dir() + "/x.sock";
    auto server = servertest::XenchandProcess::Start(
        h.sim->state_dir(), sock,
        {"--fleet-etcd", absl::StrJoin(endpoints, ","), "--fleet-host-id", h.id,
         "--fleet-advertise", "unix://" + sock, "--fleet-lease-ttl", absl::StrCat(ttl, "s")});
    if (!server.ok()) Die(server.status().ToString());
    h.server = *std::move(server);
    auto c = client::Client::Connect(h.server->unix_target());
    if (!c.ok()) Die(c.status().ToString());
    h.client = *std::move(c);
  }
  const double hosts_s = Since(hosts0);

  const absl::Time pop0 = absl::Now();
  {
    std::vector<std::thread> threads;
    for (Host& h : hosts) threads.emplace_back([&h, per_host] { PopulateHost(h, per_host); });
    for (std::thread& t : threads) t.join();
  }
  for (Host& h : hosts) {
    if (!h.error.empty()) Die(h.id + ": " + h.error);
  }
  const double pop_s = Since(pop0);
  double create_s = 0, channel_s = 0;
  for (const Host& h : hosts) {
    create_s = std::max(create_s, h.create_seconds);
    channel_s = std::max(channel_s, h.channel_seconds);
  }

  // Converged: every record and declaration in etcd, and in host 1's view.
  const absl::Time conv0 = absl::Now();
  const size_t total_domains = static_cast<size_t>(nhosts) * per_host;
  auto fleet1 = client::FleetClient::Connect(hosts[0].server->unix_target());
  if (!fleet1.ok()) Die(fleet1.status().ToString());
  for (;;) {
    const KeyCounts k = CountKeys(*etcd);
    if (k.hosts == hosts.size() && k.domains == total_domains && k.declarations == total_domains &&
        SnapshotDomains(**fleet1) == total_domains) {
      break;
    }
    if (Since(conv0) > 120) {
      Die(absl::StrCat("the fleet did not converge: ", k.hosts, " hosts, ", k.domains, " domains, ",
                       k.declarations, " declarations in etcd"));
    }
    absl::SleepFor(absl::Milliseconds(50));  // setup only
  }
  const double conv_s = Since(conv0);
  printf(
      "  etcd cluster %.2f s; %d xensim + xenchand %.2f s; %zu domains and channels %.2f s wall "
      "(hosts in parallel; slowest host: domain create %.2f s = %.1f ms/domain, durable "
      "CreateChannel until connected %.2f s = %.1f ms/channel); fleet converged in etcd and in "
      "host1's view %.2f s later\n",
      etcd_s, nhosts, hosts_s, total_domains, pop_s, create_s, create_s * 1e3 / per_host, channel_s,
      channel_s * 1e3 / per_host, conv_s);
  Result("setup_seconds", Since(setup0), "s");
  Result("domain_create_ms_per_domain", create_s * 1e3 / per_host, "ms");
  Result("channel_create_ms_per_channel", channel_s * 1e3 / per_host, "ms");
  Result("fleet_converged_seconds", conv_s, "s");
  Result("fleet_domains", static_cast<double>(SnapshotDomains(**fleet1)), "");

  // -- 2. steady state ---------------------------------------------------
  auto counter = FleetWriteCounter::Start(etcd, kPrefix);
  if (!counter.ok()) Die(counter.status().ToString());
  printf("\nsteady state, nothing changing (%.1f s):\n", window);
  SteadyWindow("steady", hosts, **counter, *etcd, endpoints, window, quiet, ttl);

  // -- 3. LocateDomain, ListHosts, the fleet's domain list ---------------
  printf("\nthrough %s's FleetService (random domains of every host):\n", hosts[0].id.c_str());
  std::vector<const Domain*> all;
  for (const Host& h : hosts) {
    for (const Domain& d : h.domains) all.push_back(&d);
  }
  std::mt19937 rng(absl::GetFlag(FLAGS_seed));
  std::uniform_int_distribution<size_t> pick(0, all.size() - 1);
  std::map<std::string, int> located_on;
  const auto tree0 = SampleTree();
  const Latency by_uuid = Repeat("LocateDomain by UUID", repeats, locates, [&](int) {
    const Domain& d = *all[pick(rng)];
    auto l = (*fleet1)->LocateDomain(d.uuid);
    if (!l.ok() || l->domain.uuid() != d.uuid) Die("LocateDomain " + d.uuid);
    ++located_on[l->host.host_id()];
  });
  const auto tree1 = SampleTree();
  PrintPerMessage("LocateDomain", tree0, tree1, static_cast<double>(repeats) * locates);
  std::vector<std::string> spread;
  for (const auto& [h, n] : located_on) spread.push_back(absl::StrCat(h, " ", n));
  printf("  located on: %s\n", absl::StrJoin(spread, ", ").c_str());
  const Latency by_name = Repeat("LocateDomain by name", repeats, locates, [&](int) {
    const Domain& d = *all[pick(rng)];
    auto l = (*fleet1)->LocateDomain(d.name);
    if (!l.ok() || l->domain.uuid() != d.uuid) Die("LocateDomain " + d.name);
  });
  const Latency list_hosts = Repeat("ListHosts", repeats, std::max(1, locates / 5), [&](int) {
    auto l = (*fleet1)->ListHosts();
    if (!l.ok() || l->size() != hosts.size()) Die("ListHosts");
  });
  const Latency list_domains = Repeat("fleet domain list (WatchFleet snapshot to SYNCED)", repeats,
                                      std::max(1, locates / 50), [&](int) {
                                        if (SnapshotDomains(**fleet1) != total_domains)
                                          Die("fleet domain list");
                                      });
  Result("locate_uuid_p50_us", by_uuid.p50.median, "us");
  Result("locate_uuid_p99_us", by_uuid.p99.median, "us");
  Result("locate_uuid_max_us", by_uuid.max, "us");
  Result("locate_name_p50_us", by_name.p50.median, "us");
  Result("locate_name_p99_us", by_name.p99.median, "us");
  Result("list_hosts_p50_us", list_hosts.p50.median, "us");
  Result("fleet_domain_list_p50_us", list_domains.p50.median, "us");
  Result("fleet_domain_list_p99_us", list_domains.p99.median, "us");

  // -- 4. migrations -----------------------------------------------------
  printf("\nmigrations (xensim domain migrate to the next host):\n");
  std::vector<double> cli, connected, located;
  const uint64_t writes0 = (*counter)->counts().events;
  for (int k = 0; k < migrations; ++k) {
    const MigrationTimes m = Migrate(hosts, k);
    cli.push_back(m.cli_ms);
    connected.push_back(m.connected_ms);
    located.push_back(m.located_ms);
  }
  if (migrations > 0) {
    Spread3("migrate_cli_ms", cli, "ms");
    Spread3("migrate_to_connected_ms", connected, "ms");
    Spread3("migrate_to_located_ms", located, "ms");
  }
  Result("migrations", migrations, "");
  if (migrations > 0) {
    // The same counter as the steady-state windows: it does see the fleet's
    // writes (a domain's claim, the source letting go, the declaration).
    (*counter)->WaitQuiet(absl::Seconds(quiet), absl::Seconds(120));
    Result("etcd_writes_per_migration",
           static_cast<double>((*counter)->counts().events - writes0) / migrations, "");
  }

  // -- 5. steady state after the migrations ------------------------------
  printf("\nsteady state after the migrations (%.1f s):\n", window);
  SteadyWindow("after_migration", hosts, **counter, *etcd, endpoints, window, quiet, ttl);

  g_report.PrintGoals("goals (issue 13 item 8; LocateDomain and migration have none named):");
  g_report.PrintResults();
  counter->reset();
  stop_all();
  return 0;
}

}  // namespace
}  // namespace bench
}  // namespace xenchan

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  xenchan::bench::InitTool("fleet_bench");
  // The helpers find etcd's peers, xensim and xenchand in the runfiles
  // (TEST_SRCDIR under `bazel test`; next to the binary when run directly).
  xenchan::bench::UseOwnRunfiles();
  return xenchan::bench::Main();
}
