#include "backend/sim/xenstore/server.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/util/errno_status.h"
#include "backend/util/make_dirs.h"

namespace xenchan::sim::xenstore {
namespace {

constexpr uint64_t kWakeTag = 1;
constexpr size_t kReadChunk = 16 * 1024;

// A socket or epoll call the server cannot make is INTERNAL, whatever the
// errno.
absl::Status ErrnoStatus(absl::string_view what, int err) {
  return absl::InternalError(ErrnoMessage(err, what));
}

}  // namespace

XenstoreServer::XenstoreServer(Options options)
    : options_(std::move(options)), store_(options_.store, this) {}

absl::StatusOr<std::unique_ptr<XenstoreServer>> XenstoreServer::Create(Options options) {
  if (options.socket_path.empty()) {
    return absl::InvalidArgumentError("xenstored: socket_path is required");
  }
  if (options.state_dir.empty() && !options.domain_socket_path) {
    return absl::InvalidArgumentError("xenstored: state_dir or domain_socket_path is required");
  }
  std::unique_ptr<XenstoreServer> server(new XenstoreServer(std::move(options)));
  server->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (server->epoll_fd_ < 0) return ErrnoStatus("epoll_create1", errno);
  server->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (server->wake_fd_ < 0) return ErrnoStatus("eventfd", errno);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  if (epoll_ctl(server->epoll_fd_, EPOLL_CTL_ADD, server->wake_fd_, &ev) != 0) {
    return ErrnoStatus("epoll_ctl", errno);
  }
  absl::StatusOr<uint64_t> tag =
      server->AddListener(server->options_.socket_path, /*domid=*/0, /*privileged=*/true);
  if (!tag.ok()) return tag.status();
  server->thread_ = std::thread([s = server.get()] { s->Run(); });
  return server;
}

XenstoreServer::~XenstoreServer() {
  if (thread_.joinable()) {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  for (auto& entry : conns_) close(entry.second->fd);
  conns_.clear();
  while (!listeners_.empty()) CloseListener(listeners_.begin()->first);
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
  // Tasks still queued (none, unless Inspect raced with destruction, which
  // the contract forbids) would be dropped here.
}

std::string XenstoreServer::DomainSocketPath(uint32_t domid) const {
  if (options_.domain_socket_path) return options_.domain_socket_path(domid);
  return absl::StrCat(options_.state_dir, "/domains/", domid, "/xenstored.sock");
}

void XenstoreServer::Inspect(const std::function<void(const Store&)>& fn) {
  RunOnLoop([&] { fn(store_); });
}

XenstoreServer::Stats XenstoreServer::GetStats() {
  Stats stats;
  RunOnLoop([&] {
    stats.connections = conns_.size();
    stats.domain_sockets = domain_listeners_.size();
    for (const auto& entry : conns_) {
      stats.max_output_queued = std::max(stats.max_output_queued, entry.second->out_bytes);
      stats.max_input_buffered =
          std::max(stats.max_input_buffered, entry.second->parser.buffered());
    }
  });
  return stats;
}

void XenstoreServer::RunOnLoop(const std::function<void()>& task) {
  Mutex done_mu;
  CondVar done_cv;
  bool done = false;
  {
    MutexLock lock(&mu_);
    tasks_.push_back([&] {
      task();
      MutexLock done_lock(&done_mu);
      done = true;
      done_cv.SignalAll();
    });
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  MutexLock lock(&done_mu);
  while (!done) done_cv.Wait(&done_mu);
}

absl::StatusOr<uint64_t> XenstoreServer::AddListener(const std::string& path, uint32_t domid,
                                                     bool privileged) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket path longer than ", sizeof(addr.sun_path) - 1, " bytes: ", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("not a socket, refusing to replace: ", path));
    }
    unlink(path.c_str());  // A stale socket of an earlier run.
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket", errno);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoStatus(absl::StrCat("bind ", path), err);
  }
  if (listen(fd, 128) != 0) {
    const int err = errno;
    close(fd);
    unlink(path.c_str());
    return ErrnoStatus("listen", err);
  }
  const uint64_t tag = next_tag_++;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int err = errno;
    close(fd);
    unlink(path.c_str());
    return ErrnoStatus("epoll_ctl", err);
  }
  listeners_[tag] = Listener{fd, domid, privileged, path};
  return tag;
}

