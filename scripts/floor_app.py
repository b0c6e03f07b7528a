"""The floor of a node: a WSGI application that runs no Packhouse code and answers every request
with the bytes of one file, gzip-encoded as Packhouse answers a cached packument
(PACKHOUSE_FLOOR_BODY names the file). `scripts/bench_servers.py --servers node-floor` runs it in
place of Packhouse behind the same nginx and uWSGI (packhouse.node's configuration), so the
difference between its row and `nginx-uwsgi`'s is what Packhouse's own code costs per answer, and
its row is the most that any answer through the nginx → uWSGI hop can reach on this machine."""

import os

with open(os.environ["PACKHOUSE_FLOOR_BODY"], "rb") as handle:
    BODY = handle.read()
HEADERS = [
    ("Content-Type", "application/json"),
    ("Content-Encoding", "gzip"),
    ("Vary", "Accept-Encoding"),
    ("Content-Length", str(len(BODY))),
]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
