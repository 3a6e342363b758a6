// guest_echo: the real-Xen lane's echo peer inside the guest.
//
//   guest_echo NAME
//
// Waits for /dev/xen-channel/NAME (made by deploy/guest's xen-channel-name,
// which busybox uevent runs in the lane's guest), opens it, switches the tty to raw mode on the
// descriptor it keeps, and writes back every byte it reads. When the tty is
// hung up (unplug, xenchand deleting the channel) it prints
// "ECHO-HANGUP NAME" and waits for the name to appear again. Status lines
// go to stdout, which the lane sends to the guest console (hvc0) that dom0
// reads through xenconsoled's log.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: guest_echo NAME\n");
    return 2;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string name = argv[1];
  const std::string path = "/dev/xen-channel/" + name;
  for (;;) {
    int fd = -1;
    while ((fd = open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
      usleep(100 * 1000);  // the tty appears when hvc_xen probes the device
    }
    termios t;
    if (tcgetattr(fd, &t) == 0) {
      cfmakeraw(&t);
      tcsetattr(fd, TCSANOW, &t);
    }
    char target[64] = {0};
    ssize_t l = readlink(path.c_str(), target, sizeof(target) - 1);
    std::printf("ECHO-READY %s %s\n", name.c_str(), l > 0 ? target : "?");
    char buf[4096];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      ssize_t off = 0;
      while (off < n) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += w;
      }
      if (off < n) break;
    }
    std::printf("ECHO-HANGUP %s errno=%d\n", name.c_str(), errno);
    close(fd);
    // Do not reopen the same, hung-up tty: wait until the link is gone or
    // points elsewhere.
    for (int i = 0; i < 600; ++i) {
      char now[64] = {0};
      ssize_t m = readlink(path.c_str(), now, sizeof(now) - 1);
      if (m <= 0 || std::string(now) != target) break;
      usleep(100 * 1000);
    }
  }
}
