"""Client: a small synchronous wrapper over the generated xenchan.v1 ChannelService stub."""

import grpc

from xenchan.errors import XenchanError
from xenchan.v1 import channel_service_pb2, channel_service_pb2_grpc, resources_pb2

DEFAULT_TARGET = "unix:///run/xenchan/xenchand.sock"


def channel_name(domain, channel):
    """"vm1", "org.xenchan.agent.0" -> "domains/vm1/channels/org.xenchan.agent.0"."""
    return "domains/%s/channels/%s" % (domain, channel)


def connect(target=DEFAULT_TARGET, credentials=None, options=None):
    """Returns a Client for `target` (a gRPC target: "unix:///path", "host:port").

    Insecure unless `credentials` (grpc.ChannelCredentials, e.g. for mTLS) are given. Connecting is
    lazy: an unreachable target shows up as XenchanError(UNAVAILABLE) on the first call.
    """
    if credentials is None:
        channel = grpc.insecure_channel(target, options=options)
    else:
        channel = grpc.secure_channel(target, credentials, options=options)
    return Client(channel)


def _call(method, request, timeout):
    try:
        return method(request, timeout=timeout)
    except grpc.RpcError as e:
        raise XenchanError.from_rpc_error(e) from None


class Client:
    """Synchronous xenchan client. Thread-safe (gRPC channels and stubs are).

    Every method raises XenchanError on failure; `timeout` is in seconds (None: no deadline; the
    server still bounds Call by its own maximum).
    """

    def __init__(self, channel):
        self._channel = channel
        self.stub = channel_service_pb2_grpc.ChannelServiceStub(channel)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def list_domains(self, timeout=None):
        """All domains the caller may see, across pages."""
        out, token = [], ""
        while True:
            resp = _call(self.stub.ListDomains,
                         channel_service_pb2.ListDomainsRequest(page_token=token), timeout)
            out.extend(resp.domains)
            token = resp.next_page_token
            if not token:
                return out

    def list_channels(self, parent="domains/-", timeout=None, **filters):
        """All channels under `parent` (one domain, or "domains/-"), across pages.

        `filters` are ListChannelsRequest fields (filter=ChannelFilter(...), states=[...]).
        """
        out, token = [], ""
        while True:
            req = channel_service_pb2.ListChannelsRequest(parent=parent, page_token=token,
                                                          **filters)
            resp = _call(self.stub.ListChannels, req, timeout)
            out.extend(resp.channels)
            token = resp.next_page_token
            if not token:
                return out

    def get_channel(self, name, timeout=None):
        return _call(self.stub.GetChannel, channel_service_pb2.GetChannelRequest(name=name),
                     timeout).channel

    def call(self, channel, request, framing=None, timeout=None):
        """Sends one request (bytes) and returns the response bytes, framed by `framing` (a
        resources_pb2.Framing) or the channel's default framing (newline unless configured)."""
        req = channel_service_pb2.CallRequest(channel=channel, request=request)
        if framing is not None:
            req.framing.CopyFrom(framing)
        return _call(self.stub.Call, req, timeout).response

    @staticmethod
    def newline_framing():
        return resources_pb2.Framing(newline=resources_pb2.Framing.Newline())
