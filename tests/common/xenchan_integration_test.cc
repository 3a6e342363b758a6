// The base fixture of the xensim + xenchand integration tests (see the
// header).
#include "tests/common/xenchan_integration_test.h"

#include <unistd.h>

#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tests/common/io.h"

namespace xenchan {
namespace testcommon {

void XenchanIntegrationTest::TearDown() {
  for (int fd : ttys_) close(fd);
  ttys_.clear();
  client_.reset();
  if (server_ == nullptr) return;
  const int code = server_->Stop();
  if (expect_clean_stop_) {
    EXPECT_EQ(code, 0);
  }
  if (HasFailure()) {
    const std::string log = server_->log();
    if (log_tail_bytes_ > 0 && log.size() > log_tail_bytes_) {
      std::cerr << "xenchand log (tail):\n" << log.substr(log.size() - log_tail_bytes_);
    } else {
      std::cerr << "xenchand log:\n" << log;
    }
  }
}

void XenchanIntegrationTest::StartXensim(const std::vector<std::string>& domains) {
  auto sim = simtest::XensimProcess::Start();
  ASSERT_TRUE(sim.ok()) << sim.status();
  sim_ = *std::move(sim);
  for (const std::string& d : domains) {
    auto domid = sim_->CreateDomain(d);
    ASSERT_TRUE(domid.ok()) << domid.status();
  }
}

void XenchanIntegrationTest::StartServer(const std::vector<std::string>& extra_args,
                                         const std::string& tcp_listen,
                                         const client::ConnectOptions& options,
                                         const std::string& socket_name) {
  ASSERT_NE(sim_, nullptr) << "StartXensim first";
  auto server = servertest::XenchandProcess::Start(
      sim_->state_dir(), sim_->scratch_dir() + "/" + socket_name, extra_args, tcp_listen);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  client_ = Connect(server_->unix_target(), options);
  ASSERT_NE(client_, nullptr);
}

void XenchanIntegrationTest::StopServer() {
  client_.reset();
  if (server_ == nullptr) return;
  EXPECT_EQ(server_->Stop(), 0) << server_->log();
  server_.reset();
}

std::unique_ptr<client::Client> XenchanIntegrationTest::Connect(
    const std::string& target, const client::ConnectOptions& options) {
  auto c = client::Client::Connect(target, options);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : nullptr;
}

std::string XenchanIntegrationTest::ChannelName(const std::string& domain, const std::string& id) {
  return absl::StrCat("domains/", domain, "/channels/", id);
}

std::string XenchanIntegrationTest::TtyPath(const std::string& domain,
                                            const std::string& id) const {
  return sim_->guest_root(domain) + "/dev/xen-channel/" + id;
}

int XenchanIntegrationTest::OpenTty(const std::string& domain, const std::string& id) {
  const int fd = OpenGuestTty(TtyPath(domain, id));
  EXPECT_GE(fd, 0) << TtyPath(domain, id);
  if (fd >= 0) ttys_.push_back(fd);
  return fd;
}

v1::Channel XenchanIntegrationTest::CreateConnectedChannel(const std::string& domain,
                                                           const std::string& id,
                                                           const v1::ChannelConfig& config,
                                                           client::Client* via) {
  v1::CreateChannelRequest req;
  req.set_parent("domains/" + domain);
  req.set_channel_id(id);
  *req.mutable_config() = config;
  req.set_wait_until_connected(true);
  req.mutable_connect_timeout()->set_seconds(20);
  client::Client& c = via != nullptr ? *via : *client_;
  auto ch = c.CreateChannel(req, absl::Seconds(30));
  EXPECT_TRUE(ch.ok()) << ChannelName(domain, id) << ": " << ch.status();
  if (!ch.ok()) return {};
  EXPECT_EQ(ch->state(), v1::CHANNEL_STATE_CONNECTED) << ch->DebugString();
  return *ch;
}

v1::AttachRequest XenchanIntegrationTest::AttachOpenRequest(const std::string& channel,
                                                            v1::SessionRole role,
                                                            v1::StartAnchor anchor) {
  v1::AttachRequest open;
  open.mutable_open()->set_channel(channel);
  open.mutable_open()->set_role(role);
  if (anchor != v1::START_ANCHOR_UNSPECIFIED)
    open.mutable_open()->mutable_start()->set_anchor(anchor);
  return open;
}

std::unique_ptr<client::AttachStream> XenchanIntegrationTest::OpenAttach(
    const v1::AttachRequest& open, v1::AttachResponse* opened, client::Client* via) {
  client::Client& c = via != nullptr ? *via : *client_;
  std::unique_ptr<client::AttachStream> stream = c.Attach();
  v1::AttachResponse first;
  if (!stream->Send(open) || !stream->Receive(&first)) {
    ADD_FAILURE() << "Attach " << open.open().channel() << " ended: " << stream->Finish();
    return nullptr;
  }
  EXPECT_TRUE(first.has_opened()) << first.DebugString();
  if (!first.has_opened()) return nullptr;
  if (opened != nullptr) *opened = std::move(first);
  return stream;
}

}  // namespace testcommon
}  // namespace xenchan
