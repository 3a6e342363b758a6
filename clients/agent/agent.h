// xenchan-agent: the reference in-guest agent of xenchan. It serves the
// protocol of handler.h over one Xen PV channel, found by name.
//
// Lifecycle of one Agent::Run():
//   1. Find the channel BY NAME: <root>/dev/xen-channel/<channel>, the link
//      the guest's udev helper (deploy/guest) or xensim's simulated guest
//      makes to the channel's /dev/hvcM. The hvc index says nothing about
//      which channel it is (XEN-CHANNELS §6 pitfall 3), so the agent never
//      guesses an index. Until the link exists and opens, wait for it
//      (inotify on <root>/dev and <root>/dev/xen-channel, with a 1 s retry as
//      a backstop for changes inotify cannot see, such as a link target
//      appearing elsewhere).
//   2. Put the tty in raw mode (cfmakeraw) on the descriptor that stays open:
//      hvc starts every tty cooked (echo, CR/LF rewriting, canonical lines,
//      signal characters, XON/XOFF; pitfall 5), and the settings are reset
//      when the last descriptor closes, so they are applied after every
//      (re)open.
//   3. Wait until the channel is connected, without writing: see
//      connection.h (sysfs + xenstore watch on a real guest; otherwise the
//      application-level hello: the agent never writes before it has read
//      its first request, and answers {"op":"hello"} for hosts that want to
//      probe it).
//   4. Serve: read bytes, cut them into lines (LineBuffer: at most
//      max_line_bytes per line; an oversize line gets one LINE_TOO_LONG
//      error reply and the agent resynchronises at the next newline), answer
//      each line with one reply line, in order. The agent never writes
//      anything but replies.
//   5. On hangup (read or write gets EIO/EOF or POLLHUP: the channel was
//      unplugged, or the guest resumed and hvc_xen replaced the tty), drop
//      any partial line, close the tty and go back to 1: the channel is
//      reopened by name, which also follows a new hvc index.
// Run() returns only when `stop_fd` becomes readable (main passes a signalfd
// for SIGTERM and SIGINT).
//
// Thread safety: an Agent is used by one thread.
#ifndef XENCHAN_CLIENTS_AGENT_AGENT_H_
#define XENCHAN_CLIENTS_AGENT_AGENT_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clients/agent/handler.h"
#include "clients/agent/line_buffer.h"

namespace xenchan {
namespace agent {

inline constexpr char kDefaultChannel[] = "org.xenchan.agent.0";

struct AgentOptions {
  // The guest's root: the channel is <root>/dev/xen-channel/<channel>,
  // sysfs is <root>/sys, facts come from <root>/etc/os-release.
  std::string root = "/";
  std::string channel = kDefaultChannel;
  // Where provision writes.
  std::string target_root = "/";
  size_t max_line_bytes = kDefaultMaxLineBytes;
  // Step 3 with sysfs and xenstore; false relies on the hello alone.
  bool wait_for_connected = true;
};

class Agent {
 public:
  // INVALID_ARGUMENT for a bad channel name or line limit; the Handler's
  // errors for an unusable target root.
  static absl::StatusOr<std::unique_ptr<Agent>> Create(AgentOptions options);

  // Serves until `stop_fd` is readable, then returns OK. Blocks. Logs to
  // stderr. INTERNAL only for a broken environment (poll or inotify failing).
  absl::Status Run(int stop_fd);

  // <root>/dev/xen-channel/<channel>.
  std::string ChannelPath() const;

 private:
  Agent(AgentOptions options, std::unique_ptr<Handler> handler)
      : options_(std::move(options)), handler_(std::move(handler)) {}

  // Opens and configures the channel tty, waiting for it to appear (with
  // `backoff`, waits for a change or 1 s before the first try). CANCELLED
  // when stopped.
  absl::StatusOr<int> OpenChannel(int stop_fd, bool backoff);
  // Serves one opened channel until hangup (OK) or stop (CANCELLED); sets
  // *read_any if any byte arrived.
  absl::Status Serve(int fd, int stop_fd, bool* read_any);
  // Writes all of `data`; false on hangup; CANCELLED-like stop via *stopped.
  bool WriteAll(int fd, int stop_fd, const std::string& data, bool* stopped);

  AgentOptions options_;
  std::unique_ptr<Handler> handler_;
};

}  // namespace agent
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_AGENT_AGENT_H_
