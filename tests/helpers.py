"""Small helpers shared by tests."""

import base64
import random
import socket
import time
from pathlib import Path


def stored_objects(blob_dir):
    """Relative names of every object in the blob store (temporary parts included)."""
    return sorted(str(p.relative_to(blob_dir)) for p in Path(blob_dir).rglob("*") if p.is_file())


def auth_headers(token, kind="private"):
    """Request headers for a token, in one of the accepted spellings."""
    if kind == "private":
        return {"HTTP_PRIVATE_TOKEN": token}
    if kind == "job":
        return {"HTTP_JOB_TOKEN": token}
    if kind == "deploy":
        return {"HTTP_DEPLOY_TOKEN": token}
    if kind == "bearer":
        return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if kind.startswith("basic:"):
        username = kind.split(":", 1)[1]
        encoded = base64.b64encode(f"{username}:{token}".encode()).decode()
        return {"HTTP_AUTHORIZATION": f"Basic {encoded}"}
    raise ValueError(kind)


def answered(log, method, path_pattern):
    """The statuses a live server's access log shows for requests whose path matches `path_pattern`
    (a regular expression; the query string, if any, follows it)."""
    import re

    pattern = re.compile(rf'"{method} ({path_pattern})(\?[^" ]*)? HTTP/[\d.]+" (\d{{3}})')
    return [int(match.group(3)) for match in pattern.finditer(log)]


INSTALL_LOCK = "/tmp/packhouse-installs.lock"  # the one scripts/install-*.sh take with flock(1)


def installing():
    """Held while a test installs a tool (apt-get, npm into a shared directory): parallel test
    workers install one at a time, and the one that waited finds the tool there."""
    import contextlib
    import fcntl

    @contextlib.contextmanager
    def held():
        with open(INSTALL_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    return held()


def _ephemeral_range():
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(n):
    """`n` distinct ports free now, below the kernel's ephemeral range: a stopped server starts
    again on its ports (tests that stop the store on purpose), and a port from that range may be
    taken meanwhile by any outgoing connection of the machine (one of them once held the gRPC
    port of a restarting SeaweedFS). Every server a test starts takes its ports from here."""
    low = max(1024, _ephemeral_range()[0] - 12000)
    high = _ephemeral_range()[0] - 1
    ports = []
    while len(ports) < n:
        port = random.randint(low, high)  # noqa: S311 - not a secret
        if port in ports:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    return ports


def free_port():
    return free_ports(1)[0]


def flushed_download_count(version_query, expected, seconds=10):
    """The download count of the one version `version_query` (a PackageVersion queryset) finds,
    once the live server's workers have sent their batch (PACKHOUSE_DOWNLOAD_COUNT_BATCH_SECONDS)
    and the flush has written it: flushed until it is `expected` or `seconds` have passed."""
    from registry import download_counts

    deadline = time.monotonic() + seconds
    while True:
        download_counts.flush()
        count = version_query.get().download_count
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.1)
