// Unit tests of the simulated xenstored's Store: requests in, frames out, no
// sockets.
#include "backend/sim/xenstore/store.h"

#include <errno.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

#include <deque>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/sim/xenstore/wire.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace xenchan::sim::xenstore {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using Event = std::pair<std::string, std::string>;  // path, token

// Collects what the Store sends, split into replies and watch events.
class Recorder : public Store::Delegate {
 public:
  void Send(ConnId conn, std::string frame) override {
    absl::StatusOr<Message> msg = DecodeMessage(frame);
    ASSERT_TRUE(msg.ok()) << msg.status();
    ASSERT_LE(msg->payload.size(), kPayloadMax);
    if (msg->type == XS_WATCH_EVENT) {
      SplitPayload split = SplitStrings(msg->payload);
      ASSERT_EQ(split.strings.size(), 2u);
      ASSERT_TRUE(split.rest.empty());
      events[conn].emplace_back(std::string(split.strings[0]), std::string(split.strings[1]));
    } else {
      replies[conn].push_back(*std::move(msg));
    }
  }
  absl::Status DomainIntroduced(uint32_t domid) override {
    introduced.push_back(domid);
    return introduce_status;
  }
  void DomainReleased(uint32_t domid, const std::vector<ConnId>& conns) override {
    released.emplace_back(domid, conns);
  }

  std::map<ConnId, std::deque<Message>> replies;
  std::map<ConnId, std::deque<Event>> events;
  std::vector<uint32_t> introduced;
  std::vector<std::pair<uint32_t, std::vector<ConnId>>> released;
  absl::Status introduce_status = absl::OkStatus();
};

std::string Z(absl::string_view s) { return absl::StrCat(s, std::string(1, '\0')); }

class StoreTest : public ::testing::Test {
 protected:
  explicit StoreTest(StoreOptions options = StoreOptions()) : store_(options, &rec_) {}

  // Sends a request and returns its one reply.
  Message Call(ConnId conn, uint32_t type, const std::string& payload, uint32_t tx = 0) {
    Message req;
    req.type = type;
    req.req_id = ++req_id_;
    req.tx_id = tx;
    req.payload = payload;
    store_.Handle(conn, req);
    auto& q = rec_.replies[conn];
    EXPECT_EQ(q.size(), 1u) << "type " << type;
    if (q.empty()) return Message{};
    Message reply = std::move(q.front());
    q.clear();
    EXPECT_EQ(reply.req_id, req.req_id);
    EXPECT_EQ(reply.tx_id, req.tx_id);
    return reply;
  }
  // "" on success, else the error name.
  static std::string Err(const Message& m) {
    if (m.type != XS_ERROR) return "";
    return std::string(OneArg(m.payload).value_or("<malformed>"));
  }
  std::string Write(ConnId c, absl::string_view path, absl::string_view data, uint32_t tx = 0) {
    Message m = Call(c, XS_WRITE, absl::StrCat(Z(path), data), tx);
    if (m.type == XS_WRITE) {
      EXPECT_EQ(m.payload, Z("OK"));
    }
    return Err(m);
  }
  // The value, or "!ERRNAME".
  std::string Read(ConnId c, absl::string_view path, uint32_t tx = 0) {
    Message m = Call(c, XS_READ, Z(path), tx);
    if (m.type == XS_ERROR) return "!" + Err(m);
    EXPECT_EQ(m.type, uint32_t{XS_READ});
    return m.payload;
  }
  std::string Simple(ConnId c, uint32_t type, absl::string_view path, uint32_t tx = 0) {
    return Err(Call(c, type, Z(path), tx));
  }
  std::string SetPerms(ConnId c, absl::string_view path, std::vector<std::string> perms,
                       uint32_t tx = 0) {
    std::string payload = Z(path);
    for (const auto& p : perms) payload += Z(p);
    return Err(Call(c, XS_SET_PERMS, payload, tx));
  }
  std::string GetPerms(ConnId c, absl::string_view path) {
    Message m = Call(c, XS_GET_PERMS, Z(path));
    if (m.type == XS_ERROR) return "!" + Err(m);
    return m.payload;
  }
  std::string Watch(ConnId c, absl::string_view path, absl::string_view tok) {
    return Err(Call(c, XS_WATCH, Z(path) + Z(tok)));
  }
  uint32_t TxStart(ConnId c) {
    Message m = Call(c, XS_TRANSACTION_START, Z(""));
    EXPECT_EQ(m.type, uint32_t{XS_TRANSACTION_START}) << Err(m);
    std::optional<absl::string_view> id = OneArg(m.payload);
    EXPECT_TRUE(id.has_value());
    return static_cast<uint32_t>(AtoiLike(id.value_or("0")));
  }
  std::string TxEnd(ConnId c, uint32_t tx, bool commit) {
    return Err(Call(c, XS_TRANSACTION_END, Z(commit ? "T" : "F"), tx));
  }
  std::vector<Event> TakeEvents(ConnId c) {
    auto& q = rec_.events[c];
    std::vector<Event> out(q.begin(), q.end());
    q.clear();
    return out;
  }
  std::string Introduce(ConnId c, uint32_t domid) {
    return Err(Call(c, XS_INTRODUCE, Z(absl::StrCat(domid)) + Z("4660") + Z("7")));
  }
  // Makes /local/domain/<domid> owned by the domain, as a toolstack does.
  void MakeDomainDir(uint32_t domid) {
    const std::string dir = absl::StrCat("/local/domain/", domid);
    ASSERT_EQ(Simple(dom0_, XS_MKDIR, dir), "");
    ASSERT_EQ(SetPerms(dom0_, dir, {absl::StrCat("n", domid)}), "");
  }

