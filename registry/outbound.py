"""Which network addresses Packhouse refuses to connect to on a user's behalf (webhook
deliveries, virtual registries' upstreams): loopback, private, link-local, CGNAT, unspecified,
multicast, reserved and documentation ranges, also when embedded in an IPv6 address
(::ffff:0:0/96, 64:ff9b::/96, 2002::/16). Each caller adds its own rules and overrides
(registry.webhooks, registry.virtual.addresses)."""

import ipaddress

REFUSED_V4 = [
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]
REFUSED_V6 = [ipaddress.ip_network(net) for net in ("::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8")]
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


def embedded_v4(address):
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4), or None."""
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in SIX_TO_FOUR:
        return address.sixtofour
    return None


def refused_range(address):
    """Why an address may not be connected to (a short text), or None."""
    address = ipaddress.ip_address(address)
    inner = embedded_v4(address)
    if inner is not None:
        address = inner
    networks = REFUSED_V4 if address.version == 4 else REFUSED_V6
    for network in networks:
        if address in network:
            return f"address {address} is in a refused range ({network})"
    return None
