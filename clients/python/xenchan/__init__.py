"""xenchan: the Python SDK of the xenchan.v1 API (xenchand, the gRPC control plane for Xen PV channels).

    import xenchan
    with xenchan.connect("unix:///run/xenchan/xenchand.sock") as client:
        for ch in client.list_channels():
            print(ch.name, xenchan.v1.resources_pb2.ChannelState.Name(ch.state))
        reply = client.call("domains/vm1/channels/org.xenchan.agent.0", b'{"op":"ping"}')

`xenchan.v1` holds the modules generated from proto/xenchan/v1 (`channel_service_pb2`,
`channel_service_pb2_grpc`, `resources_pb2`, `errors_pb2`): every message and field is documented
in those protos. `Client` wraps the common calls; `client.stub` is the raw generated stub for
everything else. Errors are raised as `XenchanError` (a `grpc.RpcError` with the stable reason
decoded from the server's google.rpc.ErrorInfo).
"""

from xenchan import v1
from xenchan.client import Client, channel_name, connect
from xenchan.errors import XenchanError

__all__ = ["Client", "XenchanError", "channel_name", "connect", "v1"]
__version__ = "0.1.0"