  Recorder rec_;
  Store store_;
  uint32_t req_id_ = 0;
  ConnId dom0_ = store_.AddConnection(0, /*privileged=*/true);
};

TEST_F(StoreTest, InitialTreeIsXenstoredsOwn) {
  EXPECT_EQ(Call(dom0_, XS_DIRECTORY, Z("/")).payload, Z("tool"));
  EXPECT_EQ(Call(dom0_, XS_DIRECTORY, Z("/tool")).payload, Z("xenstored"));
  EXPECT_EQ(GetPerms(dom0_, "/"), Z("n0"));
  EXPECT_EQ(store_.node_count(), 3u);
}

TEST_F(StoreTest, WriteCreatesParentsAndReadReturnsRawData) {
  EXPECT_EQ(Write(dom0_, "/a/b/c", std::string("x\0y", 3)), "");
  EXPECT_EQ(Read(dom0_, "/a/b/c"), std::string("x\0y", 3));
  EXPECT_EQ(Read(dom0_, "/a/b"), "");
  EXPECT_EQ(Call(dom0_, XS_DIRECTORY, Z("/a")).payload, Z("b"));
  EXPECT_EQ(Call(dom0_, XS_DIRECTORY, Z("/")).payload, Z("tool") + Z("a"));
  EXPECT_EQ(Read(dom0_, "/nope"), "!ENOENT");
  // Relative paths of the dom0 socket resolve against /local/domain/0.
  EXPECT_EQ(Write(dom0_, "name", "Domain-0"), "");
  EXPECT_EQ(Read(dom0_, "/local/domain/0/name"), "Domain-0");
}

TEST_F(StoreTest, RejectsBadPathsAndMalformedPayloads) {
  for (const char* bad : {"/a//b", "/a/", "/a b", "/a$", "/a.b"}) {
    EXPECT_EQ(Write(dom0_, bad, "1"), "EINVAL") << bad;
    EXPECT_EQ(Read(dom0_, bad), "!EINVAL") << bad;
  }
  EXPECT_EQ(Read(dom0_, "@introduceDomain"), "!EINVAL");
  // Over XENSTORE_REL_PATH_MAX below the domain's directory.
  const std::string longpath = "/local/domain/1/" + std::string(2049, 'x');
  EXPECT_EQ(Write(dom0_, longpath, "1"), "EINVAL");
  EXPECT_EQ(Write(dom0_, longpath.substr(0, longpath.size() - 1), "1"), "");
  // No NUL after the path, two args to a one-arg request.
  EXPECT_EQ(Err(Call(dom0_, XS_WRITE, "/a")), "EINVAL");
  EXPECT_EQ(Err(Call(dom0_, XS_READ, "/tool")), "EINVAL");
  EXPECT_EQ(Err(Call(dom0_, XS_READ, Z("/tool") + Z("/tool"))), "EINVAL");
  EXPECT_EQ(Err(Call(dom0_, XS_WATCH, Z("/tool"))), "EINVAL");
}

TEST_F(StoreTest, UnknownAndReplyOnlyTypesGetEnosys) {
  EXPECT_EQ(Err(Call(dom0_, 999, Z("/"))), "ENOSYS");
  EXPECT_EQ(Err(Call(dom0_, XS_WATCH_EVENT, Z("/") + Z("t"))), "ENOSYS");
  EXPECT_EQ(Err(Call(dom0_, XS_ERROR, Z("EINVAL"))), "ENOSYS");
  EXPECT_EQ(Err(Call(dom0_, XS_INVALID, "")), "ENOSYS");
}

