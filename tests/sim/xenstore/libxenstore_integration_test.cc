// Integration tests: Debian's libxenstore against the simulated xenstored
// over real Unix sockets (XENSTORED_PATH), as a toolstack and a guest would
// use it.
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
// Debian's <xenstore.h> has no extern "C" guards.
extern "C" {
#include <xenstore.h>
}

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/sim/xenstore/server.h"
#include "gtest/gtest.h"
#include "tests/sim/xenstore/test_util.h"

namespace xenchan::sim::xenstore {
namespace {

using testing::ShortTempDir;

struct XsCloser {
  void operator()(xs_handle* h) const { xs_close(h); }
};
using Xs = std::unique_ptr<xs_handle, XsCloser>;

Xs OpenAt(const std::string& socket) {
  setenv("XENSTORED_PATH", socket.c_str(), 1);
  xs_handle* h = xs_open(0);
  EXPECT_NE(h, nullptr) << "xs_open " << socket << ": " << std::strerror(errno);
  return Xs(h);
}

std::optional<std::string> Read(xs_handle* h, const std::string& path,
                                xs_transaction_t t = XBT_NULL) {
  unsigned int len = 0;
  char* v = static_cast<char*>(xs_read(h, t, path.c_str(), &len));
  if (v == nullptr) return std::nullopt;
  std::string out(v, len);
  free(v);
  return out;
}

bool Write(xs_handle* h, const std::string& path, const std::string& value,
           xs_transaction_t t = XBT_NULL) {
  return xs_write(h, t, path.c_str(), value.data(), static_cast<unsigned int>(value.size()));
}

std::vector<std::string> Directory(xs_handle* h, const std::string& path) {
  unsigned int num = 0;
  char** d = xs_directory(h, XBT_NULL, path.c_str(), &num);
  std::vector<std::string> out;
  if (d == nullptr) return out;
  for (unsigned int i = 0; i < num; ++i) out.push_back(d[i]);
  free(d);
  return out;
}

// Waits (bounded) for the next watch event on `h`: {path, token}.
std::optional<std::pair<std::string, std::string>> NextEvent(
    xs_handle* h, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  const int fd = xs_fileno(h);
  while (true) {
    char** ev = xs_check_watch(h);
    if (ev != nullptr) {
      std::pair<std::string, std::string> out(ev[XS_WATCH_PATH], ev[XS_WATCH_TOKEN]);
      free(ev);
      return out;
    }
    if (errno != EAGAIN) return std::nullopt;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
  }
}

using Event = std::pair<std::string, std::string>;

// Waits for an event equal to `want`, skipping others; false on timeout.
bool AwaitEvent(xs_handle* h, const Event& want) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    auto ev = NextEvent(h, deadline - absl::Now());
    if (!ev) return false;
    if (*ev == want) return true;
  }
  return false;
}

class LibXenstoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::StartServer(dir_.path());
    ASSERT_NE(server_, nullptr);
    dom0_ = OpenAt(server_->socket_path());
    ASSERT_NE(dom0_, nullptr);
  }

  ShortTempDir dir_;
  std::unique_ptr<XenstoreServer> server_;
  Xs dom0_;
};

