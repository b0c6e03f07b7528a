"""What `make bench`'s scripts share: free ports, HTTP calls, wrk runs, the CPU time of server
processes, CPU pinning and nginx serving a directory of static files.

Pinning (`pin_load`): with `--pin` (or `--peers`), every server under test runs on one core
(`SERVER_CPU`) and everything that makes load (wrk, curl, pip, npm) on the other (`LOAD_CPU`),
as the peers table in BENCHMARKS.md was measured. PostgreSQL and Redis are the machine's own
services and are not pinned (they are shared with other jobs)."""

import contextlib
import gzip
import os
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

SERVER_CPU = "0"
LOAD_CPU = "1"
# Prepended to every load-making command; set by pin_load().
LOAD_PREFIX = []


def pin_load():
    """From now on, load runs on LOAD_CPU (servers are pinned with pin_processes)."""
    LOAD_PREFIX[:] = ["taskset", "-c", LOAD_CPU]


def pinned():
    return bool(LOAD_PREFIX)


def pin_processes(pids, cpu=SERVER_CPU):
    """Every thread of every process in `pids` onto `cpu`; children forked later inherit it."""
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", cpu, str(pid)], capture_output=True, check=False)


def process_tree(root_pid):
    """`root_pid` and all its descendants, from /proc."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method, url, token=None, body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - our own http URL
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
        return response.status, response.read()


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


def wait_for_port(port, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def cpu_seconds(pids):
    """User + system CPU seconds the processes (all their threads) have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def wrk(url, token, seconds, accept=None, connections=32, pids=(), headers=(), timeout=None):
    """Requests/s and latency at `connections`, after a 2 s warm-up run at the same load (every
    worker process fills its memory of the document once; that is what the cold figure measures).

    With the server's `pids`, also the CPU time they spent per request (user + system, from
    /proc): a count that depends far less on what else the machine is doing than requests/s."""
    warm = wrk_run(url, token, 2, accept, connections, headers, timeout)
    before = cpu_seconds(pids)
    measured = wrk_run(url, token, seconds, accept, connections, headers, timeout)
    if pids:
        spent = cpu_seconds(pids) - before
        measured["server_cpu_us_per_request"] = round(spent * 1e6 / max(measured.pop("requests"), 1))
    else:
        measured.pop("requests")
    return {**measured, "warm_up_requests_per_s": warm["requests_per_s"]}


def wrk_run(url, token, seconds, accept, connections, headers=(), timeout=None):
    """One wrk run; `timeout` (e.g. "30s") replaces wrk's 2 s, after which it gives up on an answer
    and counts a time-out (the server still spends the CPU)."""
    args = [
        *LOAD_PREFIX,
        "wrk",
        "-t",
        str(min(2, connections)),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        timeout or "10s",  # the slowest peers answer a large document in seconds at c=32
        "--latency",
        "-H",
        "Accept-Encoding: gzip",  # as npm and pip send it
    ]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    if accept:
        args += ["-H", f"Accept: {accept}"]
    for header in headers:
        args += ["-H", header]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    timeouts = re.search(r"Socket errors: .*timeout (\d+)", out)
    result = {
        "requests_per_s": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "requests": requests,
    }
    if timeouts and int(timeouts.group(1)):
        result["timeouts"] = int(timeouts.group(1))
    return result


def _ms(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return round(float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit], 2)


def write_static(path, body, gzipped=True):
    """A static file, and its `.gz` beside it for nginx's gzip_static (as Packhouse answers
    `Accept-Encoding: gzip`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    if gzipped:
        Path(f"{path}.gz").write_bytes(gzip.compress(body, 6))


@contextlib.contextmanager
def nginx_static(root, workdir, port=None, name="static"):
    """nginx serving the directory `root` (sendfile; precompressed `.gz` files with gzip_static;
    files without an extension, npm's packuments, as JSON); yields its base URL. One worker
    pinned to SERVER_CPU when pinning, else two."""
    port = port or free_port()
    conf = workdir / f"nginx-{name}.conf"
    workers = 1 if pinned() else 2
    conf.write_text(f"""
daemon off; user root root; worker_processes {workers}; pid {workdir}/nginx-{name}.pid;
error_log {workdir}/nginx-{name}-error.log;
events {{ worker_connections 256; }}
http {{ access_log off; sendfile on; tcp_nopush on; gzip_static on; default_type application/json;
  types {{ text/html html; text/plain metadata; application/octet-stream whl tgz bin; }}
  server {{ listen 127.0.0.1:{port}; root {root}; }} }}
""")
    process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(workdir)], stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_port(port)
        if pinned():
            pin_processes(process_tree(process.pid))
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)
