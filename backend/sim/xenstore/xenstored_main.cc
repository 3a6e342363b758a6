// Standalone simulated xenstored, for manual testing:
//   xenstored_main --socket /tmp/xs/sock --domain-socket-dir /tmp/xs
// then e.g. `XENSTORED_PATH=/tmp/xs/sock xenstore-ls /`. Runs until killed
// (SIGINT/SIGTERM).
#include <signal.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "backend/sim/xenstore/server.h"

ABSL_FLAG(std::string, socket, "", "Path of the dom0 (privileged) socket.");
ABSL_FLAG(std::string, domain_socket_dir, "",
          "State directory: per-domain sockets go to "
          "DIR/domains/<domid>/xenstored.sock.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  xenchan::sim::xenstore::XenstoreServer::Options options;
  options.socket_path = absl::GetFlag(FLAGS_socket);
  options.state_dir = absl::GetFlag(FLAGS_domain_socket_dir);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // Before the thread starts.
  auto server = xenchan::sim::xenstore::XenstoreServer::Create(options);
  if (!server.ok()) {
    std::fprintf(stderr, "xenstored: %s\n", server.status().ToString().c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  return 0;
}
