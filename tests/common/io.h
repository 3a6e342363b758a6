// fd and tty helpers for tests: open a simulated guest's channel tty raw,
// write everything, and read with a deadline (a number of bytes, or up to a
// delimiter). Every wait is bounded by a deadline; none sleeps to
// synchronise. Plain functions, safe to call from any thread on distinct fds.
#ifndef XENCHAN_TESTS_COMMON_IO_H_
#define XENCHAN_TESTS_COMMON_IO_H_

#include <cstddef>
#include <string>

#include "absl/time/time.h"

namespace xenchan {
namespace testcommon {

// How long the read and open helpers wait unless told otherwise.
inline constexpr absl::Duration kIoTimeout = absl::Seconds(20);

// Opens `path` read-write (no controlling tty, close-on-exec) and puts it in
// raw mode when it is a tty; -1 if it cannot be opened.
int OpenRawTty(const std::string& path);

// Opens a guest's channel tty like OpenRawTty, waiting up to `timeout` for it
// to appear (the simulated guest creates it when the device shows up); -1 on
// timeout.
int OpenGuestTty(const std::string& path, absl::Duration timeout = kIoTimeout);

// Writes all of `data`, retrying on EINTR and waiting for POLLOUT on a full
// non-blocking fd; false on any other error or EOF.
bool WriteAll(int fd, const std::string& data);

// Waits until `fd` is readable (or has hung up) or `deadline` passed; true if
// it is readable.
bool WaitReadable(int fd, absl::Time deadline);

// Reads once what is available within `deadline`, at most `max` bytes, and
// appends it to `out`. True if the caller may go on reading (data arrived or
// the read was interrupted); false on timeout, EOF or error.
bool ReadSome(int fd, std::string* out, absl::Time deadline, size_t max = 65536);

// Reads until `n` bytes arrived, EOF or `timeout`; never reads past `n`.
// Returns what arrived (shorter than `n` on timeout or EOF).
std::string ReadExactly(int fd, size_t n, absl::Duration timeout = kIoTimeout);

// Reads until the bytes read contain `delim`, EOF or `timeout`; returns
// everything read, which may go past `delim` (reads are not split there).
std::string ReadUntil(int fd, const std::string& delim, absl::Duration timeout = kIoTimeout);

// A guest agent that answers one request: reads up to the first newline
// (within `timeout`) and writes `prefix` followed by what it read (the
// newline included). For a test's thread standing in for the guest.
void AnswerOneLine(int fd, const std::string& prefix, absl::Duration timeout = kIoTimeout);

}  // namespace testcommon
}  // namespace xenchan

#endif  // XENCHAN_TESTS_COMMON_IO_H_
