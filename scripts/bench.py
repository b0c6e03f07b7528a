"""`make bench`: start the production shape (`make serve`: uWSGI behind nginx, and Celery, on
PostgreSQL and Redis), seed it, run each workload with a bounded load tool, print a table and write it as JSON.

    .venv/bin/python scripts/bench.py [--quick] [--out var/bench/results.json]

Workloads: cached and cold npm packument, PyPI simple page and Cargo sparse index file, Conan's
`latest` revision, RubyGems' compact index `info` and Go's `@v/list` (wrk, concurrency 32), a
100 MiB download against nginx serving the same file, a large generic upload with the worker's
peak RSS growth, sequential npm publishes, PyPI uploads, Cargo publishes, Conan uploads, gem
pushes and Go module uploads, and `npm install` / `pip install` of 50 packages from a fresh
cache. Timings are reported, never asserted.
"""

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench_installs  # noqa: E402
import bench_peers  # noqa: E402
from bench_common import (  # noqa: E402
    LOAD_CPU,
    LOAD_PREFIX,
    SERVER_CPU,
    cpu_seconds,
    free_port,
    http,
    nginx_static,
    pin_load,
    pin_processes,
    pinned,
    process_tree,
    wait_for,
    write_static,
    wrk,
)

from tests.formats.golang.modules import module_zip  # noqa: E402
from tests.formats.rubygems.gems import gem  # noqa: E402
from tests.payloads import cargo_publish_body, npm_document, twine_form  # noqa: E402

VENV_BIN = Path(sys.executable).parent
# A database and a Redis db of its own (made anew each run); override on a shared machine.
BENCH_DB = os.environ.get("PACKHOUSE_BENCH_DB") or os.environ.get("PACKHOUSE_BENCH_DATABASE", "packhouse_bench")
BENCH_REDIS_URL = os.environ.get("PACKHOUSE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")


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
            "PACKHOUSE_NODE_DIR": str(workdir / "node"),
            "PACKHOUSE_GENERIC_MAX_FILE_SIZE": str(4 * 1024**3),
            "PACKHOUSE_CACHE_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
            # The virtual registry rows pull through this server's own endpoints over http.
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
                if pinned():  # make, the Celery worker, uWSGI's master and workers, nginx
                    pin_processes(process_tree(self.process.pid))
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
        """The processes that answer requests, whose CPU is the server's: the node's uWSGI
        workers and its nginx."""
        from packhouse import node

        nodes = [pid for pid in process_tree(self.process.pid) if "packhouse.node" in _command_line(pid)]
        return [pid for pid in nodes for pid in (*node.uwsgi_workers(pid), *node.nginx_processes(pid))]


def _command_line(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


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


# --- payload builders ---------------------------------------------------------------------


# --- measurements -------------------------------------------------------------------------


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
    args = [*LOAD_PREFIX, "curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}"]
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
        if pinned():  # on the servers' core, as Packhouse is
            pin_processes(process_tree(process.pid))
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


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


# --- seeding ----------------------------------------------------------------------------------


def seed_npm_big(api, token, versions):
    """npm: one package with many versions."""
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: publish_npm(api, token, "big", f"1.0.{i}"), range(versions)))
    return {"count": versions, "seconds": round(time.perf_counter() - start, 1)}


def seed_pypi_big(api, token, versions):
    """PyPI: one project with many files."""
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: upload_named(api, token, "bench-big", f"1.0.{i}"), range(versions)))
    return {"count": versions, "seconds": round(time.perf_counter() - start, 1)}


def seed_install_packages(api, token, count):
    """What the install rows install: `@bench/lib<i>` and `bench-lib<i>`, one version each."""
    names = [f"lib{i}" for i in range(count)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: publish_npm(api, token, n, "1.0.0"), names))
        list(pool.map(lambda n: upload_named(api, token, f"bench-{n}"), names))


# --- against nginx serving the same bytes, and the peers ---------------------------------------


