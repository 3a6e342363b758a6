// xenchanctl's argument parsing, apart from any I/O so that it is
// unit-tested: the split of the command line into positionals and flags, the
// global options (server, TLS, output, timeout, with their environment
// fallbacks), and the parsers of flag values the commands share. Errors are
// INVALID_ARGUMENT whose message is what xenchanctl prints as a usage error.
#ifndef XENCHAN_CLIENTS_CLI_ARGS_H_
#define XENCHAN_CLIENTS_CLI_ARGS_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "xenchan/v1/channel_service.pb.h"

namespace xenchan {
namespace cli {

// A parsed command line: the positionals in order (the command first) and
// every `--flag` with its value (switches get "true"). A flag may repeat.
struct Args {
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> flags;
  bool Has(const std::string& k) const { return flags.count(k) > 0; }
  std::string Get(const std::string& k, const std::string& def = "") const {
    auto it = flags.find(k);
    return it == flags.end() ? def : it->second;
  }
  std::vector<std::string> All(const std::string& k) const {
    std::vector<std::string> out;
    auto range = flags.equal_range(k);
    for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
    return out;
  }
};

// Flags that take no value.
bool IsSwitch(const std::string& k);

// Splits the arguments after the program name. `--flag=value`, `--flag
// value` and `--switch` are flags, anything else (including `-x` and a lone
// `--`) is positional; flags and positionals may come in any order.
// INVALID_ARGUMENT "--NAME needs a value" when a flag that takes a value ends
// the line.
absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv);

// The environment, as getenv(3): nullptr when unset.
using Getenv = std::function<const char*(const char*)>;

// The options every command shares.
struct GlobalOptions {
  // gRPC target: --server, else $XENCHAN_SERVER when not empty, else
  // kDefaultServer.
  std::string server;
  // --output json (else human).
  bool json = false;
  // --timeout: deadline of unary calls, write and call; zero: none.
  absl::Duration timeout = absl::Seconds(30);
  // Mutual TLS files: each flag, else its environment variable.
  std::string tls_ca_file;    // --ca, $XENCHAN_CA
  std::string tls_cert_file;  // --cert, $XENCHAN_CERT
  std::string tls_key_file;   // --key, $XENCHAN_KEY
  // --server-name; empty: the target's host.
  std::string tls_server_name;
  // --fleet TARGET, else $XENCHAN_FLEET: a xenchand of a fleet through which
  // domains are located and commands routed to their hosts; empty: none.
  std::string fleet;
};

inline constexpr char kDefaultServer[] = "unix:///run/xenchan/xenchand.sock";

// The global options of `args`, looking up unset ones with `getenv`.
// INVALID_ARGUMENT "--output must be human or json" or "bad --timeout".
absl::StatusOr<GlobalOptions> ParseGlobalOptions(const Args& args, const Getenv& getenv);

// `newline`, `length-prefix`, `qemu-guest-agent` (or `qga`) or
// `delimiter:STR` into `framing`; INVALID_ARGUMENT "unknown framing '...'".
absl::Status ParseFraming(const std::string& spec, v1::Framing* framing);

// `earliest`, `next` or `EPOCH:OFFSET` into `start`; an empty spec leaves it
// unset. False if malformed.
bool ParseStart(const std::string& spec, v1::ReadStart* start);

// A --state value (`connected`, `disconnected`, ...: the ChannelState name in
// any case, without its prefix); INVALID_ARGUMENT "unknown state '...'".
absl::StatusOr<v1::ChannelState> ParseChannelState(const std::string& name);

// `block` or `drop-oldest`; INVALID_ARGUMENT "bad --overflow".
absl::StatusOr<v1::OverflowPolicy> ParseOverflowPolicy(const std::string& name);

// The channel settings of `create` into `config`: --buffer-limit N,
// --write-queue-limit N, --overflow block|drop-oldest, --framing SPEC (see
// ParseFraming) and --durable (CHANNEL_LIFETIME_DURABLE; without it the
// lifetime is left unset, i.e. the server's INCARNATION default). Flags not
// given leave their fields unset. INVALID_ARGUMENT "bad --FLAG" naming the
// first malformed flag.
absl::Status ParseChannelConfig(const Args& args, v1::ChannelConfig* config);

// The settings of `update` into `request`: the flags of ParseChannelConfig
// plus --incarnation (CHANNEL_LIFETIME_INCARNATION), each given flag also
// naming its field in request->update_mask (in the order above), so that
// only what the caller named changes. INVALID_ARGUMENT "bad --FLAG" as
// ParseChannelConfig; also if no setting is given, or both --durable and
// --incarnation.
absl::Status ParseChannelUpdate(const Args& args, v1::UpdateChannelRequest* request);

// `accepted`, `delivered` or `consumed`; INVALID_ARGUMENT "bad --ack".
absl::StatusOr<v1::AckLevel> ParseAckLevel(const std::string& name);

}  // namespace cli
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_CLI_ARGS_H_
