// Durable channels end to end (issue 12): the real xenchand on a real
// xensim. A following Read keeps reading, in order and without a gap, across
// `xensim domain reboot` and `domain save` + `domain restore`, with the
// epoch changes' reasons; the declaration survives kill -9 of xenchand while
// the domain is down, and a domain that came back while xenchand was dead
// gets its channel when xenchand starts again.
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backend/util/mutex.h"
#include "clients/lib/client.h"
#include "gtest/gtest.h"
#include "tests/common/io.h"
#include "tests/common/xenchan_integration_test.h"

namespace xenchan {
namespace {

using testcommon::OpenGuestTty;
using testcommon::WriteAll;

constexpr char kGuest[] = "guest1";
constexpr char kChannel[] = "org.example.durable";

// A `Read` with follow=true from the earliest byte, on its own thread: the
// data in order, and the epoch changes' reasons.
class Follower {
 public:
  Follower(client::Client* client, const std::string& channel) {
    thread_ = std::thread([this, client, channel] {
      v1::ReadRequest request;
      request.set_channel(channel);
      request.set_follow(true);
      request.mutable_start()->set_anchor(v1::START_ANCHOR_EARLIEST);
      absl::Status s = client->Read(
          request,
          [this](const v1::ReadResponse& m) {
            MutexLock lock(&mu_);
            if (m.has_data()) data_ += m.data().data();
            if (m.has_gap()) ++gaps_;
            if (m.has_epoch_change()) reasons_.push_back(m.epoch_change().reason());
            cv_.SignalAll();
            return !stop_;
          },
          &context_);
      MutexLock lock(&mu_);
      status_ = s;
      ended_ = true;
      cv_.SignalAll();
    });
  }
  ~Follower() {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    context_.TryCancel();
    thread_.join();
  }
  // Waits until the data read so far ends with `tail`.
  bool WaitForTail(const std::string& tail, absl::Duration timeout = absl::Seconds(30)) {
    MutexLock lock(&mu_);
    tail_ = tail;
    const absl::Time deadline = absl::Now() + timeout;
    while (!TailOrEndLocked()) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
    }
    return !ended_ && TailOrEndLocked();
  }
  std::string data() {
    MutexLock lock(&mu_);
    return data_;
  }
  std::vector<v1::EpochChangeReason> reasons() {
    MutexLock lock(&mu_);
    return reasons_;
  }
  int gaps() {
    MutexLock lock(&mu_);
    return gaps_;
  }

 private:
  bool TailOrEndLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return ended_ || (data_.size() >= tail_.size() &&
                      data_.compare(data_.size() - tail_.size(), tail_.size(), tail_) == 0);
  }

  grpc::ClientContext context_;
  // The project's Mutex (std::mutex underneath), which TSan sees; Abseil's
  // is an uninstrumented system library here.
  Mutex mu_;
  CondVar cv_;
  std::string data_ ABSL_GUARDED_BY(mu_);
  std::string tail_ ABSL_GUARDED_BY(mu_);  // what WaitForTail waits for
  std::vector<v1::EpochChangeReason> reasons_ ABSL_GUARDED_BY(mu_);
  int gaps_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

class DurableIntegrationTest : public testcommon::XenchanIntegrationTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartXensim({kGuest}));
    ASSERT_NO_FATAL_FAILURE(StartServer());
  }

  v1::Channel CreateDurable() {
    v1::ChannelConfig config;
    config.set_lifetime(v1::CHANNEL_LIFETIME_DURABLE);
    return CreateConnectedChannel(kGuest, kChannel, config);
  }

  // Waits until the channel is in `state` (and, if given, in domain `domid`).
  bool WaitChannel(v1::ChannelState state, uint32_t domid = 0,
                   absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      auto ch = client_->GetChannel(Name());
      if (ch.ok() && ch->state() == state && (domid == 0 || ch->domid() == domid)) return true;
      absl::SleepFor(absl::Milliseconds(20));  // polling a remote state; bounded
    }
    return false;
  }

  // The guest writes `line` into its end of the channel (opened afresh:
  // every incarnation has a new tty).
  void GuestWrites(const std::string& line) {
    const int fd = OpenGuestTty(TtyPath(kGuest, kChannel));
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(WriteAll(fd, line));
    close(fd);
  }

  uint32_t Domid() {
    auto d = client_->GetDomain(absl::StrCat("domains/", kGuest));
    return d.ok() ? d->domid() : 0;
  }

  static std::string Name() { return ChannelName(kGuest, kChannel); }
};

