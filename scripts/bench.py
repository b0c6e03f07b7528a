"""`make bench`: start the production shape (gunicorn + Celery on PostgreSQL and Redis), seed it,
run each workload with a bounded load tool, print a table and write it as JSON.

    .venv/bin/python scripts/bench.py [--quick] [--scale-only | --virtual-only] [--out var/bench/results.json]

Workloads: cached and cold npm packument, PyPI simple page and Cargo sparse index file, Conan's
`latest` revision, RubyGems' compact index `info` and Go's `@v/list` (wrk, concurrency 32), a
100 MiB download against nginx serving the same file, a large generic upload with the worker's
peak RSS growth, sequential npm publishes, PyPI uploads, Cargo publishes, Conan uploads, gem
pushes and Go module uploads, `npm install` / `pip install` of 50 packages from a fresh
cache, the same cached documents and `npm install` through virtual registries
(scripts/bench_virtual.py) and the scale row (scripts/bench_scale.py). Timings are reported, never
asserted.

The server runs on the database PACKHOUSE_BENCH_DATABASE (default `packhouse_bench`, dropped and
created again) and the Redis db PACKHOUSE_BENCH_REDIS_URL (default `redis://127.0.0.1:6379/5`).
"""

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.formats.golang.modules import module_zip  # noqa: E402
from tests.formats.rubygems.gems import gem  # noqa: E402
from tests.payloads import cargo_publish_body, npm_document, twine_form  # noqa: E402