TEST_F(StoreTest, MkdirAndRmSemantics) {
  EXPECT_EQ(Simple(dom0_, XS_MKDIR, "/d/e"), "");
  EXPECT_EQ(Simple(dom0_, XS_MKDIR, "/d/e"), "");  // Existing is fine.
  EXPECT_EQ(Write(dom0_, "/d/e/f", "1"), "");
  EXPECT_EQ(Simple(dom0_, XS_RM, "/d/zz"), "");  // Parent exists: OK.
  EXPECT_EQ(Simple(dom0_, XS_RM, "/q/zz"), "ENOENT");
  EXPECT_EQ(Simple(dom0_, XS_RM, "/"), "EINVAL");
  EXPECT_EQ(Simple(dom0_, XS_RM, "/d"), "");  // Recursive.
  EXPECT_EQ(Read(dom0_, "/d/e/f"), "!ENOENT");
  EXPECT_EQ(Read(dom0_, "/d"), "!ENOENT");
  EXPECT_EQ(Call(dom0_, XS_DIRECTORY, Z("/")).payload, Z("tool"));
  EXPECT_EQ(store_.node_count(), 3u);
}

TEST_F(StoreTest, PermissionsOwnerDefaultAndAcl) {
  MakeDomainDir(5);
  const ConnId d5 = store_.AddConnection(5, false);
  const ConnId d7 = store_.AddConnection(7, false);
  // Unprivileged creator owns what it creates; relative path.
  EXPECT_EQ(Write(d5, "device/x", "v"), "");
  EXPECT_EQ(GetPerms(dom0_, "/local/domain/5/device/x"), Z("n5"));
  EXPECT_EQ(Read(d5, "/local/domain/5/device/x"), "v");
  EXPECT_EQ(Read(d7, "/local/domain/5/device/x"), "!EACCES");
  // A missing node under an unreadable parent does not leak ENOENT.
  EXPECT_EQ(Read(d7, "/local/domain/5/nope"), "!EACCES");
  EXPECT_EQ(Read(d5, "nope"), "!ENOENT");
  // dom0 grants 7 read: 7 reads, cannot write.
  EXPECT_EQ(SetPerms(dom0_, "/local/domain/5/device/x", {"n5", "r7"}), "");
  EXPECT_EQ(Read(d7, "/local/domain/5/device/x"), "v");
  EXPECT_EQ(Write(d7, "/local/domain/5/device/x", "w"), "EACCES");
  EXPECT_EQ(Write(d7, "/local/domain/5/device/y", "w"), "EACCES");
  // Owner's flag is the default for everyone not listed.
  EXPECT_EQ(SetPerms(d5, "device/x", {"r5"}), "");
  const ConnId d9 = store_.AddConnection(9, false);
  EXPECT_EQ(Read(d9, "/local/domain/5/device/x"), "v");
  // Only the owner sets perms, and only privileged callers change owner.
  EXPECT_EQ(SetPerms(d7, "/local/domain/5/device/x", {"b7"}), "EACCES");
  EXPECT_EQ(SetPerms(d5, "device/x", {"n7"}), "EPERM");
  EXPECT_EQ(SetPerms(d5, "device/x", {"n5", "b7"}), "");
  EXPECT_EQ(GetPerms(d5, "device/x"), Z("n5") + Z("b7"));
  EXPECT_EQ(Write(d7, "/local/domain/5/device/x", "w7"), "");
  EXPECT_EQ(Read(d5, "device/x"), "w7");
  // Bad perm strings, too many entries for a guest.
  EXPECT_EQ(SetPerms(d5, "device/x", {"x5"}), "EINVAL");
  EXPECT_EQ(SetPerms(d5, "device/x", {"n5", "r"}), "EINVAL");
  EXPECT_EQ(SetPerms(d5, "device/x", {"n5", "r1", "r2", "r3", "r4", "r6"}), "ENOSPC");
  EXPECT_EQ(SetPerms(dom0_, "/local/domain/5/device/x", {"n5", "r1", "r2", "r3", "r4", "r6"}), "");
  // dom0 ignores perms entirely.
  EXPECT_EQ(SetPerms(dom0_, "/local/domain/5/device/x", {"n5"}), "");
  EXPECT_EQ(Read(dom0_, "/local/domain/5/device/x"), "w7");
}