def metadata_against_nginx(api, token, seconds, workdir):
    """The cached metadata rows against nginx serving Packhouse's own answers as static files,
    precompressed (gzip_static), as wrk asks them (gzip)."""
    root = workdir / "static-metadata"
    _, packument = http("GET", f"{api}/npm/@bench%2fbig", token)
    _, simple = http("GET", f"{api}/pypi/simple/bench-big/", token, headers={"Accept": "text/html"})
    write_static(root / "npm" / "@bench" / "big", packument)
    write_static(root / "simple" / "bench-big" / "index.html", simple)
    with nginx_static(root, workdir, name="metadata") as (url, pid):
        return {
            "npm_packument": wrk(f"{url}/npm/@bench%2fbig", None, seconds, pids=process_tree(pid)),
            "pypi_simple": wrk(f"{url}/simple/bench-big/", None, seconds, accept="text/html", pids=process_tree(pid)),
        }


def start_peers(workdir):
    """Verdaccio, pypiserver and devpi-server, started (and pinned, as Packhouse is)."""
    started = []
    try:
        for peer in (bench_peers.VerdaccioPeer, bench_peers.PypiServer, bench_peers.Devpi):
            started.append(peer(workdir / "peers").start())
    except BaseException:
        for peer in started:
            peer.stop()
        raise
    return started


