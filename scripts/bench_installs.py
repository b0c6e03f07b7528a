"""`make bench`'s install rows: `pip install --no-deps` and `npm install` of N packages, each run
with a fresh client cache, against Packhouse, against nginx serving the same bytes from a static
tree, and (`--peers`) against devpi, pypiserver and Verdaccio seeded with the same files.

The static trees are copied from Packhouse's own answers, so they hold the same files:
- PyPI: a PEP 503 tree, `/pypi/simple/<name>/index.html` (Packhouse's page, hrefs pointing at
  nginx), `/pypi/files/<sha256>/<file>` and `<file>.metadata` (PEP 658) where Packhouse has one;
- npm: `/npm/@scope/<name>`, the packument Packhouse answers npm (abbreviated) with each
  `dist.tarball` pointing at `/npm-files/<shasum>/<file>` on nginx.
Pages and packuments have a `.gz` beside them (gzip_static), as Packhouse answers gzip.

Every target is installed once first (the server's first sight of each name: cold caches,
nginx's page cache), then `rounds` more times (rounded up to whole cycles of balanced_orders),
the targets interleaved in each round in orders that give each the same places and the same
predecessors, so that drift on a shared machine (the client's own CPU per install grows by 15% to
2x over ten installs in a row, whatever the server) and one server's background work after its
install hit them alike. Reported: the first run and the median of the rest (seconds), the server
processes' CPU per install (ms, from /proc: what the machine's other load moves least) and the
client's own CPU (the same work whatever the server). Each target is also compared with every
other round by round: `paired` holds the median of its time over the other's in the same round,
and `vs_nginx` is that ratio against nginx (the median of two medians would mix rounds that
drifted apart).

`PACKHOUSE_BENCH_NPM_PROFILE=<dir>`: each `npm install` runs under `node --cpu-prof` and writes its
CPU profile and its `--loglevel http` log (every request with its time) under `<dir>/<target>/`."""

import contextlib
import html
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, unquote, urljoin

from bench_common import LOAD_PREFIX, cpu_seconds, http, write_static

VENV_BIN = Path(sys.executable).parent
# What `npm install` (npm 11) asks a registry for a packument: the full document (pacote's
# `fullMetadata`, which @npmcli/arborist sets when it builds the tree without a lockfile), so the
# static copy nginx serves is that document, not the abbreviated one.
NPM_ACCEPT = "application/json"
NPM_CLI = "/usr/lib/node_modules/npm/bin/npm-cli.js"  # Debian's npm; `node --cpu-prof` runs it directly
ANCHOR = re.compile(r'<a href="([^"#]+)#sha256=([0-9a-fA-F]{64})"([^>]*)>')


