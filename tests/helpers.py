"""Small helpers shared by tests."""

import base64
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
