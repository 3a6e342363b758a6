// Conversions between the engine's value types (backend/engine/types.h) and
// the xenchan.v1 protos. Pure functions; thread-safe.
#ifndef XENCHAN_SERVER_CONVERT_H_
#define XENCHAN_SERVER_CONVERT_H_

#include <optional>

#include "absl/time/time.h"
#include "backend/engine/channel.h"
#include "backend/engine/engine.h"
#include "backend/engine/types.h"
#include "backend/framing/framing.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "xenchan/v1/channel_service.pb.h"

namespace xenchan {
namespace server {

// Leaves `out` untouched for absl::InfinitePast() (unset times).
void SetTime(absl::Time t, google::protobuf::Timestamp* out);

// Sets the Timestamp field of `msg` that `mutable_field` names (for example
// &v1::Channel::mutable_connect_time) to `t`, only when `t` is a known time.
// An unknown time (absl::InfinitePast() or InfiniteFuture()) leaves the field
// absent, as the API documents for times that have not happened yet: calling
// the mutable accessor alone would make it present with value 0
// (1970-01-01).
template <class Msg>
void SetTimeIfKnown(absl::Time t, Msg* msg, google::protobuf::Timestamp* (Msg::*mutable_field)()) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return;
  SetTime(t, (msg->*mutable_field)());
}
absl::Duration FromProto(const google::protobuf::Duration& d);

v1::ChannelState ToProto(ChannelState s);
v1::DomainState ToProto(DomainState s);
v1::ChannelLifetime ToProto(ChannelLifetime l);
v1::XenbusState ToProto(XenbusState s);
v1::Transport ToProto(Transport t);
v1::AckLevel ToProto(AckLevel a);
v1::OverflowPolicy ToProto(OverflowPolicy p);
v1::SessionKind ToProto(SessionKind k);
v1::ChannelErrorKind ToProto(ChannelErrorKind k);
v1::EpochChangeReason ToProto(EpochChangeReason r);
v1::ChannelEventType ToProto(ChannelEventType t);
v1::RemovalReason ToProto(RemovalReason r);
std::optional<ChannelState> FromProto(v1::ChannelState s);
std::optional<Transport> FromProto(v1::Transport t);
// nullopt for CHANNEL_LIFETIME_UNSPECIFIED (the engine default applies) and
// for values outside the enum.
std::optional<ChannelLifetime> FromProto(v1::ChannelLifetime l);

void ToProto(const Position& p, v1::Position* out);
void ToProto(const LeaseHolder& h, v1::LeaseHolder* out);
void ToProto(const EpochChange& e, v1::EpochChange* out);
void ToProto(const DomainInfo& d, v1::Domain* out);
// The channel's default framing is c.config.default_framing (newline if
// unset).
void ToProto(const ChannelInfo& c, v1::Channel* out);
// The effective configuration: unset engine fields are reported as their
// defaults (BLOCK, newline framing, INCARNATION), never as UNSPECIFIED.
void ToProto(const ChannelConfig& c, v1::ChannelConfig* out);
// The engine configuration of a (validated) CreateChannel config: proto
// defaults (0, *_UNSPECIFIED, no framing) become unset engine fields, so
// that the engine's defaults apply.
ChannelConfig FromProto(const v1::ChannelConfig& c);
// The engine update of an UpdateChannel request (already validated): each
// field `mask` names (validate.h kUpdatableChannelPaths) at its value in
// `c`, unset values at their documented defaults (0 limits: the engine's;
// UNSPECIFIED overflow: BLOCK; no framing: newline; UNSPECIFIED lifetime:
// INCARNATION).
ChannelUpdate FromProto(const v1::ChannelConfig& c, const google::protobuf::FieldMask& mask);
void ToProto(const Framing& f, v1::Framing* out);
// The engine framing of a (validated) proto framing.
Framing FromProto(const v1::Framing& f);

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_CONVERT_H_
