// Semantics of the simulated hypervisor's grants and event channels, driven
// through the client library (each HvConnection/HvEvtchn is its own
// connection, so a domain here is "a process" to the server), plus hostile
// raw messages.
#include "backend/sim/hv/hypervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include "absl/status/status.h"
#include "backend/sim/hv/client.h"
#include "backend/sim/hv/protocol.h"
#include "backend/sim/hv/wire.h"
#include "gtest/gtest.h"
#include "tests/sim/hv/hv_fixture.h"

namespace xenchan {
namespace sim {
namespace hv {
namespace {

// A granted page owned by the test: its memfd and a local mapping.
struct Page {
  UniqueFd fd;
  unsigned char* data = nullptr;
  ~Page() {
    if (data != nullptr) munmap(data, kPageSize);
  }
};

std::unique_ptr<Page> NewPage() {
  auto fd = CreateGrantablePage();
  EXPECT_TRUE(fd.ok()) << fd.status();
  auto page = std::make_unique<Page>();
  void* data = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd->get(), 0);
  EXPECT_NE(data, MAP_FAILED);
  page->fd = *std::move(fd);
  page->data = static_cast<unsigned char*>(data);
  return page;
}

TEST_F(HvTest, CreateDomainRules) {
  EXPECT_EQ(hv_->CreateDomain(1).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(hv_->CreateDomain(kDomidLimit).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(hv_->DestroyDomain(0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(hv_->DestroyDomain(7).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(hv_->Info(0).exists);
  EXPECT_TRUE(hv_->Info(1).exists);
  EXPECT_FALSE(hv_->Info(7).exists);
  EXPECT_EQ(access(Socket(1).c_str(), F_OK), 0);
}

TEST_F(HvTest, GranteeMapsAndSharesBytes) {
  auto guest = Conn(1);
  auto backend = Conn(0);
  auto page = NewPage();
  page->data[10] = 0x5a;
  auto ref = guest->GrantPage(page->fd.get(), 0, /*readonly=*/false);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_GE(*ref, kFirstGrantRef);
  auto mapping = backend->MapGrant(1, *ref, /*writable=*/true);
  ASSERT_TRUE(mapping.ok()) << mapping.status();
  auto* bytes = static_cast<unsigned char*>((*mapping)->data());
  EXPECT_EQ(bytes[10], 0x5a);
  bytes[11] = 0xa5;
  EXPECT_EQ(page->data[11], 0xa5);
  EXPECT_EQ(hv_->Info(1).mapped_pages_by_others, 1u);
  mapping->reset();
  EXPECT_EQ(hv_->Info(1).mapped_pages_by_others, 0u);
}

TEST_F(HvTest, OnlyTheGranteeCanMap) {
  auto guest = Conn(1);
  auto page = NewPage();
  auto ref = guest->GrantPage(page->fd.get(), 0, false);
  ASSERT_TRUE(ref.ok());
  auto other = Conn(2);
  EXPECT_EQ(other->MapGrant(1, *ref, false).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Conn(0)->MapGrant(1, *ref + 1, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Conn(0)->MapGrant(9, *ref, false).status().code(), absl::StatusCode::kNotFound);
  // Granting to oneself is refused.
  EXPECT_EQ(guest->GrantPage(page->fd.get(), 1, false).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(HvTest, ReadOnlyGrantCannotBeMappedWritable) {
  auto guest = Conn(1);
  auto backend = Conn(0);
  auto page = NewPage();
  page->data[0] = 42;
  auto ref = guest->GrantPage(page->fd.get(), 0, /*readonly=*/true);
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(backend->MapGrant(1, *ref, true).status().code(), absl::StatusCode::kPermissionDenied);
  auto mapping = backend->MapGrant(1, *ref, false);
  ASSERT_TRUE(mapping.ok()) << mapping.status();
  EXPECT_FALSE((*mapping)->writable());
  EXPECT_EQ(static_cast<unsigned char*>((*mapping)->data())[0], 42);
  // The fd behind a read-only mapping cannot be turned writable.
  EXPECT_NE(mprotect((*mapping)->data(), kPageSize, PROT_READ | PROT_WRITE), 0);
}

TEST_F(HvTest, EndAccessRefusedWhileMapped) {
  auto guest = Conn(1);
  auto backend = Conn(0);
  auto page = NewPage();
  auto ref = guest->GrantPage(page->fd.get(), 0, false);
  ASSERT_TRUE(ref.ok());
  auto mapping = backend->MapGrant(1, *ref, true);
  ASSERT_TRUE(mapping.ok());
  EXPECT_EQ(guest->EndAccess(*ref).code(), absl::StatusCode::kFailedPrecondition);
  mapping->reset();
  EXPECT_TRUE(guest->EndAccess(*ref).ok());
  EXPECT_EQ(backend->MapGrant(1, *ref, true).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(guest->EndAccess(*ref).code(), absl::StatusCode::kInvalidArgument);
  // A new grant gets a different ref (next-fit), as a resumed guest would.
  auto ref2 = guest->GrantPage(page->fd.get(), 0, false);
  ASSERT_TRUE(ref2.ok());
  EXPECT_NE(*ref2, *ref);
}

TEST_F(HvTest, GrantsOutliveTheGrantingConnection) {
  auto page = NewPage();
  page->data[1] = 7;
  uint32_t ref;
  {
    auto guest = Conn(1);
    auto granted = guest->GrantPage(page->fd.get(), 0, false);
    ASSERT_TRUE(granted.ok());
    ref = *granted;
  }
  auto mapping = Conn(0)->MapGrant(1, ref, true);
  ASSERT_TRUE(mapping.ok()) << mapping.status();
  EXPECT_EQ(static_cast<unsigned char*>((*mapping)->data())[1], 7);
}

TEST_F(HvTest, GrantRejectsBadPages) {
  auto guest = Conn(1);
  // Wrong size.
  UniqueFd small(memfd_create("small", MFD_ALLOW_SEALING | MFD_CLOEXEC));
  ASSERT_EQ(ftruncate(small.get(), 100), 0);
  EXPECT_EQ(guest->GrantPage(small.get(), 0, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Not sealable: a mapper could see it shrink.
  UniqueFd unsealable(memfd_create("nosealing", MFD_CLOEXEC));
  ASSERT_EQ(ftruncate(unsealable.get(), kPageSize), 0);
  EXPECT_EQ(guest->GrantPage(unsealable.get(), 0, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Not a regular file.
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  EXPECT_EQ(guest->GrantPage(pipefd[0], 0, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  close(pipefd[0]);
  close(pipefd[1]);
  // After a grant, the page can no longer be shrunk by its owner.
  auto page = NewPage();
  ASSERT_TRUE(guest->GrantPage(page->fd.get(), 0, false).ok());
  EXPECT_NE(ftruncate(page->fd.get(), 0), 0);
}

TEST_F(HvTest, GrantLimitPerDomain) {
  auto guest = Conn(1);
  auto page = NewPage();
  for (size_t i = 0; i < kMaxGrantsPerDomain; ++i) {
    ASSERT_TRUE(guest->GrantPage(page->fd.get(), 0, false).ok()) << i;
  }
  EXPECT_EQ(guest->GrantPage(page->fd.get(), 0, false).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(HvTest, BindNeedsUnboundPortEarmarkedForBinder) {
  auto guest = Evtchn(1);
  auto backend = Evtchn(0);
  auto for_two = guest->AllocUnbound(2);
  ASSERT_TRUE(for_two.ok());
  EXPECT_EQ(*for_two, 1u);  // ports start at 1
  EXPECT_EQ(backend->BindInterdomain(1, *for_two).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend->BindInterdomain(1, 99).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend->BindInterdomain(9, 1).status().code(), absl::StatusCode::kNotFound);
  auto for_zero = guest->AllocUnbound(0);
  ASSERT_TRUE(for_zero.ok());
  auto local = backend->BindInterdomain(1, *for_zero);
  ASSERT_TRUE(local.ok()) << local.status();
  // Already bound: a second bind fails.
  EXPECT_EQ(backend->BindInterdomain(1, *for_zero).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Domain 2 may bind the port earmarked for it.
  auto other = Evtchn(2);
  EXPECT_TRUE(other->BindInterdomain(1, *for_two).ok());
}

TEST_F(HvTest, BindRaisesSpuriousEventThenNotifyDelivers) {
  auto guest = Evtchn(1);
  auto backend = Evtchn(0);
  auto gport = guest->AllocUnbound(0);
  ASSERT_TRUE(gport.ok());
  auto bport = backend->BindInterdomain(1, *gport);
  ASSERT_TRUE(bport.ok());
  // The spurious event right after bind.
  EXPECT_EQ(WaitEvent(*backend), *bport);
  ASSERT_TRUE(backend->Unmask(*bport).ok());
  // The guest's port did not fire on bind.
  auto none = guest->Pending();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  // Guest -> backend.
  ASSERT_TRUE(guest->Notify(*gport).ok());
  EXPECT_EQ(WaitEvent(*backend), *bport);
  // Backend -> guest.
  ASSERT_TRUE(backend->Notify(*bport).ok());
  EXPECT_EQ(WaitEvent(*guest), *gport);
  // Notify on a port that is not ours.
  EXPECT_EQ(backend->Notify(77).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(HvTest, NotifyWhileMaskedIsDeliveredOnceAfterUnmask) {
  auto guest = Evtchn(1);
  auto backend = Evtchn(0);
  auto gport = guest->AllocUnbound(0);
  ASSERT_TRUE(gport.ok());
  auto bport = backend->BindInterdomain(1, *gport);
  ASSERT_TRUE(bport.ok());
  ASSERT_EQ(WaitEvent(*backend), *bport);  // spurious; port now masked
  // The guest learns its binding from the notice on its event socket.
  auto none = guest->Pending();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  // Three notifies while masked: shared-memory writes, done when Notify
  // returns.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(guest->Notify(*gport).ok());
  auto masked = backend->Pending();
  ASSERT_TRUE(masked.ok());
  EXPECT_FALSE(masked->has_value()) << "delivered while masked";
  // Unmask finds the pending word and delivers at once.
  ASSERT_TRUE(backend->Unmask(*bport).ok());
  auto first = backend->Pending();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, std::optional<uint32_t>(*bport));
  // Exactly once: nothing more, even after another unmask.
  ASSERT_TRUE(backend->Unmask(*bport).ok());
  auto second = backend->Pending();
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->has_value());
}

TEST_F(HvTest, UnbindRevertsPeerToUnboundForTheCloser) {
  auto guest = Evtchn(1);
  auto gport = guest->AllocUnbound(0);
  ASSERT_TRUE(gport.ok());
  {
    auto backend = Evtchn(0);
    auto bport = backend->BindInterdomain(1, *gport);
    ASSERT_TRUE(bport.ok());
    ASSERT_TRUE(backend->Unbind(*bport).ok());
    EXPECT_EQ(backend->Unbind(*bport).code(), absl::StatusCode::kInvalidArgument);
    // Rebind on the same handle works.
    auto again = backend->BindInterdomain(1, *gport);
    ASSERT_TRUE(again.ok()) << again.status();
  }  // handle closed: the guest's port reverts again
  // A notify from the guest on an unbound port goes nowhere and is harmless.
  ASSERT_TRUE(guest->Notify(*gport).ok());
  // Still earmarked for dom0: domain 2 cannot take it, dom0 can.
  auto other = Evtchn(2);
  EXPECT_EQ(other->BindInterdomain(1, *gport).status().code(), absl::StatusCode::kInvalidArgument);
  auto backend = Evtchn(0);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  absl::StatusOr<uint32_t> rebound = backend->BindInterdomain(1, *gport);
  // The first handle's close travels on its own connection; allow for it.
  while (!rebound.ok() && absl::Now() < deadline) {
    rebound = backend->BindInterdomain(1, *gport);
  }
  EXPECT_TRUE(rebound.ok()) << rebound.status();
}

TEST_F(HvTest, PortLimitAndNumbering) {
  auto guest = Evtchn(1);
  std::set<uint32_t> ports;
  for (size_t i = 0; i < kMaxPortsPerDomain; ++i) {
    auto port = guest->AllocUnbound(0);
    ASSERT_TRUE(port.ok()) << i << " " << port.status();
    ports.insert(*port);
  }
  EXPECT_EQ(ports.size(), kMaxPortsPerDomain);
  EXPECT_EQ(*ports.begin(), 1u);
  EXPECT_EQ(guest->AllocUnbound(0).status().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(guest->Unbind(5).ok());
  auto reused = guest->AllocUnbound(0);
  ASSERT_TRUE(reused.ok());
  EXPECT_EQ(*reused, 5u);
}

TEST_F(HvTest, FullEventSocketRedeliversLater) {
  // Enough spurious bind events to overflow the event socket's buffer while
  // nobody reads it; every one must arrive once the reader drains it.
  constexpr int kPorts = 2000;
  auto guest = Evtchn(1);
  auto backend = Evtchn(0);
  std::set<uint32_t> bound;
  for (int i = 0; i < kPorts; ++i) {
    auto gport = guest->AllocUnbound(0);
    ASSERT_TRUE(gport.ok());
    auto bport = backend->BindInterdomain(1, *gport);
    ASSERT_TRUE(bport.ok()) << bport.status();
    bound.insert(*bport);
  }
  std::set<uint32_t> seen;
  while (seen.size() < bound.size()) {
    auto port = WaitEvent(*backend);
    ASSERT_TRUE(port.has_value()) << "only " << seen.size() << " of " << bound.size();
    EXPECT_TRUE(seen.insert(*port).second) << "twice: " << *port;
  }
  EXPECT_EQ(seen, bound);
}

TEST_F(HvTest, DestroyDomainRevertsPeersAndRemovesSocket) {
  auto guest = Evtchn(1);
  auto backend = Evtchn(0);
  auto gport = guest->AllocUnbound(0);
  ASSERT_TRUE(gport.ok());
  auto bport = backend->BindInterdomain(1, *gport);
  ASSERT_TRUE(bport.ok());
  ASSERT_TRUE(hv_->DestroyDomain(1).ok());
  EXPECT_TRUE(WaitGone(1));
  EXPECT_FALSE(hv_->Info(1).exists);
  EXPECT_NE(access(Socket(1).c_str(), F_OK), 0);
  EXPECT_EQ(hv_->DestroyDomain(1).code(), absl::StatusCode::kNotFound);
  // The guest's handle is dead.
  EXPECT_FALSE(guest->AllocUnbound(0).ok());
  // Our port is still ours, reverted to unbound earmarked for domain 1:
  // notify goes nowhere, and a new domain 1 can bind it.
  EXPECT_TRUE(backend->Notify(*bport).ok());
  ASSERT_TRUE(hv_->CreateDomain(1).ok());
  auto reborn = Evtchn(1);
  auto rport = reborn->BindInterdomain(0, *bport);
  ASSERT_TRUE(rport.ok()) << rport.status();
  EXPECT_EQ(WaitEvent(*reborn), *rport);
  ASSERT_TRUE(reborn->Notify(*rport).ok());
  EXPECT_EQ(WaitEvent(*backend), *bport);
}

TEST_F(HvTest, EventQueuedBeforeUnbindIsDropped) {
  auto guest = Evtchn(1);
  auto backend = Evtchn(0);
  auto gport = guest->AllocUnbound(0);
  ASSERT_TRUE(gport.ok());
  auto bport = backend->BindInterdomain(1, *gport);
  ASSERT_TRUE(bport.ok());  // its spurious event is now in the event socket
  ASSERT_TRUE(backend->Unbind(*bport).ok());
  auto port = backend->Pending();
  ASSERT_TRUE(port.ok());
  EXPECT_FALSE(port->has_value());
  EXPECT_EQ(backend->Unmask(*bport).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(HvTest, DestroyWhileMappedLeavesDomainDyingUntilUnmap) {
  auto guest = Conn(1);
  auto backend = Conn(0);
  auto page = NewPage();
  auto ref = guest->GrantPage(page->fd.get(), 0, false);
  ASSERT_TRUE(ref.ok());
  auto mapping = backend->MapGrant(1, *ref, true);
  ASSERT_TRUE(mapping.ok());
  ASSERT_TRUE(hv_->DestroyDomain(1).ok());
  Hypervisor::DomainInfo info = hv_->Info(1);
  EXPECT_TRUE(info.exists);
  EXPECT_TRUE(info.dying);
  EXPECT_EQ(info.mapped_pages_by_others, 1u);
  EXPECT_FALSE(HasGone(1));
  EXPECT_EQ(hv_->CreateDomain(1).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(hv_->DestroyDomain(1).code(), absl::StatusCode::kNotFound);
  // No new mappings of a dying domain's pages.
  EXPECT_EQ(backend->MapGrant(1, *ref, true).status().code(), absl::StatusCode::kNotFound);
  // The mapping still works.
  static_cast<unsigned char*>((*mapping)->data())[0] = 1;
  EXPECT_EQ(page->data[0], 1);
  mapping->reset();
  EXPECT_TRUE(WaitGone(1));
  EXPECT_FALSE(hv_->Info(1).exists);
}

// ---- hostile raw clients ----

class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    struct sockaddr_un addr;
    std::memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = connect(fd_.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) == 0;
    struct timeval timeout = {10, 0};
    setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  bool connected() const { return connected_; }
  int Send(const void* data, size_t len, int fd = -1) {
    return SendMessage(fd_.get(), data, len, fd, 0);
  }
  int Send2Fds(const Request& req, int a, int b) {
    struct iovec iov = {const_cast<Request*>(&req), sizeof(req)};
    alignas(struct cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))];
    std::memset(control, 0, sizeof(control));
    struct msghdr msg;
    std::memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int fds[2] = {a, b};
    std::memcpy(CMSG_DATA(cmsg), fds, sizeof(fds));
    return sendmsg(fd_.get(), &msg, MSG_NOSIGNAL) < 0 ? errno : 0;
  }
  // The reply's error, or -1 if the connection was closed (or garbled).
  int ReplyError(uint32_t request_id, UniqueFd* fd = nullptr) {
    alignas(Reply) char buf[sizeof(Reply)];
    ReceivedMessage msg;
    if (ReceiveMessage(fd_.get(), buf, sizeof(buf), 0, &msg) != 0) return -1;
    if (msg.size != sizeof(Reply)) return -1;
    Reply reply;
    std::memcpy(&reply, buf, sizeof(reply));
    if (reply.type != kReply || reply.request_id != request_id) return -1;
    if (fd != nullptr) *fd = std::move(msg.fd);
    return reply.error;
  }
  // True once the server closed the connection.
  bool Closed() {
    char buf[64];
    ReceivedMessage msg;
    return ReceiveMessage(fd_.get(), buf, sizeof(buf), 0, &msg) == 0 && msg.size == 0;
  }

 private:
  UniqueFd fd_;
  bool connected_ = false;
};

Request Req(uint32_t type, uint32_t id, uint32_t a0 = 0, uint32_t a1 = 0, uint32_t a2 = 0,
            uint32_t a3 = 0) {
  Request req;
  std::memset(&req, 0, sizeof(req));
  req.type = type;
  req.request_id = id;
  req.args[0] = a0;
  req.args[1] = a1;
  req.args[2] = a2;
  req.args[3] = a3;
  return req;
}

TEST_F(HvTest, HostileMessagesGetErrorsAndServerKeepsServing) {
  // Unknown type, bad args, reserved args not zero.
  {
    RawClient raw(Socket(1));
    ASSERT_TRUE(raw.connected());
    Request unknown = Req(999, 1);
    ASSERT_EQ(raw.Send(&unknown, sizeof(unknown)), 0);
    EXPECT_EQ(raw.ReplyError(1), EINVAL);
    Request reply_type = Req(kReply, 2);
    ASSERT_EQ(raw.Send(&reply_type, sizeof(reply_type)), 0);
    EXPECT_EQ(raw.ReplyError(2), EINVAL);
    Request bad_ro = Req(kMap, 3, 0, 8, 7);
    ASSERT_EQ(raw.Send(&bad_ro, sizeof(bad_ro)), 0);
    EXPECT_EQ(raw.ReplyError(3), EINVAL);
    Request extra_arg = Req(kUnmap, 4, 1, 0, 0, 5);
    ASSERT_EQ(raw.Send(&extra_arg, sizeof(extra_arg)), 0);
    EXPECT_EQ(raw.ReplyError(4), EINVAL);
    // Event-channel ops before kEvtchnOpen.
    Request early = Req(kAllocUnbound, 5, 0);
    ASSERT_EQ(raw.Send(&early, sizeof(early)), 0);
    EXPECT_EQ(raw.ReplyError(5), EBADF);
    // kEvtchnOpen twice.
    Request open = Req(kEvtchnOpen, 6);
    ASSERT_EQ(raw.Send(&open, sizeof(open)), 0);
    UniqueFd event_fd;
    EXPECT_EQ(raw.ReplyError(6, &event_fd), 0);
    EXPECT_TRUE(event_fd.valid());
    open.request_id = 7;
    ASSERT_EQ(raw.Send(&open, sizeof(open)), 0);
    EXPECT_EQ(raw.ReplyError(7), EBUSY);
    // Unbind of a port that is not ours; the retired kUnmask (10); an
    // out-of-range domid.
    Request unbind = Req(kUnbind, 8, 12345);
    ASSERT_EQ(raw.Send(&unbind, sizeof(unbind)), 0);
    EXPECT_EQ(raw.ReplyError(8), EINVAL);
    Request unmask = Req(10, 12, 1);
    ASSERT_EQ(raw.Send(&unmask, sizeof(unmask)), 0);
    EXPECT_EQ(raw.ReplyError(12), EINVAL);
    Request alloc = Req(kAllocUnbound, 9, 0xffffffff);
    ASSERT_EQ(raw.Send(&alloc, sizeof(alloc)), 0);
    EXPECT_EQ(raw.ReplyError(9), EINVAL);
    // A hostile notify (bad port, fd attached) gets no reply and no harm.
    Request notify = Req(kNotify, 10, 4242);
    ASSERT_EQ(raw.Send(&notify, sizeof(notify), event_fd.get()), 0);
    Request ping = Req(kUnmap, 11, 999);
    ASSERT_EQ(raw.Send(&ping, sizeof(ping)), 0);
    EXPECT_EQ(raw.ReplyError(11), EINVAL);
  }
  // An fd where none is expected; a grant without its fd.
  {
    RawClient raw(Socket(1));
    ASSERT_TRUE(raw.connected());
    auto page = NewPage();
    Request unmap = Req(kUnmap, 1, 1);
    ASSERT_EQ(raw.Send(&unmap, sizeof(unmap), page->fd.get()), 0);
    EXPECT_EQ(raw.ReplyError(1), EINVAL);
    Request grant = Req(kGrant, 2, 0, 0);
    ASSERT_EQ(raw.Send(&grant, sizeof(grant)), 0);
    EXPECT_EQ(raw.ReplyError(2), EINVAL);
    // A read-only descriptor of the page is refused.
    UniqueFd ro(open(("/proc/self/fd/" + std::to_string(page->fd.get())).c_str(), O_RDONLY));
    ASSERT_TRUE(ro.valid());
    grant.request_id = 3;
    ASSERT_EQ(raw.Send(&grant, sizeof(grant), ro.get()), 0);
    EXPECT_EQ(raw.ReplyError(3), EINVAL);
    // Two fds: the connection is closed.
    grant.request_id = 4;
    ASSERT_EQ(raw.Send2Fds(grant, page->fd.get(), page->fd.get()), 0);
    EXPECT_TRUE(raw.Closed());
  }
  // Short, long and empty messages close the connection.
  for (size_t size :
       {size_t{0}, size_t{1}, sizeof(Request) - 1, sizeof(Request) + 1, size_t{4096}}) {
    RawClient raw(Socket(1));
    ASSERT_TRUE(raw.connected());
    std::string junk(size, '\x07');
    ASSERT_EQ(raw.Send(junk.data(), junk.size()), 0) << size;
    EXPECT_TRUE(raw.Closed()) << size;
  }
  // A client that floods requests without reading replies gets closed, and
  // does not wedge the server.
  {
    RawClient raw(Socket(1));
    ASSERT_TRUE(raw.connected());
    Request unmap = Req(kUnmap, 1, 1);
    for (int i = 0; i < 20000; ++i) {
      if (raw.Send(&unmap, sizeof(unmap)) != 0) break;
    }
  }
  // Still serving, on every socket.
  auto guest = Conn(1);
  auto page = NewPage();
  auto ref = guest->GrantPage(page->fd.get(), 0, false);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_TRUE(Conn(0)->MapGrant(1, *ref, true).ok());
}

}  // namespace
}  // namespace hv
}  // namespace sim
}  // namespace xenchan
