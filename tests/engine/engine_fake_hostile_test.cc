// Hostile guests against the engine (XEN-CHANNELS §3.5) on the in-memory Xen
// platform: a guest that scribbles on its ring indices, one that rewrites or
// deletes its xenstore nodes, and one that storms its port with events that
// carry nothing. The engine must flag only that channel and keep the others
// working. hostile_guest_integration_test checks the same against xensim's
// processes (and adds floods and latency under load).
#include <stdint.h>
#include <xen/io/console.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "backend/engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/fake_engine_fixture.h"
#include "tests/engine/sim_fixture.h"

namespace xenchan {
namespace {

using testing_fake::Frontend;
using testing_sim::ReadSession;

class EngineFakeHostileTest : public testing_fake::FakeEngineTest {
 protected:
  void SetUp() override {
    FakeEngineTest::SetUp();
    StartEngine([](EngineOptions& o) {
      // Short rate-limit periods keep the storm test in milliseconds.
      o.event_period = absl::Milliseconds(20);
      o.event_cap_period = absl::Milliseconds(20);
    });
  }
  // Waits until the channel's counters satisfy `pred`.
  bool WaitCounters(const std::string& domain, const std::string& id,
                    const std::function<bool(const ChannelCounters&)>& pred) {
    return Until([&] {
      auto c = engine_->GetChannel({domain, id});
      return c.ok() && pred(c->counters);
    });
  }
};

TEST_F(EngineFakeHostileTest, ScribbledRingIndicesAreCountedAndIgnored) {
  NewDomain("bad");
  NewDomain("good");
  Frontend& bad = Connect("bad", "victim");
  Frontend& good = Connect("good", "fine");
  auto bad_writer = Open("bad", "victim", SessionRole::kWriter, ReadStart::Anchor::kNext);
  auto good_writer = Open("good", "fine", SessionRole::kWriter, ReadStart::Anchor::kNext);
  ExpectRoundTrip(good, *good_writer, "before");

  xencons_interface* page = bad.ring();
  // Every scribble goes through GuestWritePage: the guest's CPU, not ours.
  auto set_index = [page](XENCONS_RING_IDX xencons_interface::*index, uint32_t value) {
    const size_t offset =
        reinterpret_cast<const char*>(&(page->*index)) - reinterpret_cast<const char*>(page);
    FakeConsoleFrontend::GuestWritePage(page, offset, &value, sizeof(value));
  };
  auto get_index = [page](XENCONS_RING_IDX xencons_interface::*index) {
    return __atomic_load_n(&(page->*index), __ATOMIC_ACQUIRE);
  };
  const uint32_t saved_out = get_index(&xencons_interface::out_prod);
  const uint32_t saved_in = get_index(&xencons_interface::in_prod);
  // More than the ring holds, and a consumer ahead of its producer.
  set_index(&xencons_interface::out_prod, get_index(&xencons_interface::out_cons) + 100000);
  set_index(&xencons_interface::in_cons, saved_in + 5000);
  ASSERT_TRUE(bad_writer->Write("poke").ok());  // makes the engine look
  ASSERT_TRUE(WaitCounters("bad", "victim",
                           [](const ChannelCounters& c) { return c.bad_ring_rounds > 0; }));
  ChannelInfo c = Info("bad", "victim");
  EXPECT_EQ(c.last_error.kind, ChannelErrorKind::kBadRingIndices);
  EXPECT_EQ(c.counters.bytes_from_guest, 0u);  // nothing read from a corrupt ring
  ExpectRoundTrip(good, *good_writer, "during");

  // Garbage everywhere, many times over, while the engine keeps servicing.
  std::mt19937 rng(42);
  for (int i = 0; i < 200; ++i) {
    unsigned char bytes[sizeof(xencons_interface)];
    for (unsigned char& b : bytes) b = rng() & 0xff;
    FakeConsoleFrontend::GuestWritePage(page, 0, bytes, sizeof(bytes));
    (void)bad.Notify();
  }
  ExpectRoundTrip(good, *good_writer, "after garbage");
  // Sane indices again: the channel is still connected and moves data.
  set_index(&xencons_interface::out_cons, saved_out);
  set_index(&xencons_interface::out_prod, saved_out);
  set_index(&xencons_interface::in_cons, saved_in);
  set_index(&xencons_interface::in_prod, saved_in);
  EXPECT_EQ(Info("bad", "victim").state, ChannelState::kConnected);
  ASSERT_TRUE(bad.WriteAll("sane again").ok());
  EXPECT_EQ(ReadSession(*bad_writer, 10, absl::Seconds(10)), "sane again");
}

TEST_F(EngineFakeHostileTest, RewrittenAndDeletedNodesFailOnlyThatChannel) {
  const uint32_t D = NewDomain("bad");
  NewDomain("good");
  Frontend& a = Connect("bad", "a");
  Frontend& good = Connect("good", "fine");
  auto good_writer = Open("good", "fine", SessionRole::kWriter, ReadStart::Anchor::kNext);
  XenStore& xs = a.xs();  // the guest's own connection: it may write its nodes

  // Unparsable states are ignored and counted; the channel stays connected.
  uint64_t count = 0;
  for (const char* garbage : {"banana", "9", "", "4\n", "-1", "04", "99999999999"}) {
    ASSERT_TRUE(xs.Write(kNoTransaction, a.path() + "/state", garbage).ok());
    ++count;
    ASSERT_TRUE(WaitCounters("bad", "a", [&](const ChannelCounters& c) {
      return c.bad_xenstore_values >= count;
    })) << garbage;
  }
  EXPECT_EQ(Info("bad", "a").state, ChannelState::kConnected);
  // What dom0 owns stays dom0's: the guest may not rename its channel.
  EXPECT_EQ(xs.Write(kNoTransaction, a.path() + "/name", "evil").code(),
            absl::StatusCode::kPermissionDenied);
  ExpectRoundTrip(good, *good_writer, "1");

  // A "resume" with nonsense ring info fails that channel (BE 5) and only it.
  ASSERT_TRUE(xs.Write(kNoTransaction, a.path() + "/ring-ref", "12abc").ok());
  ASSERT_TRUE(xs.Write(kNoTransaction, a.path() + "/port", "-7").ok());
  ASSERT_TRUE(xs.Write(kNoTransaction, a.path() + "/state", "3").ok());
  auto failed = waiter_->WaitFor([](const ChannelEvent& e) {
    return e.channel.channel_id == "a" && e.channel.state == ChannelState::kFailed;
  });
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->channel.last_error.kind, ChannelErrorKind::kBadRingInfo);
  EXPECT_EQ(failed->channel.backend_state, XenbusState::kClosing);
  ExpectRoundTrip(good, *good_writer, "2");

