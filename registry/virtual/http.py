"""The one client for all upstream traffic (spec §5.1, §3.4): urllib3 connecting to addresses
vetted by registry.virtual.addresses.

- Each hop's host is resolved and checked, then the connection goes to that address (TLS SNI,
  certificate check and `Host` use the name), so a DNS answer cannot change between check and
  connect. Environment proxies are never used (urllib3 reads none).
- PACKHOUSE_VR_OUTBOUND_PROXY (spec §5.1): every request goes through that HTTP proxy, still to
  the vetted address: https as `CONNECT <address>:<port>` with TLS to the name inside the
  tunnel, http as an absolute-form request to the address with `Host` the name. Basic
  credentials in the proxy URL go as `Proxy-Authorization`, to the proxy only.
- Redirects: at most 3, GET/HEAD only, each hop re-checked; https -> http refused; credentials
  dropped when scheme, host or port change. A POST (a body forwarded, registry.virtual.forward) is sent
  to its vetted address once and never redirected: a redirect answer is returned as it is.
- Time-outs: connect 5 s (one retry on connect failure), read 30 s idle.
- Concurrency (spec §5.5): at most PACKHOUSE_VR_MAX_OUTBOUND_PER_UPSTREAM (16) connections of this
  process to one upstream host (scheme, host, port) at a time: each host has one urllib3 pool of
  that size that blocks when all are in use (through the proxy: to one https upstream, and to the
  proxy for all http ones); a request that waits READ_TIMEOUT seconds for one is UpstreamBusy. A
  connection is in use until its response is read or released.
- Bodies: `read_to_spool` streams into a registry.spool Spool under a cap (decompressed bytes
  counted), refusing a larger Content-Length before reading; `read_small` reads a bounded
  document into memory. A compressed body (`Content-Encoding: gzip` or `deflate`) may inflate
  at most MAX_RATIO times its bytes on the wire once past RATIO_FLOOR (spec §5.3: a small
  bomb is refused early, before it reaches the cap), else UpstreamTooLarge.

Failures are UpstreamUnavailable (network, TLS, time-out, refused address: the upstream cannot be
reached) or an UpstreamResponse whose status the caller judges. Messages never carry a body or a
credential.
"""

import base64
import threading
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

import urllib3
from django.conf import settings
from urllib3.exceptions import EmptyPoolError, HTTPError

from registry import secrets
from registry.errors import TooLarge
from registry.spool import spool_writer
from registry.virtual import addresses

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30
MAX_REDIRECTS = 3
REDIRECTS = (301, 302, 303, 307, 308)
MAX_RATIO = 100
RATIO_FLOOR = 1024 * 1024
USER_AGENT = "Packhouse-virtual-registry"
_pools = {}
_pools_lock = threading.Lock()
_proxies = {}


class UpstreamUnavailable(Exception):
    """The upstream could not be reached (network, TLS, time-out, address policy)."""


class UpstreamBusy(UpstreamUnavailable):
    """Every connection this process may open to the upstream host stayed in use: Packhouse's own
    limit, not a fault of the upstream."""


class UpstreamTooLarge(Exception):
    """The upstream's document or file is over the cap."""


@dataclass
class UpstreamResponse:
    status: int
    headers: dict  # lowercase names
    url: str
    raw: object  # urllib3.HTTPResponse, body not read yet

    def header(self, name, default=""):
        return self.headers.get(name.lower(), default)

    def release(self):
        """Read what is left of a (small) body and give the connection back."""
        self.raw.drain_conn()
        self.raw.release_conn()

    def discard(self):
        """Close the connection without reading the body (a body that is not wanted, of any
        size) and give its place in the pool back."""
        self.raw.close()
        self.raw.release_conn()


def basic_header(username, password):
    pair = f"{username}:{password}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def credentials_header(upstream):
    """The Authorization header of a remote upstream's stored credentials, or {}."""
    if upstream.auth_token_encrypted:
        return {"Authorization": f"Bearer {secrets.decrypt(upstream.auth_token_encrypted)}"}
    if upstream.username and upstream.password_encrypted:
        return basic_header(upstream.username, secrets.decrypt(upstream.password_encrypted))
    return {}


def _pool(target, address):
    """The pool of connections to one upstream host, bound to the address vetted now and the
    limit in force (a new address or limit replaces the pool: connections already out finish on
    the old one)."""
    key = (target.scheme, target.host, target.port)
    limit = max(1, settings.VR_MAX_OUTBOUND_PER_UPSTREAM)
    with _pools_lock:
        pool, bound = _pools.get(key, (None, None))
        if pool is not None and bound == (address, limit):
            return pool
        timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
        retries = urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0, raise_on_redirect=False)
        limits = {"maxsize": limit, "block": True}
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address,
                target.port,
                server_hostname=target.host,
                assert_hostname=target.host,
                cert_reqs="CERT_REQUIRED",
                timeout=timeout,
                retries=retries,
                **limits,
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, retries=retries, **limits)
        _pools[key] = (pool, (address, limit))
        return pool


def _proxy_manager(proxy_url):
    with _pools_lock:
        return _proxies.get(proxy_url) or _new_proxy_manager(proxy_url)


def _new_proxy_manager(proxy_url):
    parts = urlsplit(proxy_url)
    headers = {}
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers = urllib3.make_headers(proxy_basic_auth=pair)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    manager = urllib3.ProxyManager(
        f"{parts.scheme}://{netloc}",
        proxy_headers=headers,
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        retries=urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0, raise_on_redirect=False),
        cert_reqs="CERT_REQUIRED",
        maxsize=max(1, settings.VR_MAX_OUTBOUND_PER_UPSTREAM),
        block=True,
    )
    _proxies[proxy_url] = manager
    return manager


