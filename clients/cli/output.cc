// xenchanctl's output formatting (output.h).
#include "clients/cli/output.h"

#include <cstdio>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "clients/cli/usage.h"
#include "clients/lib/client.h"
#include "google/protobuf/util/json_util.h"

namespace xenchan {
namespace cli {

int Output::Usage(const std::string& why) const {
  std::fprintf(stderr, "xenchanctl: %s\n(see xenchanctl --help)\n", why.c_str());
  return kUsageError;
}

int Output::Fail(const absl::Status& s) const {
  const std::string reason = client::ReasonOf(s);
  if (json_) {
    google::rpc::Status rpc = client::RpcStatusOf(s);
    std::string out;
    google::protobuf::util::JsonPrintOptions o;
    if (!google::protobuf::util::MessageToJsonString(rpc, &out, o).ok()) {
      out = absl::StrCat("{\"code\":", static_cast<int>(s.code()), "}");
    }
    std::fprintf(stderr, "%s\n", out.c_str());
  } else {
    std::fprintf(stderr, "xenchanctl: %s%s%s: %s\n", absl::StatusCodeToString(s.code()).c_str(),
                 reason.empty() ? "" : " ", reason.c_str(), std::string(s.message()).c_str());
    if (auto holder = client::DetailOf<v1::LeaseHolder>(s)) {
      std::fprintf(stderr, "  lease held by session %s (%s)\n", holder->session_id().c_str(),
                   holder->identity().c_str());
    }
    if (auto range = client::DetailOf<v1::RetainedRange>(s)) {
      std::fprintf(stderr, "  retained from %llu:%llu to %llu:%llu\n",
                   static_cast<unsigned long long>(range->earliest_position().epoch()),
                   static_cast<unsigned long long>(range->earliest_position().offset()),
                   static_cast<unsigned long long>(range->next_position().epoch()),
                   static_cast<unsigned long long>(range->next_position().offset()));
    }
    if (auto partial = client::DetailOf<v1::PartialResponse>(s)) {
      if (!partial->response().empty()) {
        std::fprintf(stderr, "  partial response: %s\n", partial->response().c_str());
      }
    }
  }
  return ExitCodeOf(s.code());
}

void Output::PrintJson(const google::protobuf::Message& m) const {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  std::printf("%s\n", out.c_str());
  std::fflush(stdout);
}

std::string Output::Short(int value, const std::string& full, const std::string& prefix) {
  std::string s = full;
  if (absl::StartsWith(s, prefix)) s = s.substr(prefix.size());
  (void)value;
  return absl::AsciiStrToLower(s);
}

std::string Output::State(v1::ChannelState s) {
  return Short(s, v1::ChannelState_Name(s), "CHANNEL_STATE_");
}

std::string Output::Lifetime(v1::ChannelLifetime l) {
  return Short(l, v1::ChannelLifetime_Name(l), "CHANNEL_LIFETIME_");
}

std::string Output::ReasonSuffix(v1::EpochChangeReason r) {
  if (r == v1::EPOCH_CHANGE_REASON_UNSPECIFIED) return "";
  return " (" + Short(r, v1::EpochChangeReason_Name(r), "EPOCH_CHANGE_REASON_") + ")";
}

void Output::PrintChannelRow(const v1::Channel& c) const {
  std::printf("%-36s %-32s %-5u %-18s %-8llu %-16s %s\n", c.domain_uuid().c_str(),
              c.channel_id().c_str(), c.devid(), State(c.state()).c_str(),
              static_cast<unsigned long long>(c.epoch()),
              Short(c.transport(), v1::Transport_Name(c.transport()), "TRANSPORT_").c_str(),
              Lifetime(c.config().lifetime()).c_str());
}

void Output::PrintChannel(const v1::Channel& c) const {
  if (json_) return PrintJson(c);
  std::printf("name:        %s\n", c.name().c_str());
  std::printf("uid:         %s\n", c.uid().c_str());
  std::printf("domid:       %u  devid: %u\n", c.domid(), c.devid());
  std::printf("transport:   %s\n",
              Short(c.transport(), v1::Transport_Name(c.transport()), "TRANSPORT_").c_str());
  std::printf("lifetime:    %s\n", Lifetime(c.config().lifetime()).c_str());
  std::printf("state:       %s (frontend %d, backend %d)\n", State(c.state()).c_str(),
              c.frontend_state(), c.backend_state());
  std::printf("epoch:       %llu\n", static_cast<unsigned long long>(c.epoch()));
  std::printf("from guest:  %llu:%llu..%llu:%llu buffered %llu unread %llu%s\n",
              static_cast<unsigned long long>(c.from_guest().earliest_position().epoch()),
              static_cast<unsigned long long>(c.from_guest().earliest_position().offset()),
              static_cast<unsigned long long>(c.from_guest().next_position().epoch()),
              static_cast<unsigned long long>(c.from_guest().next_position().offset()),
              static_cast<unsigned long long>(c.from_guest().buffered_bytes()),
              static_cast<unsigned long long>(c.from_guest().unread_bytes()),
              c.stalled() ? " STALLED" : "");
  std::printf("to guest:    accepted %llu delivered %llu consumed %llu\n",
              static_cast<unsigned long long>(c.to_guest().accepted_offset()),
              static_cast<unsigned long long>(c.to_guest().delivered_offset()),
              static_cast<unsigned long long>(c.to_guest().consumed_offset()));
  if (c.has_write_lease()) {
    std::printf("write lease: %s (%s)\n", c.write_lease().session_id().c_str(),
                c.write_lease().identity().c_str());
  }
  std::printf("observers:   %u\n", c.observer_count());
  if (c.has_last_error()) std::printf("last error:  %s\n", c.last_error().message().c_str());
}

void Output::PrintChannelHeader() const {
  std::printf("%-36s %-32s %-5s %-18s %-8s %-16s %s\n", "DOMAIN", "CHANNEL", "DEVID", "STATE",
              "EPOCH", "TRANSPORT", "LIFETIME");
}

void Output::PrintDomainHeader() const {
  std::printf("%-36s %-24s %-6s %-11s %s\n", "UUID", "NAME", "DOMID", "STATE", "CHANNELS");
}

void Output::PrintDomainRow(const v1::Domain& d) const {
  std::printf("%-36s %-24s %-6u %-11s %u\n", d.uuid().c_str(), d.display_name().c_str(), d.domid(),
              Short(d.state(), v1::DomainState_Name(d.state()), "DOMAIN_STATE_").c_str(),
              d.channel_count());
}

void Output::PrintDomain(const v1::Domain& d) const {
  if (json_) return PrintJson(d);
  std::printf(
      "name:     %s\nuuid:     %s\ndisplay:  %s\ndomid:    %u\nstate:    %s\nchannels: %u\n",
      d.name().c_str(), d.uuid().c_str(), d.display_name().c_str(), d.domid(),
      Short(d.state(), v1::DomainState_Name(d.state()), "DOMAIN_STATE_").c_str(),
      d.channel_count());
}

}  // namespace cli
}  // namespace xenchan
