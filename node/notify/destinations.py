"""Where the node may POST: a bank's callback URL must not reach the node's own network.

A URL whose host is, or resolves to, a loopback, link-local (cloud metadata services live
there), private, shared, multicast, reserved or unspecified address is refused, unless the
operator allows private destinations (the devnet does: its banks' receivers run on
127.0.0.1). Checked when the URL is registered and again before every attempt, since a
name's addresses can change after registration.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

RESOLVE_ADDRESSES_MAX = 16


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in ipaddress.ip_network("100.64.0.0/10"))
    )


def problem(url: str, allow_private: bool) -> str | None:
    """Why the node will not POST to ``url``, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "the URL must be http(s) with a host"
    if allow_private:
        return None
    host = parts.hostname
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            found = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80))
        except (socket.gaierror, UnicodeError) as exc:
            return f"the host {host} does not resolve: {exc}"
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found[:RESOLVE_ADDRESSES_MAX]]
    for address in addresses:
        if _forbidden(address):
            return f"the host {host} is {address}: a loopback, link-local, private or reserved address"
    return None
