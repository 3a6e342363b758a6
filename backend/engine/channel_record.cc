// Recording a ring channel's settings in its backend directory (see the
// header).
#include "backend/engine/channel_record.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "backend/engine/names.h"
#include "backend/engine/xenstore_layout.h"
#include "backend/util/api_limits.h"

namespace xenchan {

std::vector<XsNode> ChannelConfigNodes(const ChannelConfig& config) {
  const OverflowPolicy overflow = config.overflow_policy.value_or(OverflowPolicy::kBlock);
  return {
      {kBufferLimitNode, absl::StrCat(config.buffer_limit_bytes)},
      {kOverflowNode,
       overflow == OverflowPolicy::kDropOldest ? kOverflowDropOldest : kOverflowBlock},
      {kWriteQueueLimitNode, absl::StrCat(config.write_queue_limit_bytes)},
      {kFramingNode, FramingSpec(config.default_framing.value_or(Framing{}))},
  };
}

ChannelConfig ParseChannelConfigNodes(const std::function<std::string(absl::string_view)>& read) {
  ChannelConfig asked;
  // Beyond the API's limits a record is not ours to trust: take the defaults.
  asked.buffer_limit_bytes = ParseDecimal(read(kBufferLimitNode), kMaxBufferLimitBytes).value_or(0);
  asked.write_queue_limit_bytes =
      ParseDecimal(read(kWriteQueueLimitNode), kMaxWriteQueueLimitBytes).value_or(0);
  const std::string overflow = read(kOverflowNode);
  if (overflow == kOverflowDropOldest) asked.overflow_policy = OverflowPolicy::kDropOldest;
  if (overflow == kOverflowBlock) asked.overflow_policy = OverflowPolicy::kBlock;
  auto framing = ParseFramingSpec(read(kFramingNode));
  if (framing.ok()) asked.default_framing = *framing;
  return asked;
}

DeclaredChannelConfig DeclaredConfig(const ChannelConfig& config) {
  DeclaredChannelConfig d;
  d.buffer_limit_bytes = config.buffer_limit_bytes;
  d.overflow =
      config.overflow_policy.value_or(OverflowPolicy::kBlock) == OverflowPolicy::kDropOldest
          ? DeclaredChannelConfig::Overflow::kDropOldest
          : DeclaredChannelConfig::Overflow::kBlock;
  d.write_queue_limit_bytes = config.write_queue_limit_bytes;
  d.default_framing = FramingSpec(config.default_framing.value_or(Framing{}));
  return d;
}

ChannelConfig ConfigFromDeclared(const DeclaredChannelConfig& declared) {
  ChannelConfig c;
  c.buffer_limit_bytes = declared.buffer_limit_bytes;
  c.overflow_policy = declared.overflow == DeclaredChannelConfig::Overflow::kDropOldest
                          ? OverflowPolicy::kDropOldest
                          : OverflowPolicy::kBlock;
  c.write_queue_limit_bytes = declared.write_queue_limit_bytes;
  auto framing = ParseFramingSpec(declared.default_framing);
  if (framing.ok()) c.default_framing = *framing;
  c.lifetime = ChannelLifetime::kDurable;
  return c;
}

absl::Status ValidateConfigLimits(const ChannelConfig& config) {
  if (config.buffer_limit_bytes > kMaxBufferLimitBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("buffer limit above ", kMaxBufferLimitBytes, " bytes"));
  }
  if (config.write_queue_limit_bytes > kMaxWriteQueueLimitBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("write queue limit above ", kMaxWriteQueueLimitBytes, " bytes"));
  }
  return ValidateFraming(config.default_framing.value_or(Framing{}));
}

}  // namespace xenchan