def bench_peers_rows(server, api, token, peers, versions, seconds, install_count, workdir):
    """Seed every peer with Packhouse's own files (its answers copied: same bytes), then the
    cached metadata and 1 MiB download rows for Packhouse, nginx and each peer."""
    verdaccio, pypiserver, devpi = peers
    rows = {"seed_seconds": {}}
    # The 1 MiB files: a wheel, an npm tarball (random bytes: gzip cannot shrink them) and a
    # generic file, on Packhouse.
    payload = os.urandom(1024 * 1024)
    upload_named(api, token, "bench-download", payload=payload)
    publish_npm(api, token, "download", "1.0.0", payload=payload)
    http("PUT", f"{api}/generic/peer-download/1/download.bin", token, payload)
    # Copies of Packhouse's answers: files, pages, packuments.
    static = workdir / "static-peers"
    pypi_names = ["bench-big", "bench-download", *[f"bench-lib{i}" for i in range(install_count)]]
    npm_names = ["@bench/big", "@bench/download", *[f"@bench/lib{i}" for i in range(install_count)]]
    pypi_files = bench_installs.static_pypi(f"{api}/pypi/simple", token, pypi_names, static)
    npm_versions = bench_installs.static_npm(f"{api}/npm", token, npm_names, static, "http://unused")

    start = time.perf_counter()
    pypiserver.seed([static / local for files in pypi_files.values() for _, _, local in files])
    rows["seed_seconds"]["pypiserver"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    uploads = []
    for name, files in pypi_files.items():
        for file_name, _, local in files:
            version = file_name.split("-")[1]
            uploads.append((name, version, file_name, (static / local).read_bytes()))
    devpi.seed(uploads)
    rows["seed_seconds"]["devpi"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    for name, entries in npm_versions.items():
        verdaccio.seed(
            name, [(version, manifest, (static / local).read_bytes()) for version, manifest, local in entries]
        )
    rows["seed_seconds"]["verdaccio"] = round(time.perf_counter() - start, 1)
    for peer in peers:
        peer.pin()

    # Cached metadata, c=32 (Packhouse's own rows are the metadata section's, same pinning).
    rows["npm_packument_verdaccio"] = wrk(f"{verdaccio.url}/@bench%2fbig", None, seconds, pids=verdaccio.pids())
    for peer in (pypiserver, devpi):
        rows[f"pypi_simple_{peer.label}"] = wrk(
            f"{peer.index_url}/bench-big/", None, seconds, accept="text/html", pids=peer.pids()
        )

    # 1 MiB downloads, c=8: Packhouse through each format's route, nginx, each peer.
    wheel_name = pypi_files["bench-download"][0][0]
    tarball_name = "download-1.0.0.tgz"
    _, document = http("GET", f"{verdaccio.url}/@bench%2fdownload")
    sources = {
        "packhouse_pypi": (
            bench_installs.link_of(f"{api}/pypi/simple/bench-download/", wheel_name, token),
            server.worker_pids(),
        ),
        "packhouse_npm": (f"{api}/npm/@bench/download/-/@bench/{tarball_name}", server.worker_pids()),
        "packhouse_generic": (f"{api}/generic/peer-download/1/download.bin", server.worker_pids()),
        "pypiserver": (
            bench_installs.link_of(f"{pypiserver.index_url}/bench-download/", wheel_name, None),
            pypiserver.pids(),
        ),
        "devpi": (bench_installs.link_of(f"{devpi.index_url}/bench-download/", wheel_name, None), devpi.pids()),
        "verdaccio": (json.loads(document)["versions"]["1.0.0"]["dist"]["tarball"], verdaccio.pids()),
    }
    downloads = {}
    for label, (url, pids) in sources.items():
        downloads[label] = wrk(url, token if label.startswith("packhouse") else None, seconds, connections=8, pids=pids)
    wheel_local = pypi_files["bench-download"][0][2]
    with nginx_static(static, workdir, name="downloads") as (url, pid):
        downloads["nginx"] = wrk(f"{url}/{wheel_local}", None, seconds, connections=8, pids=process_tree(pid))
    rows["download_1mib_c8"] = downloads
    return rows


def install_rows(server, api, token, peers, count, rounds, workdir):
    """pip and npm installs of `count` packages against Packhouse, nginx serving the same files
    and the peers, interleaved (scripts/bench_installs.py)."""
    static = workdir / "static-installs"
    pip_names = [f"bench-lib{i}" for i in range(count)]
    npm_names = [f"@bench/lib{i}" for i in range(count)]
    host = server.url.split("://", 1)[1]
    project_path = api.split(host, 1)[1].removesuffix("/packages")
    port = free_port()
    nginx_url = f"http://127.0.0.1:{port}"
    bench_installs.static_pypi(f"{api}/pypi/simple", token, pip_names, static)
    bench_installs.static_npm(f"{api}/npm", token, npm_names, static, nginx_url)
    dependencies = {name: "1.0.0" for name in npm_names}

    def pip(index_url):
        return lambda directory: bench_installs.pip_install(index_url, pip_names, directory)

    def npm(lines):
        return lambda directory: bench_installs.npm_install(lines, dependencies, directory)

    def pip_index(token, user="__token__"):
        return f"http://{user}:{token}@{host}{project_path}/packages/pypi/simple"

    def npmrc(token):
        return [f"@bench:registry={api}/npm/", f"//{host}{project_path}/packages/npm/:_authToken={token}"]

    jobs = CiJobs()

    with nginx_static(static, workdir, port=port, name="installs") as (_, nginx_pid):
        nginx_pids = process_tree(nginx_pid)
        pip_targets = {
            "packhouse": (pip(pip_index(token)), server.worker_pids),
            "nginx": (pip(f"{nginx_url}/pypi/simple"), lambda: nginx_pids),
        }
        npm_targets = {
            "packhouse": (npm(npmrc(token)), server.worker_pids),
            "nginx": (npm([f"@bench:registry={nginx_url}/npm/"]), lambda: nginx_pids),
        }
        for peer in peers:
            if isinstance(peer, bench_peers.VerdaccioPeer):
                npm_targets[peer.label] = (npm(peer.npmrc_lines()), peer.pids)
            else:
                pip_targets[peer.label] = (pip(peer.index_url), peer.pids)
        # A CI job's own token each install: nothing it asks for was answered to it before, so
        # every answer is built by Django (from cached documents) rather than replayed. Added
        # last, once the number of targets (hence of rounds, and of jobs) is known.
        pip_job = jobs.each(
            lambda job_token: pip(pip_index(job_token, "gitlab-ci-token")), rounds, len(pip_targets) + 1
        )
        pip_targets["packhouse-job"] = (pip_job, server.worker_pids)
        npm_job = jobs.each(lambda job_token: npm(npmrc(job_token)), rounds, len(npm_targets) + 1)
        npm_targets["packhouse-job"] = (npm_job, server.worker_pids)
        try:
            return {
                "packages": count,
                "pip_install": bench_installs.measure(pip_targets, rounds, workdir / "pip"),
                "npm_install": bench_installs.measure(npm_targets, rounds, workdir / "npm"),
            }
        finally:
            jobs.finish()


class CiJobs:
    """CI jobs of the bench project, started ahead (a job's start is not part of the install it
    runs), one per install, finished at the end."""

    def __init__(self):
        from accounts.models import Membership, Project, User
        from accounts.roles import AccessLevel

        self.project, self.user = Project.objects.get(path="bench"), User.objects.get(username="bench")
        # A job's token carries its user's membership, never the instance admin's reach.
        Membership.objects.get_or_create(user=self.user, project=self.project, access_level=AccessLevel.DEVELOPER)
        self.started = []

    def each(self, install_with, rounds, targets):
        """An install function running `install_with(job token)` with a new job's token each call,
        for the first install and the `rounds` measure() runs among `targets` targets."""
        from accounts import jobs

        tokens = []
        for _ in range(bench_installs.balanced_rounds(rounds, targets) + 1):
            job, job_token = jobs.start_job(self.project, self.user, name="bench-install")
            self.started.append(job)
            tokens.append(job_token)
        return lambda directory: install_with(tokens.pop())(directory)

    def finish(self):
        from accounts import jobs

        for job in self.started:
            jobs.finish_job(job)


SECTIONS = ("metadata", "formats", "downloads", "upload", "publishes", "installs", "peers", "virtual", "scale")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller data and shorter runs (< 3 minutes)")
    parser.add_argument(
        "--versions",
        type=int,
        help="versions of the one large package of each format (default 1,000; 200 with --quick); devpi "
        "takes its uploads in time that grows with the project's size",
    )
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "results.json"))
    parser.add_argument(
        "--scale-only", action="store_true", help="only the scale row (1,000 projects, 100,000 versions)"
    )
    parser.add_argument(
        "--virtual-only", action="store_true", help="only the virtual registry rows (the same as --only virtual)"
    )
    parser.add_argument(
        "--only",
        help=f"comma-separated sections to run, of {','.join(SECTIONS)} (peers only with --peers)",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also Verdaccio, pypiserver and devpi-server, seeded with the same files (implies --pin)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help=f"servers on CPU {SERVER_CPU}, the load (wrk, curl, pip, npm) on CPU {LOAD_CPU}",
    )
    options = parser.parse_args()
    quick = options.quick
    versions = options.versions or (200 if quick else 1000)
    seconds = 4 if quick else 15
    upload_mib = 256 if quick else 1024
    sequential = 50 if quick else 200
    install_count = 10 if quick else 50
    if options.scale_only:
        sections = {"scale"}
    elif options.virtual_only:
        sections = {"virtual"}
    elif options.only:
        sections = set(options.only.split(","))
        unknown = sections - set(SECTIONS)
        if unknown:
            parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    else:
        sections = set(SECTIONS)
    if not options.peers:
        sections.discard("peers")
    if options.peers or options.pin:
        pin_load()

    workdir = Path(tempfile.mkdtemp(prefix="packhouse-bench-"))
    reset_database()
    server = Server(workdir)
    results = {
        "quick": quick,
        "sections": sorted(sections),
        "pinned": {"servers_cpu": SERVER_CPU, "load_cpu": LOAD_CPU} if pinned() else None,
        "load_average_at_start": os.getloadavg(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
            "node_workers": int(server.env["PACKHOUSE_WORKERS"]),
        },
    }
    server.start()
    peers = []
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

        if "metadata" in sections or "peers" in sections:
            results["seed_npm_versions"] = seed_npm_big(api, token, versions)
            results["seed_pypi_files"] = seed_pypi_big(api, token, versions)
        if "metadata" in sections:
            packument = f"{api}/npm/@bench%2fbig"
            results["npm_packument_cached"] = wrk(packument, token, seconds, pids=server.worker_pids())
            results["npm_packument_cold_ms"] = cold_ms(packument, token, lambda: changed("@bench/big"))
            simple = f"{api}/pypi/simple/bench-big/"
            results["pypi_simple_cached"] = wrk(simple, token, seconds, accept="text/html", pids=server.worker_pids())
            results["pypi_simple_cold_ms"] = cold_ms(
                simple, token, lambda: changed("bench-big", "pypi"), accept="text/html"
            )
            # nginx serving the same bytes: Packhouse's answers as static files (gzip_static).
            results["metadata_nginx"] = metadata_against_nginx(api, token, seconds, workdir)

        if "formats" in sections:
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

        if "downloads" in sections:
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
            with nginx_serving(blob, workdir) as nginx_url:
                speeds = download_speeds({"ours": (server.url + path, authorized), "nginx": (nginx_url, [])}, runs)
            ours, theirs = speeds["ours"], speeds["nginx"]
            results["download_100mib"] = {
                "packhouse_mib_s": round(ours / 1024**2),
                "nginx_mib_s": round(theirs / 1024**2),
                "ratio": round(ours / theirs, 2),
            }

            # 1 MiB downloads at c=8: Packhouse (authorized, counted) through its generic, PyPI and npm
            # routes against nginx serving the same bytes (the generic file; the other two are 1 MiB
            # of random bytes in a wheel or a tarball).
            small = os.urandom(1024 * 1024)
            http("PUT", f"{api}/generic/small/1/small.bin", token, small)
            small_sha256 = hashlib.sha256(small).hexdigest()
            small_blob = workdir / "storage" / "blobs" / small_sha256[:2] / small_sha256[2:4] / small_sha256
            small_path = f"/api/v4/projects/{project.pk}/packages/generic/small/1/small.bin"
            upload_named(api, token, "bench-small", payload=small)
            publish_npm(api, token, "small", "1.0.0", payload=small)
            _, page = http("GET", f"{api}/pypi/simple/bench-small/", token, headers={"Accept": "text/html"})
            wheel_name = unquote(bench_installs.ANCHOR.search(page.decode()).group(1).rsplit("/", 1)[1])
            routes = {
                "packhouse": server.url + small_path,
                "packhouse_pypi": bench_installs.link_of(f"{api}/pypi/simple/bench-small/", wheel_name, token),
                "packhouse_npm": f"{api}/npm/@bench/small/-/@bench/small-1.0.0.tgz",
            }
            rows = {
                label: wrk(url, token, seconds, connections=8, pids=server.worker_pids())
                for label, url in routes.items()
            }
            # nginx as in the peers' rows: one worker on the servers' core when pinned, its CPU counted.
            with nginx_static(small_blob.parent, workdir, name="small") as (nginx_small, nginx_pid):
                theirs = wrk(
                    f"{nginx_small}/{small_blob.name}", None, seconds, connections=8, pids=process_tree(nginx_pid)
                )
            results["download_1mib_c8"] = {
                **rows,
                "nginx": theirs,
                "ratio": round(rows["packhouse"]["requests_per_s"] / theirs["requests_per_s"], 2),
            }

        if "upload" in sections:
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

        if "publishes" in sections:
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

        if "installs" in sections or "peers" in sections:
            seed_install_packages(api, token, install_count)
        if "peers" in sections:
            peers = start_peers(workdir)
            results["peers"] = bench_peers_rows(server, api, token, peers, versions, seconds, install_count, workdir)
        if "installs" in sections or "peers" in sections:
            results["installs"] = install_rows(server, api, token, peers, install_count, 1 if quick else 9, workdir)
        if "virtual" in sections:
            # Virtual registries: the same documents and installs through them (scripts/bench_virtual.py).
            import bench_virtual

            if not sections & {"metadata", "peers"}:
                results["seed_npm_versions"] = seed_npm_big(api, token, versions)
                results["seed_pypi_files"] = seed_pypi_big(api, token, versions)
            if not sections & {"installs", "peers"}:
                seed_install_packages(api, token, install_count)
            names = [f"lib{i}" for i in range(install_count)]
            results["virtual"] = bench_virtual.measure(
                server, token, project.group_id, project.pk, http, wrk, cpu_seconds, seconds, names, workdir
            )
        if "scale" in sections:
            # Scale: 1,000 projects in 50 groups, 100,000 versions (scripts/bench_scale.py).
            import bench_scale

            start = time.perf_counter()
            top, count = bench_scale.seed()
            results["scale_seed"] = {"versions": count, "seconds": round(time.perf_counter() - start, 1)}
            results["scale"] = bench_scale.measure(server.url, token, top, http, changed)
    finally:
        for peer in peers:
            peer.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    results["load_average_at_end"] = os.getloadavg()

    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nwritten to {out}")


