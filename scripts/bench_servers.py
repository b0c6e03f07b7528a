"""The same Django application under gunicorn (gthread, `make serve`'s worker shape), Granian (a
Rust HTTP server, its WSGI interface) and uWSGI (C; pyuwsgi, answering HTTP in its workers,
`uwsgi-socket`, or behind its own evented HTTP router, `uwsgi`), each one worker pinned to one core
with the load on the other: the replay path (cached packument and simple page, c=32), 1 MiB
downloads (c=8), each with the server's CPU per request, then what `make serve` must keep: a
streamed upload (the worker's peak RSS growth for a 256 MiB body), downloads through sendfile (the
server's CPU per 1 MiB download says whether the bytes went through Python), clients that keep
their connections open (4 per thread: how many are answered) and a graceful restart under load
(SIGHUP during a wrk run: failed requests counted). nginx serving the 1 MiB file and the
packument's gzip bytes itself is measured in every round, for the issue's ratios. `nginx-uwsgi`
is `make serve`'s node (packhouse.node: uWSGI behind its own nginx, X-Accel-Redirect downloads),
`node-floor` the same node running an application that only answers the packument's bytes
(scripts/floor_app.py: the most any answer through that hop reaches, metadata rows only);
`nginx-gunicorn` runs gunicorn behind nginx the same way (class BehindNginx).

    PACKHOUSE_BENCH_DB=packhouse_servers .venv/bin/python scripts/bench_servers.py [--quick]
        [--servers gunicorn,granian,uwsgi-socket,uwsgi,nginx-uwsgi,node-floor,nginx-gunicorn] [--pairs 2]

Granian (pinned, from PyPI) is installed into var/bench-tools/granian-2.8.7 and runs the project's
own environment's packages (PYTHONPATH), so every server runs the same code; uWSGI is the project's
own pyuwsgi (a dependency: a node runs it). The runs alternate the servers (`--pairs` rounds of each, in the order
given) so that drift hits all of them."""

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("PACKHOUSE_BENCH_DB", "packhouse_servers")

import bench  # noqa: E402
import bench_peers  # noqa: E402
from bench_common import (  # noqa: E402
    LOAD_PREFIX,
    free_port,
    http,
    nginx_static,
    pin_load,
    pin_processes,
    process_tree,
    wait_for,
    write_static,
    wrk,
    wrk_run,
)

from packhouse import node  # noqa: E402

GRANIAN = ["granian==2.8.7"]
THREADS = 8  # make serve's threads per worker; Granian's blocking threads


class Gunicorn:
    label = "gunicorn"
    metadata_only = False  # True: only the metadata rows (no download, upload or restart)

    def __init__(self, env, workdir):
        self.env, self.workdir, self.port = env, workdir, free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def command(self):
        return [
            str(bench.VENV_BIN / "gunicorn"),
            "packhouse.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            str(THREADS),
            "--timeout",
            "600",
        ]

    def start(self):
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / f"{self.label}.log", "ab"),  # noqa: SIM115 - the child holds it
            start_new_session=True,
        )
        wait_for(f"{self.url}/-/health", 120)
        pin_processes(process_tree(self.process.pid))
        return self

    def pids(self):
        return process_tree(self.process.pid)

    def reload(self):
        os.kill(self.process.pid, signal.SIGHUP)

    def worker(self):
        return self.pids()[-1]

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


