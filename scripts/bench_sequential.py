"""One answer at a time: `make serve` with one worker (pinned to one core when pinning), then N
sequential GETs of each kind of answer an install asks for, on one kept-alive connection from the
other core, and the worker's CPU and the wall time per answer.

    .venv/bin/python scripts/bench_sequential.py [-n 1500] [--django] [--only packument,tarball]

`--django` sets PACKHOUSE_RESPONSE_REUSE_SECONDS=0: no answer is replayed, each is built by Django
(from its cached document, or from its file), which is what a CI job's new token gets. Used for the
per-answer tables of BENCHMARKS.md; compare runs made one right after the other. Uses the bench's
database and Redis db (PACKHOUSE_BENCH_DB, PACKHOUSE_BENCH_REDIS_URL), made anew."""

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import bench
from bench_common import cpu_seconds, http, pin_load

PEP691 = "application/vnd.pypi.simple.v1+json"


def answers(api, token):
    """{kind: (URL, request headers)}: what `npm install` and `pip install` ask for one package."""
    _, body = http("GET", f"{api}/npm/@bench%2flib0", token, headers={"Accept": "application/json"})
    tarball = json.loads(body)["versions"]["1.0.0"]["dist"]["tarball"]
    page_url = f"{api}/pypi/simple/bench-lib0/"
    _, page = http("GET", page_url, token, headers={"Accept": PEP691})
    wheel = urljoin(page_url, json.loads(page)["files"][0]["url"])
    file_1mib = f"{api}/generic/sequential/1/file.bin"
    http("PUT", file_1mib, token, os.urandom(1 << 20))
    return {
        "packument": (f"{api}/npm/@bench%2flib0", {"Accept": "application/json", "Accept-Encoding": "gzip"}),
        "tarball": (tarball, {}),
        "simple-json": (page_url, {"Accept": PEP691, "Accept-Encoding": "gzip"}),
        "wheel": (wheel, {}),
        "metadata": (f"{wheel}.metadata", {}),
        "file-1mib": (file_1mib, {}),  # the 1 MiB download, one at a time
    }


def sequential(url, headers, count, pids):
    """(wall µs, worker CPU µs) per answer over `count` GETs on one connection, after 50 unmeasured."""
    parts = urlsplit(url)
    connection = HTTPConnection(parts.hostname, parts.port)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    for measured in (False, True):
        if measured:
            cpu_before, start = cpu_seconds(pids), time.perf_counter()
        for _ in range(count if measured else 50):
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status}")
    wall, cpu = time.perf_counter() - start, cpu_seconds(pids) - cpu_before
    connection.close()
    return wall / count * 1e6, cpu / count * 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=1500, help="measured GETs of each answer")
    parser.add_argument("--django", action="store_true", help="no replay: every answer built by Django")
    parser.add_argument(
        "--only", help="comma-separated answers, of packument,tarball,simple-json,wheel,metadata,file-1mib"
    )
    options = parser.parse_args()
    pin_load()
    os.environ["PACKHOUSE_WORKERS"] = "1"
    if options.django:
        os.environ["PACKHOUSE_RESPONSE_REUSE_SECONDS"] = "0"
    workdir = Path(tempfile.mkdtemp(prefix="packhouse-sequential-"))
    bench.reset_database()
    server = bench.Server(workdir)
    server.start()
    try:
        bench.setup_django(server.env)
        project, token = bench.seed_identities()
        api = f"{server.url}/api/v4/projects/{project.pk}/packages"
        bench.seed_install_packages(api, token, 1)
        credential = "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()
        chosen = set(options.only.split(",")) if options.only else None
        print(f"{'answer':<12} {'wall µs':>8} {'worker CPU µs':>14}")
        for kind, (url, headers) in answers(api, token).items():
            if chosen is None or kind in chosen:
                wall, cpu = sequential(url, {"Authorization": credential, **headers}, options.n, server.worker_pids())
                print(f"{kind:<12} {wall:>8.0f} {cpu:>14.0f}", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
