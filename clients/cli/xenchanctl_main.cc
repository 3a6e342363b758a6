// xenchanctl: the command line of xenchan, in the spirit of virsh. A thin
// front end over the C++ client library (clients/lib): every command is one
// RPC (streams for watch/attach/read/write), human output by default,
// `--output json` for scripts, and exit codes by gRPC status class (see
// kUsage below and the README).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/lib/client.h"
#include "google/protobuf/util/json_util.h"

namespace xenchan {
namespace cli {
namespace {

using client::ChannelName;
using client::Client;
using client::DomainName;

constexpr char kUsage[] = R"(xenchanctl: talk to xenchand, the Xen PV channel server.

Usage: xenchanctl [--server TARGET] [--output human|json] [--timeout D] COMMAND [ARGS]

Channels are named DOMAIN/CHANNEL (DOMAIN is a name or UUID) or by their full
resource name domains/DOMAIN/channels/CHANNEL.

Commands:
  list [DOMAIN] [--state S]... [--prefix P]   channels (all domains by default)
  list --domains                              domains
  get DOMAIN | DOMAIN/CHANNEL                 one domain or channel
  create DOMAIN CHANNEL [--wait] [--connect-timeout D] [--buffer-limit N]
         [--overflow block|drop-oldest] [--write-queue-limit N]
         [--framing newline|length-prefix|qemu-guest-agent|delimiter:STR]
         [--validate-only]                    hot-add a channel
  delete DOMAIN/CHANNEL [--force-after D]     unplug and remove a channel
  watch [DOMAIN] [--from REVISION]            stream lifecycle events (Ctrl-C stops)
  attach DOMAIN/CHANNEL [--observer] [--takeover] [--from earliest|next|EPOCH:OFFSET]
                                              interactive terminal on the channel when
                                              stdin is a tty (Ctrl-] quits); raw bytes
                                              both ways on pipes
  read DOMAIN/CHANNEL [--follow] [--from earliest|next|EPOCH:OFFSET] [--max-bytes N]
                                              guest output to stdout
  write DOMAIN/CHANNEL [--data STR] [--ack accepted|delivered|consumed] [--fail-fast]
                                              send --data, or stdin, to the guest
  call DOMAIN/CHANNEL REQUEST [--framing ...] send one request, print the response

Global flags:
  --server TARGET   unix:///path, HOST:PORT (default $XENCHAN_SERVER, else
                    unix:///run/xenchan/xenchand.sock)
  --ca FILE         TLS: PEM CA of the server's certificate (HOST:PORT
                    targets use mutual TLS when given; $XENCHAN_CA)
  --cert FILE       TLS: PEM client certificate ($XENCHAN_CERT)
  --key FILE        TLS: PEM client private key ($XENCHAN_KEY)
  --server-name N   TLS: name to check in the server's certificate
  --output FORMAT   human (default) or json (one JSON object per line)
  --timeout D       deadline of unary calls, write and call (default 30s;
                    0 means none)

Exit codes:
  0  success                          7  DEADLINE_EXCEEDED
  1  other error (INTERNAL, UNKNOWN)  8  ABORTED (epoch changed, lease taken over)
  2  usage error                      9  OUT_OF_RANGE (offset/revision not retained)
  3  INVALID_ARGUMENT                10  UNAVAILABLE (server down, domain gone: retry)
  4  NOT_FOUND                       11  UNAUTHENTICATED / PERMISSION_DENIED
  5  ALREADY_EXISTS                  12  CANCELLED
  6  FAILED_PRECONDITION             13  RESOURCE_EXHAUSTED
)";

enum ExitCode {
  kOk = 0,
  kError = 1,
  kUsageError = 2,
};

int ExitCodeOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 0;
    case absl::StatusCode::kInvalidArgument: return 3;
    case absl::StatusCode::kNotFound: return 4;
    case absl::StatusCode::kAlreadyExists: return 5;
    case absl::StatusCode::kFailedPrecondition: return 6;
    case absl::StatusCode::kDeadlineExceeded: return 7;
    case absl::StatusCode::kAborted: return 8;
    case absl::StatusCode::kOutOfRange: return 9;
    case absl::StatusCode::kUnavailable: return 10;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied: return 11;
    case absl::StatusCode::kCancelled: return 12;
    case absl::StatusCode::kResourceExhausted: return 13;
    default: return 1;
  }
}

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
bool IsSwitch(const std::string& k) {
  return k == "domains" || k == "wait" || k == "validate-only" || k == "observer" ||
         k == "takeover" || k == "follow" || k == "fail-fast" || k == "help";
}

class UsageError {
 public:
  explicit UsageError(std::string m) : message(std::move(m)) {}
  std::string message;
};

bool ParseArgs(int argc, char** argv, Args* out, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (absl::StartsWith(a, "--") && a.size() > 2) {
      a = a.substr(2);
      const size_t eq = a.find('=');
      if (eq != std::string::npos) {
        out->flags.emplace(a.substr(0, eq), a.substr(eq + 1));
      } else if (IsSwitch(a)) {
        out->flags.emplace(a, "true");
      } else if (i + 1 < argc) {
        out->flags.emplace(a, argv[++i]);
      } else {
        *error = "--" + a + " needs a value";
        return false;
      }
    } else {
      out->positional.push_back(a);
    }
  }
  return true;
}

class Cli {
 public:
  Cli(Args args, std::unique_ptr<Client> client, bool json, absl::Duration timeout)
      : args_(std::move(args)), client_(std::move(client)), json_(json), timeout_(timeout) {}

  int Run() {
    const std::string& cmd = args_.positional[0];
    if (cmd == "list") return List();
    if (cmd == "get") return Get();
    if (cmd == "create") return Create();
    if (cmd == "delete") return Delete();
    if (cmd == "watch") return Watch();
    if (cmd == "attach") return Attach();
    if (cmd == "read") return Read();
    if (cmd == "write") return Write();
    if (cmd == "call") return Call();
    return Usage("unknown command '" + cmd + "'");
  }

 private:
  int Usage(const std::string& why) {
    std::fprintf(stderr, "xenchanctl: %s\n(see xenchanctl --help)\n", why.c_str());
    return kUsageError;
  }

  // Reports `s` on stderr (human or JSON) and returns its exit code.
  int Fail(const absl::Status& s) {
    const std::string reason = client::ReasonOf(s);
    if (json_) {
      google::rpc::Status rpc = client::RpcStatusOf(s);
      std::string out;
      google::protobuf::util::JsonPrintOptions o;
      if (!google::protobuf::util::MessageToJsonString(rpc, &out, o).ok()) {
        out = absl::StrCat("{\"code\":", static_cast<int>(s.code()), "}");
      }
      std::fprintf(stderr, "%s\n", out.c_str());
    } else {
      std::fprintf(stderr, "xenchanctl: %s%s%s: %s\n", absl::StatusCodeToString(s.code()).c_str(),
                   reason.empty() ? "" : " ", reason.c_str(), std::string(s.message()).c_str());
      if (auto holder = client::DetailOf<v1::LeaseHolder>(s)) {
        std::fprintf(stderr, "  lease held by session %s (%s)\n", holder->session_id().c_str(),
                     holder->identity().c_str());
      }
      if (auto range = client::DetailOf<v1::RetainedRange>(s)) {
        std::fprintf(stderr, "  retained from %llu:%llu to %llu:%llu\n",
                     static_cast<unsigned long long>(range->earliest_position().epoch()),
                     static_cast<unsigned long long>(range->earliest_position().offset()),
                     static_cast<unsigned long long>(range->next_position().epoch()),
                     static_cast<unsigned long long>(range->next_position().offset()));
      }
      if (auto partial = client::DetailOf<v1::PartialResponse>(s)) {
        if (!partial->response().empty()) {
          std::fprintf(stderr, "  partial response: %s\n", partial->response().c_str());
        }
      }
    }
    return ExitCodeOf(s.code());
  }