TEST_F(StoreTest, NewNodesInheritParentPermsWithCreatorAsOwner) {
  EXPECT_EQ(Simple(dom0_, XS_MKDIR, "/p"), "");
  EXPECT_EQ(SetPerms(dom0_, "/p", {"r0", "b3"}), "");
  const ConnId d3 = store_.AddConnection(3, false);
  EXPECT_EQ(Write(d3, "/p/q/r", "1"), "");
  EXPECT_EQ(GetPerms(dom0_, "/p/q"), Z("r3") + Z("b3"));
  EXPECT_EQ(GetPerms(dom0_, "/p/q/r"), Z("r3") + Z("b3"));
  // dom0 creating inside keeps the inherited owner.
  EXPECT_EQ(Write(dom0_, "/p/q/s", "1"), "");
  EXPECT_EQ(GetPerms(dom0_, "/p/q/s"), Z("r3") + Z("b3"));
  EXPECT_EQ(store_.OwnedNodeCount(3), 3);
}

TEST_F(StoreTest, WatchFiresOnRegistrationAndChangesBelow) {
  EXPECT_EQ(Watch(dom0_, "/a", "tok"), "");
  EXPECT_THAT(TakeEvents(dom0_), ElementsAre(Pair("/a", "tok")));
  EXPECT_EQ(Watch(dom0_, "/a", "tok"), "EEXIST");
  EXPECT_EQ(Write(dom0_, "/a/b", "1"), "");
  EXPECT_EQ(Write(dom0_, "/ab", "1"), "");  // Not below /a.
  EXPECT_EQ(Write(dom0_, "/c", "1"), "");
  EXPECT_EQ(SetPerms(dom0_, "/a/b", {"r0"}), "");
  EXPECT_EQ(Simple(dom0_, XS_MKDIR, "/a/b"), "");  // Exists: no event.
  EXPECT_THAT(TakeEvents(dom0_), ElementsAre(Pair("/a/b", "tok"), Pair("/a/b", "tok")));
  EXPECT_EQ(Err(Call(dom0_, XS_UNWATCH, Z("/a") + Z("tok"))), "");
  EXPECT_EQ(Err(Call(dom0_, XS_UNWATCH, Z("/a") + Z("tok"))), "ENOENT");
  EXPECT_EQ(Write(dom0_, "/a/b", "2"), "");
  EXPECT_THAT(TakeEvents(dom0_), IsEmpty());
}

TEST_F(StoreTest, RecursiveRemoveFiresTopAndExactDescendants) {
  EXPECT_EQ(Write(dom0_, "/a/b/c", "1"), "");
  EXPECT_EQ(Watch(dom0_, "/a", "top"), "");
  EXPECT_EQ(Watch(dom0_, "/a/b/c", "leaf"), "");
  EXPECT_EQ(Watch(dom0_, "/", "root"), "");
  TakeEvents(dom0_);
  EXPECT_EQ(Simple(dom0_, XS_RM, "/a"), "");
  std::vector<Event> ev = TakeEvents(dom0_);
  EXPECT_THAT(ev, ElementsAre(Pair("/a/b/c", "leaf"), Pair("/a", "top"), Pair("/a", "root")));
}

TEST_F(StoreTest, WatchEventsRespectReadPermission) {
  MakeDomainDir(5);
  const ConnId d5 = store_.AddConnection(5, false);
  const ConnId d7 = store_.AddConnection(7, false);
  EXPECT_EQ(Watch(d7, "/local/domain/5", "spy"), "");
  EXPECT_EQ(Watch(d5, "/local/domain/5", "own"), "");
  TakeEvents(d7);
  TakeEvents(d5);
  EXPECT_EQ(Write(dom0_, "/local/domain/5/secret", "1"), "");
  EXPECT_THAT(TakeEvents(d7), IsEmpty());
  EXPECT_THAT(TakeEvents(d5), ElementsAre(Pair("/local/domain/5/secret", "own")));
  EXPECT_EQ(SetPerms(dom0_, "/local/domain/5/secret", {"n5", "r7"}), "");
  EXPECT_THAT(TakeEvents(d7), ElementsAre(Pair("/local/domain/5/secret", "spy")));
}