def publish_npm(api, token, name, version, payload=b""):
    document = npm_document(f"@bench/{name}", version, payload=payload)
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


def upload_named(api, token, name, version="1.0.0", payload=b""):
    body, content_type = twine_form(name, version, payload=payload)
    return http("POST", f"{api}/pypi", token, body, {"Content-Type": content_type})


LABELS = {
    "npm_packument_cached": "npm packument, cached (req/s, p50, p99)",
    "npm_packument_cold_ms": "npm packument, cold build (ms)",
    "pypi_simple_cached": "PyPI simple page, cached (req/s, p50, p99)",
    "pypi_simple_cold_ms": "PyPI simple page, cold build (ms)",
    "metadata_nginx": "nginx serving the same metadata (gzip_static)",
    "cargo_index_cached": "Cargo index file, cached (req/s, p50, p99)",
    "cargo_index_cold_ms": "Cargo index file, cold build (ms)",
    "conan_latest": "Conan recipe `latest` (req/s, p50, p99)",
    "rubygems_info": "RubyGems compact index `info` (req/s, p50, p99)",
    "go_list": "Go `@v/list` (req/s, p50, p99)",
    "download_100mib": "100 MiB download vs nginx",
    "download_1mib_c8": "1 MiB downloads, c=8, vs nginx",
    "upload_large": "large generic upload",
    "npm_publish_sequential": "sequential npm publishes",
    "pypi_upload_sequential": "sequential PyPI uploads",
    "cargo_publish_sequential": "sequential Cargo publishes",
    "conan_upload_sequential": "sequential Conan uploads (5 files each)",
    "gem_push_sequential": "sequential gem pushes",
    "go_upload_sequential": "sequential Go module uploads",
    "installs": "pip / npm installs, fresh client cache",
    "peers": "peers: metadata and 1 MiB downloads",
    "scale": "scale: 1,000 projects, 100,000 versions",
}


def print_table(results):
    print(f"\n{'workload':<46} result")
    print("-" * 100)
    for key, label in LABELS.items():
        if key in results:
            print(f"{label:<46} {json.dumps(results[key])}")
    if "installs" in results:
        print(
            f"\n{'install (fresh client cache)':<40} {'first s':>8} {'median s':>9} {'vs nginx':>9}"
            f" {'server CPU ms':>14} {'client CPU s':>13}"
        )
        for client in ("pip_install", "npm_install"):
            rows = results["installs"][client]
            for label, row in rows.items():
                print(
                    f"{client.split('_')[0] + ' install, ' + label:<40} {row['first_s']:>8} {row['median_s']:>9} "
                    f"{row.get('vs_nginx', ''):>9} {row['server_cpu_ms']:>14} {row['client_cpu_s']:>13}"
                )
            for label in ("packhouse", "packhouse-job"):
                if label in rows:
                    print(f"{'  ' + label + ', round by round, against':<40} {json.dumps(rows[label]['paired'])}")


if __name__ == "__main__":
    main()
