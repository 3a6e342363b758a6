// Waiting for a channel's backend to connect, from the guest side (see
// connection.h).
#include "clients/agent/connection.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>

// Debian's xenstore.h has no extern "C" guard of its own.
extern "C" {
#include <xenstore.h>
}

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace xenchan {
namespace agent {
namespace {

std::string JoinRoot(const std::string& root, const std::string& path) {
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  if (r == "/") r.clear();
  return r + path;
}

std::optional<std::string> ReadAttribute(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

struct XsCloser {
  void operator()(xs_handle* h) const { xs_close(h); }
};
using XsHandle = std::unique_ptr<xs_handle, XsCloser>;

std::optional<std::string> XsRead(xs_handle* h, const std::string& path) {
  unsigned int len = 0;
  void* v = xs_read(h, XBT_NULL, path.c_str(), &len);
  if (v == nullptr) return std::nullopt;
  std::string out(static_cast<const char*>(v), len);
  free(v);
  return out;
}

}  // namespace

absl::Status WaitUntilConnected(const std::string& root, const std::string& channel, int stop_fd,
                                const std::function<void(const std::string&)>& log,
                                ConnectionWaitResult* result) {
  *result = ConnectionWaitResult();
  const std::string bus = JoinRoot(root, "/sys/bus/xen/devices");
  DIR* dir = opendir(bus.c_str());
  if (dir == nullptr) {
    result->detail = absl::StrCat("no ", bus, ": relying on the application-level hello");
    return absl::OkStatus();
  }
  std::vector<std::string> consoles;
  while (dirent* e = readdir(dir)) {
    if (absl::StartsWith(e->d_name, "console-")) consoles.push_back(e->d_name);
  }
  closedir(dir);
  if (consoles.empty()) {
    result->detail =
        absl::StrCat("no console devices in ", bus, ": relying on the application-level hello");
    return absl::OkStatus();
  }
  XsHandle xs(xs_open(0));
  if (xs == nullptr) {
    result->detail = absl::StrCat("xenstore unreachable (", std::strerror(errno),
                                  "): relying on the application-level hello");
    return absl::OkStatus();
  }
  std::string device, nodename;
  for (const std::string& c : consoles) {
    std::optional<std::string> node = ReadAttribute(absl::StrCat(bus, "/", c, "/nodename"));
    if (!node.has_value() || node->empty()) continue;
    std::optional<std::string> name = XsRead(xs.get(), absl::StrCat(*node, "/name"));
    if (name.has_value() && *name == channel) {
      device = c;
      nodename = *node;
      break;
    }
  }
  if (device.empty()) {
    result->detail = absl::StrCat("no console device in ", bus, " is named ", channel,
                                  ": relying on the application-level hello");
    return absl::OkStatus();
  }
  const std::string state_node = absl::StrCat(nodename, "/state");
  const std::string state_attr = absl::StrCat(bus, "/", device, "/state");
  if (!xs_watch(xs.get(), state_node.c_str(), "state")) {
    result->detail = absl::StrCat("cannot watch ", state_node, " (", std::strerror(errno),
                                  "): relying on the application-level hello");
    return absl::OkStatus();
  }
  bool told = false;
  while (true) {
    const std::optional<std::string> xs_state = XsRead(xs.get(), state_node);
    const std::optional<std::string> sysfs_state = ReadAttribute(state_attr);
    if ((xs_state.has_value() && *xs_state == "4") ||
        (sysfs_state.has_value() && *sysfs_state == "Connected")) {
      result->waited = true;
      result->detail = absl::StrCat(device, " (", nodename, ") is Connected");
      return absl::OkStatus();
    }
    if (!told) {
      log(absl::StrCat("waiting for ", device, " (", nodename, ") to be Connected (state ",
                       xs_state.value_or("absent"), ")"));
      told = true;
    }
    pollfd fds[2] = {{xs_fileno(xs.get()), POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    if (fds[1].revents != 0) return absl::CancelledError("stopping");
    if (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
      result->detail = "xenstore connection lost: relying on the application-level hello";
      return absl::OkStatus();
    }
    while (char** ev = xs_check_watch(xs.get())) free(ev);
  }
}

}  // namespace agent
}  // namespace xenchan