TEST_F(DurableIntegrationTest, AFollowingReadCrossesRebootAndSaveRestoreInOrder) {
  const v1::Channel created = CreateDurable();
  ASSERT_EQ(created.config().lifetime(), v1::CHANNEL_LIFETIME_DURABLE);
  Follower follower(client_.get(), Name());
  ASSERT_NO_FATAL_FAILURE(GuestWrites("one\n"));
  ASSERT_TRUE(follower.WaitForTail("one\n"));

  const uint32_t first = Domid();
  auto r = sim_->Cli({"domain", "reboot", kGuest});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(WaitChannel(v1::CHANNEL_STATE_CONNECTED));
  const uint32_t second = Domid();
  EXPECT_NE(second, first);
  ASSERT_NO_FATAL_FAILURE(GuestWrites("two\n"));
  ASSERT_TRUE(follower.WaitForTail("two\n"));

  const std::string image = sim_->scratch_dir() + "/guest1.save";
  r = sim_->Cli({"domain", "save", kGuest, image});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(WaitChannel(v1::CHANNEL_STATE_DOMAIN_DOWN));
  auto down = client_->GetDomain(absl::StrCat("domains/", created.domain_uuid()));
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_EQ(down->state(), v1::DOMAIN_STATE_NOT_RUNNING);
  r = sim_->Cli({"domain", "restore", image});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(WaitChannel(v1::CHANNEL_STATE_CONNECTED));
  ASSERT_NO_FATAL_FAILURE(GuestWrites("three\n"));
  ASSERT_TRUE(follower.WaitForTail("three\n"));

  EXPECT_EQ(follower.data(), "one\ntwo\nthree\n");
  EXPECT_EQ(follower.gaps(), 0);
  const std::vector<v1::EpochChangeReason> reasons = follower.reasons();
  ASSERT_GE(reasons.size(), 2u);
  EXPECT_EQ(reasons[reasons.size() - 2], v1::EPOCH_CHANGE_REASON_DOMAIN_REBOOTED);
  EXPECT_EQ(reasons.back(), v1::EPOCH_CHANGE_REASON_DOMAIN_RESTORED);
  auto now = client_->GetChannel(Name());
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->uid(), created.uid());
  // The devid is the same unless the restored guest resumed before xenchand
  // re-created the device (xensim's restore does not wait for it): then the
  // channel was moved, and says so.
  if (now->devid() != created.devid()) {
    EXPECT_NE(now->last_error().message().find("stale device"), std::string::npos)
        << now->last_error().message();
  }
}

TEST_F(DurableIntegrationTest, TheDeclarationSurvivesKill9WhileTheDomainIsDown) {
  expect_clean_stop_ = false;
  const v1::Channel created = CreateDurable();
  const std::string image = sim_->scratch_dir() + "/guest1.save";
  auto r = sim_->Cli({"domain", "save", kGuest, image});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(WaitChannel(v1::CHANNEL_STATE_DOMAIN_DOWN));
  server_->Kill();
  client_.reset();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  // The store keeps the domain's UUID, not its name: a restarted xenchand
  // knows the waiting channel by the UUID until the domain is back.
  auto waiting =
      client_->GetChannel(absl::StrCat("domains/", created.domain_uuid(), "/channels/", kChannel));
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  EXPECT_EQ(waiting->state(), v1::CHANNEL_STATE_DOMAIN_DOWN);
  EXPECT_EQ(waiting->uid(), created.uid());
  r = sim_->Cli({"domain", "restore", image});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(WaitChannel(v1::CHANNEL_STATE_CONNECTED));
  Follower follower(client_.get(), Name());
  ASSERT_NO_FATAL_FAILURE(GuestWrites("after\n"));
  EXPECT_TRUE(follower.WaitForTail("after\n"));
}

TEST_F(DurableIntegrationTest, ADomainThatRebootedWhileXenchandWasDeadGetsItsChannelAtStart) {
  expect_clean_stop_ = false;
  const v1::Channel created = CreateDurable();
  server_->Kill();
  client_.reset();
  auto r = sim_->Cli({"domain", "reboot", kGuest});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_TRUE(WaitChannel(v1::CHANNEL_STATE_CONNECTED, Domid()));
  auto ch = client_->GetChannel(Name());
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ(ch->uid(), created.uid());
  EXPECT_GT(ch->epoch(), created.epoch());
  Follower follower(client_.get(), Name());
  ASSERT_NO_FATAL_FAILURE(GuestWrites("back\n"));
  EXPECT_TRUE(follower.WaitForTail("back\n"));
}

TEST_F(DurableIntegrationTest, Kill9RightAfterTheDomainReturnsLeavesOneWorkingChannel) {
  expect_clean_stop_ = false;
  CreateDurable();
  auto r = sim_->Cli({"domain", "reboot", kGuest});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  server_->Kill();  // maybe before, during or after the re-creation
  client_.reset();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_TRUE(WaitChannel(v1::CHANNEL_STATE_CONNECTED, Domid()));
  v1::ListChannelsRequest request;
  request.set_parent(absl::StrCat("domains/", kGuest));
  auto list = client_->ListChannels(request);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->size(), 1u);
  Follower follower(client_.get(), Name());
  ASSERT_NO_FATAL_FAILURE(GuestWrites("once\n"));
  EXPECT_TRUE(follower.WaitForTail("once\n"));
}

TEST_F(DurableIntegrationTest, DeletingTheChannelWhileTheDomainIsDownEndsTheDeclaration) {
  CreateDurable();
  const std::string image = sim_->scratch_dir() + "/guest1.save";
  auto r = sim_->Cli({"domain", "save", kGuest, image});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(WaitChannel(v1::CHANNEL_STATE_DOMAIN_DOWN));
  v1::DeleteChannelRequest del;
  del.set_name(Name());
  ASSERT_TRUE(client_->DeleteChannel(del).ok());
  r = sim_->Cli({"domain", "restore", image});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(client_->GetDomain(absl::StrCat("domains/", kGuest)).ok());
  EXPECT_FALSE(client_->GetChannel(Name()).ok());
}

}  // namespace
}  // namespace xenchan