TEST_F(StoreTest, RelativeWatchesGetRelativePaths) {
  MakeDomainDir(5);
  const ConnId d5 = store_.AddConnection(5, false);
  EXPECT_EQ(Watch(d5, "device", "dev"), "");
  EXPECT_THAT(TakeEvents(d5), ElementsAre(Pair("device", "dev")));
  EXPECT_EQ(Write(dom0_, "/local/domain/5/device/console/1/state", "1"), "");
  EXPECT_THAT(TakeEvents(d5), ElementsAre(Pair("device/console/1/state", "dev")));
  EXPECT_EQ(Watch(d5, "/local/domain/5/device", "abs"), "");
  EXPECT_THAT(TakeEvents(d5), ElementsAre(Pair("/local/domain/5/device", "abs")));
  EXPECT_EQ(Err(Call(d5, XS_UNWATCH, Z("device") + Z("dev"))), "");
}

TEST_F(StoreTest, TransactionIsolatesAndFiresOnCommit) {
  const ConnId other = store_.AddConnection(0, true);
  EXPECT_EQ(Watch(other, "/t", "w"), "");
  TakeEvents(other);
  const uint32_t tx = TxStart(dom0_);
  ASSERT_NE(tx, 0u);
  EXPECT_EQ(Write(dom0_, "/t/ring-ref", "8", tx), "");
  EXPECT_EQ(Write(dom0_, "/t/port", "3", tx), "");
  EXPECT_EQ(Read(dom0_, "/t/port", tx), "3");
  EXPECT_EQ(Read(other, "/t/port"), "!ENOENT");
  EXPECT_THAT(TakeEvents(other), IsEmpty());
  EXPECT_EQ(TxEnd(dom0_, tx, true), "");
  EXPECT_EQ(Read(other, "/t/port"), "3");
  EXPECT_THAT(TakeEvents(other), ElementsAre(Pair("/t/ring-ref", "w"), Pair("/t/port", "w")));
  // The id is gone.
  EXPECT_EQ(Read(dom0_, "/t/port", tx), "!ENOENT");
  EXPECT_EQ(TxEnd(dom0_, tx, true), "ENOENT");
}

TEST_F(StoreTest, TransactionConflictGivesEagainAndAppliesNothing) {
  EXPECT_EQ(Write(dom0_, "/x", "0"), "");
  const ConnId other = store_.AddConnection(0, true);
  const uint32_t tx = TxStart(dom0_);
  EXPECT_EQ(Read(dom0_, "/x", tx), "0");
  EXPECT_EQ(Write(other, "/x", "1"), "");  // Outside, after the tx read it.
  EXPECT_EQ(Write(dom0_, "/y", "new", tx), "");
  EXPECT_EQ(TxEnd(dom0_, tx, true), "EAGAIN");
  EXPECT_EQ(Read(dom0_, "/y"), "!ENOENT");
  // Retry succeeds.
  const uint32_t tx2 = TxStart(dom0_);
  EXPECT_EQ(Read(dom0_, "/x", tx2), "1");
  EXPECT_EQ(Write(dom0_, "/y", "new", tx2), "");
  EXPECT_EQ(TxEnd(dom0_, tx2, true), "");
  EXPECT_EQ(Read(dom0_, "/y"), "new");
  // Abort discards.
  const uint32_t tx3 = TxStart(dom0_);
  EXPECT_EQ(Simple(dom0_, XS_RM, "/y", tx3), "");
  EXPECT_EQ(TxEnd(dom0_, tx3, false), "");
  EXPECT_EQ(Read(dom0_, "/y"), "new");
}

TEST_F(StoreTest, TransactionErrors) {
  EXPECT_EQ(Read(dom0_, "/tool", 42), "!ENOENT");  // Unknown tx id.
  const uint32_t tx = TxStart(dom0_);
  EXPECT_EQ(Err(Call(dom0_, XS_TRANSACTION_START, Z(""), tx)), "EBUSY");
  EXPECT_EQ(Err(Call(dom0_, XS_TRANSACTION_END, Z("X"), tx)), "EINVAL");
  EXPECT_EQ(Err(Call(dom0_, XS_TRANSACTION_END, Z("T"))), "ENOENT");
  // A removal inside a transaction fires only at commit.
  EXPECT_EQ(Write(dom0_, "/r/s", "1"), "");
  EXPECT_EQ(Watch(dom0_, "/r", "w"), "");
  TakeEvents(dom0_);
  const uint32_t tx2 = TxStart(dom0_);
  EXPECT_EQ(Simple(dom0_, XS_RM, "/r", tx2), "");
  EXPECT_THAT(TakeEvents(dom0_), IsEmpty());
  EXPECT_EQ(Read(dom0_, "/r/s"), "1");
  EXPECT_EQ(TxEnd(dom0_, tx2, true), "");
  EXPECT_THAT(TakeEvents(dom0_), ElementsAre(Pair("/r", "w")));
  EXPECT_EQ(Read(dom0_, "/r/s"), "!ENOENT");
  EXPECT_EQ(TxEnd(dom0_, tx, false), "");
}

