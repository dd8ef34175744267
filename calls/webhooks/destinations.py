"""Which URLs a webhook may be sent to, so an endpoint cannot make CallIQ's
servers call into their own network (SSRF).

An endpoint URL is https, names a host, and carries no user name or password.
Its host must resolve only to public addresses: loopback, private, link-local
(cloud metadata at 169.254.169.254), shared, multicast and reserved ranges are
refused; an IPv6 address must be global unicast (2000::/3) and not one of the
forms that embed an IPv4 address (6to4, Teredo, NAT64, IPv4-compatible).
`WEBHOOKS_ALLOW_LOOPBACK` (on under DEBUG, and in the tests that run a
receiver on 127.0.0.1) allows loopback addresses, and plain http to them.

The check runs when the URL is saved and again at every delivery, where the
connection is then made to the very address that was checked (the host name
goes in the Host header and TLS SNI), so a DNS answer that changes between
the check and the connection (DNS rebinding) cannot redirect the request."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(Exception):
    """The URL or the address it resolves to may not be called; the message says why, for a person."""


@dataclass(frozen=True)
class Destination:
    """Where to connect: `url` with the checked address in place of the host name."""

    url: str
    host_header: str
    sni_hostname: str | None


def loopback_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_LOOPBACK", settings.DEBUG))


def _as_ip(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# IPv6 destinations must be global unicast (2000::/3), minus the transition
# ranges that carry an IPv4 address a gateway would reach for us: 6to4,
# Teredo and the local-use NAT64 prefix. (The well-known NAT64 prefix
# 64:ff9b::/96, IPv4-compatible ::/96 and site-local fec0::/10 lie outside 2000::/3.)
IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
IPV6_EMBEDDING_IPV4 = (
    ipaddress.IPv6Network("2002::/16"),  # 6to4
    ipaddress.IPv6Network("2001::/32"),  # Teredo
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64, well-known prefix
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # NAT64, local use
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated)
)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64, compatible)."""
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in network for network in IPV6_EMBEDDING_IPV4[2:]):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def address_allowed(address: IPAddress) -> bool:
    if address.is_loopback:
        return loopback_allowed()
    if isinstance(address, ipaddress.IPv6Address):
        if any(not address_allowed(inner) for inner in embedded_ipv4(address)):
            return False
        if address not in IPV6_GLOBAL_UNICAST or any(address in network for network in IPV6_EMBEDDING_IPV4):
            return False
    # is_global is False for private, link-local, shared (100.64/10), reserved and documentation ranges.
    return address.is_global and not address.is_multicast


def _is_loopback_name(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def _host(url: str) -> str:
    """The URL's host name in ASCII (IDNA for international names), lower case, no trailing dot."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if not host:
        raise DestinationRefused("The URL needs a host name.")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise DestinationRefused("The URL's host name is not valid.") from exc


def check_url(url: str) -> None:
    """Refuse a URL that is not allowed as it is written (before any DNS)."""
    parts = urlsplit(url)
    host = _host(url)
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("Leave user names and passwords out of the URL: verify our signature instead.")
    try:
        parts.port  # noqa: B018 — reading it validates it
    except ValueError as exc:
        raise DestinationRefused("The URL's port is not a number from 1 to 65535.") from exc
    literal = _as_ip(host)
    loopback = _is_loopback_name(host) or (literal is not None and literal.is_loopback)
    if parts.scheme == "http" and loopback and loopback_allowed():
        pass
    elif parts.scheme != "https":
        raise DestinationRefused("Use an https:// URL.")
    if loopback and not loopback_allowed():
        raise DestinationRefused("Webhooks cannot be sent to this server's own address.")
    if literal is not None and not address_allowed(literal):
        raise DestinationRefused("Webhooks cannot be sent to private, link-local or reserved addresses.")


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise DestinationRefused(f"The host {host} could not be resolved.") from exc
    found: list[IPAddress] = []
    for info in infos:
        address = _as_ip(str(info[4][0]).split("%", 1)[0])
        if address is not None and address not in found:
            found.append(address)
    if not found:
        raise DestinationRefused(f"The host {host} has no address.")
    return found


def check_addresses(host: str, addresses: list[IPAddress]) -> None:
    # Every address must pass: a name with one public and one private address
    # would otherwise reach the private one on some connection.
    if any(not address_allowed(address) for address in addresses):
        raise DestinationRefused(f"{host} resolves to a private, loopback, link-local or reserved address.")


def check_url_and_host(url: str) -> None:
    """check_url, then resolve the host and check its addresses; a host that does
    not resolve (yet) is accepted here (its deliveries fail until it does)."""
    check_url(url)
    parts = urlsplit(url)
    host = _host(url)
    try:
        addresses = resolve(host, parts.port or 443)
    except DestinationRefused:
        return
    check_addresses(host, addresses)


def destination(url: str) -> Destination:
    """Check the URL, resolve its host now and return where to connect; raises DestinationRefused."""
    check_url(url)
    parts = urlsplit(url)
    host = _host(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(host, port)
    check_addresses(host, addresses)
    address = addresses[0]
    netloc_host = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{netloc_host}:{parts.port}" if parts.port else netloc_host
    named = f"[{host}]" if ":" in host else host
    host_header = f"{named}:{parts.port}" if parts.port else named
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return Destination(url=pinned, host_header=host_header, sni_hostname=host if parts.scheme == "https" else None)
