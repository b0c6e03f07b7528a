"""Epoch values this process has read, kept current by Redis itself, so that checking them needs
no round trip (registry.epochs).

Each process keeps one extra connection to Redis in RESP3 with client-side caching in broadcast
mode (`CLIENT TRACKING ON BCAST PREFIX <epoch keys>`): Redis pushes an `invalidate` message with
the key names on every change to an epoch key (SET, expiry, eviction; a FLUSHDB pushes "all").
A value read with MGET is kept here until its key is invalidated, and every lookup first reads
whatever Redis has pushed so far (one non-blocking recv on a quiet socket).

Why a lookup sees every change that finished before it began: Redis queues broadcast
invalidations before it writes the replies of the same event-loop turn, and writes the clients
queued last first, so the push reaches this process's socket before the writer's own SET
returns; a lookup reads the socket before it answers. That holds for a Redis on the same host
with one I/O thread (the default), nearly always: once, in a CI run of the whole suite on a loaded
machine, the reply overtook the push (most likely the kernel delivered the two writes on different
CPUs, Redis having moved between them); the change is then seen microseconds later.
`PACKHOUSE_EPOCH_PUSH=false` turns the mirror off and every check is a round trip again.

A read that races a change is never kept: the MGET is registered first, and an invalidation of
one of its keys that arrives before the values are stored makes the read stale. When the
connection fails or the process forks, everything known is dropped and checks go to Redis until
the connection is back (tried again after RETRY_SECONDS). A daemon thread drains the socket every
DRAIN_SECONDS so that an idle process never lets pushes pile up in Redis.
"""

import logging
import os
import socket
import threading
import time

import hiredis
import redis
from django.conf import settings
from django.core.signals import setting_changed

from registry import background

logger = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
DRAIN_SECONDS = 0.5
MAX_VALUES = 20_000  # ~300 bytes each; names are per credential and package: past this, start afresh
CONNECT_TIMEOUT = 1.0


def _command(*parts):
    """One command in RESP (an array of bulk strings)."""
    encoded = [part if isinstance(part, bytes) else str(part).encode() for part in parts]
    return b"".join([b"*%d\r\n" % len(encoded), *(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)])


class _Read:
    """An MGET under way: stale once one of its keys is invalidated before it is stored."""

    __slots__ = ("names", "stale")

    def __init__(self, names):
        self.names = set(names)
        self.stale = False


