"""Which IP addresses a download for a user may connect to: only globally routable ones (no loopback, private,
link-local or metadata addresses, nor IPv6 forms that embed them)."""

from __future__ import annotations

import ipaddress

_NON_PUBLIC_V4 = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata services
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")  # everything outside is loopback, ULA, link-local, multicast...
_NON_PUBLIC_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) among them
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4: embeds an IPv4 address that could be anything
        "3fff::/20",  # documentation
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # DNS64 answers: the last 32 bits are the IPv4 address reached


def is_public_address(address: str) -> bool:
    """Whether `address` (an IP address string) is globally routable, so fit to connect to for a user's request.

    False for loopback, private, link-local (cloud metadata), shared (100.64/10), multicast, reserved, unspecified,
    documentation and site-local addresses, for IPv4-mapped, IPv4-compatible and NAT64 IPv6 forms of those, for
    addresses with a scope and for anything that does not parse as an IP address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return _is_public_v4(ip)
    if ip.scope_id:
        return False
    if ip.ipv4_mapped is not None:
        return _is_public_v4(ip.ipv4_mapped)
    if ip in _NAT64:
        return _is_public_v4(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    # ::/96 (IPv4-compatible, ::1, ::), fc00::/7, fe80::/10, fec0::/10 and ff00::/8 all lie outside 2000::/3
    if ip not in _GLOBAL_UNICAST_V6 or any(ip in net for net in _NON_PUBLIC_V6):
        return False
    return ip.is_global and not _has_special_flag(ip)


def _connectable(address: str) -> str:
    """A vetted address in the form to connect to: canonical, and IPv4-mapped IPv6 as the IPv4 address itself."""
    ip = ipaddress.ip_address(address)
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return str(mapped or ip)


def _is_public_v4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not _has_special_flag(ip) and not any(ip in net for net in _NON_PUBLIC_V4)


def _has_special_flag(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    flags = (ip.is_private, ip.is_loopback, ip.is_link_local, ip.is_multicast, ip.is_reserved, ip.is_unspecified)
    return any(flags) or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
