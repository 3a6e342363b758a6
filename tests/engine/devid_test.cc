// Unit tests of devid choice for new ring channels and of the record of
// released devids (backend/engine/devid.h).
#include "backend/engine/devid.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace {

constexpr uint32_t kLimit = 7;  // EngineOptions::max_channels_per_domain

ConsoleDirectories Frontends(std::vector<std::string> entries) {
  ConsoleDirectories dirs;
  dirs.frontend = std::move(entries);
  return dirs;
}

// The devid chosen; 0 (never a choice) if it failed.
uint32_t Pick(const ConsoleDirectories& dirs, const std::set<uint32_t>& recently_released,
              uint32_t limit) {
  absl::StatusOr<uint32_t> devid = ChooseDevid(dirs, recently_released, limit, "vm");
  EXPECT_TRUE(devid.ok()) << devid.status();
  return devid.value_or(0);
}

TEST(ChooseDevid, AFreshDomainGetsOne) {
  EXPECT_EQ(Pick({}, {}, kLimit), 1u);
  // xl gives every guest its primary console, devid 0.
  EXPECT_EQ(Pick(Frontends({"0"}), {}, kLimit), 1u);
}

TEST(ChooseDevid, DevidZeroIsNeverChosenNorCounted) {
  // A limit of one channel: the primary console does not use it up.
  EXPECT_EQ(Pick(Frontends({"0"}), {}, 1), 1u);
  ConsoleDirectories dirs;
  dirs.libxl = {"0"};
  dirs.backend = {"0"};
  EXPECT_EQ(Pick(dirs, {}, 1), 1u);
}

TEST(ChooseDevid, FillsTheLowestGap) {
  EXPECT_EQ(Pick(Frontends({"0", "1", "3"}), {}, kLimit), 2u);
  EXPECT_EQ(Pick(Frontends({"0", "2", "1", "4", "3"}), {}, kLimit), 5u);
  EXPECT_EQ(Pick(Frontends({"9"}), {}, kLimit), 1u);
}

TEST(ChooseDevid, EveryDirectoryCountsAsUsedButOnlyFrontendsTowardsTheLimit) {
  ConsoleDirectories dirs;
  dirs.frontend = {"0"};
  dirs.libxl = {"1"};    // an xl.cfg channel the guest has not connected yet
  dirs.backend = {"2"};  // one of ours whose frontend is gone
  EXPECT_EQ(Pick(dirs, {}, 1), 3u);
}

TEST(ChooseDevid, TheLastDigitClashesToo) {
  // hvc_xen would name 11 and 12 like 1 and 2.
  EXPECT_EQ(Pick(Frontends({"0", "11", "12"}), {}, kLimit), 3u);
  ConsoleDirectories dirs;
  dirs.libxl = {"21"};
  EXPECT_EQ(Pick(dirs, {}, kLimit), 2u);
}

TEST(ChooseDevid, EntriesThatAreNoDevidsAreIgnored) {
  ConsoleDirectories dirs;
  dirs.frontend = {"abc", "01", "-1", "1000001", ""};
  dirs.backend = {"xenchan-released"};
  EXPECT_EQ(Pick(dirs, {}, 1), 1u);
}

TEST(ChooseDevid, RecentlyReleasedDevidsAreSkipped) {
  EXPECT_EQ(Pick(Frontends({"0"}), {1}, kLimit), 2u);
  EXPECT_EQ(Pick(Frontends({"0", "2"}), {1, 3}, kLimit), 4u);
}

TEST(ChooseDevid, TheLimitIsRefused) {
  absl::StatusOr<uint32_t> devid =
      ChooseDevid(Frontends({"0", "1", "2", "3", "4", "5", "6", "7"}), {}, kLimit, "web");
  EXPECT_EQ(devid.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(devid.status().message(), "domain web already has 7 console"))
      << devid.status();
  EXPECT_EQ(Pick(Frontends({"0", "1", "2", "3", "4", "5", "6"}), {}, kLimit), 7u);
}

TEST(ChooseDevid, AllTakenIsRefused) {
  ConsoleDirectories dirs;
  dirs.libxl = {"1", "2", "3", "4", "5", "6", "7", "8", "9"};
  absl::StatusOr<uint32_t> devid = ChooseDevid(dirs, {}, kLimit, "web");
  EXPECT_EQ(devid.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(
      absl::StrContains(devid.status().message(), "no free console devid 1..9 in domain web"))
      << devid.status();
  // Taken by recent releases alone.
  devid = ChooseDevid({}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, kLimit, "web");
  EXPECT_EQ(devid.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ReleasedDevids, BlocksADevidUntilTheDelayHasPassed) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  ReleasedDevids released(absl::Seconds(10));
  released.Record(5, 1, t0);
  EXPECT_EQ(released.Blocked(5), std::set<uint32_t>({1}));
  EXPECT_TRUE(released.Blocked(6).empty());
  EXPECT_FALSE(released.Expired(t0, t0 + absl::Seconds(9)));
  EXPECT_TRUE(released.Expired(t0, t0 + absl::Seconds(10)));
  EXPECT_TRUE(released.Expire(5, t0 + absl::Seconds(9)).empty());
  EXPECT_EQ(released.Blocked(5), std::set<uint32_t>({1}));
  EXPECT_EQ(released.Expire(5, t0 + absl::Seconds(10)), std::vector<uint32_t>({1}));
  EXPECT_TRUE(released.Blocked(5).empty());
  EXPECT_TRUE(released.Expire(5, t0 + absl::Seconds(11)).empty());
}

TEST(ReleasedDevids, ReuseAfterUnplug) {
  // Channel at devid 1 unplugged at t0; its frontend directory is gone.
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  ReleasedDevids released(absl::Seconds(10));
  released.Record(5, 1, t0);
  (void)released.Expire(5, t0 + absl::Seconds(1));
  EXPECT_EQ(Pick(Frontends({"0"}), released.Blocked(5), kLimit), 2u);
  (void)released.Expire(5, t0 + absl::Seconds(10));
  EXPECT_EQ(Pick(Frontends({"0"}), released.Blocked(5), kLimit), 1u);
}

TEST(ReleasedDevids, ALaterReleaseReplacesAnEarlierOne) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  ReleasedDevids released(absl::Seconds(10));
  released.Record(5, 1, t0);
  released.Record(5, 1, t0 + absl::Seconds(5));
  EXPECT_TRUE(released.Expire(5, t0 + absl::Seconds(10)).empty());
  EXPECT_EQ(released.Expire(5, t0 + absl::Seconds(15)), std::vector<uint32_t>({1}));
}

TEST(ReleasedDevids, AGoneDomainIsForgotten) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  ReleasedDevids released(absl::Seconds(10));
  released.Record(5, 1, t0);
  released.Record(5, 2, t0);
  released.Record(6, 1, t0);
  released.ForgetDomain(5);
  EXPECT_TRUE(released.Blocked(5).empty());
  EXPECT_EQ(released.Blocked(6), std::set<uint32_t>({1}));
}

}  // namespace
}  // namespace xenchan
