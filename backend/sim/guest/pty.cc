#include "backend/sim/guest/pty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace sim {
namespace guest {
namespace {

// A pty the simulated guest cannot set up is the simulator's own fault,
// whatever the errno.
absl::Status Errno(const char* what) { return absl::InternalError(ErrnoMessage(errno, what)); }

// Linux's tty_std_termios, which hvc_init installs as the driver's initial
// termios.
void SetStdTermios(struct termios* t) {
  t->c_iflag = ICRNL | IXON;
  t->c_oflag = OPOST | ONLCR;
  t->c_cflag = CS8 | CREAD | HUPCL;
  t->c_lflag = ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN;
  cfsetispeed(t, B38400);
  cfsetospeed(t, B38400);
  // Control characters: INIT_C_CC.
  t->c_cc[VINTR] = 0x03;
  t->c_cc[VQUIT] = 0x1c;
  t->c_cc[VERASE] = 0x7f;
  t->c_cc[VKILL] = 0x15;
  t->c_cc[VEOF] = 0x04;
  t->c_cc[VTIME] = 0;
  t->c_cc[VMIN] = 1;
  t->c_cc[VSTART] = 0x11;
  t->c_cc[VSTOP] = 0x13;
  t->c_cc[VSUSP] = 0x1a;
  t->c_cc[VREPRINT] = 0x12;
  t->c_cc[VDISCARD] = 0x0f;
  t->c_cc[VWERASE] = 0x17;
  t->c_cc[VLNEXT] = 0x16;
  t->c_cc[VEOL] = 0;
  t->c_cc[VEOL2] = 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Pty>> Pty::Open() {
  const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return Errno("posix_openpt");
  if (grantpt(master) != 0 || unlockpt(master) != 0) {
    const absl::Status s = Errno("grantpt/unlockpt");
    close(master);
    return s;
  }
  char name[128];
  if (ptsname_r(master, name, sizeof(name)) != 0) {
    const absl::Status s = Errno("ptsname_r");
    close(master);
    return s;
  }
  const int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    const absl::Status s = Errno("open pty slave");
    close(master);
    return s;
  }
  struct termios t;
  if (tcgetattr(slave, &t) != 0) {
    const absl::Status s = Errno("tcgetattr");
    close(slave);
    close(master);
    return s;
  }
  SetStdTermios(&t);
  if (tcsetattr(slave, TCSANOW, &t) != 0) {
    const absl::Status s = Errno("tcsetattr");
    close(slave);
    close(master);
    return s;
  }
  const int flags = fcntl(master, F_GETFL);
  if (flags < 0 || fcntl(master, F_SETFL, flags | O_NONBLOCK) != 0) {
    const absl::Status s = Errno("fcntl O_NONBLOCK");
    close(slave);
    close(master);
    return s;
  }
  return std::unique_ptr<Pty>(new Pty(master, slave, name));
}

Pty::~Pty() { Hangup(); }

void Pty::Hangup() {
  if (slave_ >= 0) close(slave_);
  if (master_ >= 0) close(master_);
  slave_ = -1;
  master_ = -1;
}

}  // namespace guest
}  // namespace sim
}  // namespace xenchan
