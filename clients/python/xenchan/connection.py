"""Targets and credentials: how the SDK reaches a xenchand.

xenchand listens on a Unix socket (`unix:///run/xenchan/xenchand.sock`, callers known by uid) and
on TCP with mutual TLS (`host:port`, callers known by their client certificate), or, for tests, on
plaintext loopback TCP. These helpers build the grpc channel arguments both clients use:

    unix_target("/run/xenchan/xenchand.sock")   -> "unix:///run/xenchan/xenchand.sock"
    TlsFiles(ca="ca.pem", cert="me.pem", key="me.key", server_name="xenchand.example.org")
"""

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import grpc

DEFAULT_TARGET = "unix:///run/xenchan/xenchand.sock"
"""Where xenchand listens by default (deploy/xenchand.conf)."""

# Client keepalive on idle connections: xenchand permits pings every 30 s or more.
_DEFAULT_OPTIONS = [
    ("grpc.keepalive_time_ms", 60000),
    ("grpc.keepalive_timeout_ms", 20000),
    # Call responses are at most 1 MiB plus framing; stream messages 64 KiB.
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
]

ChannelOptions = Sequence[Tuple[str, object]]


def unix_target(path: str) -> str:
    """The gRPC target of a Unix socket path (made absolute)."""
    return "unix://" + os.path.abspath(path)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for mutual TLS with xenchand's TCP listeners.

    Attributes:
      ca: the CA that signed the server's certificate.
      cert: this client's certificate (its URI SAN, DNS SAN or CN is the identity the server's
        policy grants verbs to).
      key: this client's private key.
      server_name: the name checked against the server certificate instead of the target's host
        (e.g. a DNS SAN when dialling an IP address); None: the host.
    """

    ca: str
    cert: Optional[str] = None
    key: Optional[str] = None
    server_name: Optional[str] = None

    def credentials(self) -> grpc.ChannelCredentials:
        """grpc.ssl_channel_credentials from the files (read now; OSError if unreadable)."""
        if (self.cert is None) != (self.key is None):
            raise ValueError("TlsFiles: cert and key go together")

        def read(path: Optional[str]) -> Optional[bytes]:
            if path is None:
                return None
            with open(path, "rb") as f:
                return f.read()

        return grpc.ssl_channel_credentials(root_certificates=read(self.ca),
                                            private_key=read(self.key),
                                            certificate_chain=read(self.cert))


def channel_arguments(tls: Optional[TlsFiles],
                      options: Optional[ChannelOptions]) -> List[Tuple[str, object]]:
    """The SDK's default channel options, the TLS name override, then the caller's options (which
    win: gRPC uses the last value of a repeated key)."""
    out: List[Tuple[str, object]] = list(_DEFAULT_OPTIONS)
    if tls is not None and tls.server_name:
        out.append(("grpc.ssl_target_name_override", tls.server_name))
    out.extend(options or [])
    return out


def resolve_credentials(tls: Optional[TlsFiles],
                        credentials: Optional[grpc.ChannelCredentials]
                        ) -> Optional[grpc.ChannelCredentials]:
    """The credentials to use: explicit ones, those from `tls`, or None (plaintext)."""
    if tls is not None and credentials is not None:
        raise ValueError("give tls or credentials, not both")
    if tls is not None:
        return tls.credentials()
    return credentials