void XenstoreServer::CloseListener(uint64_t tag) {
  auto it = listeners_.find(tag);
  if (it == listeners_.end()) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.fd, nullptr);
  close(it->second.fd);
  unlink(it->second.path.c_str());
  if (!it->second.privileged && !options_.domain_socket_path) {
    // The default layout's per-domain directory; fails harmlessly if the
    // directory holds anything else.
    const std::string& p = it->second.path;
    rmdir(p.substr(0, p.rfind('/')).c_str());
  }
  listeners_.erase(it);
}

void XenstoreServer::Run() {
  epoll_event events[64];
  while (true) {
    const int n = epoll_wait(epoll_fd_, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // Cannot happen with valid descriptors.
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) {
        uint64_t value;
        (void)!read(wake_fd_, &value, sizeof(value));
        {
          MutexLock lock(&mu_);
          if (stop_) return;
        }
        RunTasks();
      } else if (listeners_.count(tag) > 0) {
        Accept(tag);
      } else {
        OnConnEvent(tag, events[i].events);
      }
      CloseScheduled();
    }
  }
}

void XenstoreServer::RunTasks() {
  while (true) {
    std::function<void()> task;
    {
      MutexLock lock(&mu_);
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

void XenstoreServer::Accept(uint64_t tag) {
  const Listener listener = listeners_.at(tag);
  while (true) {
    const int fd = accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: stop polling the listeners (they would stay
        // readable and spin the loop) until a connection closes.
        for (auto& entry : listeners_) {
          epoll_event ev{};
          ev.data.u64 = entry.first;
          epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, entry.second.fd, &ev);
        }
        accept_paused_ = true;
      }
      return;  // EAGAIN, EINTR, ECONNABORTED: nothing (more) to accept.
    }
    if (conns_.size() >= options_.max_connections) {
      close(fd);
      continue;
    }
    auto conn = std::make_unique<Conn>();
    conn->fd = fd;
    const uint64_t conn_tag = next_tag_++;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = conn_tag;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      continue;
    }
    conn->epoll_events = EPOLLIN;
    conn->store_id = store_.AddConnection(listener.domid, listener.privileged);
    conn_tags_[conn->store_id] = conn_tag;
    conns_[conn_tag] = std::move(conn);
  }
}

void XenstoreServer::OnConnEvent(uint64_t tag, uint32_t events) {
  auto it = conns_.find(tag);
  if (it == conns_.end() || it->second->closing) return;
  Conn& conn = *it->second;
  if (events & EPOLLOUT) Flush(conn);
  if (conn.closing) return;
  const bool reading = conn.out_bytes < options_.output_soft_limit;
  if (reading && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
    char buf[kReadChunk];
    const ssize_t n = read(conn.fd, buf, sizeof(buf));
    if (n == 0) {
      ScheduleClose(tag);  // Closed, possibly mid-message: dropped.
      return;
    }
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) ScheduleClose(tag);
      return;
    }
    conn.parser.Append(absl::string_view(buf, static_cast<size_t>(n)));
  } else if (!reading && (events & (EPOLLHUP | EPOLLERR))) {
    ScheduleClose(tag);  // Gone while we waited for it to read replies.
    return;
  }
  ProcessInput(conn);
}

void XenstoreServer::ProcessInput(Conn& conn) {
  while (!conn.closing && conn.out_bytes < options_.output_soft_limit) {
    absl::StatusOr<std::optional<Message>> msg = conn.parser.Next();
    if (!msg.ok()) {
      // Oversized header: xenstored drops such a client.
      ScheduleClose(conn_tags_[conn.store_id]);
      return;
    }
    if (!msg->has_value()) break;
    store_.Handle(conn.store_id, **msg);
  }
  UpdateInterest(conn);
}

