// xenchanctl's output: human tables and key/value views of channels and
// domains on stdout, or one JSON object per line (`--output json`); errors
// and usage errors on stderr, mapped to the exit codes of usage.h.
#ifndef XENCHAN_CLIENTS_CLI_OUTPUT_H_
#define XENCHAN_CLIENTS_CLI_OUTPUT_H_

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "xenchan/v1/channel_service.pb.h"

namespace xenchan {
namespace cli {

// Writes to the process's stdout and stderr in the chosen format.
//
// Thread safety: stateless past construction; its methods may be called
// from several threads (stdio serialises each call).
class Output {
 public:
  explicit Output(bool json) : json_(json) {}

  bool json() const { return json_; }

  // Reports a usage error on stderr; returns kUsageError.
  int Usage(const std::string& why) const;
  // Reports `s` on stderr (human or JSON) and returns its exit code.
  int Fail(const absl::Status& s) const;

  // `m` as one line of JSON (proto field names) on stdout, flushed.
  void PrintJson(const google::protobuf::Message& m) const;

  // A channel as key/value lines (human) or JSON.
  void PrintChannel(const v1::Channel& c) const;
  // The header and one row of the human channel table.
  void PrintChannelHeader() const;
  void PrintChannelRow(const v1::Channel& c) const;
  // The header and one row of the human domain table.
  void PrintDomainHeader() const;
  void PrintDomainRow(const v1::Domain& d) const;
  // A domain as key/value lines (human) or JSON.
  void PrintDomain(const v1::Domain& d) const;

  // An enum value's name without its prefix, in lower case
  // ("CHANNEL_STATE_CONNECTED" -> "connected").
  static std::string Short(int value, const std::string& full, const std::string& prefix);
  static std::string State(v1::ChannelState s);
  // "incarnation" or "durable".
  static std::string Lifetime(v1::ChannelLifetime l);
  // " (domain_rebooted)" and the like, or "" for an unspecified reason: the
  // suffix of the epoch change notices of read and attach.
  static std::string ReasonSuffix(v1::EpochChangeReason r);

 private:
  const bool json_;
};

}  // namespace cli
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_CLI_OUTPUT_H_
