// Implementation of xenchanctl's argument parsing (args.h).
#include "clients/cli/args.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace xenchan {
namespace cli {

bool IsSwitch(const std::string& k) {
  return k == "domains" || k == "wait" || k == "validate-only" || k == "observer" ||
         k == "takeover" || k == "follow" || k == "fail-fast" || k == "durable" ||
         k == "incarnation" || k == "help";
}

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv) {
  Args out;
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string a = argv[i];
    if (absl::StartsWith(a, "--") && a.size() > 2) {
      a = a.substr(2);
      const size_t eq = a.find('=');
      if (eq != std::string::npos) {
        out.flags.emplace(a.substr(0, eq), a.substr(eq + 1));
      } else if (IsSwitch(a)) {
        out.flags.emplace(a, "true");
      } else if (i + 1 < argv.size()) {
        out.flags.emplace(a, argv[++i]);
      } else {
        return absl::InvalidArgumentError("--" + a + " needs a value");
      }
    } else {
      out.positional.push_back(a);
    }
  }
  return out;
}

absl::StatusOr<GlobalOptions> ParseGlobalOptions(const Args& args, const Getenv& getenv) {
  GlobalOptions options;
  const std::string output = args.Get("output", "human");
  if (output != "human" && output != "json") {
    return absl::InvalidArgumentError("--output must be human or json");
  }
  options.json = output == "json";
  if (args.Has("timeout") && !absl::ParseDuration(args.Get("timeout"), &options.timeout)) {
    return absl::InvalidArgumentError("bad --timeout");
  }
  options.server = args.Get("server");
  if (options.server.empty()) {
    const char* env = getenv("XENCHAN_SERVER");
    options.server = env != nullptr && *env != '\0' ? env : kDefaultServer;
  }
  auto flag_or_env = [&](const char* flag, const char* env) -> std::string {
    if (args.Has(flag)) return args.Get(flag);
    const char* v = getenv(env);
    return v != nullptr ? v : "";
  };
  options.tls_ca_file = flag_or_env("ca", "XENCHAN_CA");
  options.tls_cert_file = flag_or_env("cert", "XENCHAN_CERT");
  options.tls_key_file = flag_or_env("key", "XENCHAN_KEY");
  options.tls_server_name = args.Get("server-name");
  options.fleet = flag_or_env("fleet", "XENCHAN_FLEET");
  return options;
}

absl::Status ParseFraming(const std::string& spec, v1::Framing* f) {
  if (spec == "newline") {
    f->mutable_newline();
  } else if (spec == "length-prefix") {
    f->mutable_length_prefix();
  } else if (spec == "qemu-guest-agent" || spec == "qga") {
    f->mutable_qemu_guest_agent();
  } else if (absl::StartsWith(spec, "delimiter:")) {
    f->mutable_delimiter()->set_delimiter(spec.substr(10));
  } else {
    return absl::InvalidArgumentError("unknown framing '" + spec + "'");
  }
  return absl::OkStatus();
}

bool ParseStart(const std::string& spec, v1::ReadStart* start) {
  if (spec.empty()) return true;
  if (spec == "earliest") {
    start->set_anchor(v1::START_ANCHOR_EARLIEST);
  } else if (spec == "next") {
    start->set_anchor(v1::START_ANCHOR_NEXT);
  } else {
    std::vector<std::string> p = absl::StrSplit(spec, ':');
    uint64_t e, o;
    if (p.size() != 2 || !absl::SimpleAtoi(p[0], &e) || !absl::SimpleAtoi(p[1], &o)) {
      return false;
    }
    start->mutable_position()->set_epoch(e);
    start->mutable_position()->set_offset(o);
  }
  return true;
}

absl::StatusOr<v1::ChannelState> ParseChannelState(const std::string& name) {
  v1::ChannelState st;
  if (!v1::ChannelState_Parse("CHANNEL_STATE_" + absl::AsciiStrToUpper(name), &st)) {
    return absl::InvalidArgumentError("unknown state '" + name + "'");
  }
  return st;
}

absl::StatusOr<v1::OverflowPolicy> ParseOverflowPolicy(const std::string& name) {
  if (name == "block") return v1::OVERFLOW_POLICY_BLOCK;
  if (name == "drop-oldest") return v1::OVERFLOW_POLICY_DROP_OLDEST;
  return absl::InvalidArgumentError("bad --overflow");
}

absl::Status ParseChannelConfig(const Args& args, v1::ChannelConfig* config) {
  if (args.Has("buffer-limit")) {
    uint64_t v;
    if (!absl::SimpleAtoi(args.Get("buffer-limit"), &v)) {
      return absl::InvalidArgumentError("bad --buffer-limit");
    }
    config->set_buffer_limit_bytes(v);
  }
  if (args.Has("write-queue-limit")) {
    uint64_t v;
    if (!absl::SimpleAtoi(args.Get("write-queue-limit"), &v)) {
      return absl::InvalidArgumentError("bad --write-queue-limit");
    }
    config->set_write_queue_limit_bytes(v);
  }
  if (args.Has("overflow")) {
    absl::StatusOr<v1::OverflowPolicy> policy = ParseOverflowPolicy(args.Get("overflow"));
    if (!policy.ok()) return policy.status();
    config->set_overflow_policy(*policy);
  }
  if (args.Has("framing")) {
    if (!ParseFraming(args.Get("framing"), config->mutable_default_framing()).ok()) {
      return absl::InvalidArgumentError("bad --framing");
    }
  }
  if (args.Has("durable")) config->set_lifetime(v1::CHANNEL_LIFETIME_DURABLE);
  return absl::OkStatus();
}

absl::Status ParseChannelUpdate(const Args& args, v1::UpdateChannelRequest* request) {
  if (args.Has("durable") && args.Has("incarnation")) {
    return absl::InvalidArgumentError("give one of --durable and --incarnation");
  }
  v1::ChannelConfig* config = request->mutable_channel()->mutable_config();
  absl::Status s = ParseChannelConfig(args, config);
  if (!s.ok()) return s;
  if (args.Has("incarnation")) config->set_lifetime(v1::CHANNEL_LIFETIME_INCARNATION);
  const std::pair<const char*, const char*> fields[] = {
      {"buffer-limit", "config.buffer_limit_bytes"},
      {"write-queue-limit", "config.write_queue_limit_bytes"},
      {"overflow", "config.overflow_policy"},
      {"framing", "config.default_framing"},
      {"durable", "config.lifetime"},
      {"incarnation", "config.lifetime"},
  };
  for (const auto& [flag, path] : fields) {
    if (args.Has(flag)) request->mutable_update_mask()->add_paths(path);
  }
  if (request->update_mask().paths_size() == 0) {
    return absl::InvalidArgumentError(
        "update needs a setting to change: --buffer-limit, --overflow, --write-queue-limit, "
        "--framing, --durable or --incarnation");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::AckLevel> ParseAckLevel(const std::string& name) {
  if (name == "accepted") return v1::ACK_LEVEL_ACCEPTED;
  if (name == "delivered") return v1::ACK_LEVEL_DELIVERED;
  if (name == "consumed") return v1::ACK_LEVEL_CONSUMED;
  return absl::InvalidArgumentError("bad --ack");
}

}  // namespace cli
}  // namespace xenchan
