// A pseudo-terminal standing in for one hvc tty of the simulated guest.
//
// The guest process keeps the master (its "hvc driver" end) and also holds
// one slave descriptor open, as the kernel's tty exists whether or not a
// program has it open: without it the master would report hangup whenever
// no in-guest program has the slave open. Closing the Pty (Hangup) closes
// both, so every in-guest program holding the slave sees hangup/EIO, as
// hvc_remove's tty_vhangup does.
//
// Thread safety: thread-compatible; owned by the guest's event loop.
#ifndef XENCHAN_BACKEND_SIM_GUEST_PTY_H_
#define XENCHAN_BACKEND_SIM_GUEST_PTY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace xenchan {
namespace sim {
namespace guest {

class Pty {
 public:
  // Opens a new pty whose slave starts in hvc's cooked mode (tty_std_termios:
  // ICRNL|IXON, OPOST|ONLCR, ISIG|ICANON|ECHO..., B38400 CS8 CREAD HUPCL).
  // The master is non-blocking and close-on-exec. INTERNAL on a failed
  // system call.
  static absl::StatusOr<std::unique_ptr<Pty>> Open();
  ~Pty();
  Pty(const Pty&) = delete;
  Pty& operator=(const Pty&) = delete;

  int master_fd() const { return master_; }
  // The slave's path, e.g. "/dev/pts/7".
  const std::string& slave_path() const { return slave_path_; }

  // Closes master and slave: the tty is hung up. Idempotent.
  void Hangup();

 private:
  Pty(int master, int slave, std::string slave_path)
      : master_(master), slave_(slave), slave_path_(std::move(slave_path)) {}
  int master_;
  int slave_;
  std::string slave_path_;
};

}  // namespace guest
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_GUEST_PTY_H_
