"""`make bench`'s virtual registry rows (issue 16 "Performance"): the same documents and the same
`npm install` through a virtual registry and from the project endpoint, side by side.

Set up as a Maintainer would, through the REST API, in the bench's top-level group:

- a *remote* npm registry and a *remote* PyPI registry whose one upstream is the bench project's
  own endpoint on the same server (`PACKHOUSE_VR_ALLOW_HTTP`, `PACKHOUSE_VR_ALLOWED_HOSTS=127.0.0.1`;
  metadata valid 24 h), so the document the virtual registry caches is byte for byte the project's,
  with its tarball and file URLs rewritten; once cached, the upstream is never asked again (every
  measured answer is checked to be `X-Packhouse-Cache: HIT` first);
- a *local* npm registry and a *local* PyPI registry whose one upstream is the project as a local
  upstream (the group's own packages, read from the database and the blob store).

Rows: the cached packument of `@bench/big` and the cached simple page of `bench-big` (wrk, as
scripts/bench.py measures the project rows, with the workers' CPU per request) from the project,
the remote and the local registry, measured one after the other; and `npm install` of the
`@bench/lib<n>` packages from a fresh npm cache, from the project endpoint and through both
registries (the remote one's Packhouse cache warmed by one install first), in interleaved rounds,
the median of each, with the workers' CPU per install.

Released files replayed (issue 16, `PACKHOUSE_VIRTUAL_FILE_REPLAY`): the warm installs also go
through a second gunicorn (`ExtraServer`: the same code, database, Redis db and blob store, as a
second node would be) started with the file replay off, so that before and after are measured in
the same run, in interleaved rounds; each install is run three times in a row (`run1`, `run2`,
`run3`: what a registry answering the same installs often sees), with the replays each server
answered (its /-/metrics). A worker remembers what it answered itself (four workers: a repeated
request finds its answer in the worker it lands on only once that worker answered it), and every
answer to one token is due again when the token's last use is (`TOKEN_LAST_USED_INTERVAL`, 60 s).

Cold pull-through (`cold_pull_through`): a static npm registry (tests/advisory_server.py, a
process of its own, its CPU counted for neither side) serves the same packages; each round starts
a fresh one (new port: nothing cached anywhere), a fresh Packhouse virtual registry whose one
remote upstream it is, and a fresh Verdaccio 6 whose one `uplinks` entry it is (empty storage),
then `npm install`s the packages from a fresh npm cache through each, alternating which goes first.
"""

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench_common import free_port, process_tree, wait_for

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


