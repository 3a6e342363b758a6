// xensim: the simulated Xen host's command line.
//
//   xensim serve --state-dir DIR
//       Runs the host in the foreground: xenstored (DIR/xenstored.sock), the
//       hypervisor (DIR/hypervisor.sock), the control socket
//       (DIR/control.sock). Prints "xensim: ready state-dir=DIR" on stdout
//       once every socket accepts connections; on SIGTERM or SIGINT destroys
//       every domain, removes the sockets and exits 0.
//   xensim --state-dir DIR domain create --name N [--uuid U]
//          [--channel SPEC]... [--output text|json]
//       Prints the new domid (or the domain as JSON). SPEC is xl.cfg channel
//       syntax (channel_spec.h); warnings for unknown keys go to stderr.
//   xensim --state-dir DIR domain list [--output text|json]
//   xensim --state-dir DIR domain destroy|suspend|resume|shutdown|kill DOMAIN
//       DOMAIN is a name or a domid (host.h documents each operation).
//   xensim --state-dir DIR domain reboot DOMAIN [--output text|json]
//       Prints the new domid.
//   xensim --state-dir DIR domain save DOMAIN FILE
//   xensim --state-dir DIR domain restore FILE [--output text|json]
//       Prints the new domid.
//   xensim --state-dir DIR domain migrate DOMAIN --to DEST_STATE_DIR
//       DEST_STATE_DIR is another `xensim serve`'s state dir on this
//       machine; prints the domid on the destination.
//   xensim guest --state-dir DIR --domid D --name N [--restore-state F]
//                                                        (spawned by serve)
//   xensim qemu --state-dir DIR --domid D                (spawned by serve)
//
// Options may come before or after the command words, as `--opt VALUE` or
// `--opt=VALUE`. Exit status: 0 success, 1 failure (message on stderr), 2
// usage error.
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backend/sim/channel_spec.h"
#include "backend/sim/control.h"
#include "backend/sim/guest/guest.h"
#include "backend/sim/host.h"
#include "backend/sim/qemu_console.h"

namespace xenchan {
namespace sim {
namespace {

constexpr char kUsage[] =
    "usage:\n"
    "  xensim serve --state-dir DIR\n"
    "  xensim --state-dir DIR domain create --name N [--uuid U] [--channel SPEC]... "
    "[--output text|json]\n"
    "  xensim --state-dir DIR domain list [--output text|json]\n"
    "  xensim --state-dir DIR domain destroy|suspend|resume|shutdown|kill NAME|DOMID\n"
    "  xensim --state-dir DIR domain reboot NAME|DOMID [--output text|json]\n"
    "  xensim --state-dir DIR domain save NAME|DOMID FILE\n"
    "  xensim --state-dir DIR domain restore FILE [--output text|json]\n"
    "  xensim --state-dir DIR domain migrate NAME|DOMID --to DEST_STATE_DIR\n";

struct Args {
  std::vector<std::string> words;
  std::multimap<std::string, std::string> options;

  std::string Get(const std::string& key) const {
    auto it = options.find(key);
    return it == options.end() ? "" : it->second;
  }
  std::vector<std::string> GetAll(const std::string& key) const {
    std::vector<std::string> out;
    for (auto [it, end] = options.equal_range(key); it != end; ++it) out.push_back(it->second);
    return out;
  }
};

int Usage(const std::string& why) {
  if (!why.empty()) std::fprintf(stderr, "xensim: %s\n", why.c_str());
  std::fputs(kUsage, stderr);
  return 2;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "xensim: %s\n", std::string(status.message()).c_str());
  return 1;
}

bool ParseArgs(int argc, char** argv, Args* args, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      *error = "";
      return false;
    }
    if (!absl::StartsWith(a, "--")) {
      args->words.push_back(a);
      continue;
    }
    a = a.substr(2);
    const size_t eq = a.find('=');
    if (eq != std::string::npos) {
      args->options.emplace(a.substr(0, eq), a.substr(eq + 1));
    } else if (i + 1 < argc) {
      args->options.emplace(a, argv[++i]);
    } else {
      *error = absl::StrCat("option --", a, " needs a value");
      return false;
    }
  }
  return true;
}

bool CheckOptions(const Args& args, std::initializer_list<const char*> allowed,
                  std::string* error) {
  for (const auto& [key, value] : args.options) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || key == a;
    if (!ok) {
      *error = absl::StrCat("unknown option --", key);
      return false;
    }
  }
  return true;
}

// `path` made absolute against the current directory (serve has its own).
std::string Absolute(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return absl::StrCat(cwd, "/", path);
}

int Serve(const std::string& state_dir_in) {
  // Every thread inherits this mask; the main thread takes the signals.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);

  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return Fail(absl::InternalError("cannot find my own binary"));
  exe[n] = '\0';
  std::string state_dir = state_dir_in;
  if (state_dir[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == nullptr) return Fail(absl::InternalError("getcwd failed"));
    state_dir = absl::StrCat(cwd, "/", state_dir);
  }
  auto host = Host::Create({state_dir, exe});
  if (!host.ok()) return Fail(host.status());
  Host* h = host->get();
  auto control = ControlServer::Create(
      state_dir + "/control.sock",
      [h](const ControlRequest& request) { return h->HandleRequest(request); });
  if (!control.ok()) return Fail(control.status());
  std::printf("xensim: ready state-dir=%s\n", state_dir.c_str());
  std::fflush(stdout);

  int sig = 0;
  while (sigwait(&mask, &sig) != 0) {
  }
  std::fprintf(stderr, "xensim: signal %d, destroying domains\n", sig);
  (*host)->DestroyAllDomains();
  control->reset();
  host->reset();
  std::printf("xensim: stopped\n");
  std::fflush(stdout);
  return 0;
}

