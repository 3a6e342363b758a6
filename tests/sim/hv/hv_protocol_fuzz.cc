// Fuzz target: arbitrary message sequences from hostile clients of two
// domains against a fresh simulated hypervisor. The server must never crash
// (the sanitizers watch it) and must keep serving well-behaved clients.
//
// Input: a sequence of frames. Each frame is a header byte h, then the
// message body:
//   h & 0x80   the body is sizeof(Request) bytes, else (h & 0x1f) * 2 bytes
//   h & 0x40   a fresh grantable page (memfd) rides along as SCM_RIGHTS
//   h & 0x20   sent on domain 0's connection, else on domain 1's
// A body cut short by the end of the input is zero-padded.
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backend/sim/hv/client.h"
#include "backend/sim/hv/hypervisor.h"
#include "backend/sim/hv/protocol.h"
#include "backend/sim/hv/wire.h"

namespace {

using xenchan::sim::hv::Hypervisor;
using xenchan::sim::hv::ReceivedMessage;
using xenchan::sim::hv::UniqueFd;

UniqueFd Dial(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    fd.reset();
  }
  return fd;
}

// Reads (and drops, closing any fds) whatever replies are waiting.
void Drain(int fd) {
  for (;;) {
    char buf[64];
    ReceivedMessage msg;
    if (xenchan::sim::hv::ReceiveMessage(fd, buf, sizeof(buf), MSG_DONTWAIT, &msg) != 0) return;
    if (msg.size == 0) return;
  }
}

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "hv_protocol_fuzz: %s\n", what);
  abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string base = (tmp != nullptr && std::strlen(tmp) < 50) ? tmp : "/tmp";
  std::string dir = base + "/hvfz-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) Fail("mkdtemp");
  {
    Hypervisor::Options options;
    options.dom0_socket = dir + "/hypervisor.sock";
    options.domain_socket_dir = dir + "/domains";
    auto hv = Hypervisor::Create(options);
    if (!hv.ok()) Fail("Hypervisor::Create");
    if (!(*hv)->CreateDomain(1).ok()) Fail("CreateDomain");
    const std::string paths[2] = {(*hv)->DomainSocketPath(1), (*hv)->DomainSocketPath(0)};
    UniqueFd conns[2];
    size_t pos = 0;
    for (int frames = 0; pos < size && frames < 256; ++frames) {
      const uint8_t h = data[pos++];
      const size_t len = (h & 0x80) ? sizeof(xenchan::sim::hv::Request) : (h & 0x1f) * 2u;
      std::vector<uint8_t> body(len, 0);
      const size_t have = std::min(len, size - pos);
      if (have > 0) std::memcpy(body.data(), data + pos, have);
      pos += have;
      UniqueFd& conn = conns[(h & 0x20) ? 1 : 0];
      if (!conn.valid()) conn = Dial(paths[(h & 0x20) ? 1 : 0]);
      if (!conn.valid()) Fail("connect");
      UniqueFd page;
      if (h & 0x40) {
        auto fd = xenchan::sim::hv::CreateGrantablePage();
        if (!fd.ok()) Fail("memfd");
        page = *std::move(fd);
      }
      int err = xenchan::sim::hv::SendMessage(conn.get(), body.data(), body.size(), page.get(), 0);
      if (err != 0) {
        conn.reset();  // closed by the server: a new connection next time
        continue;
      }
      Drain(conn.get());
    }
    // The server still serves a well-behaved client of each domain.
    for (uint32_t domid : {0u, 1u}) {
      auto evtchn = xenchan::sim::hv::HvEvtchn::Open((*hv)->DomainSocketPath(domid));
      if (!evtchn.ok()) Fail("Open after fuzzing");
      if (!(*evtchn)->AllocUnbound(1 - domid).ok()) Fail("AllocUnbound after fuzzing");
    }
    if (!(*hv)->Info(1).exists) Fail("domain 1 vanished");
  }
  rmdir((dir + "/domains").c_str());
  rmdir(dir.c_str());
  return 0;
}