class Granian(Gunicorn):
    label = "granian"

    def start(self):
        bin_dir = bench_peers.tool_venv("granian-2.8.7", GRANIAN)
        site = sysconfig.get_paths()["purelib"]  # the project environment's packages
        self.process = subprocess.Popen(
            [
                str(bin_dir / "granian"),
                "--interface",
                "wsgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--blocking-threads",
                str(THREADS),
                "--access-log",
                "packhouse.wsgi:application",
            ],
            cwd=ROOT,
            env={**self.env, "PYTHONPATH": os.pathsep.join([str(ROOT), site])},
            stdout=open(self.workdir / f"{self.label}-access.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(f"{self.url}/-/health", 120)
        pin_processes(process_tree(self.process.pid))
        return self


class Uwsgi(Gunicorn):
    """uWSGI (pyuwsgi, the project's own environment) behind its own HTTP router: the router (C,
    evented) holds the client connections and their keep-alive, the worker gets each request over
    a local uwsgi socket."""

    label = "uwsgi"

    def command(self):
        return [
            str(bench.VENV_BIN / "uwsgi"),
            "--ini",
            str(ROOT / "deploy" / "uwsgi.ini"),
            "--http",
            f"127.0.0.1:{self.port}",
            "--http-keepalive",
            "--tcp-nodelay",
            "--processes",
            "1",
            "--threads",
            str(THREADS),
        ]


class UwsgiSocket(Uwsgi):
    """uWSGI answering HTTP/1.1 itself in its workers (http11-socket: a kept-alive connection holds
    a thread)."""

    label = "uwsgi-socket"

    def command(self):
        command = super().command()
        at = command.index("--http")
        command[at : at + 3] = ["--http11-socket", f"127.0.0.1:{self.port}"]
        return command


class BehindNginx:
    """A server behind nginx, as `deploy/nginx.conf` runs a node: nginx (one worker) holds the
    client connections and their keep-alive, streams request bodies through, and sends each
    download itself (PACKHOUSE_X_ACCEL_REDIRECT_PREFIX: the application answers the header,
    remembered and replayed like a file); both pinned to the server core. `inner` is the
    application server, listening on a local port of its own."""

    inner = None
    metadata_only = False
    label = None

    def __init__(self, env, workdir):
        self.port, self.workdir = free_port(), workdir
        self.url = f"http://127.0.0.1:{self.port}"
        inner_env = {**env, "PACKHOUSE_X_ACCEL_REDIRECT_PREFIX": "/_storage/"}
        self.app = self.inner(inner_env, workdir)
        self.app.label = self.label

    def upstream(self):
        raise NotImplementedError

    def start(self):
        self.app.start()
        storage = self.app.env["PACKHOUSE_STORAGE_URL"]
        conf = self.workdir / f"{self.label}-nginx.conf"
        conf.write_text(f"""
daemon off; user root root; worker_processes 1; pid {self.workdir}/{self.label}-nginx.pid;
error_log {self.workdir}/{self.label}-nginx-error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; tcp_nopush on; client_max_body_size 0;
  server {{ listen 127.0.0.1:{self.port};
    {node.x_accel_location(storage)}
    location / {{ {self.upstream()} }} }} }}
""")
        self.process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(self.workdir)], stderr=subprocess.DEVNULL)
        wait_for(f"{self.url}/-/health", 60)
        pin_processes([*process_tree(self.process.pid), *self.app.pids()])
        return self

    def pids(self):
        return [*process_tree(self.process.pid), *self.app.pids()]

    def reload(self):
        self.app.reload()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.app.stop()


class Node(Gunicorn):
    """`make serve`'s node (packhouse.node): uWSGI behind its own nginx, here one uWSGI worker and
    one nginx worker; nginx sends the downloads (X-Accel-Redirect), SIGHUP to the node is a chain
    reload (worker by worker, the socket kept). On a hang at stop, py-spy's dump of each process
    goes to its log."""

    label = "nginx-uwsgi"

    def command(self):
        return [
            str(bench.VENV_BIN / "python"),
            *("-m", "packhouse.node", "--listen", f"127.0.0.1:{self.port}", "--processes", "1"),
            *("--nginx-workers", "1", "--state-dir", str(self.workdir / f"node-{self.port}")),
        ]

    def worker(self):
        return node.uwsgi_workers(self.process.pid)[0]

    def stop(self):
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            with open(self.workdir / f"{self.label}-stuck.log", "ab") as log:
                for pid in self.pids():
                    subprocess.run(
                        [str(bench.VENV_BIN / "py-spy"), "dump", "--pid", str(pid)], stdout=log, stderr=log, check=False
                    )
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            raise


class NodeFloor(Node):
    """The node with no Packhouse in it: the same nginx configuration and uWSGI options, running
    scripts/floor_app.py, which answers every request with the cached packument's gzip bytes. Its
    metadata rows are the most any answer through the node's nginx → uWSGI hop reaches here;
    `nginx-uwsgi`'s rows against them are what Packhouse's own code costs."""

    label = "node-floor"
    metadata_only = True

    def command(self):
        return [
            str(bench.VENV_BIN / "python"),
            __file__,
            "--floor-node",
            f"127.0.0.1:{self.port}",
            str(self.state_dir()),
        ]

    def state_dir(self):
        return self.workdir / f"node-{self.port}"


