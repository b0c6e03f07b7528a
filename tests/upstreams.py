"""Real upstream servers for virtual registry tests (no mocks): python's own `http.server`
serving a directory, in a subprocess on a free 127.0.0.1 port, that a test can stop (an outage)
and start again. It answers GET and HEAD, sends Last-Modified and honours If-Modified-Since (304)."""

import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StaticUpstream:
    def __init__(self, directory, log_path=None):
        self.directory = directory
        self.port = free_port()
        self.process = None
        self.log_path = log_path or f"{directory}.requests.log"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--directory",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "ab"),  # noqa: SIM115 - the child holds it
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).read()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the upstream server did not start") from None
                time.sleep(0.1)

    def requests(self):
        """The request lines the server logged (`GET /path HTTP/1.1`), oldest first."""
        try:
            with open(self.log_path, errors="replace") as log:
                return [line.split('"')[1] for line in log if line.count('"') >= 2]
        except FileNotFoundError:
            return []

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
