// The xenchan-agent loop: find the channel by name, raw mode, wait for the
// connection, serve lines, reopen after hangup (see agent.h).
#include "clients/agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clients/agent/connection.h"

namespace xenchan {
namespace agent {
namespace {

void Log(const std::string& message) {
  std::fprintf(stderr, "xenchan-agent: %s\n", message.c_str());
  std::fflush(stderr);
}

bool IsValidChannelName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return name != "." && name != "..";
}

std::string JoinRoot(const std::string& root, const std::string& path) {
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  if (r == "/") r.clear();
  return r + path;
}

// True if `fd` is readable now (used for the stop descriptor).
bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(AgentOptions options) {
  if (!IsValidChannelName(options.channel)) {
    return absl::InvalidArgumentError(
        absl::StrCat("channel name \"", options.channel, "\" is not 1-64 of [A-Za-z0-9._-]"));
  }
  if (options.max_line_bytes < 64 || options.max_line_bytes > (64u << 20)) {
    return absl::InvalidArgumentError("max line bytes must be within 64 B .. 64 MiB");
  }
  Handler::Options h;
  h.root = options.root;
  h.target_root = options.target_root;
  h.max_line_bytes = options.max_line_bytes;
  absl::StatusOr<std::unique_ptr<Handler>> handler = Handler::Create(std::move(h));
  if (!handler.ok()) return handler.status();
  return std::unique_ptr<Agent>(new Agent(std::move(options), *std::move(handler)));
}

std::string Agent::ChannelPath() const {
  return JoinRoot(options_.root, absl::StrCat("/dev/xen-channel/", options_.channel));
}

absl::Status Agent::Run(int stop_fd) {
  Log(absl::StrCat("version ", kAgentVersion, ", channel ", ChannelPath(), ", target root ",
                   options_.target_root));
  bool backoff = false;
  while (true) {
    absl::StatusOr<int> fd = OpenChannel(stop_fd, backoff);
    if (!fd.ok()) {
      if (absl::IsCancelled(fd.status())) break;
      return fd.status();
    }
    bool read_any = false;
    absl::Status served = Serve(*fd, stop_fd, &read_any);
    close(*fd);
    // A tty that hangs up before delivering anything may be a stale one:
    // do not spin on it.
    backoff = !read_any;
    if (absl::IsCancelled(served)) break;
    if (!served.ok()) return served;
    Log("channel hung up; reopening it by name");
  }
  Log("stopping");
  return absl::OkStatus();
}

absl::StatusOr<int> Agent::OpenChannel(int stop_fd, bool backoff) {
  const std::string path = ChannelPath();
  const int inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify < 0) return absl::InternalError(absl::StrCat("inotify: ", std::strerror(errno)));
  std::string last_error;
  int fd = -1;
  while (true) {
    // (Re)arm the watches each round: the directories may appear late.
    const uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF;
    inotify_add_watch(inotify, JoinRoot(options_.root, "/dev").c_str(), mask);
    inotify_add_watch(inotify, JoinRoot(options_.root, "/dev/xen-channel").c_str(), mask);

    std::string error;
    if (backoff) {
      backoff = false;
      error = "hung up at once";
    } else {
      fd = open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) break;
      error = std::strerror(errno);
    }
    if (error != last_error) {
      Log(absl::StrCat("waiting for ", path, " (", error, ")"));
      last_error = error;
    }
    pollfd fds[2] = {{inotify, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (poll(fds, 2, 1000) < 0 && errno != EINTR) {
      const int err = errno;
      close(inotify);
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(err)));
    }
    if (fds[1].revents != 0) {
      close(inotify);
      return absl::CancelledError("stopping");
    }
    char buf[4096];
    while (read(inotify, buf, sizeof(buf)) > 0) {
    }
  }
  close(inotify);

  termios t;
  if (tcgetattr(fd, &t) == 0) {
    cfmakeraw(&t);
    if (tcsetattr(fd, TCSANOW, &t) != 0) {
      Log(absl::StrCat("cannot set raw mode on ", path, ": ", std::strerror(errno)));
    }
  } else {
    Log(absl::StrCat(path, " is not a tty (", std::strerror(errno), "); serving it as is"));
  }
  Log(absl::StrCat("opened ", path, " (raw)"));

  if (options_.wait_for_connected) {
    ConnectionWaitResult waited;
    absl::Status s = WaitUntilConnected(options_.root, options_.channel, stop_fd, Log, &waited);
    if (!s.ok()) {
      close(fd);
      return s;
    }
    Log(waited.waited ? absl::StrCat("connected: ", waited.detail) : waited.detail);
  }
  return fd;
}

bool Agent::WriteAll(int fd, int stop_fd, const std::string& data, bool* stopped) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      // The backend is not draining: wait for room (the guest would stall
      // anyway) but stay stoppable.
      pollfd fds[2] = {{fd, POLLOUT, 0}, {stop_fd, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0 && errno != EINTR) return false;
      if (fds[1].revents != 0) {
        *stopped = true;
        return false;
      }
      if (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) return false;
      continue;
    }
    return false;  // EIO after hangup, or anything else: reopen
  }
  return true;
}

absl::Status Agent::Serve(int fd, int stop_fd, bool* read_any) {
  LineBuffer lines(options_.max_line_bytes);
  bool first = true;
  std::vector<char> buf(64 * 1024);
  while (true) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    if (fds[1].revents != 0) return absl::CancelledError("stopping");
    if (fds[0].revents == 0) continue;
    const ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) return absl::OkStatus();
      continue;
    }
    if (n <= 0) return absl::OkStatus();  // EIO or EOF: hung up
    *read_any = true;
    if (first) {
      Log("first request bytes received: the channel is connected");
      first = false;
    }
    std::vector<LineBuffer::Event> events;
    lines.Append(absl::string_view(buf.data(), static_cast<size_t>(n)), &events);
    for (LineBuffer::Event& e : events) {
      std::string reply =
          e.kind == LineBuffer::Event::Kind::kLine
              ? handler_->HandleLine(e.line)
              : ErrorReply(kLineTooLong,
                           absl::StrCat("request line longer than ", options_.max_line_bytes,
                                        " bytes; skipped up to the next newline"));
      reply.push_back('\n');
      bool stopped = false;
      if (!WriteAll(fd, stop_fd, reply, &stopped)) {
        return stopped ? absl::CancelledError("stopping") : absl::OkStatus();
      }
      if (Readable(stop_fd)) return absl::CancelledError("stopping");
    }
  }
}

}  // namespace agent
}  // namespace xenchan