  // A second channel of the bad guest: a grant that does not exist.
  auto b = Create("bad", "b");
  ASSERT_TRUE(b.ok()) << b.status();
  Frontend& fb = Probe(D, b->devid);
  ASSERT_TRUE(fb.xs().Write(kNoTransaction, fb.path() + "/ring-ref", "99999").ok());
  ASSERT_TRUE(fb.SetState(Frontend::kInitialised).ok());
  auto map_failed = waiter_->WaitFor([](const ChannelEvent& e) {
    return e.channel.channel_id == "b" && e.channel.state == ChannelState::kFailed;
  });
  ASSERT_TRUE(map_failed.has_value());
  EXPECT_EQ(map_failed->channel.last_error.kind, ChannelErrorKind::kGrantMapFailed);

  // The guest deleting its whole frontend directory.
  ASSERT_TRUE(fb.xs().Remove(kNoTransaction, fb.path()).ok());
  auto gone = waiter_->WaitFor([](const ChannelEvent& e) {
    return e.channel.channel_id == "b" &&
           e.channel.last_error.kind == ChannelErrorKind::kFrontendRemoved;
  });
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->channel.backend_state, XenbusState::kClosed);
  ExpectRoundTrip(good, *good_writer, "3");
}

// A guest with a ring and a port that sends nothing but kicks its port as
// fast as it can: spurious events are held to the allowance per period (30
// per 20 ms here, a token bucket: the port stays masked until the debt is
// repaid); a quiet guest beside it keeps working.
TEST_F(EngineFakeHostileTest, EventStormWithoutDataIsThrottled) {
  NewDomain("storm");
  NewDomain("quiet");
  Frontend& storm = Connect("storm", "kicks");
  Frontend& quiet = Connect("quiet", "calm");
  auto calm = Open("quiet", "calm", SessionRole::kWriter, ReadStart::Anchor::kNext);
  const ChannelInfo before = Info("storm", "kicks");

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> kicks{0};
  const absl::Time start = absl::Now();
  FakeEventChannels& evtchn = storm.evtchn();
  const EvtchnPort port = storm.port();
  std::thread stormer([&] {
    while (!stop.load()) {
      if (!evtchn.Notify(port).ok()) break;
      kicks.fetch_add(1);
    }
  });
  for (int i = 0; i < 3; ++i) ExpectRoundTrip(quiet, *calm, absl::StrCat("ping", i));
  ASSERT_TRUE(Until([&] { return absl::Now() - start >= absl::Milliseconds(200); }));
  stop = true;
  stormer.join();
  const absl::Duration elapsed = absl::Now() - start;

  const ChannelInfo after = Info("storm", "kicks");
  const uint64_t handled = after.counters.events_from_guest - before.counters.events_from_guest;
  const uint64_t spurious =
      after.counters.spurious_events_from_guest - before.counters.spurious_events_from_guest;
  const uint64_t periods = static_cast<uint64_t>(elapsed / absl::Milliseconds(20)) + 2;
  EXPECT_GT(kicks.load(), 10 * handled);  // most kicks met a masked port
  EXPECT_EQ(spurious, handled);
  EXPECT_LE(handled, periods * 31) << periods;
  EXPECT_GT(after.counters.rate_limited_periods, 0u);
  EXPECT_EQ(after.counters.bytes_from_guest, 0u);
  EXPECT_EQ(after.state, ChannelState::kConnected);
  EXPECT_EQ(Info("quiet", "calm").counters.rate_limited_periods, 0u);
}

}  // namespace
}  // namespace xenchan
