// How the simulated toolstack is commanded: the control verbs (control.h)
// served by Host::HandleRequest, the guest commands sent to a domain's
// guest.sock (suspend, resume, shutdown; see guest.h) and `kill`, the life
// cycle verbs (reboot, save, restore, migrate; host_lifecycle.cc), and the
// `domain list` view with its text and JSON renderings.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/platform/xenstore.h"
#include "backend/sim/channel_spec.h"
#include "backend/sim/child_process.h"
#include "backend/sim/control.h"
#include "backend/sim/host.h"
#include "backend/util/json_string.h"

namespace xenchan {
namespace sim {
namespace {

const char* StateName(int s) {
  static const char* kNames[] = {"running", "suspended", "crashed", "shutdown", "dying"};
  return kNames[s];
}

}  // namespace

std::string FormatDomainsText(const std::vector<DomainStatus>& domains) {
  std::string out = "ID\tName\tUUID\tState\tChannels\n";
  for (const DomainStatus& d : domains) {
    std::vector<std::string> chans;
    for (const ChannelStatus& c : d.channels) {
      std::string where = c.connection == "socket" ? c.path : c.tty;
      chans.push_back(
          absl::StrCat(c.devid, ":", c.name, ":", c.connection, where.empty() ? "" : ":", where));
    }
    absl::StrAppend(&out, d.domid, "\t", d.name, "\t", d.uuid, "\t", d.state, "\t",
                    chans.empty() ? "-" : absl::StrJoin(chans, ","), "\n");
  }
  return out;
}

std::string FormatDomainJson(const DomainStatus& d) {
  std::vector<std::string> chans;
  for (const ChannelStatus& c : d.channels) {
    chans.push_back(absl::StrCat("{\"devid\":", c.devid, ",\"name\":", JsonString(c.name),
                                 ",\"connection\":", JsonString(c.connection),
                                 ",\"path\":", JsonString(c.path), ",\"tty\":", JsonString(c.tty),
                                 ",\"backend_state\":", JsonString(c.backend_state), "}"));
  }
  return absl::StrCat("{\"domid\":", d.domid, ",\"name\":", JsonString(d.name),
                      ",\"uuid\":", JsonString(d.uuid), ",\"state\":", JsonString(d.state),
                      ",\"channels\":[", absl::StrJoin(chans, ","), "]}");
}

std::string FormatDomainsJson(const std::vector<DomainStatus>& domains) {
  std::vector<std::string> items;
  for (const DomainStatus& d : domains) items.push_back(FormatDomainJson(d));
  return absl::StrCat("[", absl::StrJoin(items, ","), "]\n");
}

void Host::WriteShutdownRequest(const Domain& d, const char* request) {
  (void)xs_->Write(kNoTransaction, absl::StrCat("/local/domain/", d.domid, "/control/shutdown"),
                   request);
}

absl::StatusOr<std::string> Host::GuestCommand(const Domain& d, const std::string& command) {
  const std::string path = absl::StrCat(options_.state_dir, "/domains/", d.domid, "/guest.sock");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return absl::InvalidArgumentError("path too long");
  std::memcpy(addr.sun_path, path.data(), path.size());
  // The guest process may still be starting: retry connecting until a
  // deadline (the socket appears once it is listening).
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  int fd = -1;
  while (true) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError("socket failed");
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) break;
    const int err = errno;
    close(fd);
    if ((err != ENOENT && err != ECONNREFUSED) || absl::Now() > deadline) {
      return absl::UnavailableError(
          absl::StrCat("guest ", d.name, " control socket: ", std::strerror(err)));
    }
    pollfd none{-1, 0, 0};
    poll(&none, 0, 10);  // back off briefly before the next connect attempt
  }
  const std::string line = command + "\n";
  if (send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    close(fd);
    return absl::UnavailableError("guest control: send failed");
  }
  std::string reply;
  char buf[512];
  const absl::Time reply_deadline = absl::Now() + absl::Seconds(60);
  while (reply.find('\n') == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    const absl::Duration left = reply_deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      close(fd);
      return absl::DeadlineExceededError("guest control: no reply");
    }
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  reply = reply.substr(0, reply.find('\n'));
  if (absl::StartsWith(reply, "ok")) return reply;
  return absl::InternalError(absl::StrCat("guest ", d.name, ": ", reply));
}

absl::Status Host::SuspendDomain(const std::string& domain) {
  MutexLock lock(&mu_);
  auto d = FindLocked(domain);
  if (!d.ok()) return d.status();
  ReapLocked(**d);
  if ((*d)->state != State::kRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat("domain ", (*d)->name, " is ", StateName(static_cast<int>((*d)->state))));
  }
  WriteShutdownRequest(**d, "suspend");
  auto r = GuestCommand(**d, "suspend");
  if (!r.ok()) return r.status();
  (*d)->state = State::kSuspended;
  return absl::OkStatus();
}

absl::Status Host::ResumeDomain(const std::string& domain) {
  MutexLock lock(&mu_);
  auto d = FindLocked(domain);
  if (!d.ok()) return d.status();
  ReapLocked(**d);
  if ((*d)->state != State::kSuspended) {
    return absl::FailedPreconditionError(absl::StrCat("domain ", (*d)->name, " is not suspended"));
  }
  auto r = GuestCommand(**d, "resume");
  if (!r.ok()) return r.status();
  (*d)->state = State::kRunning;
  return absl::OkStatus();
}

