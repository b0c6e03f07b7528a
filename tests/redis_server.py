"""A redis-server process of a test's own, for tests that change what the server itself does
(stop it, fill it up) and so must not touch the Redis every other test (and xdist worker) uses.
Bound to 127.0.0.1 on a free port; `persistent` keeps an append-only file in `directory`, so a
stopped server started again holds what it held."""

import subprocess
import time

import redis

from tests.conftest import _free_port


class RedisServer:
    def __init__(self, directory, persistent=False):
        self.directory = directory
        self.persistent = persistent
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--dir", str(self.directory)]
        if self.persistent:
            command += ["--appendonly", "yes", "--appendfsync", "always"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except (redis.ConnectionError, redis.BusyLoadingError):
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
