"""The multi-node shape on one machine: two nodes (packhouse.node) with separate PACKHOUSE_VAR_DIRs (no
shared local disk), one Celery worker with beat, all on one PostgreSQL database, one Redis and
one S3 bucket (SeaweedFS), behind nginx (deploy/nginx.conf) balancing round-robin.

`make cluster` runs `main()` for a person to try it:

    .venv/bin/python scripts/cluster.py [--port 8080] [--dir var/cluster]

It needs PACKHOUSE_DATABASE_URL (postgres://...) and PACKHOUSE_REDIS_URL, keeps SeaweedFS's
data, ports and keys and the shared PACKHOUSE_SECRET_KEY under --dir, prints the balancer's URL
and, on first start, the admin's password and token; Ctrl-C stops everything. The two-node
tests (tests/cluster/) start the same `Cluster` on the test database.
"""

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SITE = ROOT / "deploy" / "nginx.conf"

# nginx's main configuration around the site file, with every path under the cluster's
# directory (Debian's /etc/nginx/nginx.conf plays this part in production).
NGINX_MAIN = """daemon off;
{user}worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/nginx-access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy_temp;
    fastcgi_temp_path {dir}/fastcgi_temp;
    uwsgi_temp_path {dir}/uwsgi_temp;
    scgi_temp_path {dir}/scgi_temp;
    include {site};
}}
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def render_site(listen, node_a, node_b):
    """deploy/nginx.conf with its three placeholders replaced (what envsubst with that list does)."""
    text = SITE.read_text()
    for name, value in (
        ("PACKHOUSE_NGINX_LISTEN", listen),
        ("PACKHOUSE_NODE_A", node_a),
        ("PACKHOUSE_NODE_B", node_b),
    ):
        text = text.replace("${" + name + "}", value)
    return text


def wait_for(url, process, log_path, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()  # noqa: S310 - our own loopback URL
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log = Path(log_path).read_text(errors="replace") if Path(log_path).exists() else ""
                raise RuntimeError(f"{url} did not answer:\n{log[-4000:]}") from None
            time.sleep(0.2)


class Process:
    """One child process in its own session (so a kill reaches all its children), logging to a file."""

    def __init__(self, name, command, env, log_path):
        self.name = name
        self.command = command
        self.env = env
        self.log_path = Path(log_path)
        self.process = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    @property
    def pid(self):
        return self.process.pid

    def running(self):
        return self.process is not None and self.process.poll() is None

    def send(self, sig):
        if self.running():
            os.killpg(self.process.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.process is None:
            return
        self.send(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Node(Process):
    """A node as `make serve` runs one (packhouse.node: uWSGI's workers behind the node's own
    nginx; the blob store is S3, so that nginx sends no files)."""

    def __init__(self, name, port, var_dir, env, workers):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.var_dir = Path(var_dir)
        self.var_dir.mkdir(parents=True, exist_ok=True)
        command = [
            str(VENV_BIN / "python"),
            *("-m", "packhouse.node", "--listen", f"127.0.0.1:{port}", "--processes", str(workers)),
            *("--state-dir", str(self.var_dir / "node"), "--nginx-workers", "1"),
        ]
        super().__init__(name, command, {**env, "PACKHOUSE_VAR_DIR": str(self.var_dir)}, self.var_dir / "node.log")

    def start(self):
        super().start()
        wait_for(f"{self.url}/-/health", self.process, self.log_path)
        return self

    def api(self, path):
        return f"{self.url}/api/v4/{path.lstrip('/')}"

    def worker_pids(self):
        from packhouse import node

        return node.uwsgi_workers(self.pid)


class Cluster:
    def __init__(
        self,
        directory,
        *,
        database_url,
        redis_url,
        storage_url,
        port=None,
        secret_key=None,
        node_workers=1,
        env=None,
    ):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("PACKHOUSE_")}
        self.env = {
            **inherited,
            "PACKHOUSE_DATABASE_URL": database_url,
            "PACKHOUSE_REDIS_URL": redis_url,
            "PACKHOUSE_STORAGE_URL": storage_url,
            "PACKHOUSE_SECRET_KEY": secret_key or secrets.token_urlsafe(48),
            "PACKHOUSE_TASKS_EAGER": "false",
            "PACKHOUSE_EXTERNAL_URL": self.url,
            "PACKHOUSE_TRUSTED_PROXY_COUNT": "1",
            **(env or {}),
        }
        self.nodes = [
            Node(name, free_port(), self.directory / f"node-{name}", self.env, node_workers) for name in ("a", "b")
        ]
        worker_dir = self.directory / "worker"
        worker_dir.mkdir(exist_ok=True)
        self.worker = Process(
            "worker",
            [
                str(VENV_BIN / "celery"),
                *("-A", "packhouse", "worker", "--beat", "--schedule", str(worker_dir / "celerybeat-schedule")),
                *("--concurrency", "1", "--without-gossip", "--without-mingle", "--loglevel", "INFO"),
            ],
            {**self.env, "PACKHOUSE_VAR_DIR": str(worker_dir)},
            worker_dir / "worker.log",
        )
        nginx_dir = self.directory / "nginx"
        nginx_dir.mkdir(exist_ok=True)
        site = nginx_dir / "packhouse.conf"
        site.write_text(render_site(f"127.0.0.1:{self.port}", *(f"127.0.0.1:{node.port}" for node in self.nodes)))
        main = nginx_dir / "nginx.conf"
        user = "user root root;\n" if os.geteuid() == 0 else ""
        main.write_text(NGINX_MAIN.format(user=user, dir=nginx_dir, site=site))
        self.nginx = Process("nginx", ["nginx", "-c", str(main), "-p", str(nginx_dir)], self.env, nginx_dir / "out.log")

    def api(self, path):
        return f"{self.url}/api/v4/{path.lstrip('/')}"

    def manage(self, *args):
        """A manage.py command with the nodes' settings (migrate, bootstrap_admin, ...)."""
        env = {**self.env, "PACKHOUSE_VAR_DIR": str(self.directory / "worker")}
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        ).stdout

    def start(self):
        try:
            for node in self.nodes:
                node.start()
            self.worker.start()
            self.nginx.start()
            wait_for(f"{self.url}/-/liveness", self.nginx.process, self.directory / "nginx" / "nginx-error.log")
            deadline = time.monotonic() + 60
            while " ready." not in self.worker.log():
                if not self.worker.running() or time.monotonic() > deadline:
                    raise RuntimeError(f"the Celery worker did not start:\n{self.worker.log()[-4000:]}")
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for process in (self.nginx, self.worker, *self.nodes):
            process.stop()


