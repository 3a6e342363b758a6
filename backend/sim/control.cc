// See control.h.
#include "backend/sim/control.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace sim {
namespace {

bool IsPlain(unsigned char c) {
  return absl::ascii_isalnum(c) || std::strchr("._/:,@+=-", c) != nullptr;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsWord(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

absl::StatusCode CodeFromName(absl::string_view name) {
  for (int i = 0; i <= 16; ++i) {
    const auto code = static_cast<absl::StatusCode>(i);
    if (absl::StatusCodeToString(code) == name) return code;
  }
  return absl::StatusCode::kUnknown;
}

// Whatever the errno, a failed control call means xensim cannot be reached
// or went away: the caller can only try again later.
absl::Status ErrnoStatus(int err, absl::string_view what) {
  return absl::UnavailableError(ErrnoMessage(err, what));
}

absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("bad socket path '", path, "'"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// Writes all of `data`; false on error.
bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads one line (without "\n") before `deadline`.
absl::StatusOr<std::string> ReadLine(int fd, absl::Time deadline) {
  std::string line;
  char buf[4096];
  while (true) {
    const size_t nl = line.find('\n');
    if (nl != std::string::npos) return line.substr(0, nl);
    if (line.size() > kMaxControlLine) return absl::InvalidArgumentError("control line too long");
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("control: timed out");
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus(errno, "poll");
    if (r == 0) continue;
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read");
    if (n == 0) return absl::UnavailableError("control: connection closed before a full line");
    line.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

std::optional<std::string> ControlRequest::Get(absl::string_view key) const {
  for (const auto& [k, v] : args) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::vector<std::string> ControlRequest::GetAll(absl::string_view key) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : args) {
    if (k == key) out.push_back(v);
  }
  return out;
}

std::string PercentEncode(absl::string_view raw) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsPlain(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

absl::StatusOr<std::string> PercentDecode(absl::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      out.push_back(encoded[i]);
      continue;
    }
    if (i + 2 >= encoded.size()) return absl::InvalidArgumentError("truncated %-escape");
    const int hi = HexValue(encoded[i + 1]);
    const int lo = HexValue(encoded[i + 2]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("bad %-escape");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string EncodeRequest(const ControlRequest& request) {
  std::string line = request.verb;
  for (const auto& [k, v] : request.args) absl::StrAppend(&line, " ", k, "=", PercentEncode(v));
  return line;
}

absl::StatusOr<ControlRequest> DecodeRequest(absl::string_view line) {
  std::vector<absl::string_view> words = absl::StrSplit(line, ' ');
  ControlRequest request;
  if (!IsWord(words[0])) return absl::InvalidArgumentError("control: bad verb");
  request.verb = std::string(words[0]);
  for (size_t i = 1; i < words.size(); ++i) {
    const size_t eq = words[i].find('=');
    if (eq == absl::string_view::npos || !IsWord(words[i].substr(0, eq))) {
      return absl::InvalidArgumentError("control: bad argument");
    }
    auto value = PercentDecode(words[i].substr(eq + 1));
    if (!value.ok()) return value.status();
    request.args.emplace_back(std::string(words[i].substr(0, eq)), *std::move(value));
  }
  return request;
}

std::string EncodeReply(const absl::StatusOr<std::string>& reply) {
  if (reply.ok()) return absl::StrCat("ok ", PercentEncode(*reply));
  return absl::StrCat("error ", absl::StatusCodeToString(reply.status().code()), " ",
                      PercentEncode(reply.status().message()));
}

absl::StatusOr<std::string> DecodeReply(absl::string_view line) {
  if (absl::StartsWith(line, "ok ")) {
    auto body = PercentDecode(line.substr(3));
    if (!body.ok()) return absl::InternalError("control: malformed reply");
    return body;
  }
  if (absl::StartsWith(line, "error ")) {
    std::vector<absl::string_view> parts = absl::StrSplit(line.substr(6), absl::MaxSplits(' ', 1));
    if (parts.size() != 2) return absl::InternalError("control: malformed error reply");
    auto message = PercentDecode(parts[1]);
    if (!message.ok()) return absl::InternalError("control: malformed error reply");
    absl::StatusCode code = CodeFromName(parts[0]);
    if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
    return absl::Status(code, *message);
  }
  return absl::InternalError("control: not a reply");
}

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Create(const std::string& socket_path,
                                                                     Handler handler) {
  auto addr = UnixAddress(socket_path);
  if (!addr.ok()) return addr.status();
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  unlink(socket_path.c_str());
  if (bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0 ||
      listen(fd, 16) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoStatus(err, absl::StrCat("bind ", socket_path));
  }
  const int wake = eventfd(0, EFD_CLOEXEC);
  if (wake < 0) {
    const int err = errno;
    close(fd);
    return ErrnoStatus(err, "eventfd");
  }
  return std::unique_ptr<ControlServer>(
      new ControlServer(socket_path, fd, wake, std::move(handler)));
}

ControlServer::ControlServer(std::string path, int listen_fd, int wake_fd, Handler handler)
    : path_(std::move(path)),
      listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      handler_(std::move(handler)) {
  thread_ = std::thread([this] { Run(); });
}

ControlServer::~ControlServer() {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  thread_.join();
  close(listen_fd_);
  close(wake_fd_);
  unlink(path_.c_str());
}

void ControlServer::Run() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int r = poll(fds, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || (fds[1].revents & POLLIN)) return;
    if (fds[0].revents & POLLIN) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      Serve(fd);
      close(fd);
    }
  }
}

void ControlServer::Serve(int fd) {
  // A client gets a bounded time to send its request; the handler itself may
  // take as long as the operation needs.
  auto line = ReadLine(fd, absl::Now() + absl::Seconds(10));
  absl::StatusOr<std::string> reply;
  if (!line.ok()) {
    reply = line.status();
  } else {
    auto request = DecodeRequest(*line);
    reply = request.ok() ? handler_(*request) : absl::StatusOr<std::string>(request.status());
  }
  WriteAll(fd, EncodeReply(reply) + "\n");
}

absl::StatusOr<std::string> CallControl(const std::string& socket_path,
                                        const ControlRequest& request, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  auto addr = UnixAddress(socket_path);
  if (!addr.ok()) return addr.status();
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  if (connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    const int err = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat(ErrnoMessage(err, absl::StrCat("cannot reach xensim at ", socket_path)),
                     " (is `xensim serve` running?)"));
  }
  if (!WriteAll(fd, EncodeRequest(request) + "\n")) {
    const int err = errno;
    close(fd);
    return ErrnoStatus(err, "control: send");
  }
  auto line = ReadLine(fd, deadline);
  close(fd);
  if (!line.ok()) return line.status();
  return DecodeReply(*line);
}

}  // namespace sim
}  // namespace xenchan