TEST_F(LibXenstoreTest, ReadWriteDirectoryRemove) {
  xs_handle* h = dom0_.get();
  EXPECT_EQ(Directory(h, "/"), std::vector<std::string>({"tool"}));
  ASSERT_TRUE(Write(h, "/local/domain/0/name", "Domain-0"));
  EXPECT_EQ(Read(h, "/local/domain/0/name").value_or("?"), "Domain-0");
  EXPECT_EQ(Read(h, "name").value_or("?"), "Domain-0");  // Relative.
  ASSERT_TRUE(Write(h, "/bin", std::string("a\0b", 3)));
  EXPECT_EQ(Read(h, "/bin").value_or("?"), std::string("a\0b", 3));
  EXPECT_FALSE(Read(h, "/missing").has_value());
  EXPECT_EQ(errno, ENOENT);
  EXPECT_FALSE(Write(h, "/bad path", "1"));
  EXPECT_EQ(errno, EINVAL);
  ASSERT_TRUE(xs_mkdir(h, XBT_NULL, "/m/n"));
  EXPECT_EQ(Directory(h, "/m"), std::vector<std::string>({"n"}));
  ASSERT_TRUE(xs_rm(h, XBT_NULL, "/m"));
  EXPECT_FALSE(Read(h, "/m/n").has_value());
  char* path = xs_get_domain_path(h, 7);
  ASSERT_NE(path, nullptr);
  EXPECT_STREQ(path, "/local/domain/7");
  free(path);
}

TEST_F(LibXenstoreTest, LargeDirectoryGoesThroughDirectoryPart) {
  xs_handle* h = dom0_.get();
  std::vector<std::string> want;
  for (int i = 0; i < 150; ++i) {
    want.push_back(absl::StrCat("a-long-child-name-to-overflow-a-payload-", i));
    ASSERT_TRUE(Write(h, "/big/" + want.back(), "1"));
  }
  EXPECT_EQ(Directory(h, "/big"), want);
}

TEST_F(LibXenstoreTest, Permissions) {
  xs_handle* h = dom0_.get();
  ASSERT_TRUE(Write(h, "/p", "1"));
  xs_permissions perms[2] = {{5, XS_PERM_NONE}, {7, XS_PERM_READ}};
  ASSERT_TRUE(xs_set_permissions(h, XBT_NULL, "/p", perms, 2));
  unsigned int num = 0;
  xs_permissions* got = xs_get_permissions(h, XBT_NULL, "/p", &num);
  ASSERT_NE(got, nullptr);
  ASSERT_EQ(num, 2u);
  EXPECT_EQ(got[0].id, 5u);
  EXPECT_EQ(got[0].perms, unsigned{XS_PERM_NONE});
  EXPECT_EQ(got[1].id, 7u);
  EXPECT_EQ(got[1].perms, unsigned{XS_PERM_READ});
  free(got);
}

TEST_F(LibXenstoreTest, WatchesFireOnRegistrationAndChange) {
  Xs watcher = OpenAt(server_->socket_path());
  ASSERT_TRUE(xs_watch(watcher.get(), "/w", "tok"));
  EXPECT_EQ(NextEvent(watcher.get()), Event("/w", "tok"));
  ASSERT_TRUE(Write(dom0_.get(), "/w/x", "1"));
  EXPECT_EQ(NextEvent(watcher.get()), Event("/w/x", "tok"));
  ASSERT_TRUE(xs_rm(dom0_.get(), XBT_NULL, "/w"));
  EXPECT_EQ(NextEvent(watcher.get()), Event("/w", "tok"));
  ASSERT_TRUE(xs_unwatch(watcher.get(), "/w", "tok"));
  ASSERT_TRUE(Write(dom0_.get(), "/w/y", "1"));
  // Ordering: a later watch's first event arrives after anything for /w.
  ASSERT_TRUE(xs_watch(watcher.get(), "/sentinel", "s"));
  EXPECT_EQ(NextEvent(watcher.get()), Event("/sentinel", "s"));
  // Blocking read also works once an event is queued.
  ASSERT_TRUE(Write(dom0_.get(), "/sentinel", "1"));
  unsigned int n = 0;
  char** ev = xs_read_watch(watcher.get(), &n);
  ASSERT_NE(ev, nullptr);
  EXPECT_STREQ(ev[XS_WATCH_PATH], "/sentinel");
  free(ev);
}

