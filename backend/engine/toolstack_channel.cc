// ToolstackChannel: xl.cfg channels served by QEMU (see the header).
#include "backend/engine/toolstack_channel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backend/engine/names.h"
#include "backend/engine/xenstore_layout.h"

namespace xenchan {
namespace {

constexpr size_t kChunk = 64 * 1024;

// The frontend `tty` is written by QEMU, but it lives in the guest-owned
// frontend directory: only ever open a pty slave, never a path of the
// guest's (or anyone's) choosing.
bool LooksLikePtySlave(const std::string& path) {
  constexpr absl::string_view kPts = "/dev/pts/";
  return absl::StartsWith(path, kPts) &&
         ParseDecimal(absl::string_view(path).substr(kPts.size()), 1u << 20).has_value();
}

std::string ReadOr(XenStore& xs, const std::string& path, const std::string& fallback) {
  auto v = xs.Read(kNoTransaction, path);
  return v.ok() ? *v : fallback;
}

}  // namespace

std::optional<ToolstackSpec> ReadToolstackSpec(XenStore& xs, uint32_t domid, uint32_t devid) {
  ToolstackSpec spec;
  spec.backend_path = BackendPath(/*backend_domid=*/0, kToolstackBackendType, domid, devid);
  spec.frontend_path = FrontendPath(domid, devid);
  // Only channels QEMU serves: the primary console and xenconsoled's are
  // not channels.
  if (devid == 0 || ReadOr(xs, NodePath(spec.frontend_path, kTypeNode), "") != kQemuFrontendType) {
    return std::nullopt;
  }
  // libxl's private copy is authoritative (XSA-178); the backend's is next.
  const std::string libxl = LibxlConsolePath(domid, devid);
  spec.name = ReadOr(xs, NodePath(libxl, kNameNode),
                     ReadOr(xs, NodePath(spec.backend_path, kNameNode), ""));
  if (!ValidateChannelId(spec.name).ok()) return std::nullopt;
  const std::string connection = ReadOr(xs, NodePath(spec.backend_path, kConnectionNode), "");
  if (connection == kConnectionSocket) {
    spec.socket = true;
    spec.socket_path = ReadOr(xs, NodePath(libxl, kSocketPathNode),
                              ReadOr(xs, NodePath(spec.backend_path, kSocketPathNode), ""));
    if (spec.socket_path.empty() || spec.socket_path.size() >= sizeof(sockaddr_un::sun_path)) {
      return std::nullopt;
    }
  } else if (connection != kConnectionPty) {
    return std::nullopt;
  }
  return spec;
}

ToolstackChannel::ToolstackChannel(XenStore* xs, std::shared_ptr<Channel> channel,
                                   ToolstackSpec spec, std::string watch_token)
    : xs_(xs),
      channel_(std::move(channel)),
      spec_(std::move(spec)),
      watch_token_(std::move(watch_token)) {
  channel_->SetMaxAckLevel(AckLevel::kDelivered);
  if (spec_.socket) channel_->SetToolstackEndpoint(spec_.socket_path);
}

ToolstackChannel::~ToolstackChannel() {
  if (fd_ >= 0) close(fd_);
}

absl::Status ToolstackChannel::Start() {
  absl::Status s = xs_->Watch(spec_.backend_path, watch_token_);
  if (s.ok()) s = xs_->Watch(spec_.frontend_path, watch_token_);
  return s;
}

bool ToolstackChannel::Refresh(absl::Time now) {
  if (finished_) return true;
  auto be_state = xs_->Read(kNoTransaction, NodePath(spec_.backend_path, kStateNode));
  if (!be_state.ok() && be_state.status().code() == absl::StatusCode::kNotFound) {
    // The device is gone if its directory is.
    if (xs_->Directory(kNoTransaction, spec_.backend_path).status().code() ==
        absl::StatusCode::kNotFound) {
      return false;
    }
  }
  be_state_ = be_state.ok() ? ParseXenbusState(*be_state).value_or(XenbusState::kUnknown)
                            : XenbusState::kUnknown;
  fe_state_ = ParseXenbusState(ReadOr(*xs_, NodePath(spec_.frontend_path, kStateNode), ""))
                  .value_or(XenbusState::kUnknown);
  if (!spec_.socket) {
    const std::string tty = ReadOr(*xs_, NodePath(spec_.frontend_path, kTtyNode), "");
    if (tty != tty_) {
      tty_ = tty;
      if (!tty_.empty() && !LooksLikePtySlave(tty_)) channel_->CountBadXenstore();
      channel_->SetToolstackEndpoint(tty_);
      if (fd_ >= 0) Close("QEMU published another pty", false);
    }
  }
  if (fd_ < 0) Open(now);
  const bool connected = fd_ >= 0 && be_state_ == XenbusState::kConnected;
  const ChannelInfo before = channel_->Info();
  const bool was_connected = before.state == ChannelState::kConnected;
  if (connected && !was_connected) {
    const EpochChange change = channel_->BeginEpoch(
        static_cast<uint64_t>(absl::ToUnixMicros(now)),
        opened_before_ ? EpochChangeReason::kTransportReopened : EpochChangeReason::kGuestConnected,
        now);
    opened_before_ = true;
    channel_->SetState(ChannelState::kConnected, fe_state_, be_state_, std::nullopt);
    channel_->Emit(ChannelEventType::kConnected, change);
  } else if (!connected) {
    const ChannelState state =
        fd_ < 0 && opened_before_ ? ChannelState::kDisconnected : ChannelState::kWaitingForGuest;
    if (channel_->SetState(state, fe_state_, be_state_, std::nullopt)) {
      if (was_connected) {
        channel_->DiscardQueuedWrites();
        channel_->Emit(ChannelEventType::kDisconnected);
      } else {
        channel_->Emit(ChannelEventType::kStateChanged);
      }
    }
  } else {
    channel_->SetState(ChannelState::kConnected, fe_state_, be_state_, std::nullopt);
  }
  return true;
}

void ToolstackChannel::Open(absl::Time now) {
  int fd = -1;
  if (spec_.socket) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, spec_.socket_path.c_str(), sizeof(addr.sun_path) - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
        errno != EINPROGRESS) {
      close(fd);
      return;  // QEMU is not listening (yet): the next xenstore change retries
    }
  } else {
    if (!LooksLikePtySlave(tty_)) return;
    fd = open(tty_.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode) || !isatty(fd)) {
      close(fd);
      return;
    }
    termios t;
    if (tcgetattr(fd, &t) == 0) {
      cfmakeraw(&t);
      tcsetattr(fd, TCSANOW, &t);
    }
  }
  fd_ = fd;
}