TEST_F(StoreTest, TransactionQuotaForGuests) {
  const ConnId d5 = store_.AddConnection(5, false);
  // xenstored refuses once more than the quota (10) are open.
  for (int i = 0; i < 11; ++i) TxStart(d5);
  EXPECT_EQ(Err(Call(d5, XS_TRANSACTION_START, Z(""))), "ENOSPC");
  EXPECT_EQ(store_.TransactionCount(d5), 11u);
  EXPECT_EQ(Err(Call(d5, XS_RESET_WATCHES, "")), "");
  EXPECT_EQ(store_.TransactionCount(d5), 0u);
  for (int i = 0; i < 20; ++i) TxStart(dom0_);  // dom0 has no quota.
}

class SmallQuotaStoreTest : public StoreTest {
 protected:
  static StoreOptions Small() {
    StoreOptions o;
    o.nodes_per_domain = 5;
    o.watches_per_domain = 3;
    return o;
  }
  SmallQuotaStoreTest() : StoreTest(Small()) {}
};

TEST_F(SmallQuotaStoreTest, NodeWatchAndSizeQuotas) {
  MakeDomainDir(5);  // Owned by 5: counts as one.
  const ConnId d5 = store_.AddConnection(5, false);
  EXPECT_EQ(Write(d5, "a", "1"), "");
  EXPECT_EQ(Write(d5, "b/c", "1"), "");  // Two new nodes.
  EXPECT_EQ(store_.OwnedNodeCount(5), 4);
  EXPECT_EQ(Write(d5, "d/e", "1"), "ENOSPC");  // Would be 6.
  EXPECT_EQ(Read(d5, "d"), "!ENOENT");         // Nothing half-made.
  EXPECT_EQ(Write(d5, "d", "1"), "");
  EXPECT_EQ(Write(d5, "e", "1"), "ENOSPC");
  EXPECT_EQ(Write(dom0_, "/local/domain/5/f", "1"), "");  // dom0 unlimited.
  // ... though what dom0 creates there inherits the owner 5.
  EXPECT_EQ(store_.OwnedNodeCount(5), 6);
  // Node size: 2048 bytes for guests, not for dom0.
  EXPECT_EQ(Write(d5, "a", std::string(2048, 'x')), "ENOSPC");
  EXPECT_EQ(Write(d5, "a", std::string(1000, 'x')), "");
  EXPECT_EQ(Write(dom0_, "/big", std::string(4000, 'x')), "");
  EXPECT_EQ(Read(d5, "a").size(), 1000u);
  // Watches: xenstored refuses once more than the quota are registered.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(Watch(d5, "a", absl::StrCat("t", i)), "");
  }
  EXPECT_EQ(Watch(d5, "a", "t4"), "E2BIG");
  // Transactions count created nodes at commit.
  const uint32_t tx = TxStart(d5);
  EXPECT_EQ(Simple(d5, XS_RM, "d", tx), "");
  EXPECT_EQ(Write(d5, "g", "1", tx), "ENOSPC");
  EXPECT_EQ(Simple(d5, XS_RM, "f", tx), "");
  EXPECT_EQ(Write(d5, "g", "1", tx), "");
  EXPECT_EQ(TxEnd(d5, tx, true), "");
  EXPECT_EQ(store_.OwnedNodeCount(5), 5);
}

TEST_F(StoreTest, DirectoryPartListsLargeDirectories) {
  std::vector<std::string> names;
  for (int i = 0; i < 200; ++i) {
    names.push_back(absl::StrCat("child-with-a-rather-long-name-", i));
    ASSERT_EQ(Write(dom0_, "/big/" + names.back(), "1"), "");
  }
  EXPECT_EQ(Err(Call(dom0_, XS_DIRECTORY, Z("/big"))), "E2BIG");
  // Walk as libxenstore's xs_directory_part() does.
  std::string all;
  std::string gen;
  uint32_t off = 0;
  int parts = 0;
  while (true) {
    Message m = Call(dom0_, XS_DIRECTORY_PART, Z("/big") + Z(absl::StrCat(off)));
    ASSERT_EQ(m.type, uint32_t{XS_DIRECTORY_PART}) << Err(m);
    ASSERT_LE(m.payload.size(), kPayloadMax);
    const std::string g = m.payload.substr(0, m.payload.find('\0'));
    if (parts == 0) gen = g;
    ASSERT_EQ(g, gen);
    const std::string body = m.payload.substr(g.size() + 1);
    all += body;
    off += body.size();
    ++parts;
    ASSERT_LT(parts, 100);
    if (off <= 1 || all[off - 2] == '\0') break;
  }
  EXPECT_GT(parts, 1);
  all.pop_back();  // The final extra NUL.
  EXPECT_EQ(all, JoinWithNuls(names));
  // Offset past the end: just the generation and an empty string.
  Message m = Call(dom0_, XS_DIRECTORY_PART, Z("/big") + Z("999999"));
  EXPECT_EQ(m.payload, Z(gen) + Z(""));
}

