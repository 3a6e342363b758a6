// UnixListener: xenchand's Unix-socket listener. It binds and accepts the
// connections itself so that it can read each peer's credentials
// (SO_PEERCRED) before handing the connection to gRPC
// (grpc::AddInsecureChannelFromFd); see identity.h for why the `fd:N` peer
// names cannot be confused.
//
// Lifecycle: Bind() before the gRPC server is built (so a bad path fails the
// start), Start() once it is running, Stop() before it shuts down (no new
// connections; accepted ones belong to the server and end with it).
//
// Thread safety: Start and Stop from one thread; owns one accept thread.
#ifndef XENCHAN_SERVER_UNIX_LISTENER_H_
#define XENCHAN_SERVER_UNIX_LISTENER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "server/identity.h"

namespace xenchan {
namespace server {

class UnixListener {
 public:
  // Creates the socket at `path` (its directory is created 0755 if
  // missing; a stale socket file is replaced, any other file is an error),
  // with permissions `mode`, and listens. FAILED_PRECONDITION / INTERNAL with
  // the reason.
  static absl::StatusOr<std::unique_ptr<UnixListener>> Bind(const std::string& path,
                                                            mode_t mode = 0660);
  ~UnixListener();  // Stop()s, closes and unlinks the socket
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  // Starts accepting: each connection's credentials go to `peers`, then the
  // connection to `server`. Both must outlive Stop().
  void Start(grpc::Server* server, UnixPeerRegistry* peers);
  // Stops accepting and joins the thread. Idempotent.
  void Stop();

  const std::string& path() const { return path_; }
  // Connections handed to gRPC / refused (credentials unreadable).
  uint64_t accepted() const { return accepted_.load(); }
  uint64_t refused() const { return refused_.load(); }

 private:
  UnixListener(std::string path, int fd, int wake_fd)
      : path_(std::move(path)), fd_(fd), wake_fd_(wake_fd) {}
  void Run(grpc::Server* server, UnixPeerRegistry* peers);

  const std::string path_;
  const int fd_;
  const int wake_fd_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
  std::thread thread_;
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_UNIX_LISTENER_H_
