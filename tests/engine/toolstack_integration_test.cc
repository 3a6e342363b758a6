// Toolstack channels (xl.cfg `channel=`, served by the simulated QEMU) seen
// through the engine: discovered from xenstore, exposed with their transport,
// data both ways through QEMU's Unix socket and pty, read-only as to
// lifecycle, and removed with their domain.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "backend/engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/sim_fixture.h"

namespace xenchan {
namespace {

using testing_sim::EventWaiter;
using testing_sim::OpenRawTty;
using testing_sim::ReadExactly;
using testing_sim::ReadSession;
using testing_sim::SimHost;
using testing_sim::WaitWriteStatus;
using testing_sim::WriteAll;

TEST(ToolstackChannels, DiscoveredServedAndRemovedWithTheirDomain) {
  auto sim = SimHost::Start();
  ASSERT_TRUE(sim.ok()) << sim.status();
  auto options = (*sim)->EngineOptionsForHost();
  ASSERT_TRUE(options.ok());
  auto engine = Engine::Create(*std::move(options));
  ASSERT_TRUE(engine.ok()) << engine.status();
  Engine& e = **engine;
  auto waiter_owner = std::make_unique<EventWaiter>(&e);
  EventWaiter& waiter = *waiter_owner;

  const std::string sock = (*sim)->state_dir() + "/agent.sock";
  auto dom = (*sim)->host().CreateDomain("vm1", "",
                                         {"name=org.example.sock,connection=socket,path=" + sock,
                                          "name=org.example.pty,connection=pty"});
  ASSERT_TRUE(dom.ok()) << dom.status();
  for (const char* id : {"org.example.sock", "org.example.pty"}) {
    ASSERT_TRUE(waiter.WaitUntil([&] {
      auto c = e.GetChannel({"vm1", id});
      return c.ok() && c->state == ChannelState::kConnected;
    })) << id;
  }
  auto s = e.GetChannel({"vm1", "org.example.sock"});
  EXPECT_EQ(s->transport, Transport::kToolstackSocket);
  EXPECT_EQ(s->devid, 1u);
  EXPECT_EQ(s->toolstack_endpoint, sock);
  EXPECT_EQ(s->max_ack_level, AckLevel::kDelivered);
  auto p = e.GetChannel({"vm1", "org.example.pty"});
  EXPECT_EQ(p->transport, Transport::kToolstackPty);
  EXPECT_EQ(p->toolstack_endpoint.rfind("/dev/pts/", 0), 0u) << p->toolstack_endpoint;
  EXPECT_EQ(e.ListChannels().size(), 2u);

  for (const char* id : {"org.example.sock", "org.example.pty"}) {
    const int tty = OpenRawTty((*sim)->GuestChannelPath("vm1", id));
    ASSERT_GE(tty, 0) << id;
    SessionOptions so;
    so.role = SessionRole::kWriter;
    auto session = e.OpenSession({"vm1", id}, so);
    ASSERT_TRUE(session.ok()) << session.status();
    ASSERT_TRUE(WriteAll(tty, absl::StrCat("from guest ", id)));
    EXPECT_EQ(ReadSession(**session, 11 + strlen(id)), absl::StrCat("from guest ", id));
    auto w = (*session)->Write(absl::StrCat("from host ", id));
    ASSERT_TRUE(w.ok()) << w.status();
    EXPECT_TRUE(WaitWriteStatus(
        **session, [&](const WriteStatus& st) { return st.delivered_offset == w->end; }));
    EXPECT_EQ(ReadExactly(tty, 10 + strlen(id)), absl::StrCat("from host ", id));
    close(tty);
  }

  // Read-only as to lifecycle; ids are unique across transports; the devids
  // libxl used are avoided.
  EXPECT_EQ(e.DeleteChannelAndWait({"vm1", "org.example.sock"}, absl::Seconds(1)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  CreateChannelRequest req;
  req.domain = "vm1";
  req.channel_id = "org.example.pty";
  EXPECT_EQ(e.CreateChannelAndWait(req).status().code(), absl::StatusCode::kAlreadyExists);
  req.channel_id = "org.example.ring";
  req.wait_until_connected = true;
  auto ring = e.CreateChannelAndWait(req);
  ASSERT_TRUE(ring.ok()) << ring.status();
  EXPECT_EQ(ring->devid, 3u);  // 1 and 2 are the xl.cfg channels

  // A restarted engine finds them again with the same uid.
  const std::string uid = s->uid;
  waiter_owner.reset();
  engine->reset();
  auto options2 = (*sim)->EngineOptionsForHost();
  ASSERT_TRUE(options2.ok());
  auto engine2 = Engine::Create(*std::move(options2));
  ASSERT_TRUE(engine2.ok());
  EventWaiter waiter2(engine2->get());
  ASSERT_TRUE(waiter2.WaitUntil([&] {
    auto c = (*engine2)->GetChannel({"vm1", "org.example.sock"});
    return c.ok() && c->state == ChannelState::kConnected;
  }));
  EXPECT_EQ((*engine2)->GetChannel({"vm1", "org.example.sock"})->uid, uid);

  ASSERT_TRUE((*sim)->host().DestroyDomain("vm1").ok());
  int removed = 0;
  while (removed < 3) {
    auto ev = waiter2.WaitFor(
        [](const ChannelEvent& ev) { return ev.type == ChannelEventType::kRemoved; });
    ASSERT_TRUE(ev.has_value()) << removed;
    if (ev->channel.transport == Transport::kRing) {
      EXPECT_EQ(ev->removal_reason, RemovalReason::kDomainGone);
    } else {
      // libxl removes the devices before the domain: either reason is fair.
      EXPECT_NE(ev->removal_reason, RemovalReason::kDeleted);
    }
    ++removed;
  }
  EXPECT_TRUE((*engine2)->ListChannels().empty());
}

// The frontend `tty` lives in the guest-owned frontend directory: whatever
// path appears there, the engine opens nothing but a pty slave.
TEST(ToolstackChannels, OnlyAPtySlaveIsEverOpened) {
  auto sim = SimHost::Start();
  ASSERT_TRUE(sim.ok()) << sim.status();
  auto options = (*sim)->EngineOptionsForHost();
  ASSERT_TRUE(options.ok());
  auto engine = Engine::Create(*std::move(options));
  ASSERT_TRUE(engine.ok()) << engine.status();
  Engine& e = **engine;
  EventWaiter waiter(&e);
  auto dom = (*sim)->host().CreateDomain("vm1", "", {"name=org.example.pty,connection=pty"});
  ASSERT_TRUE(dom.ok()) << dom.status();
  const ChannelRef ref{"vm1", "org.example.pty"};
  auto connected = [&] {
    auto c = e.GetChannel(ref);
    return c.ok() && c->state == ChannelState::kConnected;
  };
  ASSERT_TRUE(waiter.WaitUntil(connected));
  const std::string tty_node = absl::StrCat("/local/domain/", dom->domid, "/device/console/1/tty");
  auto pty = (*sim)->xs().Read(kNoTransaction, tty_node);
  ASSERT_TRUE(pty.ok());

  // A regular file, a path that escapes /dev/pts, and a non-tty device.
  const std::string file = (*sim)->state_dir() + "/not-a-tty";
  {
    const int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(WriteAll(fd, "secret"));
    close(fd);
  }
  uint64_t bad = 0;
  for (const std::string& path :
       {file, std::string("/dev/pts/../../") + file, std::string("/dev/null")}) {
    ASSERT_TRUE((*sim)->xs().Write(kNoTransaction, tty_node, path).ok());
    ++bad;
    ASSERT_TRUE(waiter.WaitUntil([&] {
      auto c = e.GetChannel(ref);
      return c.ok() && c->toolstack_endpoint == path && c->counters.bad_xenstore_values >= bad;
    })) << path;
    auto c = e.GetChannel(ref);
    EXPECT_NE(c->state, ChannelState::kConnected) << path;
  }
  struct stat st;
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 6);
  // QEMU's pty again: served again.
  ASSERT_TRUE((*sim)->xs().Write(kNoTransaction, tty_node, *pty).ok());
  EXPECT_TRUE(waiter.WaitUntil(connected));
}

}  // namespace
}  // namespace xenchan
