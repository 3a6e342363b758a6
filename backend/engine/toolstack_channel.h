// ToolstackChannel: a channel declared in xl.cfg and served by QEMU
// (DESIGN §3.2, XEN-CHANNELS §1.7): discovered under
// /local/domain/0/backend/console/D/N with frontend `type` = ioemu, exposed
// read-only as to lifecycle, and with its data reached through what QEMU
// serves: the Unix socket in the backend `path` (connection=socket; QEMU
// listens, we connect) or the pty QEMU writes into the frontend `tty`
// (connection=pty). The pty path comes from the guest-owned frontend
// directory, so only a /dev/pts/<n> character device that is a tty is ever
// opened (anything else counts as a bad xenstore value).
//
// Lifecycle: CONNECTED while QEMU's backend is Connected (4) and our socket
// or pty is open; each (re)open starts a new epoch (TRANSPORT_REOPENED after
// the first). The engine re-examines the channel on every xenstore change of
// its backend or frontend directory (never by polling). Removed when its
// backend directory goes (TOOLSTACK_REMOVED, or DOMAIN_GONE if the domain
// is visibly going; during a destroy libxl removes devices first, so either
// may be reported) or its domain dies (DOMAIN_GONE).
//
// Data: bytes read from the transport go into the channel's OutputBuffer (as
// far as Space() allows; under BLOCK reading simply pauses); queued writes go
// to the transport and count as delivered once written (consumption by the
// guest is not observable through QEMU, so max_ack_level is DELIVERED).
//
// Thread safety: engine thread only.
#ifndef XENCHAN_BACKEND_ENGINE_TOOLSTACK_CHANNEL_H_
#define XENCHAN_BACKEND_ENGINE_TOOLSTACK_CHANNEL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "backend/engine/channel.h"
#include "backend/engine/types.h"
#include "backend/platform/xenstore.h"

namespace xenchan {

// What discovery read about one toolstack channel.
struct ToolstackSpec {
  std::string backend_path;
  std::string frontend_path;
  std::string name;         // from /libxl/D/device/console/N/name, else the backend
  bool socket = false;      // connection=socket (else pty)
  std::string socket_path;  // socket channels
};

// Reads and validates the toolstack channel at backend dir `backend_path`
// of domain `domid`, devid `devid`. nullopt if it is not a channel we serve
// (not type ioemu, bad name, unknown connection, missing nodes).
std::optional<ToolstackSpec> ReadToolstackSpec(XenStore& xs, uint32_t domid, uint32_t devid);

class ToolstackChannel {
 public:
  ToolstackChannel(XenStore* xs, std::shared_ptr<Channel> channel, ToolstackSpec spec,
                   std::string watch_token);
  ~ToolstackChannel();  // closes the transport
  ToolstackChannel(const ToolstackChannel&) = delete;
  ToolstackChannel& operator=(const ToolstackChannel&) = delete;

  // Arms the watches on the backend and frontend directories (they fire at
  // once, which calls Refresh through the engine).
  absl::Status Start();
  // Re-reads the xenstore state and opens or closes the transport. Returns
  // false if the backend directory is gone (the engine then calls Remove).
  bool Refresh(absl::Time now);
  // The transport's fd and the poll events wanted now (-1 when closed).
  int fd() const { return fd_; }
  short poll_events() const;
  // Handles poll results on fd(); also moves queued writes.
  void OnReady(short revents, absl::Time now);
  // Moves queued host-to-guest bytes (after a session wrote).
  void Service(absl::Time now);
  // The channel is gone (removed from xenstore, or its domain died).
  void Remove(RemovalReason reason);

  bool finished() const { return finished_; }
  Channel& channel() { return *channel_; }

 private:
  void Open(absl::Time now);
  void Close(const std::string& why, bool error);
  void ReadIn(absl::Time now);
  void WriteOut();

  XenStore* const xs_;
  const std::shared_ptr<Channel> channel_;
  const ToolstackSpec spec_;
  const std::string watch_token_;
  int fd_ = -1;
  bool opened_before_ = false;
  XenbusState be_state_ = XenbusState::kUnknown;
  XenbusState fe_state_ = XenbusState::kUnknown;
  std::string tty_;
  bool finished_ = false;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_TOOLSTACK_CHANNEL_H_