TEST_F(StoreTest, IntroduceAndReleaseDomain) {
  EXPECT_EQ(Watch(dom0_, "@introduceDomain", "intro"), "");
  EXPECT_EQ(Watch(dom0_, "@releaseDomain", "rel"), "");
  EXPECT_EQ(Watch(dom0_, "/local/domain/5", "dom5"), "");
  TakeEvents(dom0_);
  EXPECT_EQ(Call(dom0_, XS_IS_DOMAIN_INTRODUCED, Z("5")).payload, Z("F"));
  EXPECT_EQ(Call(dom0_, XS_IS_DOMAIN_INTRODUCED, Z("0")).payload, Z("T"));
  EXPECT_EQ(Err(Call(dom0_, XS_INTRODUCE, Z("5") + Z("1") + Z("0"))),
            "EINVAL");  // Port 0.
  EXPECT_EQ(Introduce(dom0_, 5), "");
  EXPECT_THAT(rec_.introduced, ElementsAre(5u));
  EXPECT_THAT(TakeEvents(dom0_), ElementsAre(Pair("@introduceDomain", "intro")));
  EXPECT_EQ(Introduce(dom0_, 5), "");  // Again: no new socket, no event.
  EXPECT_THAT(rec_.introduced, ElementsAre(5u));
  EXPECT_EQ(Call(dom0_, XS_IS_DOMAIN_INTRODUCED, Z("5")).payload, Z("T"));
  EXPECT_EQ(Call(dom0_, XS_GET_DOMAIN_PATH, Z("5")).payload, Z("/local/domain/5"));

  MakeDomainDir(5);
  const ConnId d5 = store_.AddConnection(5, false);
  EXPECT_EQ(Write(d5, "device/console/1/state", "1"), "");
  EXPECT_EQ(Simple(dom0_, XS_MKDIR, "/shared"), "");
  EXPECT_EQ(SetPerms(dom0_, "/shared", {"n0", "w5"}), "");
  EXPECT_EQ(Write(d5, "/shared/guest-made/x", "1"), "");
  EXPECT_EQ(Write(dom0_, "/shared/dom0-made", "1"), "");
  // Guests may not use the privileged requests.
  EXPECT_EQ(Err(Call(d5, XS_INTRODUCE, Z("6") + Z("1") + Z("1"))), "EACCES");
  EXPECT_EQ(Err(Call(d5, XS_RELEASE, Z("5"))), "EACCES");
  EXPECT_EQ(Err(Call(d5, XS_IS_DOMAIN_INTRODUCED, Z("5"))), "EACCES");
  EXPECT_EQ(Err(Call(d5, XS_CONTROL, Z("help"))), "EACCES");
  // Guests see @releaseDomain only when dom0 lets them.
  EXPECT_EQ(Watch(d5, "@releaseDomain", "r5"), "");
  const ConnId d6 = store_.AddConnection(6, false);
  EXPECT_EQ(Introduce(dom0_, 6), "");
  EXPECT_EQ(Watch(d6, "@releaseDomain", "r6"), "");
  EXPECT_EQ(SetPerms(dom0_, "@releaseDomain", {"n0", "r6"}), "");
  TakeEvents(dom0_);
  TakeEvents(d6);

  EXPECT_EQ(Err(Call(dom0_, XS_RELEASE, Z("0"))), "EINVAL");
  EXPECT_EQ(Err(Call(dom0_, XS_RELEASE, Z("9"))), "ENOENT");
  EXPECT_EQ(Err(Call(dom0_, XS_RELEASE, Z("5"))), "");
  ASSERT_EQ(rec_.released.size(), 1u);
  EXPECT_EQ(rec_.released[0].first, 5u);
  EXPECT_THAT(rec_.released[0].second, ElementsAre(d5));
  EXPECT_EQ(store_.WatchCount(d5), 0u);
  EXPECT_EQ(Read(dom0_, "/local/domain/5"), "!ENOENT");
  EXPECT_EQ(Read(dom0_, "/shared/guest-made"), "!ENOENT");
  EXPECT_EQ(Read(dom0_, "/shared/dom0-made"), "1");
  EXPECT_EQ(store_.OwnedNodeCount(5), 0);
  std::vector<Event> ev = TakeEvents(dom0_);
  EXPECT_THAT(ev, ::testing::Contains(Pair("/local/domain/5", "dom5")));
  EXPECT_EQ(ev.back(), Event("@releaseDomain", "rel"));
  EXPECT_THAT(TakeEvents(d6), ElementsAre(Pair("@releaseDomain", "r6")));
  EXPECT_EQ(Call(dom0_, XS_IS_DOMAIN_INTRODUCED, Z("5")).payload, Z("F"));
  // A released domain can be introduced again.
  rec_.introduce_status = absl::InternalError("no socket");
  EXPECT_EQ(Introduce(dom0_, 5), "EIO");
  EXPECT_EQ(Call(dom0_, XS_IS_DOMAIN_INTRODUCED, Z("5")).payload, Z("F"));
  rec_.introduce_status = absl::OkStatus();
  EXPECT_EQ(Introduce(dom0_, 5), "");
  EXPECT_EQ(Err(Call(dom0_, XS_RESUME, Z("5"))), "");
  EXPECT_EQ(Err(Call(dom0_, XS_RESUME, Z("8"))), "ENOENT");
}

