// xenchanctl's terminal handling: raw mode for interactive attach, the
// Ctrl-] key that ends it, reading stdin through signals, and the
// "N bytes sent" progress line of write.
#ifndef XENCHAN_CLIENTS_CLI_TERMINAL_H_
#define XENCHAN_CLIENTS_CLI_TERMINAL_H_

#include <sys/types.h>
#include <termios.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace xenchan {
namespace cli {

// The key that ends an interactive attach: Ctrl-] as in telnet and virsh.
inline constexpr char kQuitKey = '\x1d';

// Cuts `data` before the first kQuitKey; true if there was one.
bool CutAtQuitKey(std::string* data);

// read(2) on `fd`, retried while interrupted by a signal.
ssize_t ReadRetryingOnEintr(int fd, void* buf, size_t size);

// Puts a terminal in raw mode (cfmakeraw) and puts it back.
//
// Ownership: remembers the settings it replaced; Restore() (or the
// destructor) reinstates them once. Thread safety: none.
class RawTerminal {
 public:
  RawTerminal() = default;
  ~RawTerminal() { Restore(); }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

  // Switches `fd` to raw mode; false (and nothing changed) if it cannot.
  bool Enter(int fd);
  // Reinstates the saved settings if Enter succeeded; idempotent.
  void Restore();

 private:
  int fd_ = -1;
  termios saved_{};
};

// A "\rN bytes sent" line on stderr, redrawn at most every 250 ms.
//
// Thread safety: none; used from the one thread that sends.
class ProgressLine {
 public:
  // A disabled line prints nothing.
  explicit ProgressLine(bool enabled);
  // Redraws with `sent` if the last redraw is old enough.
  void Update(uint64_t sent);
  // Draws `sent` one last time and ends the line.
  void Finish(uint64_t sent);

 private:
  const bool enabled_;
  absl::Time last_;
};

}  // namespace cli
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_CLI_TERMINAL_H_