VENV_BIN = Path(sys.executable).parent
# A database and a Redis db of the bench's own (another checkout's bench may run beside this one).
BENCH_DB = os.environ.get("PACKHOUSE_BENCH_DATABASE", "packhouse_bench")
BENCH_REDIS_URL = os.environ.get("PACKHOUSE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`make serve` in a process group of its own, on a dedicated database and Redis db."""

    def __init__(self, workdir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.env = {
            **os.environ,
            "PACKHOUSE_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
            "PACKHOUSE_REDIS_URL": BENCH_REDIS_URL,
            "PACKHOUSE_STORAGE_URL": str(workdir / "storage"),
            "PACKHOUSE_SPOOL_DIR": str(workdir / "spool"),
            "PACKHOUSE_BIND": f"127.0.0.1:{self.port}",
            "PACKHOUSE_WORKERS": os.environ.get("PACKHOUSE_WORKERS", "4"),
            "PACKHOUSE_GENERIC_MAX_FILE_SIZE": str(4 * 1024**3),
            "PACKHOUSE_CACHE_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
            # The virtual registry rows use this server's own project endpoint as a remote upstream.
            "PACKHOUSE_VR_ALLOW_HTTP": "true",
            "PACKHOUSE_VR_ALLOWED_HOSTS": "127.0.0.1",
        }
        self.process = None

    def start(self):
        log = open(self.workdir / "server.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "serve"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/-/health", timeout=1).read()  # noqa: S310 - our own http URL
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.5)
        raise RuntimeError((self.workdir / "server.log").read_text()[-3000:])

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def worker_pids(self):
        out = subprocess.run(
            ["pgrep", "-f", f"gunicorn packhouse.wsgi:application --bind 127.0.0.1:{self.port}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        pids = [int(p) for p in out]
        # Workers are the children of the gunicorn master.
        return [
            p
            for p in pids
            if Path(f"/proc/{p}/stat").exists() and int(Path(f"/proc/{p}/stat").read_text().split()[3]) in pids
        ]


def reset_database():
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def setup_django(env):
    os.environ.update({k: v for k, v in env.items() if k.startswith("PACKHOUSE_")})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "packhouse.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed_identities():
    from accounts import tokens
    from accounts.models import AccessToken, Group, Project, User

    user = User.objects.create_user("bench", password=uuid.uuid4().hex, is_superuser=True)
    group = Group.objects.create(name="bench", path="bench", visibility="private")
    project = Project.objects.create(name="bench", path="bench", group=group, visibility="private")
    token = tokens.issue(AccessToken(user=user, name="bench", scopes=["api"]), tokens.PERSONAL_PREFIX)
    return project, token


def http(method, url, token, body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - our own http URL
    request.add_header("Authorization", f"Bearer {token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
        return response.status, response.read()


# --- payload builders ---------------------------------------------------------------------


# --- measurements -------------------------------------------------------------------------


def wrk(url, token, seconds, accept=None, connections=32, pids=(), timeout=None):
    """Requests/s and latency at `connections`, after a 2 s warm-up run at the same load (every
    worker process fills its memory of the document once; that is what the cold figure measures).

    With the workers' `pids`, also the CPU time they spent per request (user + system, from
    /proc): a count that depends far less on what else the machine is doing than requests/s."""
    warm = wrk_run(url, token, 2, accept, connections, timeout)
    before = cpu_seconds(pids)
    measured = wrk_run(url, token, seconds, accept, connections, timeout)
    if pids:
        spent = cpu_seconds(pids) - before
        measured["server_cpu_us_per_request"] = round(spent * 1e6 / max(measured.pop("requests"), 1))
    else:
        measured.pop("requests")
    return {**measured, "warm_up_requests_per_s": warm["requests_per_s"]}


def cpu_seconds(pids):
    """User + system CPU seconds the processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def wrk_run(url, token, seconds, accept, connections, timeout=None):
    """One wrk run; `timeout` (e.g. "30s") replaces wrk's 2 s, after which it gives up on an answer
    and counts a time-out (the workers still spend the CPU)."""
    args = [
        "wrk",
        "-t",
        "2",
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
        "-H",
        "Accept-Encoding: gzip",  # as npm and pip send it
    ]
    if accept:
        args += ["-H", f"Accept: {accept}"]
    if timeout:
        args += ["--timeout", timeout]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non_2xx = int(errors.group(1)) if errors else 0
    result = {"requests_per_s": rps, "p50_ms": p50, "p99_ms": p99, "non_2xx": non_2xx, "requests": requests}
    timeouts = re.search(r"Socket errors:.*timeout (\d+)", out)
    if timeouts and int(timeouts.group(1)):
        result["timeouts"] = int(timeouts.group(1))
    return result


def _ms(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return round(float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit], 2)


def cold_ms(url, token, bump, runs=5, accept=None):
    """Latency of a request whose document is not cached (its epochs changed before each)."""
    samples = []
    for _ in range(runs):
        bump()
        start = time.perf_counter()
        http("GET", url, token, headers={"Accept": accept} if accept else None)
        samples.append((time.perf_counter() - start) * 1000)
    return round(sorted(samples)[len(samples) // 2], 1)


def curl_speed(url, headers=()):
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}"]
    for header in headers:
        args += ["-H", header]
    return float(subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout)


@contextlib.contextmanager
def nginx_serving(file_path, workdir):
    """nginx serving `file_path` straight from disk with sendfile; yields its URL."""
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
daemon off; user root root; worker_processes 2; pid {workdir}/nginx.pid; error_log {workdir}/nginx-error.log;
events {{ worker_connections 64; }}
http {{ access_log off; sendfile on; tcp_nopush on;
  server {{ listen 127.0.0.1:{port}; location / {{ root {file_path.parent}; }} }} }}
""")
    process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(workdir)], stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/{file_path.name}"
        wait_for(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def x_accel_serving(server, path):
    """Packhouse behind nginx with PACKHOUSE_X_ACCEL_REDIRECT_PREFIX (Django authorizes, nginx
    sends the bytes); yields the URL of `path` through nginx."""
    workdir = server.workdir
    app_port, proxy_port = free_port(), free_port()
    env = {**server.env, "PACKHOUSE_X_ACCEL_REDIRECT_PREFIX": "/_storage/"}
    app = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "packhouse.wsgi:application",
            "--bind",
            f"127.0.0.1:{app_port}",
            "--workers",
            "2",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    conf = workdir / "nginx-proxy.conf"
    conf.write_text(f"""
daemon off; user root root; worker_processes 2; pid {workdir}/nginx-proxy.pid; error_log {workdir}/nginx-proxy.log;
events {{ worker_connections 64; }}
http {{ access_log off; sendfile on; tcp_nopush on;
  server {{ listen 127.0.0.1:{proxy_port};
    location /_storage/ {{ internal; alias {workdir / "storage"}/; }}
    location / {{ proxy_pass http://127.0.0.1:{app_port}; proxy_set_header Host $http_host; }} }} }}
""")
    proxy = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(workdir)], stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{proxy_port}/-/health")
        yield f"http://127.0.0.1:{proxy_port}{path}"
    finally:
        for process in (proxy, app):
            process.terminate()
            process.wait(timeout=10)


def wait_for(url, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()  # noqa: S310 - our own http URL
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def download_speeds(sources, runs):
    """Median bytes/s per source over `runs` rounds, the sources interleaved in every round so
    that drift on a shared machine hits them alike; each source is fetched once first to warm up
    (worker connections, page cache)."""
    samples = {name: [] for name in sources}
    for url, headers in sources.values():
        curl_speed(url, headers)
    for _ in range(runs):
        for name, (url, headers) in sources.items():
            samples[name].append(curl_speed(url, headers))
    return {name: statistics.median(values) for name, values in samples.items()}


def peak_rss_growth_mib(pids, action):
    baselines = {}
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        baselines[pid] = _status_kib(pid, "VmHWM")
    action()
    return round(max((_status_kib(pid, "VmHWM") - baselines[pid]) / 1024 for pid in pids), 1)


def _status_kib(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller data and shorter runs (< 3 minutes)")
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "results.json"))
    parser.add_argument(
        "--scale-only", action="store_true", help="only the scale row (1,000 projects, 100,000 versions)"
    )
    parser.add_argument(
        "--virtual-only",
        action="store_true",
        help="only the virtual registry rows (cached documents and npm install through a virtual registry)",
    )
    options = parser.parse_args()
    quick = options.quick
    versions = 200 if quick else 1000
    seconds = 4 if quick else 15
    upload_mib = 256 if quick else 1024
    sequential = 50 if quick else 200
    install_count = 10 if quick else 50

    workdir = Path(tempfile.mkdtemp(prefix="packhouse-bench-"))
    reset_database()
    server = Server(workdir)
    results = {
        "quick": quick,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
            "gunicorn_workers": int(server.env["PACKHOUSE_WORKERS"]),
        },
    }
    server.start()
    try:
        setup_django(server.env)
        project, token = seed_identities()
        api = f"{server.url}/api/v4/projects/{project.pk}/packages"
        from registry.models import Package
        from registry.services import package_changed

        def changed(name, package_format=None):
            """What every write does: new epochs, so nothing cached is used."""
            rows = Package.objects.filter(name=name).order_by("pk")  # one row changes the name's epochs
            package_changed((rows.filter(format=package_format) if package_format else rows).first())

        names = [f"lib{i}" for i in range(install_count)]
        if options.virtual_only:
            results["seed_npm_versions"] = seed_npm_big(api, token, versions)
            results["seed_pypi_files"] = seed_pypi_big(api, token, versions)
            seed_install_set(api, token, names)
        if not options.scale_only and not options.virtual_only:
            # npm: one package with many versions.
            results["seed_npm_versions"] = seed_npm_big(api, token, versions)
            packument = f"{api}/npm/@bench%2fbig"
            results["npm_packument_cached"] = wrk(packument, token, seconds, pids=server.worker_pids())
            results["npm_packument_cold_ms"] = cold_ms(packument, token, lambda: changed("@bench/big"))

            # PyPI: one project with many files.
            results["seed_pypi_files"] = seed_pypi_big(api, token, versions)
            simple = f"{api}/pypi/simple/bench-big/"
            results["pypi_simple_cached"] = wrk(simple, token, seconds, accept="text/html", pids=server.worker_pids())
            results["pypi_simple_cold_ms"] = cold_ms(
                simple, token, lambda: changed("bench-big", "pypi"), accept="text/html"
            )

            # Cargo: one crate with many versions, its sparse index file (one JSON line per version).
            start = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda i: publish_crate(api, token, "bench-big", f"1.0.{i}"), range(versions)))
            results["seed_cargo_versions"] = {"count": versions, "seconds": round(time.perf_counter() - start, 1)}
            index_file = f"{api}/cargo/index/be/nc/bench-big"
            results["cargo_index_cached"] = wrk(index_file, token, seconds, pids=server.worker_pids())
            results["cargo_index_cold_ms"] = cold_ms(index_file, token, lambda: changed("bench-big", "cargo"))

            # Conan: one recipe version with many recipe revisions (one package each); `latest` is
            # what `conan install` asks first.
            start = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(
                    pool.map(lambda i: upload_conan(api, token, "bench-big", "1.0", f"{i:032x}"), range(versions // 10))
                )
            results["seed_conan_revisions"] = {
                "count": versions // 10,
                "seconds": round(time.perf_counter() - start, 1),
            }
            conan_latest = f"{api}/conan/v2/conans/bench-big/1.0/_/_/latest"
            results["conan_latest"] = wrk(conan_latest, token, seconds)

            # RubyGems: one gem with many versions, its compact index `info` file (what Bundler reads).
            start = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda i: push_gem(api, token, "bench-big", f"1.0.{i}"), range(versions // 10)))
            results["seed_gem_versions"] = {"count": versions // 10, "seconds": round(time.perf_counter() - start, 1)}
            results["rubygems_info"] = wrk(f"{api}/rubygems/info/bench-big", token, seconds)

            # Go: one module with many versions, its `@v/list` (what `go get` asks first).
            start = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(
                    pool.map(
                        lambda i: upload_module(api, token, "example.com/bench/big", f"v1.0.{i}"), range(versions // 10)
                    )
                )
            results["seed_go_versions"] = {"count": versions // 10, "seconds": round(time.perf_counter() - start, 1)}
            results["go_list"] = wrk(f"{api}/go/example.com/bench/big/@v/list", token, seconds)

            # 100 MiB download: Packhouse (FileResponse + sendfile) against nginx on the same file.
            big = workdir / "download.bin"
            with big.open("wb") as handle:
                for _ in range(100):
                    handle.write(os.urandom(1024 * 1024))
            content = big.read_bytes()
            http("PUT", f"{api}/generic/download/1/download.bin", token, content)
            sha256 = hashlib.sha256(content).hexdigest()
            del content
            big.unlink()
            blob = workdir / "storage" / "blobs" / sha256[:2] / sha256[2:4] / sha256
            runs = 5 if quick else 15
            authorized = [f"PRIVATE-TOKEN: {token}"]
            path = f"/api/v4/projects/{project.pk}/packages/generic/download/1/download.bin"
            with nginx_serving(blob, workdir) as nginx_url, x_accel_serving(server, path) as accel_url:
                speeds = download_speeds(
                    {
                        "ours": (server.url + path, authorized),
                        "nginx": (nginx_url, []),
                        "accel": (accel_url, authorized),
                    },
                    runs,
                )
            ours, theirs, accel = speeds["ours"], speeds["nginx"], speeds["accel"]
            results["download_100mib"] = {
                "packhouse_mib_s": round(ours / 1024**2),
                "packhouse_x_accel_mib_s": round(accel / 1024**2),
                "nginx_mib_s": round(theirs / 1024**2),
                "ratio": round(ours / theirs, 2),
                "x_accel_ratio": round(accel / theirs, 2),
            }

            # 1 MiB downloads at c=8: Packhouse (authorized, counted) against nginx serving the same bytes.
            small = os.urandom(1024 * 1024)
            http("PUT", f"{api}/generic/small/1/small.bin", token, small)
            small_sha256 = hashlib.sha256(small).hexdigest()
            small_blob = workdir / "storage" / "blobs" / small_sha256[:2] / small_sha256[2:4] / small_sha256
            small_path = f"/api/v4/projects/{project.pk}/packages/generic/small/1/small.bin"
            with nginx_serving(small_blob, workdir) as nginx_small:
                ours = wrk(server.url + small_path, token, seconds, connections=8, pids=server.worker_pids())
                theirs = wrk(nginx_small, token, seconds, connections=8)
            results["download_1mib_c8"] = {
                "packhouse": ours,
                "nginx": theirs,
                "ratio": round(ours["requests_per_s"] / theirs["requests_per_s"], 2),
            }

            # Large generic upload: the workers' peak RSS growth.
            upload_file = workdir / "upload.bin"
            with upload_file.open("wb") as handle:
                block = os.urandom(1024 * 1024)
                for index in range(upload_mib):
                    handle.write(index.to_bytes(4, "big") + block[4:])
            pids = server.worker_pids()

            def put_big():
                subprocess.run(
                    [
                        "curl",
                        "-s",
                        "-f",
                        "-o",
                        "/dev/null",
                        "-H",
                        f"PRIVATE-TOKEN: {token}",
                        "--upload-file",
                        str(upload_file),
                        f"{api}/generic/upload/1/upload.bin",
                    ],
                    check=True,
                )

            start = time.perf_counter()
            growth = peak_rss_growth_mib(pids, put_big)
            results["upload_large"] = {
                "mib": upload_mib,
                "seconds": round(time.perf_counter() - start, 1),
                "worker_peak_rss_growth_mib": growth,
            }
            upload_file.unlink()

            # Sequential publishes.
            start = time.perf_counter()
            for i in range(sequential):
                http(
                    "PUT",
                    f"{api}/npm/@bench%2fseq",
                    token,
                    npm_document("@bench/seq", f"2.0.{i}"),
                    {"Content-Type": "application/json"},
                )
            results["npm_publish_sequential"] = {
                "count": sequential,
                "ms_per_publish": round((time.perf_counter() - start) * 1000 / sequential, 1),
            }
            start = time.perf_counter()
            for i in range(sequential):
                body, content_type = twine_form("bench-seq", f"2.0.{i}")
                http("POST", f"{api}/pypi", token, body, {"Content-Type": content_type})
            results["pypi_upload_sequential"] = {
                "count": sequential,
                "ms_per_upload": round((time.perf_counter() - start) * 1000 / sequential, 1),
            }

            start = time.perf_counter()
            for i in range(sequential):
                publish_crate(api, token, "bench-seq", f"2.0.{i}")
            results["cargo_publish_sequential"] = {
                "count": sequential,
                "ms_per_publish": round((time.perf_counter() - start) * 1000 / sequential, 1),
            }

            start = time.perf_counter()
            for i in range(sequential // 5):
                upload_conan(api, token, "bench-seq", f"2.0.{i}", "a" * 32)
            results["conan_upload_sequential"] = {
                "count": sequential // 5,
                "ms_per_upload": round((time.perf_counter() - start) * 1000 * 5 / sequential, 1),
            }

            start = time.perf_counter()
            for i in range(sequential):
                push_gem(api, token, "bench-seq", f"2.0.{i}")
            results["gem_push_sequential"] = {
                "count": sequential,
                "ms_per_push": round((time.perf_counter() - start) * 1000 / sequential, 1),
            }

            start = time.perf_counter()
            for i in range(sequential):
                upload_module(api, token, "example.com/bench/seq", f"v2.0.{i}+incompatible")
            results["go_upload_sequential"] = {
                "count": sequential,
                "ms_per_upload": round((time.perf_counter() - start) * 1000 / sequential, 1),
            }

            # npm install / pip install of N packages from a fresh cache.
            seed_install_set(api, token, names)
            consumer = workdir / "consumer"
            consumer.mkdir()
            host = server.url.split("://", 1)[1]
            (consumer / ".npmrc").write_text(
                f"@bench:registry={api}/npm/\n//{host}/api/v4/projects/{project.pk}/packages/npm/:_authToken={token}\n"
            )
            (consumer / "package.json").write_text(
                json.dumps(
                    {"name": "consumer", "version": "1.0.0", "dependencies": {f"@bench/{n}": "1.0.0" for n in names}}
                )
            )
            start = time.perf_counter()
            subprocess.run(
                [
                    "npm",
                    "install",
                    "--cache",
                    str(workdir / "npm-cache"),
                    "--no-audit",
                    "--no-fund",
                    "--loglevel",
                    "error",
                ],
                cwd=consumer,
                check=True,
                env={**os.environ, "HOME": str(workdir), "npm_config_userconfig": str(consumer / ".npmrc")},
            )
            results["npm_install"] = {"packages": install_count, "seconds": round(time.perf_counter() - start, 2)}
            start = time.perf_counter()
            index = f"http://__token__:{token}@{host}/api/v4/projects/{project.pk}/packages/pypi/simple"
            subprocess.run(
                [
                    str(VENV_BIN / "pip"),
                    "install",
                    "--quiet",
                    "--no-cache-dir",
                    "--no-deps",
                    "--target",
                    str(workdir / "site"),
                    "--index-url",
                    index,
                    *[f"bench-{n}" for n in names],
                ],
                check=True,
            )
            results["pip_install"] = {"packages": install_count, "seconds": round(time.perf_counter() - start, 2)}
        if not options.scale_only:
            # Virtual registries: the same documents and installs through them (scripts/bench_virtual.py).
            import bench_virtual

            results["virtual"] = bench_virtual.measure(
                server, token, project.group_id, project.pk, http, wrk, cpu_seconds, seconds, names, workdir
            )
        if not options.virtual_only:
            # Scale: 1,000 projects in 50 groups, 100,000 versions (scripts/bench_scale.py).
            import bench_scale

            start = time.perf_counter()
            top, count = bench_scale.seed()
            results["scale_seed"] = {"versions": count, "seconds": round(time.perf_counter() - start, 1)}
            results["scale"] = bench_scale.measure(server.url, token, top, http, changed)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nwritten to {out}")


def seed_npm_big(api, token, versions):
    """One npm package with `versions` versions (`@bench/big`)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda i: http(
                    "PUT",
                    f"{api}/npm/@bench%2fbig",
                    token,
                    npm_document("@bench/big", f"1.0.{i}"),
                    {"Content-Type": "application/json"},
                ),
                range(versions),
            )
        )
    return {"count": versions, "seconds": round(time.perf_counter() - start, 1)}


def seed_pypi_big(api, token, versions):
    """One PyPI project with `versions` files (`bench-big`)."""
    start = time.perf_counter()

    def upload(i):
        body, content_type = twine_form("bench-big", f"1.0.{i}")
        return http("POST", f"{api}/pypi", token, body, {"Content-Type": content_type})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(upload, range(versions)))
    return {"count": versions, "seconds": round(time.perf_counter() - start, 1)}


def seed_install_set(api, token, names):
    """`@bench/<name>` (npm) and `bench-<name>` (PyPI), 1.0.0 each: what the install rows install."""
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda n: http(
                    "PUT",
                    f"{api}/npm/@bench%2f{n}",
                    token,
                    npm_document(f"@bench/{n}", "1.0.0"),
                    {"Content-Type": "application/json"},
                ),
                names,
            )
        )
        list(pool.map(lambda n: upload_named(api, token, f"bench-{n}"), names))


def publish_npm(api, token, name, version):
    document = npm_document(f"@bench/{name}", version)
    return http("PUT", f"{api}/npm/@bench%2f{name}", token, document, {"Content-Type": "application/json"})


def publish_crate(api, token, name, version):
    body = cargo_publish_body(name, version)
    return http("PUT", f"{api}/cargo/api/v1/crates/new", token, body, {"Content-Type": "application/octet-stream"})


def upload_conan(api, token, name, version, rrev):
    """`conan upload` of one recipe revision and one package revision: five PUTs, manifests last."""
    recipe = f"{api}/conan/v2/conans/{name}/{version}/_/_/revisions/{rrev}"
    package = f"{recipe}/packages/{'0' * 40}/revisions/{'1' * 32}"
    for url in (f"{recipe}/files/conanfile.py", f"{recipe}/files/conanmanifest.txt"):
        http("PUT", url, token, f"{url}\n".encode())
    for path in ("conan_package.tgz", "conaninfo.txt", "conanmanifest.txt"):
        http("PUT", f"{package}/files/{path}", token, f"{rrev} {path}\n".encode())


def push_gem(api, token, name, version):
    """`gem push`: the `.gem` as the body."""
    return http(
        "POST", f"{api}/rubygems/api/v1/gems", token, gem(name, version), {"Content-Type": "application/octet-stream"}
    )


def upload_module(api, token, module, version):
    """A Go module zip, uploaded as Gitea takes it."""
    data = module_zip(module, version)
    return http("PUT", f"{api}/go/upload", token, data, {"Content-Type": "application/zip"})


def upload_named(api, token, name):
    body, content_type = twine_form(name, "1.0.0")
    return http("POST", f"{api}/pypi", token, body, {"Content-Type": content_type})


def print_table(results):
    if "npm_packument_cached" not in results:  # --scale-only or --virtual-only
        only = {k: results[k] for k in ("scale_seed", "scale", "virtual") if k in results}
        print(json.dumps(only, indent=2))
        return
    rows = [
        ("npm packument, cached (req/s, p50, p99)", results["npm_packument_cached"]),
        ("npm packument, cold build (ms)", results["npm_packument_cold_ms"]),
        ("PyPI simple page, cached (req/s, p50, p99)", results["pypi_simple_cached"]),
        ("PyPI simple page, cold build (ms)", results["pypi_simple_cold_ms"]),
        ("Cargo index file, cached (req/s, p50, p99)", results["cargo_index_cached"]),
        ("Cargo index file, cold build (ms)", results["cargo_index_cold_ms"]),
        ("Conan recipe `latest` (req/s, p50, p99)", results["conan_latest"]),
        ("RubyGems compact index `info` (req/s, p50, p99)", results["rubygems_info"]),
        ("Go `@v/list` (req/s, p50, p99)", results["go_list"]),
        ("100 MiB download vs nginx", results["download_100mib"]),
        ("1 MiB downloads, c=8, vs nginx", results["download_1mib_c8"]),
        ("large generic upload", results["upload_large"]),
        ("sequential npm publishes", results["npm_publish_sequential"]),
        ("sequential PyPI uploads", results["pypi_upload_sequential"]),
        ("sequential Cargo publishes", results["cargo_publish_sequential"]),
        ("sequential Conan uploads (5 files each)", results["conan_upload_sequential"]),
        ("sequential gem pushes", results["gem_push_sequential"]),
        ("sequential Go module uploads", results["go_upload_sequential"]),
        ("npm install from a fresh cache", results["npm_install"]),
        ("pip install from a fresh cache", results["pip_install"]),
        ("virtual: packument, project / remote / local", results["virtual"]["npm_packument"]),
        ("virtual: simple page, project / remote / local", results["virtual"]["pypi_simple_page"]),
        ("virtual: npm install, project / remote / local", results["virtual"]["npm_install"]),
        ("scale: 1,000 projects, 100,000 versions", results["scale"]),
    ]
    print(f"\n{'workload':<46} result")
    print("-" * 100)
    for label, value in rows:
        print(f"{label:<46} {json.dumps(value)}")


if __name__ == "__main__":
    main()
