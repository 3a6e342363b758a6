// Integration tests: misbehaving raw-socket clients against the simulated
// xenstored. The server must answer with errors or close the offender, keep
// memory bounded, and keep serving everyone else.
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <xen/io/xs_wire.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/sim/xenstore/server.h"
#include "backend/sim/xenstore/wire.h"
#include "gtest/gtest.h"
#include "tests/sim/xenstore/test_util.h"

namespace xenchan::sim::xenstore {
namespace {

using testing::RawClient;
using testing::ShortTempDir;

std::string Z(absl::string_view s) { return absl::StrCat(s, std::string(1, '\0')); }

std::string ErrName(const Message& m) {
  return m.type == XS_ERROR ? std::string(OneArg(m.payload).value_or("?")) : "";
}

class HostileTest : public ::testing::Test {
 protected:
  void Start(XenstoreServer::Options options = {}) {
    server_ = testing::StartServer(dir_.path(), std::move(options));
    ASSERT_NE(server_, nullptr);
  }
  void SetUp() override { Start(); }

  // A fresh client still gets a correct answer.
  void ExpectServing() {
    RawClient c(server_->socket_path());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.Send(XS_DIRECTORY, Z("/tool"), 77));
    std::optional<Message> reply = c.Receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->type, uint32_t{XS_DIRECTORY});
    EXPECT_EQ(reply->req_id, 77u);
    EXPECT_EQ(reply->payload, Z("xenstored"));
  }

  // Waits (bounded) until the server has exactly `n` open connections.
  bool AwaitConnections(size_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (server_->GetStats().connections == n) return true;
    }
    return false;
  }

  ShortTempDir dir_;
  std::unique_ptr<XenstoreServer> server_;
};

TEST_F(HostileTest, OversizedLengthClosesTheConnection) {
  RawClient c(server_->socket_path());
  ASSERT_TRUE(c.connected());
  xsd_sockmsg hdr{XS_WRITE, 1, 0, 4097};
  ASSERT_TRUE(c.SendAll(absl::string_view(reinterpret_cast<const char*>(&hdr), sizeof(hdr))));
  EXPECT_TRUE(c.WaitClosed());
  ExpectServing();
  // Exactly the maximum is fine (and gets a normal answer).
  RawClient ok(server_->socket_path());
  ASSERT_TRUE(ok.Send(XS_WRITE, Z("/big") + std::string(4096 - 5, 'v')));
  std::optional<Message> reply = ok.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->type, uint32_t{XS_WRITE});
}

TEST_F(HostileTest, TruncatedMessagesWaitAndCloseMidMessageIsDropped) {
  RawClient slow(server_->socket_path());
  const std::string frame = EncodeMessage(XS_READ, 5, 0, Z("/tool"));
  ASSERT_TRUE(slow.SendAll(frame.substr(0, 7)));  // Half a header.
  ExpectServing();                                // Nobody is blocked.
  ASSERT_TRUE(slow.SendAll(frame.substr(7, 12)));
  ASSERT_TRUE(slow.SendAll(frame.substr(19)));
  std::optional<Message> reply = slow.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->req_id, 5u);
  EXPECT_EQ(reply->type, uint32_t{XS_READ});

  RawClient quitter(server_->socket_path());
  const std::string big = EncodeMessage(XS_WRITE, 1, 0, Z("/q") + "value");
  ASSERT_TRUE(quitter.SendAll(big.substr(0, big.size() - 3)));
  quitter.Close();
  EXPECT_TRUE(AwaitConnections(1));  // Only `slow` is left.
  ExpectServing();
  RawClient check(server_->socket_path());
  ASSERT_TRUE(check.Send(XS_READ, Z("/q")));
  reply = check.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(ErrName(*reply), "ENOENT");  // The partial write never ran.
}