int Domain(const Args& args) {
  std::string error;
  const std::string state_dir = args.Get("state-dir");
  if (state_dir.empty()) return Usage("missing --state-dir");
  if (args.words.size() < 2) return Usage("missing domain command");
  const std::string& cmd = args.words[1];
  ControlRequest req;
  req.verb = cmd;
  if (cmd == "create") {
    if (!CheckOptions(args, {"state-dir", "name", "uuid", "channel", "output"}, &error)) {
      return Usage(error);
    }
    if (args.words.size() != 2) return Usage("unexpected arguments to domain create");
    if (args.Get("name").empty()) return Usage("domain create needs --name");
    req.args.emplace_back("name", args.Get("name"));
    if (!args.Get("uuid").empty()) req.args.emplace_back("uuid", args.Get("uuid"));
    for (const std::string& spec : args.GetAll("channel")) {
      // Parsed here for xl's warnings and early errors; serve parses again.
      auto parsed = ParseChannelSpec(spec);
      if (!parsed.ok()) {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat("--channel '", spec, "': ", parsed.status().message())));
      }
      for (const std::string& w : parsed->warnings) {
        std::fprintf(stderr, "xensim: warning: %s\n", w.c_str());
      }
      req.args.emplace_back("channel", spec);
    }
  } else if (cmd == "list") {
    if (!CheckOptions(args, {"state-dir", "output"}, &error)) return Usage(error);
    if (args.words.size() != 2) return Usage("unexpected arguments to domain list");
  } else if (cmd == "destroy" || cmd == "suspend" || cmd == "resume" || cmd == "shutdown" ||
             cmd == "kill") {
    if (!CheckOptions(args, {"state-dir"}, &error)) return Usage(error);
    if (args.words.size() != 3) return Usage(absl::StrCat("domain ", cmd, " needs NAME|DOMID"));
    req.args.emplace_back("domain", args.words[2]);
  } else if (cmd == "reboot") {
    if (!CheckOptions(args, {"state-dir", "output"}, &error)) return Usage(error);
    if (args.words.size() != 3) return Usage("domain reboot needs NAME|DOMID");
    req.args.emplace_back("domain", args.words[2]);
  } else if (cmd == "save") {
    if (!CheckOptions(args, {"state-dir"}, &error)) return Usage(error);
    if (args.words.size() != 4) return Usage("domain save needs NAME|DOMID FILE");
    req.args.emplace_back("domain", args.words[2]);
    req.args.emplace_back("file", Absolute(args.words[3]));
  } else if (cmd == "restore") {
    if (!CheckOptions(args, {"state-dir", "output"}, &error)) return Usage(error);
    if (args.words.size() != 3) return Usage("domain restore needs FILE");
    req.args.emplace_back("file", Absolute(args.words[2]));
  } else if (cmd == "migrate") {
    if (!CheckOptions(args, {"state-dir", "to"}, &error)) return Usage(error);
    if (args.words.size() != 3) return Usage("domain migrate needs NAME|DOMID");
    if (args.Get("to").empty()) return Usage("domain migrate needs --to DEST_STATE_DIR");
    req.args.emplace_back("domain", args.words[2]);
    req.args.emplace_back("to", Absolute(args.Get("to")));
  } else {
    return Usage(absl::StrCat("unknown domain command '", cmd, "'"));
  }
  const std::string output = args.Get("output");
  if (!output.empty()) {
    if (output != "text" && output != "json") return Usage("--output must be text or json");
    req.args.emplace_back("output", output);
  }
  auto reply = CallControl(state_dir + "/control.sock", req, absl::Minutes(5));
  if (!reply.ok()) return Fail(reply.status());
  std::fputs(reply->c_str(), stdout);
  return 0;
}

int Main(int argc, char** argv) {
  Args args;
  std::string error;
  if (!ParseArgs(argc, argv, &args, &error)) return Usage(error);
  if (args.words.empty()) return Usage("missing command");
  const std::string& command = args.words[0];
  const std::string state_dir = args.Get("state-dir");
  if (command == "serve") {
    if (!CheckOptions(args, {"state-dir"}, &error)) return Usage(error);
    if (state_dir.empty()) return Usage("serve needs --state-dir");
    if (args.words.size() != 1) return Usage("unexpected arguments to serve");
    return Serve(state_dir);
  }
  if (command == "domain") return Domain(args);
  if (command == "guest" || command == "qemu") {
    uint32_t domid = 0;
    if (state_dir.empty() || !absl::SimpleAtoi(args.Get("domid"), &domid) || domid == 0) {
      return Usage(command + " needs --state-dir and --domid");
    }
    const std::string dom_dir = absl::StrCat(state_dir, "/domains/", domid);
    absl::Status s;
    if (command == "guest") {
      const std::string name = args.Get("name");
      if (name.empty()) return Usage("guest needs --name");
      GuestOptions o;
      o.state_dir = state_dir;
      o.domid = domid;
      o.name = name;
      o.root_dir = absl::StrCat(state_dir, "/guests/", name, "/root");
      o.xenstore_socket = dom_dir + "/xenstored.sock";
      o.hypervisor_socket = dom_dir + "/hypervisor.sock";
      o.control_socket = dom_dir + "/guest.sock";
      o.restore_state = args.Get("restore-state");
      s = RunGuest(o);
    } else {
      s = RunQemu({state_dir, domid});
    }
    if (!s.ok()) {
      std::fprintf(stderr, "xensim %s %u: %s\n", command.c_str(), domid, s.ToString().c_str());
      return 1;
    }
    return 0;
  }
  return Usage(absl::StrCat("unknown command '", command, "'"));
}

}  // namespace
}  // namespace sim
}  // namespace xenchan

int main(int argc, char** argv) { return xenchan::sim::Main(argc, argv); }
