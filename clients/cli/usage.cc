// xenchanctl's help text and exit codes (usage.h).
#include "clients/cli/usage.h"

namespace xenchan {
namespace cli {

const char kUsage[] = R"(xenchanctl: talk to xenchand, the Xen PV channel server.

Usage: xenchanctl [--server TARGET | --fleet TARGET] [--output human|json] [--timeout D]
                  COMMAND [ARGS]

Channels are named DOMAIN/CHANNEL (DOMAIN is a name or UUID) or by their full
resource name domains/DOMAIN/channels/CHANNEL.

Commands:
  list [DOMAIN] [--state S]... [--prefix P]   channels (all domains by default)
  list --domains                              domains
  get DOMAIN | DOMAIN/CHANNEL                 one domain or channel
  create DOMAIN CHANNEL [--wait] [--connect-timeout D] [--buffer-limit N]
         [--overflow block|drop-oldest] [--write-queue-limit N]
         [--framing newline|length-prefix|qemu-guest-agent|delimiter:STR]
         [--durable] [--validate-only]        hot-add a channel; --durable: declare it
                                              for the domain's UUID, re-created in every
                                              reboot, restore and migration
  update DOMAIN/CHANNEL [--buffer-limit N] [--overflow block|drop-oldest]
         [--write-queue-limit N] [--framing SPEC] [--durable|--incarnation]
         [--validate-only]                    change a channel's settings in place; only
                                              the settings given change
  delete DOMAIN/CHANNEL [--force-after D]     unplug and remove a channel (and its
                                              durable declaration)
  watch [DOMAIN] [--from REVISION]            stream lifecycle events (Ctrl-C stops)
  attach DOMAIN/CHANNEL [--observer] [--takeover] [--from earliest|next|EPOCH:OFFSET]
                                              interactive terminal on the channel when
                                              stdin is a tty (Ctrl-] quits); raw bytes
                                              both ways on pipes
  read DOMAIN/CHANNEL [--follow] [--from earliest|next|EPOCH:OFFSET] [--max-bytes N]
                                              guest output to stdout
  write DOMAIN/CHANNEL [--data STR] [--ack accepted|delivered|consumed] [--fail-fast]
                                              send --data, or stdin, to the guest
  call DOMAIN/CHANNEL REQUEST [--framing ...] send one request, print the response

Fleet (with --fleet TARGET, any xenchand of a fleet):
  hosts                                       the fleet's hosts
  domains                                     every domain of the fleet and its host
  list                                        the channels of every host
  any command above naming a DOMAIN           runs on the host that runs DOMAIN
                                              (located through TARGET), with the same
                                              TLS options

Global flags:
  --server TARGET   unix:///path, HOST:PORT (default $XENCHAN_SERVER, else
                    unix:///run/xenchan/xenchand.sock)
  --ca FILE         TLS: PEM CA of the server's certificate (HOST:PORT
                    targets use mutual TLS when given; $XENCHAN_CA)
  --cert FILE       TLS: PEM client certificate ($XENCHAN_CERT)
  --key FILE        TLS: PEM client private key ($XENCHAN_KEY)
  --server-name N   TLS: name to check in the server's certificate
  --fleet TARGET    locate domains through this xenchand and route commands
                    to their hosts ($XENCHAN_FLEET)
  --output FORMAT   human (default) or json (one JSON object per line)
  --timeout D       deadline of unary calls, write and call (default 30s;
                    0 means none)

Exit codes:
  0  success                          7  DEADLINE_EXCEEDED
  1  other error (INTERNAL, UNKNOWN)  8  ABORTED (epoch changed, lease taken over)
  2  usage error                      9  OUT_OF_RANGE (offset/revision not retained)
  3  INVALID_ARGUMENT                10  UNAVAILABLE (server down, domain gone: retry)
  4  NOT_FOUND                       11  UNAUTHENTICATED / PERMISSION_DENIED
  5  ALREADY_EXISTS                  12  CANCELLED
  6  FAILED_PRECONDITION             13  RESOURCE_EXHAUSTED
)";

int ExitCodeOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 0;
    case absl::StatusCode::kInvalidArgument:
      return 3;
    case absl::StatusCode::kNotFound:
      return 4;
    case absl::StatusCode::kAlreadyExists:
      return 5;
    case absl::StatusCode::kFailedPrecondition:
      return 6;
    case absl::StatusCode::kDeadlineExceeded:
      return 7;
    case absl::StatusCode::kAborted:
      return 8;
    case absl::StatusCode::kOutOfRange:
      return 9;
    case absl::StatusCode::kUnavailable:
      return 10;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return 11;
    case absl::StatusCode::kCancelled:
      return 12;
    case absl::StatusCode::kResourceExhausted:
      return 13;
    default:
      return 1;
  }
}

}  // namespace cli
}  // namespace xenchan
