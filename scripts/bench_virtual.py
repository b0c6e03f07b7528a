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
"""

import json
import os
import shutil
import statistics
import subprocess
import time
import urllib.request


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
    """Seconds and the workers' CPU seconds of one `npm install` from a fresh npm cache."""
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


def installs(server, token, project_id, ids, names, workdir, cpu_seconds, rounds=3):
    """`npm install` of `names` (`@bench/<name>` 1.0.0) from the project and both registries."""
    host = server.url.split("://", 1)[1]
    project = f"api/v4/projects/{project_id}/packages/npm"
    npmrcs = {"project": f"@bench:registry={server.url}/{project}/\n//{host}/{project}/:_authToken={token}\n"}
    for kind in ("remote", "local"):
        path = f"api/v4/virtual_registries/packages/npm/{ids[('npm', kind)]}"
        npmrcs[f"virtual_{kind}"] = f"registry={server.url}/{path}/\n//{host}/{path}/:_authToken={token}\n"
    dependencies = {f"@bench/{name}": "1.0.0" for name in names}
    pids = server.worker_pids()
    warm, _ = npm_install(workdir, "warm-up", npmrcs["virtual_remote"], dependencies, cpu_seconds, pids)
    from registry.models import CacheEntry, Upstream

    remote = Upstream.objects.get(registry_upstreams__registry_id=ids[("npm", "remote")])
    cached = CacheEntry.objects.filter(upstream=remote, status="default").count()
    samples = {label: [] for label in npmrcs}
    for _ in range(rounds):
        for label, npmrc in npmrcs.items():
            samples[label].append(npm_install(workdir, label, npmrc, dependencies, cpu_seconds, pids))
    result = {
        "packages": len(names),
        "rounds": rounds,
        "warm_up_through_remote_seconds": round(warm, 2),
        "remote_cache_entries_after_warm_up": cached,
    }
    for label, values in samples.items():
        result[label] = {
            "seconds": round(statistics.median(v[0] for v in values), 2),
            "workers_cpu_ms": round(statistics.median(v[1] for v in values) * 1000),
        }
    for label in ("virtual_remote", "virtual_local"):
        result[f"{label}_vs_project_seconds"] = round(result[label]["seconds"] / result["project"]["seconds"], 2)
    return result


def measure(server, token, group_id, project_id, http, wrk, cpu_seconds, seconds, names, workdir):
    load_before = os.getloadavg()
    ids = setup(server.url, token, group_id, project_id, http)
    results = {"registries": {f"{fmt}_{kind}": pk for (fmt, kind), pk in ids.items()}}
    results.update(documents(server, token, project_id, ids, wrk, seconds))
    results["npm_install"] = installs(server, token, project_id, ids, names, workdir, cpu_seconds)
    results["load_average"] = {
        "before": [round(v, 2) for v in load_before],
        "after": [round(v, 2) for v in os.getloadavg()],
    }
    return results