absl::Status Host::ShutdownDomain(const std::string& domain) {
  MutexLock lock(&mu_);
  auto d = FindLocked(domain);
  if (!d.ok()) return d.status();
  ReapLocked(**d);
  if ((*d)->state != State::kRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat("domain ", (*d)->name, " is ", StateName(static_cast<int>((*d)->state))));
  }
  WriteShutdownRequest(**d, "poweroff");
  auto r = GuestCommand(**d, "shutdown");
  if (!r.ok()) return r.status();
  (*d)->state = State::kShutdown;
  KillAndReap((*d)->guest_pid, 0);  // it exits by itself once it replied
  (*d)->guest_pid = -1;
  return absl::OkStatus();
}

absl::Status Host::KillDomain(const std::string& domain) {
  MutexLock lock(&mu_);
  auto d = FindLocked(domain);
  if (!d.ok()) return d.status();
  ReapLocked(**d);
  if ((*d)->guest_pid <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("domain ", (*d)->name, " has no guest process"));
  }
  KillAndReap((*d)->guest_pid, SIGKILL);
  (*d)->guest_pid = -1;
  (*d)->state = State::kCrashed;
  return absl::OkStatus();
}

DomainStatus Host::StatusLocked(const Domain& d) {
  DomainStatus st;
  st.domid = d.domid;
  st.name = d.name;
  st.uuid = d.uuid;
  st.state = StateName(static_cast<int>(d.state));
  for (size_t i = 0; i < d.channels.size(); ++i) {
    ChannelStatus c;
    c.devid = static_cast<uint32_t>(i + 1);
    c.name = d.channels[i].name;
    c.connection = ChannelConnectionName(d.channels[i].connection);
    c.path = d.channels[i].path;
    if (d.state != State::kDying) {
      auto tty = xs_->Read(kNoTransaction, absl::StrCat("/local/domain/", d.domid,
                                                        "/device/console/", c.devid, "/tty"));
      if (tty.ok()) c.tty = *tty;
      auto be = xs_->Read(kNoTransaction, absl::StrCat("/local/domain/0/backend/console/", d.domid,
                                                       "/", c.devid, "/state"));
      if (be.ok()) c.backend_state = *be;
    }
    st.channels.push_back(std::move(c));
  }
  return st;
}

std::vector<DomainStatus> Host::ListDomains() {
  MutexLock lock(&mu_);
  SweepGoneLocked();
  std::vector<DomainStatus> out;
  DomainStatus dom0;
  dom0.domid = 0;
  dom0.name = "Domain-0";
  dom0.uuid = "00000000-0000-0000-0000-000000000000";
  dom0.state = "running";
  out.push_back(dom0);
  for (auto& [id, d] : domains_) {
    ReapLocked(d);
    if (d.state == State::kDying && !hypervisor_->Info(id).exists) continue;
    out.push_back(StatusLocked(d));
  }
  return out;
}

absl::StatusOr<std::string> Host::HandleRequest(const ControlRequest& req) {
  const std::string output = req.Get("output").value_or("text");
  if (output != "text" && output != "json") {
    return absl::InvalidArgumentError(absl::StrCat("unknown output format '", output, "'"));
  }
  const bool json = output == "json";
  if (req.verb == "list") {
    auto list = ListDomains();
    return json ? FormatDomainsJson(list) : FormatDomainsText(list);
  }
  if (req.verb == "create") {
    auto name = req.Get("name");
    if (!name.has_value()) return absl::InvalidArgumentError("create: missing name");
    auto d = CreateDomain(*name, req.Get("uuid").value_or(""), req.GetAll("channel"));
    if (!d.ok()) return d.status();
    return json ? FormatDomainJson(*d) + "\n" : absl::StrCat(d->domid, "\n");
  }
  if (req.verb == "restore") {
    auto file = req.Get("file");
    if (!file.has_value()) return absl::InvalidArgumentError("restore: missing file");
    auto d = RestoreDomain(*file);
    if (!d.ok()) return d.status();
    return json ? FormatDomainJson(*d) + "\n" : absl::StrCat(d->domid, "\n");
  }
  auto domain = req.Get("domain");
  if (!domain.has_value()) return absl::InvalidArgumentError(req.verb + ": missing domain");
  if (req.verb == "reboot") {
    auto d = RebootDomain(*domain);
    if (!d.ok()) return d.status();
    return json ? FormatDomainJson(*d) + "\n" : absl::StrCat(d->domid, "\n");
  }
  if (req.verb == "migrate") {
    auto to = req.Get("to");
    if (!to.has_value()) return absl::InvalidArgumentError("migrate: missing to");
    return MigrateDomain(*domain, *to);
  }
  absl::Status s;
  if (req.verb == "save") {
    auto file = req.Get("file");
    if (!file.has_value()) return absl::InvalidArgumentError("save: missing file");
    s = SaveDomain(*domain, *file);
  } else if (req.verb == "destroy") {
    s = DestroyDomain(*domain);
  } else if (req.verb == "suspend") {
    s = SuspendDomain(*domain);
  } else if (req.verb == "resume") {
    s = ResumeDomain(*domain);
  } else if (req.verb == "shutdown") {
    s = ShutdownDomain(*domain);
  } else if (req.verb == "kill") {
    s = KillDomain(*domain);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown verb '", req.verb, "'"));
  }
  if (!s.ok()) return s;
  return std::string();
}

}  // namespace sim
}  // namespace xenchan
