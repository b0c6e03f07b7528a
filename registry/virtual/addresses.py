"""The outbound address policy (spec §5.1): which URLs an upstream may name, and which
addresses Packhouse may connect to for them.

- Schemes: `https`; `http` only with PACKHOUSE_VR_ALLOW_HTTP. No userinfo (`user:pw@host`).
- Every address the host resolves to is checked, at save time and again on every connection
  (the client connects to the vetted address, so DNS rebinding cannot swap it): loopback,
  private, link-local, CGNAT, unspecified, multicast, reserved and documentation ranges are
  refused, also when embedded in an IPv6 address (::ffff:0:0/96, 64:ff9b::/96, 2002::/16), and so is
  Packhouse's own host (PACKHOUSE_EXTERNAL_URL).
- Overrides (instance settings, never per request): PACKHOUSE_VR_ALLOW_LOCAL_NETWORK lifts the
  range check; PACKHOUSE_VR_ALLOWED_HOSTS lists host names or CIDRs that are let through.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from registry.outbound import refused_range


class AddressRefused(Exception):
    """The URL or one of its addresses is not allowed; the message is short and safe to show."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lowercase, without brackets
    port: int
    addresses: tuple  # vetted IP address strings

    @property
    def netloc(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _allowed_by_setting(host, address):
    for entry in settings.VR_ALLOWED_HOSTS:
        entry = entry.lower()
        if entry == host:
            return True
        try:
            if ipaddress.ip_address(address) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def split(url):
    """Scheme, host, port of an upstream URL, refusing what no upstream URL may be."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise AddressRefused("the URL is malformed") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise AddressRefused("only https URLs are allowed")
    if scheme == "http" and not settings.VR_ALLOW_HTTP:
        raise AddressRefused("only https URLs are allowed (PACKHOUSE_VR_ALLOW_HTTP is off)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise AddressRefused("credentials in the URL are not allowed; use username and password")
    host = (parts.hostname or "").lower()
    if not host:
        raise AddressRefused("the URL has no host")
    return scheme, host, port or (443 if scheme == "https" else 80)


def _own_host():
    if not settings.EXTERNAL_URL:
        return None
    parts = urlsplit(settings.EXTERNAL_URL)
    return (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def resolve(host, port):
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"cannot resolve {host}") from exc
    return tuple(dict.fromkeys(info[4][0] for info in infos))


def vet(url):
    """The Target to connect to for `url`, every resolved address checked; AddressRefused."""
    scheme, host, port = split(url)
    if _own_host() == (host, port):
        raise AddressRefused("an upstream may not point at this Packhouse (use a local upstream)")
    addresses = resolve(host, port)
    if not addresses:
        raise AddressRefused(f"cannot resolve {host}")
    if not settings.VR_ALLOW_LOCAL_NETWORK:
        for address in addresses:
            reason = refused_range(address)
            if reason and not _allowed_by_setting(host, address):
                raise AddressRefused(reason)
    return Target(scheme, host, port, addresses)


def host_entry(entry):
    """A `file_hosts` entry (`host` or `host:port`) normalized: lowercase, IPv6 in brackets;
    AddressRefused for anything else (a scheme, a path, credentials)."""
    if not isinstance(entry, str) or not entry.strip() or len(entry) > 255:
        raise AddressRefused("must be a host name or host:port")
    try:
        parts = urlsplit("//" + entry.strip())
        port = parts.port
    except ValueError as exc:
        raise AddressRefused("must be a host name or host:port") from exc
    host = (parts.hostname or "").lower()
    if not host or parts.path or parts.query or parts.fragment or "@" in parts.netloc or not host.isprintable():
        raise AddressRefused("must be a host name or host:port")
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port is not None else host


def same_host(url, other_url, file_hosts=()):
    """Whether `url` is on `other_url`'s host and port, or on one of `file_hosts` (entries of
    host_entry; one without a port means the default port of `url`'s scheme)."""
    try:
        scheme, host, port = split_loose(url)
        other = split_loose(other_url)
    except ValueError:
        return False
    if (host, port) == other[1:]:
        return True
    default = 443 if scheme == "https" else 80
    for entry in file_hosts:
        parts = urlsplit("//" + entry)
        try:
            entry_port = parts.port or default
        except ValueError:
            continue
        if ((parts.hostname or "").lower(), entry_port) == (host, port):
            return True
    return False


def split_loose(url):
    """(scheme, host, port) of any http(s) URL, without the policy's refusals; ValueError."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise ValueError(url)
    return scheme, host, port or (443 if scheme == "https" else 80)
