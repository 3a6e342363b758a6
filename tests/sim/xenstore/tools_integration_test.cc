// Integration tests: Debian's xenstore-utils tools (/usr/bin/xenstore-*),
// run unchanged as child processes against the simulated xenstored.
#include <errno.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backend/sim/xenstore/server.h"
#include "gtest/gtest.h"
#include "tests/sim/xenstore/test_util.h"

namespace xenchan::sim::xenstore {
namespace {

using testing::Child;
using testing::RawClient;
using testing::RunTool;
using testing::ShortTempDir;

std::string Z(absl::string_view s) { return absl::StrCat(s, std::string(1, '\0')); }

class ToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::StartServer(dir_.path());
    ASSERT_NE(server_, nullptr);
    socket_ = server_->socket_path();
  }
  // Runs a tool on the dom0 socket; returns "<exit code>:<output>".
  std::string Run(std::vector<std::string> argv) { return RunOn(socket_, std::move(argv)); }
  std::string RunOn(const std::string& socket, std::vector<std::string> argv) {
    std::string out;
    const int rc = RunTool(std::move(argv), socket, &out);
    return absl::StrCat(rc, ":", out);
  }

  ShortTempDir dir_;
  std::unique_ptr<XenstoreServer> server_;
  std::string socket_;
};

TEST_F(ToolsTest, WriteReadLsListExistsRm) {
  EXPECT_EQ(Run({"xenstore-write", "/tools/a", "1", "/tools/b", "two words"}), "0:");
  EXPECT_EQ(Run({"xenstore-read", "/tools/a", "/tools/b"}), "0:1\ntwo words\n");
  EXPECT_EQ(Run({"xenstore-ls", "/tools"}), "0:a = \"1\"\nb = \"two words\"\n");
  EXPECT_EQ(Run({"xenstore-list", "/tools"}), "0:a\nb\n");
  EXPECT_EQ(Run({"xenstore-exists", "/tools/a"}), "0:");
  EXPECT_TRUE(absl::StartsWith(Run({"xenstore-exists", "/tools/zz"}), "1:"));
  EXPECT_TRUE(absl::StartsWith(Run({"xenstore-read", "/tools/zz"}), "1:"));
  EXPECT_EQ(Run({"xenstore-rm", "/tools/a"}), "0:");
  EXPECT_EQ(Run({"xenstore-list", "/tools"}), "0:b\n");
  EXPECT_EQ(Run({"xenstore-rm", "/tools"}), "0:");
  EXPECT_EQ(Run({"xenstore-ls", "/"}), "0:tool = \"\"\n xenstored = \"\"\n");
}

TEST_F(ToolsTest, ChmodAndLsShowPermissions) {
  EXPECT_EQ(Run({"xenstore-write", "/c/d", "1"}), "0:");
  EXPECT_EQ(Run({"xenstore-chmod", "/c/d", "n0", "r5"}), "0:");
  const std::string ls = Run({"xenstore-ls", "-p", "/c"});
  EXPECT_TRUE(absl::StartsWith(ls, "0:d = \"1\"")) << ls;
  EXPECT_TRUE(absl::StrContains(ls, "(n0,r5)")) << ls;
  EXPECT_EQ(Run({"xenstore-chmod", "-r", "/c", "b3"}), "0:");
  const std::string ls2 = Run({"xenstore-ls", "-p", "/c"});
  EXPECT_TRUE(absl::StrContains(ls2, "(b3)")) << ls2;
  EXPECT_FALSE(absl::StrContains(ls2, "r5")) << ls2;
  EXPECT_TRUE(absl::StartsWith(Run({"xenstore-chmod", "/c", "q3"}), "1:"));
}

TEST_F(ToolsTest, WatchPrintsEventsAndExitsAfterCount) {
  Child watch({"xenstore-watch", "-n", "3", "/wt"}, socket_);
  // The first line is the event fired on registration: the watch is live.
  EXPECT_EQ(watch.ReadLine().value_or("<none>"), "/wt");
  EXPECT_EQ(Run({"xenstore-write", "/wt/x", "1"}), "0:");
  EXPECT_EQ(watch.ReadLine().value_or("<none>"), "/wt/x");
  EXPECT_EQ(Run({"xenstore-rm", "/wt"}), "0:");
  EXPECT_EQ(watch.ReadLine().value_or("<none>"), "/wt");
  std::string rest;
  EXPECT_EQ(watch.Finish(&rest), 0);
  EXPECT_EQ(rest, "");
}

TEST_F(ToolsTest, ToolsOnAGuestSocketActAsTheGuest) {
  EXPECT_EQ(Run({"xenstore-write", "/local/domain/4/name", "g"}), "0:");
  EXPECT_EQ(Run({"xenstore-chmod", "/local/domain/4", "n4"}), "0:");
  EXPECT_EQ(Run({"xenstore-write", "/secret", "s"}), "0:");
  RawClient dom0(socket_);
  ASSERT_TRUE(dom0.connected());
  ASSERT_TRUE(dom0.Send(XS_INTRODUCE, Z("4") + Z("100") + Z("9")));
  auto reply = dom0.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->type, uint32_t{XS_INTRODUCE});
  const std::string guest = server_->DomainSocketPath(4);
  EXPECT_EQ(RunOn(guest, {"xenstore-write", "data/x", "1"}), "0:");
  EXPECT_EQ(RunOn(guest, {"xenstore-read", "data/x"}), "0:1\n");
  EXPECT_EQ(Run({"xenstore-read", "/local/domain/4/data/x"}), "0:1\n");
  EXPECT_TRUE(absl::StartsWith(RunOn(guest, {"xenstore-read", "/secret"}), "1:"));
  EXPECT_TRUE(absl::StartsWith(RunOn(guest, {"xenstore-write", "/secret", "x"}), "1:"));
  EXPECT_EQ(Run({"xenstore-read", "/secret"}), "0:s\n");
}

}  // namespace
}  // namespace xenchan::sim::xenstore