def _open(method, target, path, headers, body=None):
    """Send one request to the vetted address of `target`, directly or through the proxy."""
    address = target.addresses[0]
    options = {"headers": headers, "redirect": False, "preload_content": False, "assert_same_host": False}
    if body is not None:
        options["body"] = body
    options["pool_timeout"] = READ_TIMEOUT
    proxy = settings.VR_OUTBOUND_PROXY
    if not proxy:
        return _pool(target, address).urlopen(method, path, **options)
    manager = _proxy_manager(proxy)
    if target.scheme == "https":
        pool = manager.connection_from_host(
            address,
            target.port,
            "https",
            pool_kwargs={"server_hostname": target.host, "assert_hostname": target.host},
        )
        return pool.urlopen(method, path, **options)
    host = f"[{address}]" if ":" in address else address
    return manager.urlopen(method, f"http://{host}:{target.port}{path}", **options)


def _origin(url):
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def request(method, url, *, auth=None, headers=None, auth_origin=None, body=None):
    """One upstream request, following redirects under the rules above. `auth` goes only to
    `auth_origin`'s scheme, host and port (default: `url`'s), so a file on another host (a
    `file_hosts` entry) never receives the upstream's credentials. `body` (bytes): POST only,
    which follows no redirect. The caller reads or releases the returned UpstreamResponse."""
    if method not in ("GET", "HEAD", "POST"):
        raise ValueError("only GET, HEAD and POST go upstream")
    if (body is not None) != (method == "POST"):
        raise ValueError("a POST, and only a POST, sends a body")
    auth = dict(auth or {})
    origin = _origin(auth_origin or url)
    for _hop in range(MAX_REDIRECTS + 1):
        try:
            target = addresses.vet(url)
        except addresses.AddressRefused as exc:
            raise UpstreamUnavailable(f"refused by the address policy: {exc}") from exc
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        send = {"Host": target.netloc, "User-Agent": USER_AGENT, "Accept-Encoding": "gzip", **(headers or {})}
        if _origin(url) == origin:
            send.update(auth)
        try:
            raw = _open(method, target, path, send, body)
        except EmptyPoolError as exc:
            raise UpstreamBusy(f"all connections to {target.host} stayed in use") from exc
        except HTTPError as exc:
            raise UpstreamUnavailable(f"cannot reach {target.host}: {exc.__class__.__name__}") from exc
        response = UpstreamResponse(raw.status, {k.lower(): v for k, v in raw.headers.items()}, url, raw)
        if raw.status not in REDIRECTS or not response.header("location") or method == "POST":
            return response
        response.release()
        next_url = urljoin(url, response.header("location"))
        if urlsplit(url).scheme == "https" and urlsplit(next_url).scheme != "https":
            raise UpstreamUnavailable("refused a redirect from https to http")
        url = next_url
    raise UpstreamUnavailable(f"more than {MAX_REDIRECTS} redirects")


def _inflation_check(response):
    """A function of the inflated size so far that raises UpstreamTooLarge past MAX_RATIO to
    the compressed bytes read (a no-op for bodies sent as they are)."""
    if response.header("content-encoding").strip().lower() in ("", "identity"):
        return lambda size: None

    def check(size):
        if size > RATIO_FLOOR and size > MAX_RATIO * max(response.raw.tell(), 1):
            raise UpstreamTooLarge(f"the upstream body inflates more than {MAX_RATIO}:1")

    return check


def read_small(response, cap):
    """The whole body (decompressed), at most `cap` bytes; UpstreamTooLarge beyond."""
    length = response.header("content-length")
    if length.isdigit() and response.header("content-encoding") in ("", "identity") and int(length) > cap:
        response.discard()
        raise UpstreamTooLarge(f"the upstream document is over {cap} bytes")
    chunks, size = [], 0
    check = _inflation_check(response)
    try:
        for chunk in response.raw.stream(64 * 1024, decode_content=True):
            size += len(chunk)
            if size > cap:
                raise UpstreamTooLarge(f"the upstream document is over {cap} bytes")
            check(size)
            chunks.append(chunk)
    except HTTPError as exc:
        response.discard()
        raise UpstreamUnavailable(f"the upstream connection failed: {exc.__class__.__name__}") from exc
    except BaseException:
        response.discard()
        raise
    response.raw.release_conn()
    return b"".join(chunks)


def read_to_spool(response, cap):
    """The whole body (decompressed) in a Spool (hashed), at most `cap` bytes (0: none)."""
    length = response.header("content-length")
    if cap and length.isdigit() and response.header("content-encoding") in ("", "identity") and int(length) > cap:
        response.discard()
        raise UpstreamTooLarge(f"the upstream file is over {cap} bytes")
    writer = spool_writer(cap, prefix="upstream-")
    check = _inflation_check(response)
    try:
        for chunk in response.raw.stream(1024 * 1024, decode_content=True):
            writer.write(chunk)
            check(writer.size)
        if length.isdigit() and response.header("content-encoding") in ("", "identity") and writer.size != int(length):
            raise UpstreamUnavailable("the upstream body ended before Content-Length bytes")
    except TooLarge as exc:
        writer.abort()
        response.discard()
        raise UpstreamTooLarge(f"the upstream file is over {cap} bytes") from exc
    except HTTPError as exc:
        writer.abort()
        response.discard()
        raise UpstreamUnavailable(f"the upstream connection failed: {exc.__class__.__name__}") from exc
    except BaseException:
        writer.abort()
        response.discard()
        raise
    response.raw.release_conn()
    return writer.finish()
