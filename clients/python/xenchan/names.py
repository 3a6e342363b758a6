"""Resource names of the xenchan.v1 API: `domains/{domain}` and `domains/{domain}/channels/{id}`.

In requests `{domain}` is a domain UUID or its display name; the server answers with the lowercase
UUID. `domains/-` (ALL_DOMAINS) names every domain, and is accepted only as the parent of
ListChannels and WatchChannels. Channel ids are 1 to 64 bytes of `[A-Za-z0-9._-]`, starting with a
letter or digit.

    channel_name("vm1", "org.xenchan.agent.0")  -> "domains/vm1/channels/org.xenchan.agent.0"
    channel_name("vm1/org.xenchan.agent.0")     -> the same ("DOMAIN/CHANNEL", as xenchanctl takes)
    parse_channel_name("domains/vm1/channels/org.xenchan.agent.0").channel_id
                                                -> "org.xenchan.agent.0"
"""

import re
from typing import NamedTuple, Optional

ALL_DOMAINS = "domains/-"
"""The parent that means every domain (ListChannels, WatchChannels)."""

MAX_CHANNEL_ID_BYTES = 64
_CHANNEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_DOMAIN_SEGMENT = re.compile(r"[^/]+\Z")


class ChannelRef(NamedTuple):
    """The two parts of a channel's resource name."""

    domain: str
    """The domain segment: a UUID (as the server returns it) or a display name."""
    channel_id: str
    """The channel id, e.g. "org.xenchan.agent.0"."""

    @property
    def name(self) -> str:
        """The full resource name."""
        return "domains/%s/channels/%s" % (self.domain, self.channel_id)

    @property
    def domain_name(self) -> str:
        """The domain's resource name, `domains/{domain}`."""
        return "domains/" + self.domain


def is_valid_channel_id(channel_id: str) -> bool:
    """True if `channel_id` is one the server accepts in CreateChannel."""
    return bool(_CHANNEL_ID.match(channel_id)) and len(channel_id.encode()) <= MAX_CHANNEL_ID_BYTES


def domain_name(domain: str) -> str:
    """"vm1" -> "domains/vm1"; a name that already starts with "domains/" passes through."""
    if domain.startswith("domains/"):
        return domain
    if not _DOMAIN_SEGMENT.match(domain):
        raise ValueError("not a domain UUID or display name: %r" % domain)
    return "domains/" + domain


def channel_name(domain: str, channel: Optional[str] = None) -> str:
    """The resource name of a channel.

    `channel_name("vm1", "org.xenchan.agent.0")`, `channel_name("vm1/org.xenchan.agent.0")` and
    `channel_name("domains/vm1/channels/org.xenchan.agent.0")` all give
    "domains/vm1/channels/org.xenchan.agent.0". Raises ValueError for anything else.
    """
    if channel is None:
        if domain.startswith("domains/"):
            return parse_channel_name(domain).name
        parts = domain.split("/")
        if len(parts) != 2:
            raise ValueError("expected DOMAIN/CHANNEL or a channel name: %r" % domain)
        domain, channel = parts
    if not _DOMAIN_SEGMENT.match(domain) or not is_valid_channel_id(channel):
        raise ValueError("not a valid domain and channel id: %r, %r" % (domain, channel))
    return "domains/%s/channels/%s" % (domain, channel)


def parse_domain_name(name: str) -> str:
    """"domains/vm1" -> "vm1". Raises ValueError for anything else (`domains/-` included)."""
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "domains" or not parts[1] or parts[1] == "-":
        raise ValueError("not a domain name: %r" % name)
    return parts[1]


def parse_channel_name(name: str) -> ChannelRef:
    """"domains/vm1/channels/org.x.0" -> ChannelRef("vm1", "org.x.0"); ValueError otherwise."""
    parts = name.split("/")
    if (len(parts) != 4 or parts[0] != "domains" or parts[2] != "channels" or not parts[1] or
            parts[1] == "-" or not is_valid_channel_id(parts[3])):
        raise ValueError("not a channel name: %r" % name)
    return ChannelRef(parts[1], parts[3])
