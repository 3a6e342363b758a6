// The peer-to-peer event channels of xensim (protocol.h, "Event channels"):
// no lost wake-up when notifies race unmasks, a notifier holding an ended
// binding still reaches the port's new peer, and a hostile peer that
// scribbles on the shared words or storms the wake-up socket causes at most
// spurious events on its own channel.
#include "backend/sim/hv/evtchn_shared.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/sim/hv/client.h"
#include "backend/sim/hv/protocol.h"
#include "backend/sim/hv/wire.h"
#include "gtest/gtest.h"
#include "tests/sim/hv/hv_fixture.h"

namespace xenchan {
namespace sim {
namespace hv {
namespace {

// True if `evtchn`'s fd polls readable within `ms`.
bool Readable(HvEvtchn& evtchn, int ms) {
  struct pollfd pfd = {evtchn.fd(), POLLIN, 0};
  return poll(&pfd, 1, ms) == 1;
}

// Ping-pong in one direction: `from` raises `seq` and notifies; `to` waits
// for each event, reads `seq`, unmasks. Every value must be seen: a lost
// wake-up times the waiter out.
void PingPong(HvEvtchn& from, uint32_t from_port, HvEvtchn& to, uint32_t to_port) {
  constexpr uint32_t kRounds = 20000;
  std::atomic<uint32_t> seq{0};
  std::thread notifier([&] {
    for (uint32_t i = 1; i <= kRounds; ++i) {
      seq.store(i);
      ASSERT_TRUE(from.Notify(from_port).ok());
      if (i % 64 == 0) std::this_thread::yield();
    }
  });
  uint32_t seen = 0;
  while (seen < kRounds) {
    std::optional<uint32_t> port = WaitEvent(to, absl::Seconds(10));
    ASSERT_TRUE(port.has_value()) << "lost wake-up after " << seen;
    ASSERT_EQ(*port, to_port);
    seen = seq.load();  // after the event: every notify before it is covered
    ASSERT_TRUE(to.Unmask(to_port).ok());
  }
  notifier.join();
}

class EvtchnSharedTest : public HvTest {
 protected:
  // A guest port of domain 1 bound by `backend`; the bind's spurious event
  // taken and unmasked, and the guest's notice applied.
  void Bind(HvEvtchn& guest, HvEvtchn& backend, uint32_t* gport, uint32_t* bport) {
    auto g = guest.AllocUnbound(0);
    ASSERT_TRUE(g.ok());
    auto b = backend.BindInterdomain(1, *g);
    ASSERT_TRUE(b.ok()) << b.status();
    ASSERT_EQ(WaitEvent(backend), *b);
    ASSERT_TRUE(backend.Unmask(*b).ok());
    auto none = guest.Pending();
    ASSERT_TRUE(none.ok());
    *gport = *g;
    *bport = *b;
  }
};

TEST_F(EvtchnSharedTest, NoLostWakeUpWhenNotifiesRaceUnmasks) {
  auto guest = Evtchn(1);
  auto backend = Evtchn(0);
  uint32_t gport = 0, bport = 0;
  ASSERT_NO_FATAL_FAILURE(Bind(*guest, *backend, &gport, &bport));
  ASSERT_NO_FATAL_FAILURE(PingPong(*guest, gport, *backend, bport));
  ASSERT_NO_FATAL_FAILURE(PingPong(*backend, bport, *guest, gport));
}

TEST_F(EvtchnSharedTest, StaleBindingNotifyReachesTheNewPeer) {
  auto guest = Evtchn(1);
  uint32_t gport = 0, bport = 0;
  {
    auto first = Evtchn(0);
    ASSERT_NO_FATAL_FAILURE(Bind(*guest, *first, &gport, &bport));
    ASSERT_TRUE(first->Unbind(bport).ok());
  }
  // A restarted backend binds the same guest port; the guest has not read
  // the notices yet and still holds the ended binding.
  auto second = Evtchn(0);
  auto port = second->BindInterdomain(1, gport);
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_EQ(WaitEvent(*second), *port);
  ASSERT_TRUE(second->Unmask(*port).ok());
  ASSERT_TRUE(guest->Notify(gport).ok());
  EXPECT_EQ(WaitEvent(*second, absl::Seconds(10)), *port) << "the notify was lost";
  // Once the guest has read its notices it notifies directly.
  ASSERT_TRUE(second->Unmask(*port).ok());
  auto none = guest->Pending();
  ASSERT_TRUE(none.ok());
  ASSERT_TRUE(guest->Notify(gport).ok());
  EXPECT_EQ(WaitEvent(*second, absl::Seconds(10)), *port);
}

// A hostile guest speaking the protocol itself: it holds its binding's
// page and the backend's write end, and does what it likes with them.
class RawGuest {
 public:
  explicit RawGuest(const std::string& socket) {
    sock_.reset(socket_fd(socket));
    Request open = {kEvtchnOpen, 1, {0, 0, 0, 0}};
    EXPECT_EQ(SendMessage(sock_.get(), &open, sizeof(open), -1, 0), 0);
    ReceivedMessage msg;
    alignas(Reply) char buf[sizeof(Reply)];
    EXPECT_EQ(ReceiveMessage(sock_.get(), buf, sizeof(buf), 0, &msg), 0);
    events_ = std::move(msg.fd);
    Request alloc = {kAllocUnbound, 2, {0, 0, 0, 0}};
    EXPECT_EQ(SendMessage(sock_.get(), &alloc, sizeof(alloc), -1, 0), 0);
    EXPECT_EQ(ReceiveMessage(sock_.get(), buf, sizeof(buf), 0, &msg), 0);
    Reply reply;
    std::memcpy(&reply, buf, sizeof(reply));
    port_ = reply.value;
  }
  ~RawGuest() {
    if (words_ != nullptr) munmap(words_, kPageSize);
  }
  uint32_t port() const { return port_; }
  // Reads the bound notice: the page, its own read end, the backend's write end.
  bool ReadBinding() {
    EvtchnNotice notice;
    ReceivedMessage msg;
    if (ReceiveMessage(events_.get(), &notice, sizeof(notice), 0, &msg, 3) != 0 ||
        msg.fd_count != 3 || notice.type != kNoticeBound) {
      return false;
    }
    void* addr = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, msg.fd.get(), 0);
    if (addr == MAP_FAILED) return false;
    words_ = static_cast<EvtchnSharedWords*>(addr);
    page_ = std::move(msg.fd);
    own_ = std::move(msg.more_fds[0]);
    backend_ = std::move(msg.more_fds[1]);
    return true;
  }
  EvtchnSharedWords* words() { return words_; }
  int page() const { return page_.get(); }
  void Kick(int times) {
    for (int i = 0; i < times; ++i) {
      const char byte = 1;
      if (send(backend_.get(), &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) break;
    }
  }
  // True if the backend woke us (a byte on our read end).
  bool Woken(int ms) {
    struct pollfd pfd = {own_.get(), POLLIN, 0};
    if (poll(&pfd, 1, ms) != 1) return false;
    char buf[64];
    return recv(own_.get(), buf, sizeof(buf), MSG_DONTWAIT) > 0;
  }

 private:
  static int socket_fd(const std::string& path) {
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr;
    std::memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  }

  UniqueFd sock_, events_, page_, own_, backend_;
  EvtchnSharedWords* words_ = nullptr;
  uint32_t port_ = 0;
};

TEST_F(EvtchnSharedTest, HostileGuestCausesOnlySpuriousEventsOnItsOwnChannel) {
  RawGuest guest(Socket(1));
  auto backend = Evtchn(0);
  auto bport = backend->BindInterdomain(1, guest.port());
  ASSERT_TRUE(bport.ok()) << bport.status();
  ASSERT_TRUE(guest.ReadBinding());
  // The page is sealed: the guest cannot shrink it under our mapping.
  EXPECT_NE(ftruncate(guest.page(), 0), 0);
  EvtchnSharedWords* w = guest.words();
  const uint32_t b = kSideBinder;

  // The bind's event; the port is masked now.
  ASSERT_EQ(WaitEvent(*backend), *bport);
  // A storm while masked: one spurious firing, then the backend stops
  // listening to the socket until it unmasks.
  guest.Kick(1000);
  auto masked = backend->Pending();
  ASSERT_TRUE(masked.ok());
  EXPECT_FALSE(masked->has_value());
  guest.Kick(1000);
  EXPECT_FALSE(Readable(*backend, 50)) << "a masked port kept waking the backend";
  // The guest clears our mask word and pending: our own state decides.
  StoreWord(&w->mask[b], 0);
  guest.Kick(10);
  EXPECT_FALSE(Readable(*backend, 50));
  // Unmask: the storm is delivered once, as one event.
  ASSERT_TRUE(backend->Unmask(*bport).ok());
  EXPECT_EQ(WaitEvent(*backend), *bport);
  auto none = backend->Pending();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(backend->Unmask(*bport).ok());

  // Garbage in every word: still only "may be pending".
  StoreWord(&w->mask[b], 0xffffffff);
  StoreWord(&w->mask[0], 0x7);
  guest.Kick(1);
  ASSERT_EQ(WaitEvent(*backend), *bport);
  // A pending word scribbled while masked: the unmask delivers once more,
  // and only once.
  StoreWord(&w->pending[b], 0xdeadbeef);
  ASSERT_TRUE(backend->Unmask(*bport).ok());
  ASSERT_EQ(WaitEvent(*backend), *bport);
  ASSERT_TRUE(backend->Unmask(*bport).ok());
  EXPECT_FALSE(Readable(*backend, 50));

  // A forged "closed" flag: the backend's notify goes through the
  // hypervisor, which still wakes the guest (whose mask word we clear).
  StoreWord(&w->mask[0], 0);
  StoreWord(&w->closed, 1);
  ASSERT_TRUE(backend->Notify(*bport).ok());
  EXPECT_TRUE(guest.Woken(10000));
  StoreWord(&w->closed, 0);
  ASSERT_TRUE(backend->Notify(*bport).ok());
  EXPECT_TRUE(guest.Woken(10000));
  // The server keeps serving the domain.
  EXPECT_TRUE(Conn(1) != nullptr);
}

TEST_F(EvtchnSharedTest, DomainDeathEndsTheBindingForThePeer) {
  RawGuest guest(Socket(1));
  auto backend = Evtchn(0);
  auto bport = backend->BindInterdomain(1, guest.port());
  ASSERT_TRUE(bport.ok());
  ASSERT_TRUE(guest.ReadBinding());
  ASSERT_EQ(WaitEvent(*backend), *bport);
  ASSERT_TRUE(backend->Unmask(*bport).ok());
  ASSERT_TRUE(hv_->DestroyDomain(1).ok());
  // The hypervisor marked the binding closed; its notice reaches the
  // backend, which drops the binding (no event: nothing was pending).
  EXPECT_NE(LoadWord(&guest.words()->closed), 0u);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline && Readable(*backend, 100)) {
    auto port = backend->Pending();
    ASSERT_TRUE(port.ok());
    EXPECT_FALSE(port->has_value());
  }
  // The dead guest's leftover write end cannot wake the backend any more.
  guest.Kick(100);
  EXPECT_FALSE(Readable(*backend, 50));
  EXPECT_TRUE(backend->Notify(*bport).ok());
}

}  // namespace
}  // namespace hv
}  // namespace sim
}  // namespace xenchan