def run_floor_node(listen, state_dir):
    """NodeFloor's process: packhouse.node's nginx and uWSGI, uWSGI loading floor_app instead."""
    uwsgi, nginx, environment = node.commands(listen, 1, state_dir, nginx_workers=1)
    environment["PYTHONPATH"] = str(ROOT / "scripts")
    return node.supervise([*uwsgi, "--module", "floor_app:application"], nginx, state_dir, environment)


class GunicornBehindNginx(BehindNginx):
    """`make serve`'s gunicorn behind nginx (HTTP/1.1, kept-alive upstream connections)."""

    label = "nginx-gunicorn"
    inner = Gunicorn

    def upstream(self):
        return (
            f"proxy_pass http://127.0.0.1:{self.app.port}; proxy_http_version 1.1; "
            'proxy_set_header Connection ""; proxy_set_header Host $http_host; '
            "proxy_request_buffering off; proxy_buffering off; proxy_read_timeout 600s;"
        )


SERVERS = {kind.label: kind for kind in (Gunicorn, Granian, Uwsgi, UwsgiSocket, Node, NodeFloor, GunicornBehindNginx)}


def rows(server, api_path, token, seconds):
    base = server.url + api_path
    measured = {
        "npm_packument": wrk(f"{base}/npm/@bench%2fbig", token, seconds, pids=server.pids()),
        "pypi_simple": wrk(f"{base}/pypi/simple/bench-big/", token, seconds, accept="text/html", pids=server.pids()),
    }
    if not server.metadata_only:
        measured["download_1mib_c8"] = wrk(
            f"{base}/generic/small/1/small.bin", token, seconds, connections=8, pids=server.pids()
        )
    return measured


def upload_growth(server, api_path, token, path, mib):
    def put():
        subprocess.run(
            [
                *LOAD_PREFIX,
                "curl",
                "-s",
                "-f",
                "-o",
                "/dev/null",
                "-H",
                f"PRIVATE-TOKEN: {token}",
                "--upload-file",
                str(path),
                f"{server.url}{api_path}/generic/upload-{server.label}/1/upload.bin",
            ],
            check=True,
        )

    start = time.perf_counter()
    growth = bench.peak_rss_growth_mib(server.pids(), put)
    return {"mib": mib, "seconds": round(time.perf_counter() - start, 1), "peak_rss_growth_mib": growth}


def kept_alive_connections(server, api_path, token, count=4 * THREADS):
    """`count` clients that keep their connection open, as npm's and pip's do: each asks for the
    packument once, then all ask again; how many got each answer within 2 s. A server that holds
    a thread for each kept-alive connection answers only as many as it has threads."""
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    path = f"{api_path}/npm/@bench%2fbig"
    connections = [HTTPConnection("127.0.0.1", server.port, timeout=2) for _ in range(count)]
    answered = []
    for _ in range(2):
        ok = 0
        for connection in connections:
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                ok += response.status == 200
            except OSError:
                connection.close()
        answered.append(ok)
    for connection in connections:
        connection.close()
    return {"connections": count, "answered_first": answered[0], "answered_again": answered[1]}


def restart_under_load(server, api_path, token):
    """SIGHUP to the server's main process 2 s into a 6 s wrk run on the packument; what failed."""
    url = f"{server.url}{api_path}/npm/@bench%2fbig"
    timer = threading.Timer(2, server.reload)
    old_workers = set(server.pids())
    timer.start()
    args = [*LOAD_PREFIX, "wrk", "-t", "2", "-c", "32", "-d", "6s", "-H", f"Authorization: Bearer {token}", url]
    out = subprocess.run(args, capture_output=True, text=True, check=False).stdout
    timer.join()
    time.sleep(3)
    try:
        wait_for(f"{server.url}/-/health", 30)
        alive = True
    except OSError:
        alive = False
    pin_processes(server.pids())
    errors = [line.strip() for line in out.splitlines() if "errors" in line or "Non-2xx" in line]
    return {
        "answers_after": alive,
        "workers_replaced": bool(old_workers - set(server.pids())),
        "wrk_errors": errors,
        "requests": out.split(" requests in")[0].split()[-1] if " requests in" in out else None,
    }