class EpochMirror:
    def __init__(self, url, prefix):
        self.url = url
        self.prefix = prefix  # the Redis key names every epoch key starts with
        self._lock = threading.Lock()
        self._sock = None
        self._reader = None
        self._closed = False
        self._warned = False
        self._retry_at = 0.0
        self._values = {}
        self._reads = []
        self._drainer = None

    # --- what registry.epochs asks -------------------------------------------------------------

    def lookup(self, names):
        """The current values of `names` (Redis key names), or None when any is not known."""
        with self._lock:
            if not self._ready():
                return None
            values = [self._values.get(name) for name in names]
        return None if None in values else values

    def begin_read(self, names):
        """Register an MGET of `names` about to be sent; None when nothing can be kept."""
        with self._lock:
            if not self._ready():
                return None
            read = _Read(names)
            self._reads.append(read)
            return read

    def end_read(self, read, names, values):
        """Keep what the MGET registered as `read` returned, unless a change raced it."""
        if read is None:
            return
        with self._lock:
            ready = self._ready()  # applies what arrived meanwhile, while `read` can still be marked
            self._reads.remove(read)
            if not ready or read.stale or values is None:  # None: the MGET failed
                return
            if len(self._values) + len(names) > MAX_VALUES:
                self._values.clear()
            for name, value in zip(names, values, strict=True):
                if value is not None:
                    self._values[name] = value

    def close(self):
        with self._lock:
            self._closed = True
            self._disconnect()

    # --- the connection ------------------------------------------------------------------------

    def _ready(self):
        """Connected, with every push received so far applied (the lock held)."""
        if self._closed:
            return False
        if self._sock is None:
            if time.monotonic() < self._retry_at:
                return False
            try:
                self._connect()
            except (OSError, ValueError, redis.RedisError) as exc:
                self._failed("unavailable", exc)
                return False
        try:
            self._drain()
        except (OSError, ValueError) as exc:
            self._failed("lost", exc)
            return False
        return True

    def _failed(self, what, exc):
        self._disconnect()
        self._retry_at = time.monotonic() + RETRY_SECONDS
        if not self._warned:  # once until the connection is back, not at every retry
            self._warned = True
            logger.warning("epoch invalidations %s, checking in Redis: %s", what, exc.__class__.__name__)

    def _connect(self):
        pool = redis.ConnectionPool.from_url(self.url)
        options = pool.connection_kwargs
        if pool.connection_class is redis.UnixDomainSocketConnection:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(options["path"])
        elif pool.connection_class is redis.Connection:
            sock = socket.create_connection((options["host"], options["port"]), timeout=CONNECT_TIMEOUT)
        else:
            raise ValueError("only redis:// and unix:// connections carry invalidations")
        self._sock, self._reader = sock, hiredis.Reader()
        hello = ["HELLO", 3]
        if options.get("password"):
            hello += ["AUTH", options.get("username") or "default", options["password"]]
        self._call(*hello)
        self._call("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", self.prefix)
        sock.setblocking(False)
        self._values.clear()
        self._warned = False
        if self._drainer is None or not self._drainer.is_alive():
            self._drainer = background.start(self._drain_forever, "epoch-mirror")

    def _call(self, *parts):
        """Send a command and wait for its reply (only while connecting, blocking)."""
        self._sock.sendall(_command(*parts))
        while (reply := self._reader.gets()) is False:
            data = self._sock.recv(65536)
            if not data:
                raise ConnectionError("closed while connecting")
            self._reader.feed(data)
        if isinstance(reply, hiredis.ReplyError):
            raise ValueError(str(reply))
        return reply

    def _drain(self):
        """Apply every push that has arrived (the socket is non-blocking)."""
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return
            if not data:
                raise ConnectionError("closed by Redis")
            self._reader.feed(data)
            while (message := self._reader.gets()) is not False:
                self._apply(message)

    def _apply(self, message):
        if isinstance(message, hiredis.ReplyError):
            raise ValueError(str(message))
        if not isinstance(message, list) or not message or message[0] != b"invalidate":
            return
        changed = message[1] if len(message) > 1 else None
        if changed is None:  # FLUSHDB / FLUSHALL: every key changed
            self._values.clear()
            for read in self._reads:
                read.stale = True
            return
        for raw in changed:
            name = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else str(raw)
            self._values.pop(name, None)
            for read in self._reads:
                if name in read.names:
                    read.stale = True

    def _disconnect(self):
        """Forget the socket and everything it vouched for (the lock held)."""
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock, self._reader = None, None
        self._values.clear()
        for read in self._reads:
            read.stale = True

    def _drain_forever(self):
        while not self._closed:
            time.sleep(DRAIN_SECONDS)
            with self._lock:
                if self._sock is not None:
                    self._ready()


_mirror = None
_mirror_lock = threading.Lock()


def mirror(prefix):
    """This process's mirror of the keys starting with `prefix` (registry.epochs names them), or
    None when there is none to keep (no Redis, or turned off)."""
    global _mirror
    if _mirror is None and settings.REDIS_URL and settings.EPOCH_PUSH:
        with _mirror_lock:
            if _mirror is None:
                _mirror = EpochMirror(settings.REDIS_URL, prefix)
    return _mirror


def _reset(setting, **kwargs):
    global _mirror
    if setting in ("REDIS_URL", "EPOCH_PUSH", "CACHES") and _mirror is not None:
        _mirror.close()
        _mirror = None


def _forget_in_child():
    """A forked child starts without a mirror: its parent's socket, lock and thread are not its."""
    global _mirror, _mirror_lock
    _mirror, _mirror_lock = None, threading.Lock()


setting_changed.connect(_reset, dispatch_uid="epoch-mirror-settings")
os.register_at_fork(after_in_child=_forget_in_child)
