// How the simulated guest process is driven: its control socket (see
// "Control socket" in guest.h), one command per line, and the commands it
// serves: status, suspend, resume (xenbus_dev_resume for each bound device),
// shutdown (xenbus_frontend_dev_shutdown for each Connected device), info,
// and save (guest_save.cc).
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/platform/xenstore.h"
#include "backend/sim/guest/guest_internal.h"
#include "backend/sim/guest/xenbus_text.h"
#include "backend/util/errno_status.h"
#include "backend/util/json_string.h"

namespace xenchan {
namespace sim {
namespace guest {
namespace {

void SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, 1000) > 0) continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return;
  }
}

}  // namespace

absl::Status Guest::ListenControl() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (options_.control_socket.empty() || options_.control_socket.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad control socket path: '", options_.control_socket, "'"));
  }
  memcpy(addr.sun_path, options_.control_socket.data(), options_.control_socket.size());
  unlink(options_.control_socket.c_str());
  control_listen_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (control_listen_ < 0) return absl::InternalError(ErrnoMessage(errno, "socket"));
  if (bind(control_listen_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(control_listen_, 8) != 0) {
    const int err = errno;
    return absl::InternalError(
        ErrnoMessage(err, absl::StrCat("listen on ", options_.control_socket)));
  }
  return absl::OkStatus();
}

