"""`make soak`: mixed publish/install load from several processes against the production shape,
for SOAK_SECONDS (default 600). Fails on any error; reports the memory of the node's workers and nginx over time.

    .venv/bin/python scripts/soak.py [--seconds 600] [--processes 4]
"""

import argparse
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import Server, http, reset_database, seed_identities, setup_django  # noqa: E402

from tests.payloads import npm_document, twine_form  # noqa: E402


def client_loop(worker, api, token, deadline, results):
    rng = random.Random(worker)
    counts = {"requests": 0, "errors": 0}
    errors = []
    step = 0
    while time.monotonic() < deadline:
        step += 1
        version = f"{worker}.{step}.0"
        # New packages keep every document small, so memory reflects leaks, not data growth.
        try:
            choice = rng.random()
            if choice < 0.2:
                name = f"pkg{worker}-{step}"
                http(
                    "PUT",
                    f"{api}/npm/@soak%2f{name}",
                    token,
                    npm_document(f"@soak/{name}", version),
                    {"Content-Type": "application/json"},
                )
            elif choice < 0.4:
                body, content_type = twine_form(f"soak-pkg{worker}-{step}", version)
                http("POST", f"{api}/pypi", token, body, {"Content-Type": content_type})
            elif choice < 0.5:
                http("PUT", f"{api}/generic/soak{worker}/{version}/f.bin", token, os.urandom(rng.randint(1, 65536)))
            elif choice < 0.75:
                http("GET", f"{api}/npm/@soak%2fpkg{worker}-{rng.randrange(1, step + 1)}", token)
            else:
                http(
                    "GET",
                    f"{api}/pypi/simple/soak-pkg{worker}-{rng.randrange(1, step + 1)}/",
                    token,
                    headers={"Accept": "text/html"},
                )
        except urllib.error.HTTPError as error:
            if error.code != 404:  # a package another worker has not published yet
                counts["errors"] += 1
                errors.append(f"{error.code} {error.url}")
        except OSError as error:
            counts["errors"] += 1
            errors.append(repr(error))
        counts["requests"] += 1
    results.put((worker, counts, errors[:10]))


def rss_mib(pids):
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return round(total / 1024, 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", 600)))
    parser.add_argument("--processes", type=int, default=4)
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="packhouse-soak-"))
    reset_database()
    server = Server(workdir)
    server.start()
    try:
        setup_django(server.env)
        project, token = seed_identities()
        api = f"{server.url}/api/v4/projects/{project.pk}/packages"
        pids = server.worker_pids()
        deadline = time.monotonic() + options.seconds
        results = multiprocessing.Queue()
        clients = [
            multiprocessing.Process(target=client_loop, args=(i, api, token, deadline, results))
            for i in range(options.processes)
        ]
        for process in clients:
            process.start()
        samples = []
        while time.monotonic() < deadline:
            samples.append(rss_mib(pids))
            time.sleep(min(10, max(1, options.seconds / 30)))
        outcomes = [results.get(timeout=120) for _ in clients]
        for process in clients:
            process.join(timeout=30)
    finally:
        server.stop()
    requests = sum(counts["requests"] for _, counts, _ in outcomes)
    errors = sum(counts["errors"] for _, counts, _ in outcomes)
    third = max(1, len(samples) // 3)
    early, late = sum(samples[:third]) / third, sum(samples[-third:]) / third
    report = {
        "seconds": options.seconds,
        "processes": options.processes,
        "requests": requests,
        "errors": errors,
        "workers_rss_mib_first_third": round(early, 1),
        "workers_rss_mib_last_third": round(late, 1),
        "rss_samples_mib": samples,
        "error_examples": [e for _, _, errs in outcomes for e in errs][:10],
    }
    print(json.dumps(report, indent=2))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