TEST_F(LibXenstoreTest, TransactionsCommitAndConflict) {
  xs_handle* h = dom0_.get();
  Xs other = OpenAt(server_->socket_path());
  ASSERT_TRUE(Write(h, "/x", "0"));
  xs_transaction_t t = xs_transaction_start(h);
  ASSERT_NE(t, XBT_NULL);
  EXPECT_EQ(Read(h, "/x", t).value_or("?"), "0");
  ASSERT_TRUE(Write(h, "/y", "in-tx", t));
  EXPECT_FALSE(Read(other.get(), "/y").has_value());
  ASSERT_TRUE(Write(other.get(), "/x", "1"));
  EXPECT_FALSE(xs_transaction_end(h, t, false));
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_FALSE(Read(h, "/y").has_value());
  // Retry as clients do.
  t = xs_transaction_start(h);
  ASSERT_NE(t, XBT_NULL);
  EXPECT_EQ(Read(h, "/x", t).value_or("?"), "1");
  ASSERT_TRUE(Write(h, "/y", "in-tx", t));
  ASSERT_TRUE(xs_transaction_end(h, t, false));
  EXPECT_EQ(Read(other.get(), "/y").value_or("?"), "in-tx");
  // Abort.
  t = xs_transaction_start(h);
  ASSERT_TRUE(xs_rm(h, t, "/y"));
  ASSERT_TRUE(xs_transaction_end(h, t, true));
  EXPECT_EQ(Read(h, "/y").value_or("?"), "in-tx");
}

TEST_F(LibXenstoreTest, IntroduceGuestPermissionsAndRelease) {
  xs_handle* h = dom0_.get();
  ASSERT_TRUE(xs_watch(h, "@introduceDomain", "intro"));
  ASSERT_TRUE(xs_watch(h, "@releaseDomain", "rel"));
  ASSERT_TRUE(xs_watch(h, "/local/domain/5", "dom5"));
  EXPECT_FALSE(xs_is_domain_introduced(h, 5));
  EXPECT_TRUE(xs_is_domain_introduced(h, 0));

  // The toolstack's part.
  ASSERT_TRUE(xs_mkdir(h, XBT_NULL, "/local/domain/5"));
  xs_permissions own5[1] = {{5, XS_PERM_NONE}};
  ASSERT_TRUE(xs_set_permissions(h, XBT_NULL, "/local/domain/5", own5, 1));
  ASSERT_TRUE(Write(h, "/local/domain/5/name", "guest"));
  ASSERT_TRUE(Write(h, "/local/domain/0/private", "dom0 only"));
  ASSERT_TRUE(xs_introduce_domain(h, 5, 0x1234, 7));
  EXPECT_TRUE(AwaitEvent(h, {"@introduceDomain", "intro"}));
  EXPECT_TRUE(xs_is_domain_introduced(h, 5));
  const std::string guest_socket = server_->DomainSocketPath(5);
  EXPECT_EQ(guest_socket, dir_.path() + "/domains/5/xenstored.sock");
  struct stat st;
  ASSERT_EQ(stat(guest_socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));

  // The guest: relative paths, owns what it creates, sees only its own.
  Xs guest = OpenAt(guest_socket);
  ASSERT_NE(guest, nullptr);
  EXPECT_EQ(Read(guest.get(), "name").value_or("?"), "guest");
  ASSERT_TRUE(Write(guest.get(), "device/console/1/ring-ref", "8"));
  unsigned int num = 0;
  xs_permissions* got =
      xs_get_permissions(h, XBT_NULL, "/local/domain/5/device/console/1/ring-ref", &num);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got[0].id, 5u);
  free(got);
  EXPECT_FALSE(Read(guest.get(), "/local/domain/0/private").has_value());
  EXPECT_EQ(errno, EACCES);
  EXPECT_FALSE(Write(guest.get(), "/tool/evil", "1"));
  EXPECT_EQ(errno, EACCES);
  EXPECT_FALSE(xs_introduce_domain(guest.get(), 6, 1, 1));
  EXPECT_EQ(errno, EACCES);
  xs_permissions steal[1] = {{0, XS_PERM_NONE}};
  EXPECT_FALSE(xs_set_permissions(guest.get(), XBT_NULL, "name", steal, 1));
  ASSERT_TRUE(xs_watch(guest.get(), "device", "dev"));
  EXPECT_EQ(NextEvent(guest.get()), Event("device", "dev"));
  ASSERT_TRUE(Write(h, "/local/domain/5/device/console/1/state", "4"));
  EXPECT_EQ(NextEvent(guest.get()), Event("device/console/1/state", "dev"));
  // A guest transaction.
  xs_transaction_t t = xs_transaction_start(guest.get());
  ASSERT_NE(t, XBT_NULL);
  ASSERT_TRUE(Write(guest.get(), "device/console/1/port", "3", t));
  ASSERT_TRUE(Write(guest.get(), "device/console/1/state", "3", t));
  ASSERT_TRUE(xs_transaction_end(guest.get(), t, false));
  EXPECT_EQ(Read(h, "/local/domain/5/device/console/1/port").value_or("?"), "3");

  // Release: the guest's nodes, connections and socket go.
  ASSERT_TRUE(xs_release_domain(h, 5));
  EXPECT_TRUE(AwaitEvent(h, {"@releaseDomain", "rel"}));
  EXPECT_FALSE(xs_is_domain_introduced(h, 5));
  EXPECT_FALSE(Read(h, "/local/domain/5/name").has_value());
  EXPECT_EQ(Directory(h, "/local/domain"), std::vector<std::string>({"0"}));
  EXPECT_EQ(Read(h, "/local/domain/0/private").value_or("?"), "dom0 only");
  EXPECT_NE(stat(guest_socket.c_str(), &st), 0);
  EXPECT_FALSE(Read(guest.get(), "name").has_value());
  EXPECT_EQ(server_->GetStats().domain_sockets, 0u);
  EXPECT_FALSE(xs_release_domain(h, 5));
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(LibXenstoreTest, InspectSeesTheTree) {
  ASSERT_TRUE(Write(dom0_.get(), "/seen", "yes"));
  std::string value;
  server_->Inspect([&](const Store& store) {
    const Node* n = store.Find("/seen");
    if (n != nullptr) value = n->data;
  });
  EXPECT_EQ(value, "yes");
}

