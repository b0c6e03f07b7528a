"""Follow one `pip install --no-deps` of N packages request by request, against Packhouse (`make
serve`'s shape) and against devpi-server seeded with the same wheels (scripts/bench_peers.py).

    PACKHOUSE_BENCH_DB=packhouse_trace .venv/bin/python scripts/trace_pip.py [--packages 20] [--pin]
        [--workers 1] [--py-spy] [--rounds 3]

For each server, each request pip made, from pip's own `-vvv` log (`--log`, timestamps to the
millisecond): the kind (simple page, PEP 658 `.metadata`, file), its status and the client-side
time from the log line before it to the line that logs its response. For Packhouse, the server's
own time per request kind from its access log (the milliseconds at the end of each line), and the
workers' CPU per install. The first install is the server's first sight of each name; `--rounds`
more are made with a fresh client each time and the medians are reported.

`--workers 1` (the default here) makes every request land on one gunicorn worker, so that
`--py-spy` (py-spy from PyPI, installed under var/bench-tools/) can record that worker through the
whole install and name where its CPU goes (a flame graph SVG and the top functions, under
var/trace-pip/). Timings here are for finding causes, not for comparing checkouts: CPU per request
and query counts are what hold on a busy machine."""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("PACKHOUSE_BENCH_DB", "packhouse_trace")

import bench  # noqa: E402
import bench_installs  # noqa: E402
import bench_peers  # noqa: E402
from bench_common import LOAD_PREFIX, cpu_seconds, pin_load, wrk  # noqa: E402

OUT = ROOT / "var" / "trace-pip"
PY_SPY = ["py-spy==0.4.3"]
# urllib3's debug line for each response: `http://host:port "GET /path HTTP/1.1" 200 1234`
RESPONSE = re.compile(r'"GET (\S+) HTTP/1\.1" (\d{3}) (\d+|None)')
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,\d{3})")
ACCESS = re.compile(r'"GET (\S+) HTTP/1\.\d" (\d{3}) .* ([\d.]+)ms$')
PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


def kind_of(path):
    if path.endswith(".metadata"):
        return "metadata"
    if "/simple/" in path or "/+simple/" in path:
        return "simple page"
    return "file"


