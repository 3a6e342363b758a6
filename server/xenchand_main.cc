// xenchand: turns the command line and the config file into ServerOptions,
// starts the Server (server/server.h: platform, engine, gRPC service,
// listeners, policy, audit log, metrics, health), then waits for signals:
// SIGHUP reloads the policy and reopens the audit log; SIGTERM/SIGINT shut
// down gracefully. Nothing else lives here.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/config.h"
#include "server/log.h"
#include "server/server.h"

namespace xenchan {
namespace server {
namespace {

int Main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(Usage().c_str(), stdout);
      return 0;
    }
  }
  auto config = ParseCommandLine(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "xenchand: %s\n\n%s", std::string(config.status().message()).c_str(),
                 Usage().c_str());
    return 2;
  }
  absl::Status valid = Validate(*config);
  if (!valid.ok()) {
    std::fprintf(stderr, "xenchand: %s\n", std::string(valid.message()).c_str());
    return 2;
  }
  // Signals are taken by sigwait below; every thread inherits the mask, so
  // it is set before the server starts any.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Log("info", "starting",
      {{"platform", config->platform}, {"sim_state_dir", config->sim_state_dir}});
  ServerOptions options;
  options.config = *std::move(config);
  auto server = Server::BuildAndStart(std::move(options));
  if (!server.ok()) {
    const absl::Status& s = server.status();
    Log("error", "start failed",
        {{"error", std::string(s.message())}, {"code", absl::StatusCodeToString(s.code())}});
    return 1;
  }
  Log("info", "ready", {{"pid", absl::StrCat(getpid())}});

  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    Log("info", "SIGHUP: reloading the policy and reopening the audit log");
    (*server)->Reload();
  }
  const char* name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
  Log("info", "shutting down", {{"signal", name}});
  (*server)->Shutdown(name);
  server->reset();
  Log("info", "stopped");
  return 0;
}

}  // namespace
}  // namespace server
}  // namespace xenchan

int main(int argc, char** argv) { return xenchan::server::Main(argc, argv); }
