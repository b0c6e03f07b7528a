"""One Packhouse node as it runs in production: uWSGI's C workers running the application
(deploy/uwsgi.ini) behind nginx (deploy/nginx-node.conf), which holds the client connections,
streams uploads through and sends the downloads of local storage itself (X-Accel-Redirect,
deploy/nginx-x-accel.conf). BENCHMARKS.md measured it at 1.4-1.8x gunicorn's cached metadata
answers with a fifth of its p99.

    python -m packhouse.node --listen 127.0.0.1:8000 --processes 4

renders nginx's configuration into the node's state directory (`--state-dir`, else
PACKHOUSE_NODE_DIR, else <PACKHOUSE_VAR_DIR>/node), then starts uWSGI's master and nginx as its
children, in its own process group (a kill of the group, or of the unit's cgroup, leaves neither
behind), and stays while both run:

- SIGTERM or SIGINT: a graceful stop. nginx stops taking connections and finishes the requests it
  has (SIGQUIT), then uWSGI's workers finish theirs and send the downloads they counted.
- SIGHUP: uWSGI reloads the code worker by worker, the socket kept (a chain reload, `c` on
  <state dir>/master.fifo), and nginx rereads its configuration.
- Either of them exiting stops the other and the node, with an error (systemd restarts it).

One worker stops gracefully on its own SIGHUP (uWSGI's master starts another). `make serve`,
the systemd unit, `make cluster`'s nodes, the suite's live servers and the benches all run nodes
this way.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
X_ACCEL_PREFIX = "/_storage/"


def local_storage_dir():
    """The directory of the blob store when it is on the local disk, else None (object storage:
    downloads are presigned redirects, or streamed by the application)."""
    from django.conf import settings

    packages = settings.STORAGES["packages"]
    if not packages["BACKEND"].endswith("FileSystemStorage"):
        return None
    return Path(packages["OPTIONS"]["location"]).resolve()


def x_accel_location(storage_dir):
    """deploy/nginx-x-accel.conf for `storage_dir`: the internal location nginx sends a download
    from, with Packhouse's headers, when the application answers X-Accel-Redirect."""
    return (DEPLOY / "nginx-x-accel.conf").read_text().replace("${PACKHOUSE_STORAGE_DIR}", str(storage_dir))


def nginx_config(listen, state_dir, *, storage_dir=None, tls=None, workers="auto"):
    """deploy/nginx-node.conf rendered: nginx on `listen` (host:port), passing requests to the
    uWSGI socket in `state_dir`; sending the files of `storage_dir` itself when given; serving
    https with `tls` = (certificate file, key file)."""
    values = {
        # Only root may name the workers' user; as root they run as root (they read the blob
        # store's files, mode 0640, and the socket), as anyone else they run as that user.
        "${PACKHOUSE_NGINX_USER}": "user root root;" if os.geteuid() == 0 else "",
        "${PACKHOUSE_NGINX_WORKERS}": str(workers),
        "${PACKHOUSE_NODE_DIR}": str(state_dir),
        "${PACKHOUSE_NODE_LISTEN}": f"{listen} ssl" if tls else listen,
        "${PACKHOUSE_NODE_TLS}": f"ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]};" if tls else "",
        "${PACKHOUSE_NODE_DOWNLOADS}": x_accel_location(storage_dir) if storage_dir else "",
    }
    text = (DEPLOY / "nginx-node.conf").read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def commands(listen, processes, state_dir, *, storage_dir=None, tls=None, nginx_workers="auto"):
    """(uWSGI's argv, nginx's argv, environment additions) of a node; nginx's configuration is
    written into `state_dir`."""
    nginx = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin")
    if nginx is None:
        raise SystemExit("packhouse.node needs nginx (Debian: apt-get install nginx-light; `make system-deps`)")
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    if len(str(state_dir / "uwsgi.sock")) > 100:  # a Unix socket's path is at most 107 bytes
        raise SystemExit(f"packhouse.node: the state directory's path is too long for a socket: {state_dir}")
    conf = state_dir / "nginx.conf"
    conf.write_text(nginx_config(listen, state_dir, storage_dir=storage_dir, tls=tls, workers=nginx_workers))
    uwsgi = [
        str(Path(sys.executable).parent / "uwsgi"),
        *("--ini", str(DEPLOY / "uwsgi.ini")),
        *("--uwsgi-socket", str(state_dir / "uwsgi.sock")),
        *("--processes", str(processes)),
        *("--master-fifo", str(state_dir / "master.fifo")),
    ]
    environment = {"PACKHOUSE_X_ACCEL_REDIRECT_PREFIX": X_ACCEL_PREFIX} if storage_dir else {}
    return uwsgi, [nginx, "-c", str(conf), "-p", str(state_dir), "-e", "stderr"], environment


class Stop(Exception):
    """A signal asked the node to stop."""


def supervise(uwsgi_argv, nginx_argv, state_dir, environment, grace=60):
    """Runs uWSGI and nginx until a signal stops the node or either exits; returns the exit code."""
    uwsgi = subprocess.Popen(uwsgi_argv, env={**os.environ, **environment}, cwd=ROOT)  # noqa: S603
    nginx = subprocess.Popen(nginx_argv)  # noqa: S603

    def stop(signum, frame):
        raise Stop()

    def reload(signum, frame):
        (Path(state_dir) / "master.fifo").write_text("c")
        nginx.send_signal(signal.SIGHUP)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    code = 0
    try:
        pid, _ = os.wait()  # either of them exited: the node is down
        print(f"packhouse.node: {'nginx' if pid == nginx.pid else 'uWSGI'} exited; stopping", file=sys.stderr)
        code = 1
    except Stop:
        pass
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for process, graceful in ((nginx, signal.SIGQUIT), (uwsgi, signal.SIGTERM)):
        if process.poll() is None:
            process.send_signal(graceful)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return code


def main(arguments=None):
    parser = argparse.ArgumentParser(prog="python -m packhouse.node", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default=os.environ.get("PACKHOUSE_BIND", "127.0.0.1:8000"), help="host:port")
    parser.add_argument("--processes", type=int, default=int(os.environ.get("PACKHOUSE_WORKERS", "4")))
    parser.add_argument("--state-dir", help="nginx's configuration, the socket, the master FIFO")
    parser.add_argument("--nginx-workers", default="auto")
    parser.add_argument("--tls", nargs=2, metavar=("CERTIFICATE", "KEY"), help="serve https")
    options = parser.parse_args(arguments)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "packhouse.settings")
    from django.conf import settings

    state_dir = Path(options.state_dir or os.environ.get("PACKHOUSE_NODE_DIR") or settings.VAR_DIR / "node")
    uwsgi, nginx, environment = commands(
        options.listen,
        options.processes,
        state_dir,
        storage_dir=local_storage_dir(),
        tls=options.tls,
        nginx_workers=options.nginx_workers,
    )
    sys.exit(supervise(uwsgi, nginx, state_dir, environment))


def uwsgi_workers(node_pid):
    """The pids of a node's uWSGI workers (the children of its uWSGI master)."""
    return [pid for master in _children(node_pid) if _comm(master) == "uwsgi" for pid in _children(master)]


def nginx_processes(node_pid):
    """The pids of a node's nginx master and workers."""
    return [pid for master in _children(node_pid) if _comm(master) == "nginx" for pid in [master, *_children(master)]]


def _children(pid):
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _comm(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


if __name__ == "__main__":
    main()