TEST_F(StoreTest, ReleasedDomainsPermsDoNotPassToAReusedDomid) {
  EXPECT_EQ(Write(dom0_, "/x", "1"), "");
  EXPECT_EQ(SetPerms(dom0_, "/x", {"n0", "r6"}), "");
  EXPECT_EQ(Introduce(dom0_, 6), "");
  const ConnId old6 = store_.AddConnection(6, false);
  EXPECT_EQ(Read(old6, "/x"), "1");
  EXPECT_EQ(Err(Call(dom0_, XS_RELEASE, Z("6"))), "");
  EXPECT_EQ(Introduce(dom0_, 6), "");
  const ConnId new6 = store_.AddConnection(6, false);
  EXPECT_EQ(Read(new6, "/x"), "!EACCES");
  EXPECT_EQ(GetPerms(dom0_, "/x"), Z("n0") + Z("r6"));  // Still listed.
  EXPECT_EQ(SetPerms(dom0_, "/x", {"n0", "r6"}), "");   // Granted afresh.
  EXPECT_EQ(Read(new6, "/x"), "1");
}

TEST_F(StoreTest, SetTargetGivesOwnerRightsOfTarget) {
  MakeDomainDir(5);
  EXPECT_EQ(Write(dom0_, "/local/domain/5/x", "1"), "");
  const ConnId d8 = store_.AddConnection(8, false);
  EXPECT_EQ(Read(d8, "/local/domain/5/x"), "!EACCES");
  EXPECT_EQ(Err(Call(dom0_, XS_SET_TARGET, Z("8") + Z("5"))), "ENOENT");
  EXPECT_EQ(Introduce(dom0_, 5), "");
  EXPECT_EQ(Introduce(dom0_, 8), "");
  EXPECT_EQ(Err(Call(dom0_, XS_SET_TARGET, Z("8") + Z("5"))), "");
  EXPECT_EQ(Read(d8, "/local/domain/5/x"), "1");
}

TEST_F(StoreTest, ControlAnswersHelpAndRejectsUnknown) {
  Message help = Call(dom0_, XS_CONTROL, Z("help"));
  EXPECT_EQ(help.type, uint32_t{XS_CONTROL});
  EXPECT_EQ(Err(Call(dom0_, XS_CONTROL, Z("live-update"))), "EINVAL");
  EXPECT_EQ(Err(Call(dom0_, XS_CONTROL, "")), "EINVAL");
}

TEST_F(StoreTest, RemovedConnectionGetsNothing) {
  const ConnId c = store_.AddConnection(0, true);
  EXPECT_EQ(Watch(c, "/", "all"), "");
  store_.RemoveConnection(c);
  store_.RemoveConnection(c);
  rec_.events.clear();
  EXPECT_EQ(Write(dom0_, "/z", "1"), "");
  EXPECT_TRUE(rec_.events[c].empty());
  Message req;
  req.type = XS_READ;
  req.payload = Z("/z");
  store_.Handle(c, req);
  EXPECT_TRUE(rec_.replies[c].empty());
}

}  // namespace
}  // namespace xenchan::sim::xenstore