TEST_F(HostileTest, UnknownTypesAndBadPayloadsGetErrors) {
  RawClient c(server_->socket_path());
  for (uint32_t type : {uint32_t{XS_WATCH_EVENT}, uint32_t{XS_ERROR}, uint32_t{20},
                        uint32_t{XS_TYPE_COUNT}, 1000u, 0xffffffffu}) {
    ASSERT_TRUE(c.Send(type, Z("/"), type));
    std::optional<Message> reply = c.Receive();
    ASSERT_TRUE(reply.has_value()) << type;
    EXPECT_EQ(reply->req_id, type);
    EXPECT_EQ(ErrName(*reply), "ENOSYS") << type;
  }
  struct Case {
    uint32_t type;
    std::string payload;
    std::string err;
  };
  const std::vector<Case> cases = {
      {XS_READ, "/tool", "EINVAL"},      // No NUL.
      {XS_READ, "", "EINVAL"},           // Empty.
      {XS_READ, Z("/a\x01"), "EINVAL"},  // Bad character.
      {XS_WRITE, "/x", "EINVAL"},        // Path not terminated.
      {XS_WATCH, Z("/x"), "EINVAL"},     // No token.
      {XS_SET_PERMS, Z("/tool") + Z("z0"), "EINVAL"},
      {XS_TRANSACTION_END, Z("T"), "ENOENT"},
      {XS_DIRECTORY_PART, Z("/tool"), "EINVAL"},
      {XS_RELEASE, Z("0"), "EINVAL"},
      {XS_INTRODUCE, Z("1") + Z("2"), "EINVAL"},
      {XS_READ, Z("/" + std::string(3100, 'a')), "EINVAL"},
  };
  for (const Case& k : cases) {
    ASSERT_TRUE(c.Send(k.type, k.payload));
    std::optional<Message> reply = c.Receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(ErrName(*reply), k.err) << k.type << " " << k.payload;
  }
  ExpectServing();
}

TEST_F(HostileTest, GarbageNeverKillsTheServer) {
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  auto next = [&seed] {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(seed >> 33);
  };
  // Well-framed random requests, read or not.
  for (int round = 0; round < 4; ++round) {
    RawClient c(server_->socket_path());
    std::string burst;
    for (int i = 0; i < 300; ++i) {
      std::string payload;
      const uint32_t len = next() % 64;
      for (uint32_t j = 0; j < len; ++j) {
        const char alphabet[] = "/ab0@\0-_xT";
        payload.push_back(alphabet[next() % (sizeof(alphabet) - 1)]);
      }
      burst += EncodeMessage(next() % 26, next(), next() % 3, payload);
    }
    ASSERT_TRUE(c.SendAll(burst));
    if (round % 2 == 0) {
      // Read all 300 answers: one per request, in order.
      for (int i = 0; i < 300; ++i) ASSERT_TRUE(c.Receive().has_value()) << i;
    }
  }
  // Unframed noise: closed or answered, never fatal.
  {
    RawClient c(server_->socket_path());
    std::string noise;
    for (int i = 0; i < 8192; ++i) noise.push_back(static_cast<char>(next()));
    c.SendAll(noise);
    c.WaitClosed(absl::Seconds(10));
  }
  ExpectServing();
}