def main():
    if sys.argv[1:2] == ["--floor-node"]:
        return run_floor_node(sys.argv[2], Path(sys.argv[3]))
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument(
        "--servers", default="gunicorn,granian", help=f"comma-separated, of {','.join(SERVERS)}, run in this order"
    )
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "servers.json"))
    options = parser.parse_args()
    kinds = [SERVERS[name] for name in options.servers.split(",")]
    pin_load()
    versions, seconds, upload_mib = (200, 4, 64) if options.quick else (1000, 15, 256)
    workdir = Path(tempfile.mkdtemp(prefix="packhouse-servers-"))
    bench.reset_database()
    seeder = bench.Server(workdir)  # make serve's shape for the seeding, unpinned
    seeder.start()
    servers = []
    results = {"load_average_at_start": os.getloadavg(), "threads": THREADS, "versions": versions}
    try:
        bench.setup_django(seeder.env)
        project, token = bench.seed_identities()
        api_path = f"/api/v4/projects/{project.pk}/packages"
        api = seeder.url + api_path
        results["seed_npm_versions"] = bench.seed_npm_big(api, token, versions)
        results["seed_pypi_files"] = bench.seed_pypi_big(api, token, versions)
        small = os.urandom(1024 * 1024)
        http("PUT", f"{api}/generic/small/1/small.bin", token, small)
        sha256 = hashlib.sha256(small).hexdigest()
        small_blob = Path(seeder.env["PACKHOUSE_STORAGE_URL"]) / "blobs" / sha256[:2] / sha256[2:4] / sha256
        # The packument as a static file for nginx (gzip_static, as make bench's metadata rows);
        # node-floor answers the same .gz bytes.
        static_root = workdir / "static-metadata"
        write_static(static_root / "npm" / "@bench" / "big", http("GET", f"{api}/npm/@bench%2fbig", token)[1])
        floor_body = static_root / "npm" / "@bench" / "big.gz"
        seeder.stop()
        env = {k: v for k, v in seeder.env.items() if k != "PACKHOUSE_BIND"}
        env["PACKHOUSE_FLOOR_BODY"] = str(floor_body)
        runs = {kind.label: [] for kind in kinds}
        for _ in range(options.pairs):
            for kind in kinds:
                server = kind(env, workdir).start()
                servers.append(server)
                runs[server.label].append(rows(server, api_path, token, seconds))
                server.stop()
            nginx_rows = {}
            with bench.nginx_serving(small_blob, workdir) as url:  # the same bytes, no Python
                nginx_rows["download_1mib_c8"] = wrk(url, None, seconds, connections=8)
            with nginx_static(static_root, workdir, name="metadata") as (url, pid):
                nginx_rows["npm_packument"] = wrk(f"{url}/npm/@bench%2fbig", None, seconds, pids=process_tree(pid))
            runs.setdefault("nginx", []).append(nginx_rows)
        results["runs"] = runs
        results["medians"] = {
            label: {
                row: {
                    key: statistics.median(run[row][key] for run in label_runs)
                    for key in ("requests_per_s", "server_cpu_us_per_request", "p50_ms", "p99_ms", "non_2xx")
                    if key in label_runs[0][row]
                }
                for row in label_runs[0]
            }
            for label, label_runs in runs.items()
        }
        upload_file = workdir / "upload.bin"
        with upload_file.open("wb") as handle:
            for _ in range(upload_mib):
                handle.write(os.urandom(1024 * 1024))
        results["upload"], results["graceful_restart"], results["kept_alive"] = {}, {}, {}
        for kind in (kind for kind in kinds if not kind.metadata_only):
            server = kind(env, workdir).start()
            servers.append(server)
            results["upload"][server.label] = upload_growth(server, api_path, token, upload_file, upload_mib)
            results["kept_alive"][server.label] = kept_alive_connections(server, api_path, token)
            wrk_run(f"{server.url}{api_path}/npm/@bench%2fbig", token, 1, None, 8)  # warm
            results["graceful_restart"][server.label] = restart_under_load(server, api_path, token)
            server.stop()
    finally:
        for server in servers:
            try:
                server.stop()
            except (OSError, subprocess.TimeoutExpired):
                pass
        seeder.stop()
        if not list(workdir.glob("*-stuck.log")):
            shutil.rmtree(workdir, ignore_errors=True)
    results["load_average_at_end"] = os.getloadavg()
    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: results[k] for k in ("medians", "upload", "kept_alive", "graceful_restart")}, indent=2))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    sys.exit(main())
