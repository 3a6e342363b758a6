// hv_peer: a process that plays one domain against the simulated hypervisor,
// driven line by line on stdin, so tests can put the two ends of a grant or
// an event channel in different processes (and kill one with SIGKILL).
//
// Usage: hv_peer <hypervisor socket>
// Each command line gets one answer line: "ok [value]" or "err <code> <text>".
//   grant <to_domid> <readonly 0|1>   -> ok <ref>      (a fresh page)
//   poke <ref> <offset> <byte>        write into an own granted page
//   peek <ref> <offset>               -> ok <byte>
//   endaccess <ref>
//   map <domid> <ref> <writable 0|1>  -> ok <mapping index>
//   mpoke <index> <offset> <byte> / mpeek <index> <offset> -> ok <byte>
//   unmap <index>
//   alloc <remote_domid>              -> ok <port>
//   bind <domid> <remote_port>        -> ok <port>
//   notify <port> / unmask <port> / unbind <port>
//   wait <ms>                         -> ok <port> | ok none
//   exit
#include <poll.h>
#include <sys/mman.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "backend/sim/hv/client.h"

namespace {

using xenchan::sim::hv::HvConnection;
using xenchan::sim::hv::HvEvtchn;
using xenchan::sim::hv::HvMapping;
using xenchan::sim::hv::UniqueFd;

struct OwnPage {
  UniqueFd fd;
  unsigned char* data = nullptr;
};

std::string Err(const absl::Status& status) {
  return "err " + std::string(absl::StatusCodeToString(status.code())) + " " +
         std::string(status.message());
}

class Peer {
 public:
  explicit Peer(std::string socket) : socket_(std::move(socket)) {}

  std::string Handle(const std::string& line) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    uint32_t a = 0, b = 0, c = 0;
    in >> a >> b >> c;
    if (cmd == "grant") {
      if (auto s = EnsureConn(); !s.ok()) return Err(s);
      auto fd = xenchan::sim::hv::CreateGrantablePage();
      if (!fd.ok()) return Err(fd.status());
      void* data = mmap(nullptr, xenchan::sim::hv::kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED,
                        fd->get(), 0);
      if (data == MAP_FAILED) return "err INTERNAL mmap";
      auto ref = conn_->GrantPage(fd->get(), a, b != 0);
      if (!ref.ok()) {
        munmap(data, xenchan::sim::hv::kPageSize);
        return Err(ref.status());
      }
      OwnPage& page = pages_[*ref];
      page.fd = *std::move(fd);
      page.data = static_cast<unsigned char*>(data);
      return "ok " + std::to_string(*ref);
    }
    if (cmd == "poke" || cmd == "peek") {
      auto it = pages_.find(a);
      if (it == pages_.end() || b >= xenchan::sim::hv::kPageSize)
        return "err INVALID_ARGUMENT page";
      if (cmd == "poke") {
        it->second.data[b] = static_cast<unsigned char>(c);
        return "ok";
      }
      return "ok " + std::to_string(it->second.data[b]);
    }
    if (cmd == "endaccess") {
      if (auto s = EnsureConn(); !s.ok()) return Err(s);
      absl::Status s = conn_->EndAccess(a);
      return s.ok() ? "ok" : Err(s);
    }
    if (cmd == "map") {
      if (auto s = EnsureConn(); !s.ok()) return Err(s);
      auto mapping = conn_->MapGrant(a, b, c != 0);
      if (!mapping.ok()) return Err(mapping.status());
      int index = next_mapping_++;
      mappings_[index] = *std::move(mapping);
      return "ok " + std::to_string(index);
    }
    if (cmd == "mpoke" || cmd == "mpeek") {
      auto it = mappings_.find(static_cast<int>(a));
      if (it == mappings_.end() || b >= xenchan::sim::hv::kPageSize)
        return "err INVALID_ARGUMENT map";
      auto* bytes = static_cast<unsigned char*>(it->second->data());
      if (cmd == "mpoke") {
        bytes[b] = static_cast<unsigned char>(c);
        return "ok";
      }
      return "ok " + std::to_string(bytes[b]);
    }
    if (cmd == "unmap") {
      if (mappings_.erase(static_cast<int>(a)) == 0) return "err INVALID_ARGUMENT map";
      return "ok";
    }
    if (cmd == "alloc" || cmd == "bind" || cmd == "notify" || cmd == "unmask" || cmd == "unbind" ||
        cmd == "wait") {
      if (evtchn_ == nullptr) {
        auto evtchn = HvEvtchn::Open(socket_);
        if (!evtchn.ok()) return Err(evtchn.status());
        evtchn_ = *std::move(evtchn);
      }
    }
    if (cmd == "alloc") {
      auto port = evtchn_->AllocUnbound(a);
      return port.ok() ? "ok " + std::to_string(*port) : Err(port.status());
    }
    if (cmd == "bind") {
      auto port = evtchn_->BindInterdomain(a, b);
      return port.ok() ? "ok " + std::to_string(*port) : Err(port.status());
    }
    if (cmd == "notify" || cmd == "unmask" || cmd == "unbind") {
      absl::Status s = cmd == "notify"   ? evtchn_->Notify(a)
                       : cmd == "unmask" ? evtchn_->Unmask(a)
                                         : evtchn_->Unbind(a);
      return s.ok() ? "ok" : Err(s);
    }
    if (cmd == "wait") {
      struct pollfd pfd = {evtchn_->fd(), POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(a)) < 0) return "err INTERNAL poll";
      auto port = evtchn_->Pending();
      if (!port.ok()) return Err(port.status());
      return port->has_value() ? "ok " + std::to_string(**port) : "ok none";
    }
    return "err INVALID_ARGUMENT unknown command";
  }

 private:
  absl::Status EnsureConn() {
    if (conn_ != nullptr) return absl::OkStatus();
    auto conn = HvConnection::Connect(socket_);
    if (!conn.ok()) return conn.status();
    conn_ = *std::move(conn);
    return absl::OkStatus();
  }

  const std::string socket_;
  std::unique_ptr<HvConnection> conn_;
  std::unique_ptr<HvEvtchn> evtchn_;
  std::map<uint32_t, OwnPage> pages_;
  std::map<int, std::unique_ptr<HvMapping>> mappings_;
  int next_mapping_ = 1;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: hv_peer <hypervisor socket>\n";
    return 2;
  }
  Peer peer(argv[1]);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "exit") break;
    std::cout << peer.Handle(line) << std::endl;
  }
  return 0;
}
