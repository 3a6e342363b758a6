// The engine's xenstore watch tokens (see the header).
#include "backend/engine/watch_tokens.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace xenchan {
namespace {

constexpr absl::string_view kDomainNamePrefix = "name/";
constexpr absl::string_view kDomainShutdownPrefix = "shutdown/";
constexpr absl::string_view kToolstackChannelPrefix = "ts/";
constexpr absl::string_view kRingFrontendPrefix = "fe/";

}  // namespace

std::string DomainNameWatchToken(uint32_t domid) { return absl::StrCat(kDomainNamePrefix, domid); }

std::string DomainShutdownWatchToken(uint32_t domid) {
  return absl::StrCat(kDomainShutdownPrefix, domid);
}

std::string ToolstackChannelWatchToken(uint64_t serial) {
  return absl::StrCat(kToolstackChannelPrefix, serial);
}

std::string RingFrontendWatchToken(uint64_t serial) {
  return absl::StrCat(kRingFrontendPrefix, serial);
}

WatchTarget ParseWatchToken(absl::string_view token) {
  using Kind = WatchTarget::Kind;
  WatchTarget target;
  if (token == kIntroduceDomainToken) {
    target.kind = Kind::kIntroduceDomain;
  } else if (token == kReleaseDomainToken) {
    target.kind = Kind::kReleaseDomain;
  } else if (token == kToolstackBackendsToken) {
    target.kind = Kind::kToolstackBackends;
  } else if (absl::ConsumePrefix(&token, kToolstackChannelPrefix)) {
    if (absl::SimpleAtoi(token, &target.id)) target.kind = Kind::kToolstackChannel;
  } else if (absl::ConsumePrefix(&token, kRingFrontendPrefix)) {
    if (absl::SimpleAtoi(token, &target.id)) target.kind = Kind::kRingFrontend;
  } else if (absl::ConsumePrefix(&token, kDomainNamePrefix)) {
    uint32_t domid;
    if (absl::SimpleAtoi(token, &domid)) {
      target.kind = Kind::kDomainName;
      target.id = domid;
    }
  } else if (absl::ConsumePrefix(&token, kDomainShutdownPrefix)) {
    uint32_t domid;
    if (absl::SimpleAtoi(token, &domid)) {
      target.kind = Kind::kDomainShutdown;
      target.id = domid;
    }
  }
  return target;
}

}  // namespace xenchan