void ToolstackChannel::Close(const std::string& why, bool error) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (error) {
    channel_->SetState(channel_->Info().state, fe_state_, be_state_,
                       ChannelError{ChannelErrorKind::kToolstackUnreachable, why, absl::Now()});
  }
}

short ToolstackChannel::poll_events() const {
  if (fd_ < 0) return 0;
  short events = 0;
  if (channel_->BufferSpace() > 0) events |= POLLIN;
  char probe;
  if (channel_->PeekInput(&probe, 1) > 0) events |= POLLOUT;
  return events;
}

void ToolstackChannel::OnReady(short revents, absl::Time now) {
  if (fd_ < 0) return;
  if (revents & (POLLIN | POLLHUP | POLLERR)) ReadIn(now);
  if (fd_ >= 0 && (revents & POLLOUT)) WriteOut();
  if (fd_ < 0) Refresh(now);  // the transport went away: report it
}

void ToolstackChannel::Service(absl::Time now) {
  if (fd_ < 0) return;
  WriteOut();
  const int stall = channel_->UpdateStall(now, /*draining=*/true);
  if (stall > 0) channel_->Emit(ChannelEventType::kStalled);
  if (stall < 0) channel_->Emit(ChannelEventType::kUnstalled);
}

void ToolstackChannel::ReadIn(absl::Time now) {
  char buf[kChunk];
  for (int round = 0; round < 4; ++round) {
    // Reserved against the memory budget; AppendOutput settles it.
    const size_t want = channel_->ReserveOutput(sizeof(buf));
    if (want == 0) break;
    const ssize_t n = read(fd_, buf, want);
    channel_->AppendOutput(buf, n > 0 ? static_cast<size_t>(n) : 0);
    if (n > 0) continue;
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    Close(n == 0 ? "QEMU closed the connection" : absl::StrCat("read: ", std::strerror(errno)),
          true);
    return;
  }
  const int stall = channel_->UpdateStall(now, /*draining=*/true);
  if (stall > 0) channel_->Emit(ChannelEventType::kStalled);
  if (stall < 0) channel_->Emit(ChannelEventType::kUnstalled);
}

void ToolstackChannel::WriteOut() {
  char buf[kChunk];
  for (int round = 0; round < 4; ++round) {
    const size_t n = channel_->PeekInput(buf, sizeof(buf));
    if (n == 0) return;
    const ssize_t w = write(fd_, buf, n);
    if (w > 0) {
      channel_->InputProgress(static_cast<size_t>(w), 0);
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) return;
    Close(absl::StrCat("write: ", std::strerror(errno)), true);
    return;
  }
}

void ToolstackChannel::Remove(RemovalReason reason) {
  if (finished_) return;
  finished_ = true;
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  (void)xs_->Unwatch(spec_.backend_path, watch_token_);
  (void)xs_->Unwatch(spec_.frontend_path, watch_token_);
  channel_->SetState(ChannelState::kClosed, fe_state_, be_state_, std::nullopt);
  channel_->MarkRemoved(reason == RemovalReason::kDomainGone
                            ? absl::UnavailableError("the domain went away")
                            : absl::NotFoundError("the toolstack removed the channel"));
  channel_->Emit(ChannelEventType::kRemoved, std::nullopt, std::nullopt, std::nullopt, reason);
}

}  // namespace xenchan
