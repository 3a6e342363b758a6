// The real-Xen event channel and grant table implementations on a host
// without Xen: Create() must fail with a clean UNAVAILABLE naming the cause,
// not crash. (On a Xen host the devices exist and this test is skipped; the
// real-Xen lane covers them there.)
#include <unistd.h>

#include "absl/status/status.h"
#include "backend/platform/xen/event_channels.h"
#include "backend/platform/xen/grant_tables.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace {

TEST(XenEventChannelsTest, CreateWithoutXenIsUnavailable) {
  if (access("/dev/xen/evtchn", F_OK) == 0) GTEST_SKIP() << "running on Xen";
  auto evtchn = XenEventChannels::Create();
  ASSERT_FALSE(evtchn.ok());
  EXPECT_EQ(evtchn.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(evtchn.status().message().find("xenevtchn_open: "), absl::string_view::npos)
      << evtchn.status();
  EXPECT_NE(evtchn.status().message().find("No such file or directory"), absl::string_view::npos)
      << evtchn.status();
}

TEST(XenGrantTablesTest, CreateWithoutXenIsUnavailable) {
  if (access("/dev/xen/gntdev", F_OK) == 0) GTEST_SKIP() << "running on Xen";
  auto tables = XenGrantTables::Create();
  ASSERT_FALSE(tables.ok());
  EXPECT_EQ(tables.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(tables.status().message().find("xengnttab_open: "), absl::string_view::npos)
      << tables.status();
  EXPECT_NE(tables.status().message().find("No such file or directory"), absl::string_view::npos)
      << tables.status();
}

}  // namespace
}  // namespace xenchan
