// The xenchan-agent protocol: one JSON request per line in, one JSON reply per
// line out (newline-delimited JSON, so `xenchanctl call` and the Call RPC
// with the default newline framing work unchanged). This file turns one
// request line into one reply line; the channel and line handling live in
// agent.h.
//
// Requests are JSON objects with a string member "op" and, optionally, an
// "id" (any JSON value) that the reply echoes, so a caller can match a late
// reply to its request. Unknown members are refused (a typo in a provisioning
// request must not be ignored silently).
//
//   {"op":"hello"}  -> {"ok":true,"op":"hello","agent":"xenchan-agent",
//                       "version":V,"protocol":1,"ops":[...],
//                       "max_line_bytes":N}
//       The application-level hello: the agent writes nothing to the channel
//       before its first request, so a host can send hello (or anything) to
//       learn that the agent is up.
//   {"op":"ping"}   -> {"ok":true,"op":"pong","agent":"xenchan-agent","version":V}
//   {"op":"facts"}  -> {"ok":true,"op":"facts","hostname":H,"os":{"id":..,
//                       "name":..,"version_id":..,"pretty_name":..} or null,
//                       "kernel":{"sysname","release","version","machine"},
//                       "uptime_seconds":S,"provisioned":{"spec_id":I,
//                       "at":T} or null,"agent":..,"version":V}
//       hostname and kernel from uname(2), os from <root>/etc/os-release (or
//       <root>/usr/lib/os-release), uptime from /proc/uptime (null if absent),
//       provisioned from the target's record (provision_record.h; null if
//       there is none or it is not valid).
//   {"op":"provision", "hostname":H?, "ssh_authorized_keys":[K...]?,
//    "user":U?, "files":[{"path":P,"content":B64,"mode":M?}...]?,
//    "spec_id":I?}
//                   -> {"ok":true,"op":"provisioned","written":[paths],
//                       "provisioned":{"spec_id":I,"at":T} (with spec_id)}
//       Writes into the target root (see target_root.h for confinement and
//       atomicity): each file (mode an integer such as 420 or an octal string
//       such as "0644", at most 0777; default 0644); the keys, one per line,
//       to <home of U>/.ssh/authorized_keys (mode 0600, .ssh 0700, owned by U
//       when the agent runs as root; U defaults to "root", homes come from
//       <target>/etc/passwd, root's defaults to /root); the hostname (RFC 1123)
//       to /etc/hostname. Everything is validated before anything is written;
//       "written" lists the paths in the order written. The provisioned
//       record is removed before the first write and, with a spec_id (1-128
//       bytes of printable ASCII without spaces), written after the last.
//
// Errors: {"ok":false,"error":{"code":C,"message":M}} (plus "id" if the
// request had one). Stable codes:
//   PARSE_ERROR       the line is not strict JSON
//   INVALID_REQUEST   not an object, "op" missing or not a string, an unknown
//                     member, a member of the wrong JSON type
//   UNKNOWN_OP        "op" names no operation
//   INVALID_ARGUMENT  a member's value is unusable (hostname, key, base64,
//                     mode, path syntax)
//   PATH_NOT_ALLOWED  a path that would leave the target root ("..", a
//                     symbolic link on the way)
//   USER_NOT_FOUND    "user" is not in <target>/etc/passwd
//   IO_ERROR          writing failed (the message says where)
//   LINE_TOO_LONG     the request line exceeded the line limit (sent by the
//                     agent loop, see agent.h)
//
// Thread safety: thread-compatible (one Handler per agent loop).
#ifndef XENCHAN_CLIENTS_AGENT_HANDLER_H_
#define XENCHAN_CLIENTS_AGENT_HANDLER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/agent/json.h"
#include "clients/agent/target_root.h"

namespace xenchan {
namespace agent {

inline constexpr char kAgentName[] = "xenchan-agent";
inline constexpr char kAgentVersion[] = "0.1.0";
// 2: provision's spec_id and facts' provisioned (1 had neither).
inline constexpr int kProtocolVersion = 2;
inline constexpr size_t kDefaultMaxLineBytes = 1 << 20;

// Stable error codes of the protocol.
inline constexpr char kParseError[] = "PARSE_ERROR";
inline constexpr char kInvalidRequest[] = "INVALID_REQUEST";
inline constexpr char kUnknownOp[] = "UNKNOWN_OP";
inline constexpr char kInvalidArgument[] = "INVALID_ARGUMENT";
inline constexpr char kPathNotAllowed[] = "PATH_NOT_ALLOWED";
inline constexpr char kUserNotFound[] = "USER_NOT_FOUND";
inline constexpr char kIoError[] = "IO_ERROR";
inline constexpr char kLineTooLong[] = "LINE_TOO_LONG";

// One error reply line (no trailing newline). `id` is echoed unless null.
std::string ErrorReply(absl::string_view code, absl::string_view message,
                       const json::Value& id = json::Value());

// KEY=VALUE pairs of an os-release file (quotes and backslash escapes
// removed; comments and malformed lines skipped).
std::map<std::string, std::string> ParseOsRelease(absl::string_view text);

// True for an RFC 1123 host name: dot-separated labels of 1-63 letters,
// digits and hyphens, not starting or ending with a hyphen; at most 253 bytes.
bool IsValidHostname(absl::string_view name);

class Handler {
 public:
  struct Options {
    // Where facts come from (<root>/etc/os-release).
    std::string root = "/";
    // Where provision writes; must be an existing directory.
    std::string target_root = "/";
    // Advertised in hello.
    size_t max_line_bytes = kDefaultMaxLineBytes;
    // The clock of the provisioned record's "at".
    std::function<absl::Time()> now = absl::Now;
  };

  // FAILED_PRECONDITION / NOT_FOUND if the target root cannot be opened.
  static absl::StatusOr<std::unique_ptr<Handler>> Create(Options options);

  // The reply line (without the newline) for one request line (without its
  // newline). Never fails: errors become error replies. Blocks while
  // provisioning writes and fsyncs files.
  std::string HandleLine(absl::string_view line);

 private:
  Handler(Options options, std::unique_ptr<TargetRoot> target)
      : options_(std::move(options)), target_(std::move(target)) {}

  absl::StatusOr<json::Value> Hello(const json::Value& request);
  absl::StatusOr<json::Value> Ping(const json::Value& request);
  absl::StatusOr<json::Value> Facts(const json::Value& request);
  absl::StatusOr<json::Value> Provision(const json::Value& request);

  Options options_;
  std::unique_ptr<TargetRoot> target_;
};

}  // namespace agent
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_AGENT_HANDLER_H_