def pip_environment():
    """pip with no configuration of this machine's (no extra index, no find-links): it asks the
    index under test and nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


# --- the static trees -----------------------------------------------------------------------


def static_pypi(index_url, token, names, root):
    """Copy `names` from a simple index (Packhouse's) into `root/pypi`: pages, files and core
    metadata. Returns {name: [(file name, sha256, path under root)]}."""
    files = {}
    for name in names:
        _, page = http("GET", f"{index_url}/{name}/", token, headers={"Accept": "text/html"})
        page = page.decode()
        files[name] = []

        def rewrite(match, name=name):
            url, sha256, attributes = html.unescape(match.group(1)), match.group(2).lower(), match.group(3)
            file_name = unquote(url.rsplit("/", 1)[1])
            local = Path("pypi") / "files" / sha256 / file_name
            write_static(root / local, http("GET", url, token)[1], gzipped=False)
            if "data-core-metadata" in attributes:
                write_static(root / f"{local}.metadata", http("GET", f"{url}.metadata", token)[1], gzipped=False)
            files[name].append((file_name, sha256, local))
            return f'<a href="/pypi/files/{sha256}/{quote(file_name)}#sha256={sha256}"{attributes}>'

        write_static(root / "pypi" / "simple" / name / "index.html", ANCHOR.sub(rewrite, page).encode())
    return files


def static_npm(registry_url, token, names, root, base_url):
    """Copy `names` from an npm registry (Packhouse's) into `root/npm` (the packument npm is
    answered, tarballs under `root/npm-files`, linked at `base_url`). Returns {name: [(version,
    manifest, tarball path under root)]}."""
    versions = {}
    for name in names:
        _, body = http("GET", f"{registry_url}/{quote(name, safe='@')}", token, headers={"Accept": NPM_ACCEPT})
        document = json.loads(body)
        versions[name] = []
        for version, manifest in document["versions"].items():
            dist = manifest["dist"]
            file_name = unquote(dist["tarball"].rsplit("/", 1)[1])
            local = Path("npm-files") / dist["shasum"] / file_name
            write_static(root / local, http("GET", dist["tarball"], token)[1], gzipped=False)
            dist["tarball"] = f"{base_url}/{local}"
            versions[name].append((version, manifest, local))
        write_static(root / "npm" / name, json.dumps(document, separators=(",", ":")).encode())
    return versions


def link_of(page_url, file_name, token):
    """The URL of `file_name` on a simple page, resolved against the page."""
    _, page = http("GET", page_url, token, headers={"Accept": "text/html"})
    for match in ANCHOR.finditer(page.decode()):
        url = html.unescape(match.group(1))
        if unquote(url.rsplit("/", 1)[1]) == file_name:
            return urljoin(page_url, url)
    raise LookupError(f"{file_name} is not on {page_url}")


# --- installs -------------------------------------------------------------------------------


def pip_install(index_url, names, workdir):
    target = workdir / "pip-target"
    shutil.rmtree(target, ignore_errors=True)
    args = [str(VENV_BIN / "pip"), "install", "--quiet", "--no-deps", "--no-cache-dir", "--target", str(target)]
    subprocess.run(
        [*LOAD_PREFIX, *args, "--index-url", index_url, *names],
        check=True,
        env=pip_environment(),
        stdout=subprocess.DEVNULL,
    )


def npm_install(npmrc_lines, dependencies, workdir):
    consumer = workdir / "npm-consumer"
    shutil.rmtree(consumer, ignore_errors=True)
    shutil.rmtree(workdir / "npm-cache", ignore_errors=True)
    consumer.mkdir(parents=True)
    (consumer / ".npmrc").write_text("\n".join(npmrc_lines) + "\n")
    (consumer / "package.json").write_text(
        json.dumps({"name": "consumer", "version": "1.0.0", "dependencies": dependencies})
    )
    npm, log_level, log = ["npm"], "error", None
    profile = os.environ.get("PACKHOUSE_BENCH_NPM_PROFILE")
    if profile:
        directory = Path(profile) / workdir.name
        directory.mkdir(parents=True, exist_ok=True)
        npm = ["node", "--cpu-prof", f"--cpu-prof-dir={directory}", NPM_CLI]
        log_level, log = "http", open(directory / f"npm-{time.time_ns()}.log", "w")  # noqa: SIM115
    with log or contextlib.nullcontext():
        subprocess.run(
            [
                *LOAD_PREFIX,
                *npm,
                "install",
                "--cache",
                str(workdir / "npm-cache"),
                "--no-audit",
                "--no-fund",
                "--loglevel",
                log_level,
            ],
            cwd=consumer,
            check=True,
            env={
                **os.environ,
                "HOME": str(workdir),
                "npm_config_userconfig": str(consumer / ".npmrc"),
                "npm_config_update_notifier": "false",
            },
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def balanced_orders(count):
    """The orders in which `count` targets (their indices) run, one per round: the rows of a
    balanced Latin square (a Williams design; for an odd count, with their reverses). Over a full
    cycle each target runs in each place of a round equally often, and right after each other
    target equally often. So neither the machine's drift from one install to the next (up to 2x
    over 45 s here, pip alone with no server: BENCHMARKS.md) nor what one target leaves behind (a
    server's background work after its install) favours any of them; a plain rotation always ran
    the same target right after the same other."""
    first, low, high = [0], 1, count - 1
    while len(first) < count:
        first.append(low)
        low += 1
        if len(first) < count:
            first.append(high)
            high -= 1
    rows = [[(index + shift) % count for index in first] for shift in range(count)]
    if count % 2:
        rows += [row[::-1] for row in rows]
    return rows


def balanced_rounds(rounds, count):
    """`rounds` rounded up to whole cycles of balanced_orders(count)."""
    cycle = len(balanced_orders(count))
    return -(-rounds // cycle) * cycle


def measure(targets, rounds, workdir):
    """`targets`: {label: (install function of a work directory, server pids function)}. Each is
    installed once (`first_s`), then `rounds` times interleaved."""
    samples = {label: [] for label in targets}
    first = {}
    labels = list(targets)
    orders = balanced_orders(len(labels))
    rounds = balanced_rounds(rounds, len(labels))
    for round_index in range(rounds + 1):
        order = orders[(round_index - 1) % len(orders)] if round_index else range(len(labels))
        for label in (labels[index] for index in order):
            install, pids = targets[label]
            directory = workdir / "installs" / label
            directory.mkdir(parents=True, exist_ok=True)
            processes = pids()
            cpu_before = cpu_seconds(processes)
            client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            install(directory)
            seconds = time.perf_counter() - start
            client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            sample = {
                "seconds": seconds,
                "server_cpu_ms": (cpu_seconds(processes) - cpu_before) * 1000,
                "client_cpu_s": (client_after.ru_utime + client_after.ru_stime)
                - (client_before.ru_utime + client_before.ru_stime),
            }
            if round_index == 0:
                first[label] = sample
            else:
                samples[label].append(sample)
    results = {}
    for label in targets:
        runs = samples[label] or [first[label]]
        results[label] = {
            "first_s": round(first[label]["seconds"], 2),
            "first_server_cpu_ms": round(first[label]["server_cpu_ms"]),
            "median_s": round(statistics.median(s["seconds"] for s in runs), 2),
            "runs_s": [round(s["seconds"], 2) for s in runs],
            "server_cpu_ms": round(statistics.median(s["server_cpu_ms"] for s in runs)),
            "client_cpu_s": round(statistics.median(s["client_cpu_s"] for s in runs), 2),
        }
    for label, row in results.items():
        # Each target against each other, round by round (the same round: the same drift),
        # then the median of those ratios: what "vs" columns and the targets are read from.
        row["paired"] = {
            other: round(statistics.median(_ratios(samples[label], samples[other])), 3)
            for other in targets
            if other != label and samples[label]
        }
        if "nginx" in results:
            row["vs_nginx"] = row["paired"].get("nginx", 1.0)
    return results


def _ratios(runs, other_runs):
    """Round by round: this target's seconds over the other's (both ran every round)."""
    return [a["seconds"] / b["seconds"] for a, b in zip(runs, other_runs, strict=True)]