class ExtraServer:
    """A second gunicorn (no Celery) on `server`'s database, Redis db and blob store, as a second
    node is, with `env` on top (here: the file replay off)."""

    def __init__(self, server, workdir, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        metrics = workdir / f"metrics-{self.port}"
        metrics.mkdir(parents=True, exist_ok=True)
        self.env = {
            **server.env,
            "PACKHOUSE_BIND": f"127.0.0.1:{self.port}",
            "PACKHOUSE_METRICS_DIR": str(metrics),
            **env,
        }
        self.process = None

    def start(self):
        log = open(self.workdir / f"server-{self.port}.log", "wb")  # noqa: SIM115 - the child holds it
        self.process = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "packhouse.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                self.env.get("PACKHOUSE_WORKERS", "4"),
                "--worker-class",
                "gthread",
                "--threads",
                "8",
                "--timeout",
                "600",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(f"{self.url}/-/health", seconds=120)
        return self

    def worker_pids(self):
        return [pid for pid in process_tree(self.process.pid) if pid != self.process.pid]

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def replayed(url):
    """The answers a server replayed before Django so far (its /-/metrics)."""
    with urllib.request.urlopen(f"{url}/-/metrics", timeout=30) as answer:  # noqa: S310 - our own URL
        text = answer.read().decode()
    return sum(
        float(match.group(1))
        for match in re.finditer(r'^packhouse_response_reuse_total\{[^}]*result="replayed"[^}]*\} (\S+)$', text, re.M)
    )


def _post(http, endpoint, token, body):
    status, payload = http("POST", endpoint, token, json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert status in (200, 201), (endpoint, status, payload[:300])
    return json.loads(payload)


def setup(server_url, token, group_id, project_id, http):
    """The four registries; {(format, "remote"|"local"): registry id}."""
    api = f"{server_url}/api/v4"
    project_endpoint = f"{api}/projects/{project_id}/packages"
    remote_upstreams = {
        "npm": {"url": f"{project_endpoint}/npm", "auth_token": token},
        "pypi": {"url": f"{project_endpoint}/pypi/simple", "username": "__token__", "password": token},
    }
    ids = {}
    for fmt, upstream in remote_upstreams.items():
        base = f"{api}/groups/{group_id}/-/virtual_registries/packages/{fmt}/registries"
        remote = _post(http, base, token, {"name": f"{fmt}-remote"})
        _post(
            http,
            f"{api}/virtual_registries/packages/{fmt}/registries/{remote['id']}/upstreams",
            token,
            {"name": "the project, by URL", "metadata_cache_validity_hours": 24, **upstream},
        )
        local = _post(http, base, token, {"name": f"{fmt}-local"})
        _post(
            http,
            f"{api}/virtual_registries/packages/{fmt}/registries/{local['id']}/local/upstreams",
            token,
            {"name": "the project", "local_project_id": project_id},
        )
        ids[(fmt, "remote")], ids[(fmt, "local")] = remote["id"], local["id"]
    return ids


def cache_state(url, token, accept=None):
    """The answer's X-Packhouse-Cache header (after reading the body)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - our URL
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
        response.read()
        return response.headers.get("X-Packhouse-Cache", "")


def documents(server, token, project_id, ids, wrk, seconds):
    """The cached packument and simple page from the project, the remote and the local registry."""
    api = f"{server.url}/api/v4"
    rows = {}
    for fmt, path, accept in (("npm", "@bench%2fbig", None), ("pypi", "simple/bench-big/", "text/html")):
        urls = {
            "project": f"{api}/projects/{project_id}/packages/{fmt}/{path}",
            "virtual_remote": f"{api}/virtual_registries/packages/{fmt}/{ids[(fmt, 'remote')]}/{path}",
            "virtual_local": f"{api}/virtual_registries/packages/{fmt}/{ids[(fmt, 'local')]}/{path}",
        }
        states = {"first": cache_state(urls["virtual_remote"], token, accept)}
        states["then"] = cache_state(urls["virtual_remote"], token, accept)
        assert states["then"] == "HIT", states  # cached: the upstream is not asked while measured
        row = {"remote_cache": states}
        for label, url in urls.items():
            # A 30 s time-out: answers slower than wrk's 2 s still count (and their CPU with them).
            row[label] = wrk(url, token, seconds, accept=accept, pids=server.worker_pids(), timeout="30s")
        for label in ("virtual_remote", "virtual_local"):
            row[f"{label}_vs_project_req_s"] = round(row[label]["requests_per_s"] / row["project"]["requests_per_s"], 2)
            row[f"{label}_vs_project_cpu"] = round(
                row[label]["server_cpu_us_per_request"] / row["project"]["server_cpu_us_per_request"], 2
            )
        rows["npm_packument" if fmt == "npm" else "pypi_simple_page"] = row
    return rows


def npm_install(workdir, label, npmrc, dependencies, cpu_seconds, pids):
    """Seconds and the server's CPU seconds (`pids`) of one `npm install` from a fresh npm cache."""
    directory = workdir / f"vr-install-{label}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    (directory / ".npmrc").write_text(npmrc)
    (directory / "package.json").write_text(
        json.dumps({"name": "consumer", "version": "1.0.0", "private": True, "dependencies": dependencies})
    )
    cache = workdir / f"vr-npm-cache-{label}"
    shutil.rmtree(cache, ignore_errors=True)
    before = cpu_seconds(pids)
    start = time.perf_counter()
    subprocess.run(
        ["npm", "install", "--cache", str(cache), "--no-audit", "--no-fund", "--loglevel", "error"],
        cwd=directory,
        check=True,
        env={**os.environ, "HOME": str(workdir), "npm_config_userconfig": str(directory / ".npmrc")},
    )
    return time.perf_counter() - start, cpu_seconds(pids) - before


IN_A_ROW = ("run1", "run2", "run3")


def installs(server, token, project_id, ids, names, workdir, cpu_seconds, rounds=5, before=None):
    """`npm install` of `names` (`@bench/<name>` 1.0.0) from the project and both registries;
    with `before` (an ExtraServer with the file replay off) through both registries on it too.
    Each install three times in a row (IN_A_ROW; see the module's docstring)."""
    project = f"api/v4/projects/{project_id}/packages/npm"
    servers = {"": server, "_before": before} if before is not None else {"": server}
    npmrcs = {}
    for suffix, target in servers.items():
        host = target.url.split("://", 1)[1]
        if not suffix:
            npmrcs["project"] = (
                target,
                f"@bench:registry={target.url}/{project}/\n//{host}/{project}/:_authToken={token}\n",
            )
        for kind in ("remote", "local"):
            path = f"api/v4/virtual_registries/packages/npm/{ids[('npm', kind)]}"
            npmrcs[f"virtual_{kind}{suffix}"] = (
                target,
                f"registry={target.url}/{path}/\n//{host}/{path}/:_authToken={token}\n",
            )
    dependencies = {f"@bench/{name}": "1.0.0" for name in names}
    pids = {id(target): target.worker_pids() for target in servers.values()}
    warm, _ = npm_install(workdir, "warm-up", npmrcs["virtual_remote"][1], dependencies, cpu_seconds, pids[id(server)])
    from registry.models import CacheEntry, Upstream

    remote = Upstream.objects.get(registry_upstreams__registry_id=ids[("npm", "remote")])
    cached = CacheEntry.objects.filter(upstream=remote, status="default").count()
    samples = {(label, which): [] for label in npmrcs for which in IN_A_ROW}
    for _ in range(rounds):
        for label, (target, npmrc) in npmrcs.items():
            for which in IN_A_ROW:
                replays = replayed(target.url)
                seconds, cpu = npm_install(workdir, label, npmrc, dependencies, cpu_seconds, pids[id(target)])
                samples[(label, which)].append((seconds, cpu, replayed(target.url) - replays))
    result = {
        "packages": len(names),
        "rounds": rounds,
        "warm_up_through_remote_seconds": round(warm, 2),
        "remote_cache_entries_after_warm_up": cached,
    }
    for (label, which), values in samples.items():
        result.setdefault(label, {})[which] = {
            "seconds": round(statistics.median(v[0] for v in values), 2),
            "workers_cpu_ms": round(statistics.median(v[1] for v in values) * 1000),
            "replayed_answers": round(statistics.median(v[2] for v in values)),
            "samples": [[round(v[0], 2), round(v[1] * 1000), round(v[2])] for v in values],
        }
    for label in npmrcs:
        for which in IN_A_ROW:
            result[label][which]["vs_project_seconds"] = round(
                result[label][which]["seconds"] / result["project"][which]["seconds"], 2
            )
    return result


def verdaccio_proxy(directory, upstream_url):
    """A fresh Verdaccio 6 (empty storage) whose one uplink is `upstream_url`; anyone reads."""
    from tests.upstreams import Verdaccio, install_verdaccio

    directory.mkdir(parents=True, exist_ok=True)
    server = Verdaccio(directory)
    storage = directory / "storage"
    storage.mkdir()
    config = directory / "config.yaml"
    config.write_text(
        f"""storage: {storage}
uplinks:
  upstream:
    url: {upstream_url}/
packages:
  '**':
    access: $all
    proxy: upstream
log: {{type: stdout, format: json, level: warn}}
"""
    )
    server.process = subprocess.Popen(
        ["node", str(install_verdaccio()), "--config", str(config), "--listen", f"127.0.0.1:{server.port}"],
        cwd=directory,
        stdout=open(server.log_path, "ab"),  # noqa: SIM115 - the child holds it
        stderr=subprocess.STDOUT,
    )
    wait_for(f"{server.url}/-/ping", seconds=60)
    return server


def cold_pull_through(server, token, group_id, names, workdir, cpu_seconds, http, rounds=3):
    """`npm install` of `names` through a fresh Packhouse virtual registry and a fresh Verdaccio,
    both proxying the same fresh upstream, every cache empty (see the module's docstring)."""
    from tests.upstreams import AdvisoryUpstream

    api = f"{server.url}/api/v4"
    host = server.url.split("://", 1)[1]
    dependencies = {f"@bench/{name}": "1.0.0" for name in names}
    pids = server.worker_pids()
    samples = {"packhouse": [], "verdaccio": []}
    entries = []
    for number in range(rounds):
        upstream = AdvisoryUpstream(workdir / f"cold-upstream-{number}")
        upstream.files.mkdir(parents=True)
        for name in names:
            upstream.publish(f"@bench/{name}", "1.0.0", {"index.js": f"module.exports = {name!r};\n"})
        upstream.start()
        verdaccio = None
        try:
            registry = _post(
                http,
                f"{api}/groups/{group_id}/-/virtual_registries/packages/npm/registries",
                token,
                {"name": f"npm-cold-{number}"},
            )
            _post(
                http,
                f"{api}/virtual_registries/packages/npm/registries/{registry['id']}/upstreams",
                token,
                {"name": f"static upstream {number}", "url": upstream.url},
            )
            path = f"api/v4/virtual_registries/packages/npm/{registry['id']}"
            packhouse_npmrc = f"registry={server.url}/{path}/\n//{host}/{path}/:_authToken={token}\n"
            verdaccio = verdaccio_proxy(workdir / f"cold-verdaccio-{number}", upstream.url)
            verdaccio_npmrc = f"registry={verdaccio.url}/\n"
            order = [
                ("packhouse", packhouse_npmrc, pids),
                ("verdaccio", verdaccio_npmrc, process_tree(verdaccio.process.pid)),
            ]
            for label, npmrc, label_pids in order if number % 2 == 0 else order[::-1]:
                seconds, cpu = npm_install(workdir, f"cold-{label}", npmrc, dependencies, cpu_seconds, label_pids)
                samples[label].append((seconds, cpu))
            from registry.models import CacheEntry

            entries.append(CacheEntry.objects.filter(upstream__url=upstream.url, status="default").count())
        finally:
            if verdaccio is not None:
                verdaccio.stop()
            upstream.stop()
    result = {"packages": len(names), "rounds": rounds, "packhouse_cache_entries_after": entries}
    for label, values in samples.items():
        result[label] = {
            "seconds": round(statistics.median(v[0] for v in values), 2),
            "server_cpu_ms": round(statistics.median(v[1] for v in values) * 1000),
            "samples": [[round(v[0], 2), round(v[1] * 1000)] for v in values],
        }
    result["packhouse_vs_verdaccio_seconds"] = round(result["packhouse"]["seconds"] / result["verdaccio"]["seconds"], 2)
    return result


def measure(server, token, group_id, project_id, http, wrk, cpu_seconds, seconds, names, workdir):
    load_before = os.getloadavg()
    ids = setup(server.url, token, group_id, project_id, http)
    results = {"registries": {f"{fmt}_{kind}": pk for (fmt, kind), pk in ids.items()}}
    results.update(documents(server, token, project_id, ids, wrk, seconds))
    before = ExtraServer(server, workdir, PACKHOUSE_VIRTUAL_FILE_REPLAY="false").start()
    try:
        results["npm_install"] = installs(server, token, project_id, ids, names, workdir, cpu_seconds, before=before)
    finally:
        before.stop()
    results["load_average_after_installs"] = [round(v, 2) for v in os.getloadavg()]
    results["npm_cold_pull_through"] = cold_pull_through(server, token, group_id, names, workdir, cpu_seconds, http)
    results["load_average"] = {
        "before": [round(v, 2) for v in load_before],
        "after": [round(v, 2) for v in os.getloadavg()],
    }
    return results
