// The control socket between the `xensim` command line and `xensim serve`.
//
// Protocol (one request per connection, AF_UNIX SOCK_STREAM at
// <state_dir>/control.sock):
//   request  = VERB *(" " KEY "=" VALUE) "\n"
//   reply    = "ok " BODY "\n"  |  "error " CODE " " MESSAGE "\n"
// VERB and KEY are [a-z_]+; VALUE, BODY and MESSAGE are percent-encoded
// (every byte outside [A-Za-z0-9._/:,@+=-] becomes %XX), so a line never
// contains a space or a newline of its own. A KEY may repeat (e.g. `channel`).
// CODE is the absl::StatusCode name (e.g. NOT_FOUND). BODY is the text the
// command line prints on stdout as is. Requests longer than kMaxLine bytes are
// refused with INVALID_ARGUMENT.
//
// Verbs served by xensim: create (name, uuid?, channel*, output?), destroy
// (domain), list (output?), suspend / resume / shutdown / kill (domain),
// reboot (domain, output?), save (domain, file), restore (file, output?),
// migrate (domain, to: the destination's state dir).
// `domain` is a name or a domid; `output` is "text" (default) or "json".
#ifndef XENCHAN_BACKEND_SIM_CONTROL_H_
#define XENCHAN_BACKEND_SIM_CONTROL_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace xenchan {
namespace sim {

inline constexpr size_t kMaxControlLine = 256 * 1024;

// One decoded request.
struct ControlRequest {
  std::string verb;
  std::vector<std::pair<std::string, std::string>> args;

  // The first value of `key`, or nullopt.
  std::optional<std::string> Get(absl::string_view key) const;
  // Every value of `key`, in order.
  std::vector<std::string> GetAll(absl::string_view key) const;
};

// Percent-encoding used for values (see the file comment). Pure.
std::string PercentEncode(absl::string_view raw);
// INVALID_ARGUMENT on a malformed escape.
absl::StatusOr<std::string> PercentDecode(absl::string_view encoded);

// Line codecs (without the trailing newline). Pure.
std::string EncodeRequest(const ControlRequest& request);
absl::StatusOr<ControlRequest> DecodeRequest(absl::string_view line);
std::string EncodeReply(const absl::StatusOr<std::string>& reply);
// Returns the body of an "ok" reply, or the status an "error" reply carries.
// INTERNAL if the line is not a reply at all.
absl::StatusOr<std::string> DecodeReply(absl::string_view line);

// Serves requests on a Unix socket with one thread, one request at a time
// (a slow handler delays later clients; that is fine for a toolstack).
// Thread safety: the handler runs on the server's thread only.
class ControlServer {
 public:
  using Handler = std::function<absl::StatusOr<std::string>(const ControlRequest&)>;

  // Binds `socket_path` (an existing file there is replaced) and starts the
  // thread. Errors from socket(2)/bind(2) as UNAVAILABLE or
  // INVALID_ARGUMENT (path too long).
  static absl::StatusOr<std::unique_ptr<ControlServer>> Create(const std::string& socket_path,
                                                               Handler handler);
  // Stops the thread (waiting for a request in progress) and unlinks the
  // socket.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

 private:
  ControlServer(std::string path, int listen_fd, int wake_fd, Handler handler);
  void Run();
  void Serve(int fd);

  const std::string path_;
  const int listen_fd_;
  const int wake_fd_;  // eventfd; readable when the destructor asks to stop
  const Handler handler_;
  std::thread thread_;
};

// Sends one request and waits up to `timeout` for the reply. UNAVAILABLE if
// nothing listens at `socket_path` (is `xensim serve` running?),
// DEADLINE_EXCEEDED on timeout, else what the server answered.
absl::StatusOr<std::string> CallControl(const std::string& socket_path,
                                        const ControlRequest& request, absl::Duration timeout);

}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_CONTROL_H_