void Guest::AcceptControl() {
  while (true) {
    const int fd = accept4(control_listen_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    if (control_clients_.size() >= kMaxControlClients) {
      close(fd);
      continue;
    }
    control_clients_.push_back(ControlClient{fd, ""});
  }
}

bool Guest::ServeControl(ControlClient* client) {
  char buf[1024];
  while (true) {
    const ssize_t n = read(client->fd, buf, sizeof(buf));
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    client->in.append(buf, static_cast<size_t>(n));
    if (client->in.size() > kMaxControlLine && client->in.find('\n') == std::string::npos) {
      SendAll(client->fd, "error line too long\n");
      return false;
    }
  }
  size_t nl;
  while (!done_ && (nl = client->in.find('\n')) != std::string::npos) {
    std::string line = client->in.substr(0, nl);
    client->in.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string reply;
    if (line == "status") {
      reply = Status();
    } else if (line == "suspend") {
      AcknowledgeShutdownRequest();
      if (suspended_) {
        reply = "error already suspended\n";
      } else {
        suspended_ = true;
        reply = "ok suspended\n";
      }
    } else if (line == "resume") {
      reply = suspended_ ? Resume() : "error not suspended\n";
    } else if (line == "shutdown") {
      AcknowledgeShutdownRequest();
      reply = Shutdown();
    } else if (line == "info") {
      reply = Info();
    } else if (line.rfind("save ", 0) == 0 && line.size() > 5) {
      reply = suspended_ ? Save(line.substr(5)) : "error not suspended\n";
    } else {
      reply = absl::StrCat("error unknown command '", absl::CHexEscape(line), "'\n");
    }
    SendAll(client->fd, reply);
  }
  return true;
}

std::string Guest::Status() {
  std::vector<const XenbusDevice*> devs;
  for (const auto& [nodename, dev] : devices_) {
    if (dev->type == "console") devs.push_back(dev.get());
  }
  std::string out = absl::StrCat("ok ", devs.size(), "\n");
  for (const XenbusDevice* dev : devs) {
    const ConsInfo* info = dev->info.get();
    std::string name;
    if (absl::StatusOr<std::string> n =
            xs_->Read(kNoTransaction, absl::StrCat(dev->nodename, "/name"));
        n.ok()) {
      name = *n;
    }
    const Hvc* hvc = info != nullptr ? info->hvc.get() : nullptr;
    absl::StrAppend(
        &out, "{\"nodename\":", JsonString(dev->nodename),
        ",\"devid\":", DevidFromNodename(dev->nodename).value_or(-1),
        ",\"name\":", JsonString(name), ",\"bound\":", dev->bound ? "true" : "false",
        ",\"state\":", dev->state, ",\"hvc\":", hvc != nullptr ? hvc->index : -1,
        ",\"tty\":", JsonString(hvc != nullptr ? hvc->pty->slave_path() : ""),
        ",\"bytes_in\":", info != nullptr ? info->bytes_in : 0,
        ",\"bytes_out\":", info != nullptr ? info->bytes_out : 0, ",\"ring_ref\":",
        info != nullptr && info->gntref.has_value() ? static_cast<int64_t>(*info->gntref) : -1,
        ",\"port\":",
        info != nullptr && info->evtchn.has_value() ? static_cast<int64_t>(*info->evtchn) : -1,
        "}\n");
  }
  return out;
}

std::string Guest::Info() {
  return absl::StrCat("ok {\"boot_id\":", JsonString(boot_id_), ",\"resumes\":", resumes_,
                      ",\"restored\":", restored_ ? "true" : "false", "}\n");
}

std::string Guest::Resume() {
  suspended_ = false;
  ++resumes_;
  std::vector<XenbusDevice*> devs;
  for (auto& [nodename, dev] : devices_) {
    if (dev->bound) devs.push_back(dev.get());
  }
  std::sort(devs.begin(), devs.end(),
            [](const XenbusDevice* a, const XenbusDevice* b) { return a->seq < b->seq; });
  std::vector<std::string> failed;
  for (XenbusDevice* dev : devs) {
    if (DevResume(dev) != 0) failed.push_back(dev->nodename);
  }
  PollAllHvcs();
  if (!failed.empty()) {
    return absl::StrCat("ok resumed ", devs.size() - failed.size(), " failed ",
                        absl::StrJoin(failed, ","), "\n");
  }
  return absl::StrCat("ok resumed ", devs.size(), "\n");
}

// manage.c's shutdown_handler reads control/shutdown and writes it empty
// before it acts.
void Guest::AcknowledgeShutdownRequest() {
  (void)xs_->Write(kNoTransaction, "control/shutdown", "");
}

// xenbus_frontend_dev_shutdown for each Connected device, newest first (the
// driver core shuts devices down in reverse order of registration).
std::string Guest::Shutdown() {
  shutting_down_ = true;
  std::vector<XenbusDevice*> devs;
  for (auto& [nodename, dev] : devices_) devs.push_back(dev.get());
  std::sort(devs.begin(), devs.end(),
            [](const XenbusDevice* a, const XenbusDevice* b) { return a->seq > b->seq; });
  std::vector<std::string> report;
  for (XenbusDevice* dev : devs) {
    const std::string nodename = dev->nodename;
    if (dev->state != kStateConnected) continue;  // "!= Connected, skipping"
    const absl::Time start = absl::Now();
    const absl::Time deadline = start + kShutdownTimeout;
    dev->down = false;
    SwitchState(dev, kStateClosing);
    // Serve xenstore watches (only) until the backend answers Closing.
    while (true) {
      XenbusDevice* d = FindDevice(nodename);
      if (d == nullptr || d->down) break;
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      while (std::optional<XsWatchEvent> ev = xs_->ReadWatch()) HandleWatch(*ev);
      d = FindDevice(nodename);
      if (d == nullptr || d->down) break;
      pollfd p{xs_->WatchFd(), POLLIN, 0};
      const int ms = static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left)));
      if (poll(&p, 1, std::min(ms, 1000)) < 0 && errno != EINTR) break;
    }
    XenbusDevice* d = FindDevice(nodename);
    const bool closed = d == nullptr || d->down;
    const int64_t ms = absl::ToInt64Milliseconds(absl::Now() - start);
    if (!closed) Log(nodename + " timeout closing device");
    report.push_back(absl::StrCat(nodename, "=", closed ? "closed" : "timeout", ":", ms));
  }
  done_ = true;
  return absl::StrCat("ok shutdown", report.empty() ? "" : " ", absl::StrJoin(report, " "), "\n");
}

}  // namespace guest
}  // namespace sim
}  // namespace xenchan