def _state(directory):
    """SeaweedFS's ports and keys and the shared secret key, made on first start and kept."""
    path = directory / "state.json"
    if path.exists():
        return json.loads(path.read_text())
    from tests.seaweed import PORT_FLAGS, _free_ports

    state = {
        "ports": dict(zip(PORT_FLAGS, _free_ports(len(PORT_FLAGS)), strict=True)),
        "access_key": "packhouse",
        "secret_key": secrets.token_urlsafe(24),
        "packhouse_secret_key": secrets.token_urlsafe(48),
    }
    path.write_text(json.dumps(state))
    path.chmod(0o600)
    return state


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    sys.path.insert(0, str(ROOT))
    from tests.seaweed import SeaweedFS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PACKHOUSE_CLUSTER_PORT", 8080)))
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "cluster")
    args = parser.parse_args()
    database_url = os.environ.get("PACKHOUSE_DATABASE_URL", "")
    redis_url = os.environ.get("PACKHOUSE_REDIS_URL", "")
    if not database_url.startswith("postgres") or not redis_url:
        sys.exit("set PACKHOUSE_DATABASE_URL (postgres://...) and PACKHOUSE_REDIS_URL (redis://...)")
    # SIGTERM (systemd, kill) stops everything the way Ctrl-C does, at whatever step it comes.
    signal.signal(signal.SIGTERM, _interrupt)
    directory = args.dir.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    state = _state(directory)
    store = SeaweedFS(
        directory / "seaweedfs", ports=state["ports"], access_key=state["access_key"], secret_key=state["secret_key"]
    ).start()
    cluster = None
    try:
        bucket = store.new_bucket("packhouse")
        cluster = Cluster(
            directory,
            database_url=database_url,
            redis_url=redis_url,
            storage_url=store.storage_url(bucket),
            port=args.port,
            secret_key=state["packhouse_secret_key"],
            node_workers=2,
        )
        cluster.manage("migrate", "--noinput")
        for node in cluster.nodes:  # each node serves its own copy of the static files
            subprocess.run(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                cwd=ROOT,
                env=node.env,
                check=True,
            )
        print(cluster.manage("bootstrap_admin"), end="")
        cluster.start()
        nodes = ", ".join(node.url for node in cluster.nodes)
        print(f"Packhouse cluster on {cluster.url} (nodes {nodes}; logs under {directory})", flush=True)
        while all(process.running() for process in (cluster.nginx, cluster.worker, *cluster.nodes)):
            time.sleep(1)
        print("a process of the cluster ended; stopping the others (logs under the directory)", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        if cluster is not None:
            cluster.stop()
        store.stop(signal.SIGTERM)


if __name__ == "__main__":
    main()