void XenstoreServer::Flush(Conn& conn) {
  while (!conn.out.empty() && !conn.closing) {
    const std::string& front = conn.out.front();
    const ssize_t n = send(conn.fd, front.data() + conn.out_offset, front.size() - conn.out_offset,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      ScheduleClose(conn_tags_[conn.store_id]);
      return;
    }
    conn.out_offset += static_cast<size_t>(n);
    conn.out_bytes -= static_cast<size_t>(n);
    if (conn.out_offset == front.size()) {
      conn.out.pop_front();
      conn.out_offset = 0;
    }
  }
  // If reading was paused and the queue drained, pick up buffered requests.
  // ProcessInput updates the epoll interest either way.
  if (!conn.closing) ProcessInput(conn);
}

void XenstoreServer::UpdateInterest(Conn& conn) {
  if (conn.closing) return;
  uint32_t want = 0;
  if (conn.out_bytes < options_.output_soft_limit) want |= EPOLLIN;
  if (!conn.out.empty()) want |= EPOLLOUT;
  if (want == conn.epoll_events) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = conn_tags_[conn.store_id];
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn.fd, &ev) == 0) {
    conn.epoll_events = want;
  }
}

void XenstoreServer::Send(ConnId conn_id, std::string frame) {
  auto tag = conn_tags_.find(conn_id);
  if (tag == conn_tags_.end()) return;
  auto it = conns_.find(tag->second);
  if (it == conns_.end() || it->second->closing) return;
  Conn& conn = *it->second;
  conn.out_bytes += frame.size();
  conn.out.push_back(std::move(frame));
  if (conn.out_bytes > options_.output_hard_limit) {
    ScheduleClose(tag->second);  // Not reading what it is sent.
    return;
  }
  // Write what the socket takes now; the rest waits for EPOLLOUT. (No
  // ProcessInput here: we may be inside Store::Handle.)
  while (!conn.out.empty()) {
    const std::string& front = conn.out.front();
    const ssize_t n = send(conn.fd, front.data() + conn.out_offset, front.size() - conn.out_offset,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      ScheduleClose(tag->second);
      return;
    }
    conn.out_offset += static_cast<size_t>(n);
    conn.out_bytes -= static_cast<size_t>(n);
    if (conn.out_offset == front.size()) {
      conn.out.pop_front();
      conn.out_offset = 0;
    }
  }
  UpdateInterest(conn);
}

absl::Status XenstoreServer::DomainIntroduced(uint32_t domid) {
  const std::string path = DomainSocketPath(domid);
  // mkdir -p of the socket's directory.
  if (const size_t slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
    if (absl::Status s = MakeDirs(path.substr(0, slash), 0755); !s.ok()) return s;
  }
  absl::StatusOr<uint64_t> tag = AddListener(path, domid, false);
  if (!tag.ok()) return tag.status();
  domain_listeners_[domid] = *tag;
  return absl::OkStatus();
}

void XenstoreServer::DomainReleased(uint32_t domid, const std::vector<ConnId>& conns) {
  for (ConnId id : conns) {
    auto tag = conn_tags_.find(id);
    if (tag != conn_tags_.end()) ScheduleClose(tag->second);
  }
  auto listener = domain_listeners_.find(domid);
  if (listener != domain_listeners_.end()) {
    CloseListener(listener->second);
    domain_listeners_.erase(listener);
  }
}

void XenstoreServer::ScheduleClose(uint64_t tag) {
  auto it = conns_.find(tag);
  if (it == conns_.end() || it->second->closing) return;
  it->second->closing = true;
  to_close_.push_back(tag);
}

void XenstoreServer::CloseScheduled() {
  std::vector<uint64_t> tags;
  tags.swap(to_close_);
  for (uint64_t tag : tags) {
    auto it = conns_.find(tag);
    if (it == conns_.end()) continue;
    Conn& conn = *it->second;
    store_.RemoveConnection(conn.store_id);
    conn_tags_.erase(conn.store_id);
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn.fd, nullptr);
    close(conn.fd);
    conns_.erase(it);
  }
  if (accept_paused_ && !tags.empty()) {
    for (auto& entry : listeners_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = entry.first;
      epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, entry.second.fd, &ev);
    }
    accept_paused_ = false;
  }
}

}  // namespace xenchan::sim::xenstore
