"""xenchan: the Python SDK of the xenchan.v1 API (xenchand, the gRPC control plane for Xen PV
channels). Synchronous client here, asyncio client in xenchan.aio.

    import xenchan
    with xenchan.connect("unix:///run/xenchan/xenchand.sock") as client:
        for ch in client.list_channels():
            print(ch.name, xenchan.v1.resources_pb2.ChannelState.Name(ch.state))
        reply = client.call_json("vm1/org.xenchan.agent.0", {"op": "ping"})

`xenchan.v1` holds the modules generated from proto/xenchan/v1 (`channel_service_pb2`,
`channel_service_pb2_grpc`, `resources_pb2`, `errors_pb2`): every message and field is documented
in those protos. Failures raise subclasses of XenchanError (a grpc.RpcError) named after the gRPC
code, with the stable reason and the typed details (xenchan.errors).

In a fleet (several hosts, each with its xenchand, docs/FLEET.md), xenchan.connect_fleet reaches
any of them and resolves domains to the host that runs them (xenchan.fleet): list_hosts,
locate_domain, watch_fleet, connect(domain) and a read that follows a domain from host to host.
"""

from xenchan import v1
from xenchan._common import RetryPolicy
from xenchan.client import DEFAULT_TARGET, Client, connect
from xenchan.connection import TlsFiles, unix_target
from xenchan.errors import (AbortedError, AlreadyExistsError, CancelledError, DataLossError,
                            DeadlineExceededError, FailedPreconditionError, GuestAgentError,
                            InternalError, InvalidArgumentError, NotFoundError, OutOfRangeError,
                            PermissionDeniedError, ResourceExhaustedError, UnauthenticatedError,
                            UnavailableError, UnimplementedError, UnknownError, XenchanError)
from xenchan.fleet import (DomainLocation, Fleet, FleetReadStream, FleetWatchStream,
                           connect_fleet)
from xenchan.names import (ALL_DOMAINS, ChannelRef, channel_name, domain_name, parse_channel_name,
                           parse_domain_name)

__all__ = [
    "ALL_DOMAINS", "AbortedError", "AlreadyExistsError", "CancelledError", "ChannelRef", "Client",
    "DEFAULT_TARGET", "DataLossError", "DeadlineExceededError", "DomainLocation",
    "FailedPreconditionError", "Fleet", "FleetReadStream", "FleetWatchStream",
    "GuestAgentError", "InternalError", "InvalidArgumentError", "NotFoundError", "OutOfRangeError",
    "PermissionDeniedError", "ResourceExhaustedError", "RetryPolicy", "TlsFiles",
    "UnauthenticatedError", "UnavailableError", "UnimplementedError", "UnknownError",
    "XenchanError", "channel_name", "connect", "connect_fleet", "domain_name", "parse_channel_name",
    "parse_domain_name", "unix_target", "v1",
]
__version__ = "0.2.0"