TEST_F(HostileTest, FloodWithoutReadingIsBoundedAndOthersStillServed) {
  RawClient setup(server_->socket_path());
  ASSERT_TRUE(setup.Send(XS_WRITE, Z("/big") + std::string(4000, 'v')));
  ASSERT_TRUE(setup.Receive().has_value());

  RawClient flood(server_->socket_path());
  const std::string frame = EncodeMessage(XS_READ, 9, 0, Z("/big"));
  // Big batches, so that the socket buffer holds many requests.
  std::string batch;
  for (int i = 0; i < 500; ++i) batch += frame;
  size_t sent_bytes = 0;
  for (int i = 0; i < 100000; ++i) {
    const ssize_t n = send(flood.fd(), batch.data(), batch.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN);
      break;
    }
    sent_bytes += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < batch.size()) break;
  }
  size_t sent_frames = sent_bytes / frame.size();
  std::string pending;  // Unsent tail of the last frame.
  if (sent_bytes % frame.size() != 0) {
    pending = frame.substr(sent_bytes % frame.size());
    ++sent_frames;
  }
  ASSERT_GT(sent_frames, 100u);
  std::cout << "flood: " << sent_frames << " requests sent unread\n";
  // The server stopped reading the flooder, yet answers others promptly.
  const absl::Time start = absl::Now();
  ExpectServing();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  XenstoreServer::Stats stats = server_->GetStats();
  const XenstoreServer::Options defaults;
  EXPECT_LE(stats.max_output_queued, defaults.output_soft_limit + kHeaderSize + kPayloadMax);
  EXPECT_LE(stats.max_input_buffered, 16 * 1024 + kHeaderSize + kPayloadMax);

  // Reading resumes it: every request is answered, in order.
  FrameParser parser;
  size_t received = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (received < sent_frames && absl::Now() < deadline) {
    pollfd p{flood.fd(), static_cast<short>(POLLIN | (pending.empty() ? 0 : POLLOUT)), 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    if ((p.revents & POLLOUT) && !pending.empty()) {
      const ssize_t n =
          send(flood.fd(), pending.data(), pending.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) pending.erase(0, n);
    }
    if (p.revents & POLLIN) {
      char buf[65536];
      const ssize_t n = read(flood.fd(), buf, sizeof(buf));
      ASSERT_GT(n, 0);
      parser.Append(absl::string_view(buf, n));
      while (true) {
        auto msg = parser.Next();
        ASSERT_TRUE(msg.ok());
        if (!msg->has_value()) break;
        ASSERT_EQ((*msg)->type, uint32_t{XS_READ});
        ASSERT_EQ((*msg)->payload.size(), 4000u);
        ++received;
      }
    }
  }
  EXPECT_EQ(received, sent_frames);
}

TEST_F(HostileTest, WatcherThatNeverReadsIsDisconnectedAtTheHardLimit) {
  XenstoreServer::Options options;
  options.output_soft_limit = 16 * 1024;
  options.output_hard_limit = 64 * 1024;
  server_.reset();
  Start(options);
  RawClient lazy(server_->socket_path());
  ASSERT_TRUE(lazy.Send(XS_WATCH, Z("/") + Z("all")));
  RawClient writer(server_->socket_path());
  ASSERT_TRUE(AwaitConnections(2));
  const std::string path = "/ev/" + std::string(1500, 'p');
  bool dropped = false;
  int writes = 0;
  for (int i = 0; i < 5000 && !dropped; ++i, ++writes) {
    ASSERT_TRUE(writer.Send(XS_WRITE, Z(path) + absl::StrCat(i)));
    std::optional<Message> reply = writer.Receive();
    ASSERT_TRUE(reply.has_value());
    ASSERT_EQ(reply->type, uint32_t{XS_WRITE});
    if (i % 16 == 0) dropped = server_->GetStats().connections == 1;
  }
  EXPECT_TRUE(dropped);
  std::cout << "lazy watcher dropped after " << writes << " writes\n";
  EXPECT_TRUE(lazy.WaitClosed(absl::Seconds(30)));
  ExpectServing();
}

TEST_F(HostileTest, ConnectionCapRejectsExtraClients) {
  XenstoreServer::Options options;
  options.max_connections = 3;
  server_.reset();
  Start(options);
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<RawClient>(server_->socket_path()));
    ASSERT_TRUE(clients.back()->Send(XS_READ, Z("/")));
    ASSERT_TRUE(clients.back()->Receive().has_value());
  }
  RawClient extra(server_->socket_path());
  EXPECT_TRUE(extra.WaitClosed());
  clients.pop_back();
  ASSERT_TRUE(AwaitConnections(2));
  ExpectServing();
}

}  // namespace
}  // namespace xenchan::sim::xenstore