def pip_trace(index_url, names, workdir, label):
    """One `pip install -vvv` with its log; [(kind, path, status, client ms)] in order, and the
    wall time."""
    log = workdir / f"pip-{label}.log"
    log.unlink(missing_ok=True)
    target = workdir / "target"
    shutil.rmtree(target, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(
        [
            *LOAD_PREFIX,
            str(bench_installs.VENV_BIN / "pip"),
            "install",
            "-vvv",
            "--log",
            str(log),
            "--no-deps",
            "--no-cache-dir",
            "--target",
            str(target),
            "--index-url",
            index_url,
            *names,
        ],
        check=True,
        env=bench_installs.pip_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    requests, previous = [], None
    for line in log.read_text().splitlines():
        stamp = STAMP.match(line)
        if not stamp:
            continue
        moment = datetime.strptime(stamp.group(1), "%Y-%m-%dT%H:%M:%S,%f")
        response = RESPONSE.search(line)
        if response and previous is not None:
            path, status = response.group(1), response.group(2)
            requests.append((kind_of(path), path, int(status), (moment - previous).total_seconds() * 1000))
        previous = moment
    return requests, wall


def summarize(requests):
    by_kind = defaultdict(list)
    for kind, _, status, ms in requests:
        by_kind[kind].append((status, ms))
    return {
        kind: {
            "count": len(items),
            "statuses": sorted({status for status, _ in items}),
            "client_ms_median": round(statistics.median(ms for _, ms in items), 1),
            "client_ms_total": round(sum(ms for _, ms in items)),
        }
        for kind, items in by_kind.items()
    }


def access_times(log_path, since_line):
    """{kind: [ms]} of the access log lines after `since_line`."""
    times = defaultdict(list)
    lines = log_path.read_text(errors="replace").splitlines()
    for line in lines[since_line:]:
        match = ACCESS.search(line)
        if match:
            times[kind_of(match.group(1))].append(float(match.group(3)))
    return times, len(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1")
    parser.add_argument("--pin", action="store_true")
    parser.add_argument("--py-spy", action="store_true", help="record the worker through the installs")
    parser.add_argument("--no-devpi", action="store_true")
    parser.add_argument("--seconds", type=int, default=5, help="of wrk per request kind (CPU per request)")
    options = parser.parse_args()
    if options.pin:
        pin_load()
    os.environ["PACKHOUSE_WORKERS"] = options.workers
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="packhouse-trace-"))
    bench.reset_database()
    server = bench.Server(workdir)
    server.start()
    devpi = None
    report = {"packages": options.packages, "load_average_at_start": os.getloadavg()}
    try:
        bench.setup_django(server.env)
        project, token = bench.seed_identities()
        api = f"{server.url}/api/v4/projects/{project.pk}/packages"
        names = [f"bench-lib{i}" for i in range(options.packages)]
        bench.seed_install_packages(api, token, options.packages)
        host = server.url.split("://", 1)[1]
        targets = {"packhouse": f"http://__token__:{token}@{host}/api/v4/projects/{project.pk}/packages/pypi/simple"}
        if not options.no_devpi:
            static = workdir / "static"
            files = bench_installs.static_pypi(f"{api}/pypi/simple", token, names, static)
            devpi = bench_peers.Devpi(workdir).start()
            devpi.seed(
                [
                    (name, file_name.split("-")[1], file_name, (static / local).read_bytes())
                    for name, entries in files.items()
                    for file_name, _, local in entries
                ]
            )
            devpi.pin()
            targets["devpi"] = devpi.index_url
        access_log = workdir / "server.log"
        spy = None
        if options.py_spy:
            bin_dir = bench_peers.tool_venv("py-spy-0.4.3", PY_SPY)
            worker = server.worker_pids()[0]
            spy = subprocess.Popen(
                [
                    str(bin_dir / "py-spy"),
                    "record",
                    "--pid",
                    str(worker),
                    "--rate",
                    "250",
                    "--idle",
                    "--format",
                    "raw",
                    "--output",
                    str(OUT / "packhouse-worker.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(2)
        for label, index_url in targets.items():
            rounds = []
            for round_index in range(options.rounds + 1):
                _, seen = access_times(access_log, 0)
                pids = server.worker_pids() if label == "packhouse" else devpi.pids()
                cpu = cpu_seconds(pids)
                requests, wall = pip_trace(index_url, names, workdir, f"{label}-{round_index}")
                spent = (cpu_seconds(pids) - cpu) * 1000
                row = {"wall_s": round(wall, 2), "server_cpu_ms": round(spent), "requests": summarize(requests)}
                if label == "packhouse":
                    times, _ = access_times(access_log, seen)
                    for kind, values in times.items():
                        if kind in row["requests"]:
                            row["requests"][kind]["server_ms_median"] = round(statistics.median(values), 1)
                rounds.append(row)
                if round_index == 0:
                    shutil.copyfile(workdir / f"pip-{label}-0.log", OUT / f"pip-{label}-first.log")
            report[label] = {"first": rounds[0], "then": rounds[1:]}
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        # Each kind of request alone, one connection, over and over: the server's CPU per request.
        report["cpu_us_per_request"] = {"packhouse": {}, "devpi": {}}
        page = f"{api}/pypi/simple/{names[0]}/"
        wheel = bench_installs.link_of(page, f"{names[0].replace('-', '_')}-1.0.0-py3-none-any.whl", token)
        for kind, url, accept in (
            ("simple page", page, PIP_ACCEPT),
            ("metadata", f"{wheel}.metadata", None),
            ("file", wheel, None),
        ):
            row = wrk(url, token, options.seconds, accept=accept, connections=1, pids=server.worker_pids())
            report["cpu_us_per_request"]["packhouse"][kind] = row["server_cpu_us_per_request"]
        if devpi is not None:
            page = f"{devpi.index_url}/{names[0]}/"
            wheel = bench_installs.link_of(page, f"{names[0].replace('-', '_')}-1.0.0-py3-none-any.whl", None)
            for kind, url, accept in (("simple page", page, PIP_ACCEPT), ("file", wheel, None)):
                row = wrk(url, None, options.seconds, accept=accept, connections=1, pids=devpi.pids())
                report["cpu_us_per_request"]["devpi"][kind] = row["server_cpu_us_per_request"]
    finally:
        if devpi is not None:
            devpi.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report["load_average_at_end"] = os.getloadavg()
    (OUT / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"\nwritten to {OUT}/report.json; pip's logs of the first installs beside it")


if __name__ == "__main__":
    sys.exit(main())
