// The xenstore layout of console devices, written once (XEN-CHANNELS §1.6-1.8,
// §2.5): where domains, console frontends and backends live, the names of the
// nodes in them that the engine reads or writes, and the few fixed values it
// writes or compares. Every xenstore path the engine builds comes from here,
// so a reader can see the whole layout in one place.
//
//   /local/domain/D/name, /local/domain/D/vm -> <vm>/uuid   domain discovery
//   /local/domain/D/device/console/N                      frontend (guest-owned)
//   /libxl/D/device/console/N                             libxl's private record
//   /local/domain/B/backend/<type>/D/N                    our backend (ring channels)
//   /local/domain/B/backend/<type>/D/xenchan-released/N   devids unplugged lately
//   /local/domain/0/backend/console/D/N                   QEMU's (toolstack channels)
//
// Pure functions and constants; thread-safe.
#ifndef XENCHAN_BACKEND_ENGINE_XENSTORE_LAYOUT_H_
#define XENCHAN_BACKEND_ENGINE_XENSTORE_LAYOUT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace xenchan {

// --- Special watch paths (xenstored fires them on domain birth and death). ---
inline constexpr char kIntroduceDomainWatch[] = "@introduceDomain";
inline constexpr char kReleaseDomainWatch[] = "@releaseDomain";

// --- Domains. ---
// The directory of every domain's home directory.
inline constexpr char kLocalDomainDir[] = "/local/domain";
// Entries of kLocalDomainDir are domids no larger than this
// (DOMID_FIRST_RESERVED - 1); anything else there is not a domain.
inline constexpr uint32_t kMaxDomid = 0x7fef;
// Nodes of a domain's home directory.
inline constexpr char kDomainNameNode[] = "name";
inline constexpr char kDomainVmNode[] = "vm";
// Node of the domain's vm directory (the path in kDomainVmNode).
inline constexpr char kVmUuidNode[] = "uuid";

// `dir`/`node`.
std::string NodePath(absl::string_view dir, absl::string_view node);

// /local/domain/D
std::string DomainPath(uint32_t domid);
// /local/domain/D/name
std::string DomainNamePath(uint32_t domid);
// /local/domain/D/control/shutdown: the toolstack's request to the guest
// ("reboot", "suspend", "poweroff", ...), cleared by the guest as it acts.
std::string DomainShutdownPath(uint32_t domid);
// /local/domain/D/error/device/console: where a guest's xenbus reports a
// console device it could not bring up (xenbus_dev_fatal), one entry per
// devid; a resumed guest that found our frontend missing leaves one there
// and keeps that devid's device stale.
std::string ConsoleErrorDir(uint32_t domid);

// --- Console devices. ---
// The backend type libxl gives QEMU-served consoles, which is where the
// toolstack (xl.cfg) channels live. Our own channels use a private type
// (EngineOptions::backend_type) instead, XEN-CHANNELS §1.8 B.
inline constexpr char kToolstackBackendType[] = "console";

// /local/domain/D/device/console: the frontends of all of D's consoles.
std::string FrontendDir(uint32_t domid);
// /local/domain/D/device/console/N
std::string FrontendPath(uint32_t domid, uint32_t devid);
// /libxl/D/device/console: libxl's private records of D's consoles.
std::string LibxlConsoleDir(uint32_t domid);
// /libxl/D/device/console/N
std::string LibxlConsolePath(uint32_t domid, uint32_t devid);
// /local/domain/B/backend/<type>
std::string BackendTypeDir(uint32_t backend_domid, absl::string_view type);
// /local/domain/B/backend/<type>/D
std::string BackendDomainDir(uint32_t backend_domid, absl::string_view type, uint32_t domid);
// /local/domain/B/backend/<type>/D/N
std::string BackendPath(uint32_t backend_domid, absl::string_view type, uint32_t domid,
                        uint32_t devid);

// --- The engine's own records. ---
// /local/domain/B/<type>/held: the domains the engine holds paused, one
// node per domid whose value is the domain's UUID (engine_hold.cc). Under
// the backend domain's own directory, which guests cannot read.
std::string HeldDomainsDir(uint32_t backend_domid, absl::string_view type);
// /local/domain/B/<type>/held/D
std::string HeldDomainPath(uint32_t backend_domid, absl::string_view type, uint32_t domid);

// Nodes of both ends of a device.
inline constexpr char kStateNode[] = "state";        // xenbus state, "0".."8"
inline constexpr char kProtocolNode[] = "protocol";  // kConsoleProtocol
inline constexpr char kNameNode[] = "name";          // the channel id

// Nodes of a backend directory (libxl's keys, which we write too).
inline constexpr char kFrontendNode[] = "frontend";       // the frontend's path
inline constexpr char kFrontendIdNode[] = "frontend-id";  // the guest's domid
inline constexpr char kOnlineNode[] = "online";           // "1"
inline constexpr char kConnectionNode[] = "connection";   // QEMU: socket or pty
inline constexpr char kSocketPathNode[] = "path";         // QEMU: its Unix socket

// Nodes of a frontend directory. The guest writes ring-ref, port and state;
// the rest are written by the backend's toolstack (read-only to the guest).
inline constexpr char kBackendNode[] = "backend";       // the backend's path
inline constexpr char kBackendIdNode[] = "backend-id";  // the backend's domid
inline constexpr char kRingRefNode[] = "ring-ref";      // grant ref of the ring page
inline constexpr char kPortNode[] = "port";             // the guest's event channel port
inline constexpr char kTypeNode[] = "type";             // who serves it: ioemu, or ours
inline constexpr char kOutputNode[] = "output";         // the backend's output spec
inline constexpr char kLimitNode[] = "limit";           // the buffer limit in bytes
inline constexpr char kTtyNode[] = "tty";               // QEMU: the pty it serves

// Values.
inline constexpr char kConsoleProtocol[] = "vt100";
// Frontend `type` of consoles QEMU serves.
inline constexpr char kQemuFrontendType[] = "ioemu";
// Backend `connection` values of QEMU's channels.
inline constexpr char kConnectionSocket[] = "socket";
inline constexpr char kConnectionPty[] = "pty";

// --- Our private nodes in our backend directories. ---
// Only we write our backend directory (the guest may read it), so a
// restarted engine can trust them; they are parsed strictly anyway.
inline constexpr char kUidNode[] = "xenchan-uid";      // the channel's UUID
inline constexpr char kEpochNode[] = "xenchan-epoch";  // highest epoch used
inline constexpr char kBufferLimitNode[] = "xenchan-buffer-limit";
inline constexpr char kOverflowNode[] = "xenchan-overflow";  // kOverflow* below
inline constexpr char kWriteQueueLimitNode[] = "xenchan-write-queue-limit";
inline constexpr char kFramingNode[] = "xenchan-framing";  // FramingSpec
inline constexpr char kOverflowBlock[] = "block";
inline constexpr char kOverflowDropOldest[] = "drop-oldest";
// Presence says an operator unplug is under way; its value is the force
// deadline in Unix microseconds (decimal). Garbage means "force now".
inline constexpr char kUnpluggingNode[] = "xenchan-unplugging";

// Under our backend directory of a domain (B/backend/<type>/D), one node per
// recently released devid: its release time in Unix microseconds. Not a
// devid, so neither recovery nor the devid scan mistakes it for a channel;
// readable by dom0 only.
inline constexpr char kReleasedDevidsNode[] = "xenchan-released";
// /local/domain/B/backend/<type>/D/xenchan-released
std::string ReleasedDevidsDir(uint32_t backend_domid, absl::string_view type, uint32_t domid);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_XENSTORE_LAYOUT_H_
