// Parsing of the xenstore values the simulated guest's xenbus and hvc_xen
// halves read, done the way Linux reads them but hardened: every value comes
// from a node that a hostile toolstack or backend may have written.
//
// All functions are pure and thread-compatible.
#ifndef XENCHAN_BACKEND_SIM_GUEST_XENBUS_TEXT_H_
#define XENCHAN_BACKEND_SIM_GUEST_XENBUS_TEXT_H_

#include <cstdint>
#include <optional>
#include <string>

namespace xenchan {
namespace sim {
namespace guest {

// XenbusState values (xen/io/xenbus.h).
inline constexpr int kStateUnknown = 0;
inline constexpr int kStateInitialising = 1;
inline constexpr int kStateInitWait = 2;
inline constexpr int kStateInitialised = 3;
inline constexpr int kStateConnected = 4;
inline constexpr int kStateClosing = 5;
inline constexpr int kStateClosed = 6;

// Reads a `state` value as Linux's xenbus_scanf("%d") does: optional leading
// white space, an optional sign and at least one decimal digit; trailing
// bytes are ignored. nullopt when no number starts the value (Linux then
// treats the state as Unknown) or it overflows an int.
std::optional<int> ScanStateValue(const std::string& value);

// The devid hvc_xen derives from a nodename: the value of its last byte minus
// '0' (so "device/console/10" gives 0 and "device/console/11" gives 1).
// nullopt for an empty nodename.
std::optional<int> DevidFromNodename(const std::string& nodename);

// Parses `backend-id`: strict decimal, no sign or white space, below
// DOMID_FIRST_RESERVED (0x7FF0). Linux accepts anything sscanf("%i") takes;
// the simulated guest refuses what a sane toolstack never writes.
std::optional<uint32_t> ParseBackendId(const std::string& value);

// True for a backend path a sane toolstack writes: absolute, at most 3072
// bytes, only xenstore path characters [A-Za-z0-9-/_@], no empty component
// and no trailing slash.
bool IsSaneBackendPath(const std::string& path);

// True for a channel name the udev helper would link:
// [A-Za-z0-9._-]{1,64}, and not "." or "..".
bool IsValidChannelName(const std::string& name);

// The text xenbus_dev_error writes to error/<nodename>/error: the positive
// errno, a space, then the message.
std::string XenbusErrorText(int errno_value, const std::string& message);

}  // namespace guest
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_GUEST_XENBUS_TEXT_H_
