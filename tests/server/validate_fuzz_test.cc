// Fuzz target: request validation (server/validate.h) over arbitrary bytes.
// The first byte picks the request type, the rest is parsed as that message
// (inputs that do not parse are still useful: they exercise the parser).
// Properties checked: no crash, and every refusal is INVALID_ARGUMENT with a
// stable ErrorInfo reason (what the API promises for malformed requests).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "server/status.h"
#include "server/validate.h"

namespace {

using xenchan::server::ReasonOf;
namespace v1 = xenchan::v1;

void Check(const absl::Status& s) {
  if (s.ok()) return;
  if (s.code() != absl::StatusCode::kInvalidArgument ||
      ReasonOf(s) == v1::ERROR_REASON_UNSPECIFIED) {
    std::abort();
  }
}

template <class M, class F>
void Run(const uint8_t* data, size_t size, F validate) {
  M message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) return;
  Check(validate(message));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace xenchan::server;  // NOLINT: the validators
  if (size == 0) return 0;
  const uint8_t kind = data[0] % 12;
  ++data;
  --size;
  switch (kind) {
    case 0:
      Run<v1::ListDomainsRequest>(data, size, [](auto& m) { return ValidateRequest(m); });
      break;
    case 1:
      Run<v1::GetDomainRequest>(data, size, [](auto& m) { return ValidateRequest(m); });
      break;
    case 2:
      Run<v1::ListChannelsRequest>(data, size, [](auto& m) { return ValidateRequest(m); });
      break;
    case 3:
      Run<v1::GetChannelRequest>(data, size, [](auto& m) { return ValidateRequest(m); });
      break;
    case 4:
      Run<v1::CreateChannelRequest>(data, size, [](auto& m) { return ValidateRequest(m); });
      break;
    case 5:
      Run<v1::DeleteChannelRequest>(data, size, [](auto& m) { return ValidateRequest(m); });
      break;
    case 6:
      Run<v1::WatchChannelsRequest>(data, size, [](auto& m) { return ValidateRequest(m); });
      break;
    case 7:
      Run<v1::ReadRequest>(data, size, [](auto& m) { return ValidateRequest(m); });
      break;
    case 8:
      Run<v1::CallRequest>(data, size, [](auto& m) { return ValidateRequest(m); });
      break;
    case 9:
      Run<v1::AttachOpen>(data, size, [](auto& m) { return ValidateAttachOpen(m); });
      break;
    case 10:
      Run<v1::WriteRequest>(data, size, [](auto& m) { return ValidateWriteMessage(m, true); });
      break;
    default:
      Run<v1::WriteRequest>(data, size, [](auto& m) { return ValidateWriteMessage(m, false); });
      break;
  }
  return 0;
}
