"""Virtual registries under concurrent load (spec §3.4, §5.5), through the Maven client endpoint
against real upstream servers on 127.0.0.1:

- the outbound cap: this process never holds more than PACKHOUSE_VR_MAX_OUTBOUND_PER_UPSTREAM
  connections to one upstream at once, however many client requests miss at the same time (the
  server counts the connections it has open);
- a request that waits for another one's fetch of the same path longer than
  PACKHOUSE_VR_FETCH_WAIT_SECONDS gets 503 with `Retry-After: 5`.
"""

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.test import Client

from accounts.roles import AccessLevel
from registry.models import CacheEntry, RegistryUpstream, Upstream, VirtualRegistry
from registry.virtual import flight
from tests.factories import AccessTokenFactory, GroupFactory, member
from tests.helpers import auth_headers

pytestmark = pytest.mark.usefixtures("local_upstreams_allowed")

BODY = b"jar bytes"


class _CountingServer(ThreadingHTTPServer):
    """Counts the TCP connections it has open at once (one handler per connection)."""

    daemon_threads = True

    def __init__(self, handler):
        super().__init__(("127.0.0.1", 0), handler)
        self.lock = threading.Lock()
        self.open = 0
        self.most = 0
        self.requests = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class _SlowJar(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: pooled connections are reused

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.open += 1
            self.server.most = max(self.server.most, self.server.open)

    def finish(self):
        with self.server.lock:
            self.server.open -= 1
        super().finish()

    def do_GET(self):
        with self.server.lock:
            self.server.requests += 1
        time.sleep(0.4)
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("X-Checksum-Sha1", hashlib.sha1(BODY).hexdigest())
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


def _registry(group, url):
    upstream = Upstream.objects.create(group=group, format="maven", kind="remote", name="slow", url=url)
    registry = VirtualRegistry.objects.create(group=group, format="maven", name="r")
    RegistryUpstream.objects.create(registry=registry, upstream=upstream, position=1)
    return registry, upstream


@pytest.mark.django_db(transaction=True)
def test_outbound_connections_to_one_upstream_are_capped(settings):
    settings.VR_MAX_OUTBOUND_PER_UPSTREAM = 3
    group = GroupFactory(path="acme")
    reader = auth_headers(AccessTokenFactory(user=member(group, AccessLevel.GUEST)).plaintext)
    server = _CountingServer(_SlowJar)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        registry, _ = _registry(group, server.url)
        results = []

        def fetch(number):
            path = f"com/example/lib{number}/1.0/lib{number}-1.0.jar"  # distinct: no single flight
            response = Client().get(f"/api/v4/virtual_registries/packages/maven/{registry.pk}/{path}", **reader)
            results.append((response.status_code, b"".join(response.streaming_content)))
            connection.close()

        threads = [threading.Thread(target=fetch, args=(number,)) for number in range(9)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.shutdown()
        server.server_close()
    assert results == [(200, BODY)] * 9
    assert server.requests == 9
    assert 1 <= server.most <= 3  # nine concurrent misses, never more than three connections
    assert CacheEntry.objects.count() == 9


@pytest.mark.django_db(transaction=True)
def test_a_waiter_past_the_limit_gets_503_with_retry_after(settings):
    settings.VR_FETCH_WAIT_SECONDS = 1
    group = GroupFactory(path="acme")
    reader = auth_headers(AccessTokenFactory(user=member(group, AccessLevel.GUEST)).plaintext)
    server = _CountingServer(_SlowJar)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = "com/example/lib/1.0/lib-1.0.jar"
    try:
        registry, upstream = _registry(group, server.url)
        fetching, done = threading.Event(), threading.Event()

        def another_fetch():  # holds the path's flight, as a request fetching it would
            with flight.single_flight(upstream.pk, f"/{path}"):
                fetching.set()
                done.wait(30)
            connection.close()

        holder = threading.Thread(target=another_fetch)
        holder.start()
        assert fetching.wait(10)
        try:
            waited = Client().get(f"/api/v4/virtual_registries/packages/maven/{registry.pk}/{path}", **reader)
        finally:
            done.set()
            holder.join()
        assert waited.status_code == 503 and waited["Retry-After"] == "5"
        assert "being fetched" in waited.json()["message"]
        assert server.requests == 0 and not CacheEntry.objects.exists()

        # Once the other fetch is over, the path is fetched.
        again = Client().get(f"/api/v4/virtual_registries/packages/maven/{registry.pk}/{path}", **reader)
        assert again.status_code == 200 and b"".join(again.streaming_content) == BODY
    finally:
        server.shutdown()
        server.server_close()