  void PrintJson(const google::protobuf::Message& m) {
    std::string out;
    google::protobuf::util::JsonPrintOptions o;
    o.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(m, &out, o);
    std::printf("%s\n", out.c_str());
    std::fflush(stdout);
  }

  static std::string Short(int value, const std::string& full, const std::string& prefix) {
    std::string s = full;
    if (absl::StartsWith(s, prefix)) s = s.substr(prefix.size());
    (void)value;
    return absl::AsciiStrToLower(s);
  }
  static std::string State(v1::ChannelState s) {
    return Short(s, v1::ChannelState_Name(s), "CHANNEL_STATE_");
  }

  void PrintChannelRow(const v1::Channel& c) {
    std::printf("%-36s %-32s %-5u %-18s %-8llu %s\n", c.domain_uuid().c_str(),
                c.channel_id().c_str(), c.devid(), State(c.state()).c_str(),
                static_cast<unsigned long long>(c.epoch()),
                Short(c.transport(), v1::Transport_Name(c.transport()), "TRANSPORT_").c_str());
  }

  void PrintChannel(const v1::Channel& c) {
    if (json_) return PrintJson(c);
    std::printf("name:        %s\n", c.name().c_str());
    std::printf("uid:         %s\n", c.uid().c_str());
    std::printf("domid:       %u  devid: %u\n", c.domid(), c.devid());
    std::printf("transport:   %s\n",
                Short(c.transport(), v1::Transport_Name(c.transport()), "TRANSPORT_").c_str());
    std::printf("state:       %s (frontend %d, backend %d)\n", State(c.state()).c_str(),
                c.frontend_state(), c.backend_state());
    std::printf("epoch:       %llu\n", static_cast<unsigned long long>(c.epoch()));
    std::printf("from guest:  %llu:%llu..%llu:%llu buffered %llu unread %llu%s\n",
                static_cast<unsigned long long>(c.from_guest().earliest_position().epoch()),
                static_cast<unsigned long long>(c.from_guest().earliest_position().offset()),
                static_cast<unsigned long long>(c.from_guest().next_position().epoch()),
                static_cast<unsigned long long>(c.from_guest().next_position().offset()),
                static_cast<unsigned long long>(c.from_guest().buffered_bytes()),
                static_cast<unsigned long long>(c.from_guest().unread_bytes()),
                c.stalled() ? " STALLED" : "");
    std::printf("to guest:    accepted %llu delivered %llu consumed %llu\n",
                static_cast<unsigned long long>(c.to_guest().accepted_offset()),
                static_cast<unsigned long long>(c.to_guest().delivered_offset()),
                static_cast<unsigned long long>(c.to_guest().consumed_offset()));
    if (c.has_write_lease()) {
      std::printf("write lease: %s (%s)\n", c.write_lease().session_id().c_str(),
                  c.write_lease().identity().c_str());
    }
    std::printf("observers:   %u\n", c.observer_count());
    if (c.has_last_error()) std::printf("last error:  %s\n", c.last_error().message().c_str());
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

  int List() {
    if (args_.Has("domains")) {
      auto domains = client_->ListDomains();
      if (!domains.ok()) return Fail(domains.status());
      if (!json_) std::printf("%-36s %-24s %-6s %-8s %s\n", "UUID", "NAME", "DOMID", "STATE", "CHANNELS");
      for (const auto& d : *domains) {
        if (json_) {
          PrintJson(d);
        } else {
          std::printf("%-36s %-24s %-6u %-8s %u\n", d.uuid().c_str(), d.display_name().c_str(),
                      d.domid(), Short(d.state(), v1::DomainState_Name(d.state()), "DOMAIN_STATE_").c_str(),
                      d.channel_count());
        }
      }
      return kOk;
    }
    v1::ListChannelsRequest req;
    req.set_parent(args_.positional.size() > 1 ? DomainName(args_.positional[1]) : "domains/-");
    req.set_page_size(1000);
    req.mutable_filter()->set_channel_id_prefix(args_.Get("prefix"));
    for (const std::string& s : args_.All("state")) {
      v1::ChannelState st;
      if (!v1::ChannelState_Parse("CHANNEL_STATE_" + absl::AsciiStrToUpper(s), &st)) {
        return Usage("unknown state '" + s + "'");
      }
      req.add_states(st);
    }
    auto channels = client_->ListChannels(req);
    if (!channels.ok()) return Fail(channels.status());
    if (!json_) {
      std::printf("%-36s %-32s %-5s %-18s %-8s %s\n", "DOMAIN", "CHANNEL", "DEVID", "STATE", "EPOCH",
                  "TRANSPORT");
    }
    for (const auto& c : *channels) json_ ? PrintJson(c) : PrintChannelRow(c);
    return kOk;
  }

  int Get() {
    if (args_.positional.size() != 2) return Usage("get needs DOMAIN or DOMAIN/CHANNEL");
    const std::string& what = args_.positional[1];
    const std::string name = ChannelName(what);
    if (absl::StrContains(name, "/channels/")) {
      auto c = client_->GetChannel(name);
      if (!c.ok()) return Fail(c.status());
      PrintChannel(*c);
      return kOk;
    }
    auto d = client_->GetDomain(DomainName(what));
    if (!d.ok()) return Fail(d.status());
    if (json_) {
      PrintJson(*d);
    } else {
      std::printf("name:     %s\nuuid:     %s\ndisplay:  %s\ndomid:    %u\nchannels: %u\n",
                  d->name().c_str(), d->uuid().c_str(), d->display_name().c_str(), d->domid(),
                  d->channel_count());
    }
    return kOk;
  }

  int Create() {
    if (args_.positional.size() != 3) return Usage("create needs DOMAIN CHANNEL");
    v1::CreateChannelRequest req;
    req.set_parent(DomainName(args_.positional[1]));
    req.set_channel_id(args_.positional[2]);
    req.set_wait_until_connected(args_.Has("wait"));
    req.set_validate_only(args_.Has("validate-only"));
    absl::Duration connect_timeout = absl::Seconds(30);
    if (args_.Has("connect-timeout")) {
      if (!absl::ParseDuration(args_.Get("connect-timeout"), &connect_timeout)) {
        return Usage("bad --connect-timeout");
      }
      req.mutable_connect_timeout()->set_seconds(absl::ToInt64Seconds(connect_timeout));
    }
    v1::ChannelConfig* config = req.mutable_config();
    if (args_.Has("buffer-limit")) {
      uint64_t v;
      if (!absl::SimpleAtoi(args_.Get("buffer-limit"), &v)) return Usage("bad --buffer-limit");
      config->set_buffer_limit_bytes(v);
    }
    if (args_.Has("write-queue-limit")) {
      uint64_t v;
      if (!absl::SimpleAtoi(args_.Get("write-queue-limit"), &v)) {
        return Usage("bad --write-queue-limit");
      }
      config->set_write_queue_limit_bytes(v);
    }
    if (args_.Has("overflow")) {
      const std::string o = args_.Get("overflow");
      if (o == "block") {
        config->set_overflow_policy(v1::OVERFLOW_POLICY_BLOCK);
      } else if (o == "drop-oldest") {
        config->set_overflow_policy(v1::OVERFLOW_POLICY_DROP_OLDEST);
      } else {
        return Usage("bad --overflow");
      }
    }
    if (args_.Has("framing")) {
      if (!ParseFraming(args_.Get("framing"), config->mutable_default_framing()).ok()) {
        return Usage("bad --framing");
      }
    }
    const absl::Duration t = args_.Has("wait") ? std::max(timeout_, connect_timeout + absl::Seconds(5))
                                               : timeout_;
    auto c = client_->CreateChannel(req, t);
    if (!c.ok()) return Fail(c.status());
    if (json_) {
      PrintJson(*c);
    } else {
      std::printf("%s %s (devid %u)\n", req.validate_only() ? "would create" : "created",
                  c->name().empty() ? req.channel_id().c_str() : c->name().c_str(), c->devid());
    }
    return kOk;
  }

  int Delete() {
    if (args_.positional.size() != 2) return Usage("delete needs DOMAIN/CHANNEL");
    v1::DeleteChannelRequest req;
    req.set_name(ChannelName(args_.positional[1]));
    absl::Duration force = absl::Seconds(10);
    if (args_.Has("force-after")) {
      if (!absl::ParseDuration(args_.Get("force-after"), &force)) return Usage("bad --force-after");
      req.mutable_force_after()->set_seconds(absl::ToInt64Seconds(force));
      req.mutable_force_after()->set_nanos(
          static_cast<int32_t>(absl::ToInt64Nanoseconds(force) % 1000000000));
    }
    auto r = client_->DeleteChannel(req, std::max(timeout_, force + absl::Seconds(10)));
    if (!r.ok()) return Fail(r.status());
    if (json_) {
      PrintJson(*r);
    } else {
      std::printf("deleted %s%s\n", r->channel().name().c_str(), r->forced() ? " (forced)" : "");
    }
    return kOk;
  }

  int Watch() {
    v1::WatchChannelsRequest req;
    req.set_parent(args_.positional.size() > 1 ? DomainName(args_.positional[1]) : "domains/-");
    if (args_.Has("from")) {
      uint64_t rev;
      if (!absl::SimpleAtoi(args_.Get("from"), &rev)) return Usage("bad --from");
      req.set_start_revision(rev);
    }
    absl::Status s = client_->Watch(req, [&](const v1::WatchChannelsResponse& e) {
      if (json_) {
        PrintJson(e);
      } else {
        std::printf("%llu %-10s %s %s\n", static_cast<unsigned long long>(e.revision()),
                    Short(e.type(), v1::ChannelEventType_Name(e.type()), "CHANNEL_EVENT_TYPE_").c_str(),
                    e.channel().name().c_str(),
                    e.has_channel() ? State(e.channel().state()).c_str() : "");
        std::fflush(stdout);
      }
      return true;
    });
    return s.ok() ? kOk : Fail(s);
  }

  int Read() {
    if (args_.positional.size() != 2) return Usage("read needs DOMAIN/CHANNEL");
    v1::ReadRequest req;
    req.set_channel(ChannelName(args_.positional[1]));
    req.set_follow(args_.Has("follow"));
    if (!ParseStart(args_.Get("from"), req.mutable_start())) return Usage("bad --from");
    if (args_.Has("max-bytes")) {
      uint64_t n;
      if (!absl::SimpleAtoi(args_.Get("max-bytes"), &n)) return Usage("bad --max-bytes");
      req.set_max_bytes(n);
    }
    absl::Status s = client_->Read(req, [&](const v1::ReadResponse& r) {
      if (json_) {
        PrintJson(r);
      } else if (r.has_data()) {
        fwrite(r.data().data().data(), 1, r.data().data().size(), stdout);
        std::fflush(stdout);
      } else if (r.has_gap()) {
        std::fprintf(stderr, "[gap: %llu bytes lost]\n",
                     static_cast<unsigned long long>(r.gap().length()));
      } else if (r.has_epoch_change()) {
        std::fprintf(stderr, "[epoch %llu]\n",
                     static_cast<unsigned long long>(r.epoch_change().epoch()));
      }
      return true;
    });
    return s.ok() ? kOk : Fail(s);
  }

  int Write() {
    if (args_.positional.size() != 2) return Usage("write needs DOMAIN/CHANNEL");
    v1::WriteRequest first;
    first.set_channel(ChannelName(args_.positional[1]));
    first.set_fail_fast(args_.Has("fail-fast"));
    const std::string ack = args_.Get("ack", "accepted");
    if (ack == "accepted") {
      first.set_ack_level(v1::ACK_LEVEL_ACCEPTED);
    } else if (ack == "delivered") {
      first.set_ack_level(v1::ACK_LEVEL_DELIVERED);
    } else if (ack == "consumed") {
      first.set_ack_level(v1::ACK_LEVEL_CONSUMED);
    } else {
      return Usage("bad --ack");
    }
    const bool from_stdin = !args_.Has("data");
    if (!from_stdin) first.set_data(args_.Get("data"));
    const bool progress = isatty(STDERR_FILENO) && from_stdin;
    uint64_t sent = first.data().size();
    absl::Time last = absl::Now();
    auto r = client_->Write(
        first,
        [&](std::string* chunk) {
          if (!from_stdin) return false;
          chunk->resize(64 * 1024);
          ssize_t n;
          do {
            n = read(STDIN_FILENO, chunk->data(), chunk->size());
          } while (n < 0 && errno == EINTR);
          if (n <= 0) return false;
          chunk->resize(static_cast<size_t>(n));
          sent += static_cast<uint64_t>(n);
          if (progress && absl::Now() - last > absl::Milliseconds(250)) {
            last = absl::Now();
            std::fprintf(stderr, "\r%llu bytes sent", static_cast<unsigned long long>(sent));
          }
          return true;
        },
        timeout_);
    if (progress) std::fprintf(stderr, "\r%llu bytes sent\n", static_cast<unsigned long long>(sent));
    if (!r.ok()) return Fail(r.status());
    if (json_) {
      PrintJson(*r);
    } else {
      std::fprintf(stderr, "accepted %llu, delivered %llu, consumed %llu bytes (epoch %llu)\n",
                   static_cast<unsigned long long>(r->progress().accepted_bytes()),
                   static_cast<unsigned long long>(r->progress().delivered_bytes()),
                   static_cast<unsigned long long>(r->progress().consumed_bytes()),
                   static_cast<unsigned long long>(r->progress().epoch()));
    }
    return kOk;
  }

  int Call() {
    if (args_.positional.size() != 3) return Usage("call needs DOMAIN/CHANNEL REQUEST");
    v1::CallRequest req;
    req.set_channel(ChannelName(args_.positional[1]));
    req.set_request(args_.positional[2]);
    if (args_.Has("framing") && !ParseFraming(args_.Get("framing"), req.mutable_framing()).ok()) {
      return Usage("bad --framing");
    }
    auto r = client_->Call(req, timeout_);
    if (!r.ok()) return Fail(r.status());
    if (json_) {
      PrintJson(*r);
    } else {
      std::printf("%s\n", r->response().c_str());
    }
    return kOk;
  }

  int Attach() {
    if (args_.positional.size() != 2) return Usage("attach needs DOMAIN/CHANNEL");
    const bool observer = args_.Has("observer");
    auto stream = client_->Attach();
    v1::AttachRequest open;
    open.mutable_open()->set_channel(ChannelName(args_.positional[1]));
    open.mutable_open()->set_role(observer ? v1::SESSION_ROLE_OBSERVER : v1::SESSION_ROLE_WRITER);
    open.mutable_open()->set_takeover(args_.Has("takeover"));
    if (!ParseStart(args_.Get("from"), open.mutable_open()->mutable_start())) {
      return Usage("bad --from");
    }
    stream->Send(open);
    const bool tty = isatty(STDIN_FILENO);
    termios saved{};
    bool raw = false;
    if (tty && !json_) {
      if (tcgetattr(STDIN_FILENO, &saved) == 0) {
        termios t = saved;
        cfmakeraw(&t);
        raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
      }
      std::fprintf(stderr, "[attached to %s; Ctrl-] quits]\r\n", args_.positional[1].c_str());
    }
    std::atomic<bool> done{false};
    std::thread reader([&] {
      v1::AttachResponse m;
      while (stream->Receive(&m)) {
        if (json_) {
          PrintJson(m);
        } else if (m.has_data()) {
          fwrite(m.data().data().data(), 1, m.data().data().size(), stdout);
          std::fflush(stdout);
        } else if (m.has_gap() && tty) {
          std::fprintf(stderr, "\r\n[gap: %llu bytes lost]\r\n",
                       static_cast<unsigned long long>(m.gap().length()));
        } else if (m.has_epoch_change() && tty) {
          std::fprintf(stderr, "\r\n[guest reconnected: epoch %llu]\r\n",
                       static_cast<unsigned long long>(m.epoch_change().epoch()));
        } else if (m.has_write_rejection()) {
          std::fprintf(stderr, "\r\n[write rejected: %s]\r\n", m.write_rejection().message().c_str());
        } else if (m.has_lease_lost()) {
          std::fprintf(stderr, "\r\n[write lease taken over by %s]\r\n",
                       m.lease_lost().new_holder().session_id().c_str());
        }
      }
      done = true;
    });
    uint64_t seq = 0;
    bool quit = false;
    while (!done && !quit) {
      pollfd p{STDIN_FILENO, POLLIN, 0};
      const int r = poll(&p, 1, 200);
      if (r <= 0) continue;
      char buf[4096];
      ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EOF on a pipe: half-close below
      std::string data(buf, static_cast<size_t>(n));
      if (tty) {
        const size_t esc = data.find('\x1d');  // Ctrl-]
        if (esc != std::string::npos) {
          data.resize(esc);
          quit = true;
        }
      }
      if (!observer && !data.empty()) {
        v1::AttachRequest w;
        w.mutable_write()->set_sequence_id(++seq);
        w.mutable_write()->set_data(data);
        if (!stream->Send(w)) break;
      }
    }
    if (quit) {
      stream->Cancel();
    } else {
      stream->HalfClose();
    }
    reader.join();
    if (raw) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    absl::Status s = stream->Finish();
    if (quit && s.code() == absl::StatusCode::kCancelled) return kOk;
    return s.ok() ? kOk : Fail(s);
  }

  Args args_;
  std::unique_ptr<Client> client_;
  bool json_;
  absl::Duration timeout_;
};

int Main(int argc, char** argv) {
  Args args;
  std::string error;
  if (!ParseArgs(argc, argv, &args, &error)) {
    std::fprintf(stderr, "xenchanctl: %s\n", error.c_str());
    return kUsageError;
  }
  if (args.Has("help") || (!args.positional.empty() && args.positional[0] == "help")) {
    std::fputs(kUsage, stdout);
    return kOk;
  }
  if (args.positional.empty()) {
    std::fputs(kUsage, stderr);
    return kUsageError;
  }
  const std::string output = args.Get("output", "human");
  if (output != "human" && output != "json") {
    std::fprintf(stderr, "xenchanctl: --output must be human or json\n");
    return kUsageError;
  }
  absl::Duration timeout = absl::Seconds(30);
  if (args.Has("timeout") && !absl::ParseDuration(args.Get("timeout"), &timeout)) {
    std::fprintf(stderr, "xenchanctl: bad --timeout\n");
    return kUsageError;
  }
  std::string target = args.Get("server");
  if (target.empty()) {
    const char* env = getenv("XENCHAN_SERVER");
    target = env != nullptr && *env != '\0' ? env : "unix:///run/xenchan/xenchand.sock";
  }
  client::ConnectOptions options;
  options.unary_timeout = timeout;
  auto flag_or_env = [&args](const char* flag, const char* env) -> std::string {
    if (args.Has(flag)) return args.Get(flag);
    const char* v = getenv(env);
    return v != nullptr ? v : "";
  };
  options.tls_ca_file = flag_or_env("ca", "XENCHAN_CA");
  options.tls_cert_file = flag_or_env("cert", "XENCHAN_CERT");
  options.tls_key_file = flag_or_env("key", "XENCHAN_KEY");
  if (args.Has("server-name")) options.tls_server_name = args.Get("server-name");
  auto c = Client::Connect(target, options);
  if (!c.ok()) {
    std::fprintf(stderr, "xenchanctl: %s\n", std::string(c.status().message()).c_str());
    return kUsageError;
  }
  Cli cli(std::move(args), *std::move(c), output == "json", timeout);
  return cli.Run();
}

}  // namespace
}  // namespace cli
}  // namespace xenchan

int main(int argc, char** argv) { return xenchan::cli::Main(argc, argv); }