TEST(XenstoreServerTest, CreateValidatesOptions) {
  XenstoreServer::Options none;
  EXPECT_EQ(XenstoreServer::Create(none).status().code(), absl::StatusCode::kInvalidArgument);
  XenstoreServer::Options too_long;
  too_long.socket_path = "/tmp/" + std::string(200, 'x');
  too_long.state_dir = "/tmp";
  EXPECT_EQ(XenstoreServer::Create(too_long).status().code(), absl::StatusCode::kInvalidArgument);
  ShortTempDir dir;
  XenstoreServer::Options file;
  file.socket_path = dir.path() + "/regular";
  file.state_dir = dir.path();
  FILE* f = fopen(file.socket_path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  EXPECT_EQ(XenstoreServer::Create(file).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(XenstoreServerTest, DestructorRemovesSockets) {
  ShortTempDir dir;
  std::string dom0_socket, guest_socket;
  {
    auto server = testing::StartServer(dir.path());
    ASSERT_NE(server, nullptr);
    dom0_socket = server->socket_path();
    guest_socket = server->DomainSocketPath(9);
    Xs h = OpenAt(dom0_socket);
    ASSERT_TRUE(xs_introduce_domain(h.get(), 9, 1, 1));
    struct stat st;
    EXPECT_EQ(stat(guest_socket.c_str(), &st), 0);
  }
  struct stat st;
  EXPECT_NE(stat(dom0_socket.c_str(), &st), 0);
  EXPECT_NE(stat(guest_socket.c_str(), &st), 0);
}

}  // namespace
}  // namespace xenchan::sim::xenstore
