// xenchan-agent: the reference in-guest agent (see agent.h and README.md).
//
//   xenchan-agent [--channel NAME] [--root DIR] [--target-root DIR]
//                 [--max-line-bytes N] [--no-wait-connected]
//
// Exits 0 on SIGTERM or SIGINT, 2 on a usage error, 1 if it cannot start.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "clients/agent/agent.h"

namespace {

constexpr char kUsage[] =
    "usage: xenchan-agent [options]\n"
    "  --channel NAME        channel to serve (default org.xenchan.agent.0),\n"
    "                        opened as <root>/dev/xen-channel/NAME\n"
    "  --root DIR            the guest's root (default /)\n"
    "  --target-root DIR     where provision writes (default /)\n"
    "  --max-line-bytes N    longest request line (default 1048576)\n"
    "  --no-wait-connected   do not wait for Connected via sysfs/xenstore;\n"
    "                        rely on the application-level hello only\n"
    "  --version             print the version\n";

int Usage(const char* error) {
  std::fprintf(stderr, "xenchan-agent: %s\n%s", error, kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  xenchan::agent::AgentOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    const auto take = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--version") {
      std::printf("%s %s\n", xenchan::agent::kAgentName, xenchan::agent::kAgentVersion);
      return 0;
    } else if (arg == "--channel") {
      if (!take()) return Usage("--channel needs a value");
      options.channel = value;
    } else if (arg == "--root") {
      if (!take()) return Usage("--root needs a value");
      options.root = value;
    } else if (arg == "--target-root") {
      if (!take()) return Usage("--target-root needs a value");
      options.target_root = value;
    } else if (arg == "--max-line-bytes") {
      if (!take() || !absl::SimpleAtoi(value, &options.max_line_bytes)) {
        return Usage("--max-line-bytes needs a number");
      }
    } else if (arg == "--no-wait-connected" && !has_value) {
      options.wait_for_connected = false;
    } else {
      return Usage(("unknown argument " + std::string(argv[i])).c_str());
    }
  }

  // SIGTERM/SIGINT stop the agent through a signalfd; a hangup of the
  // channel tty is handled by reopening (the tty is not our controlling
  // terminal, O_NOCTTY), so SIGHUP is ignored, as is SIGPIPE.
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  if (sigprocmask(SIG_BLOCK, &stop, nullptr) != 0) {
    std::perror("xenchan-agent: sigprocmask");
    return 1;
  }
  const int stop_fd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
  if (stop_fd < 0) {
    std::perror("xenchan-agent: signalfd");
    return 1;
  }

  absl::StatusOr<std::unique_ptr<xenchan::agent::Agent>> agent =
      xenchan::agent::Agent::Create(options);
  if (!agent.ok()) {
    std::fprintf(stderr, "xenchan-agent: %s\n", agent.status().ToString().c_str());
    return absl::IsInvalidArgument(agent.status()) ? 2 : 1;
  }
  const absl::Status s = (*agent)->Run(stop_fd);
  if (!s.ok()) {
    std::fprintf(stderr, "xenchan-agent: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
