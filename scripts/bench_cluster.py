"""The two-node topology (scripts/cluster.py: two nodes of 2 uWSGI workers behind nginx, S3 on
SeaweedFS) under `make bench`'s packument load, against one node of 4 workers on the same
database, Redis and bucket, in the same run. Timings are printed and written, never asserted.

    .venv/bin/python scripts/bench_cluster.py [--quick] [--out var/bench/cluster.json]

Needs PostgreSQL on 127.0.0.1:5432 (a database `packhouse_bench_cluster` is made anew), Redis
(PACKHOUSE_REDIS_URL, default redis://127.0.0.1:6379/5), wrk and nginx.
"""

import argparse
import json
import re
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import os  # noqa: E402

from scripts.bench import wrk  # noqa: E402
from scripts.cluster import Cluster, Node, free_port  # noqa: E402
from tests.payloads import npm_document  # noqa: E402
from tests.seaweed import SeaweedFS  # noqa: E402

DATABASE = "packhouse_bench_cluster"


def reset_database():
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")


def call(method, url, token, body=None, content_type=None):
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - our own loopback URL
    request.add_header("PRIVATE-TOKEN", token)
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310
        return json.loads(answer.read() or b"null")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="200 versions and 4 s of wrk")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "cluster.json")
    args = parser.parse_args()
    versions, seconds = (200, 4) if args.quick else (1000, 15)
    redis_url = os.environ.get("PACKHOUSE_REDIS_URL", "redis://127.0.0.1:6379/5")
    reset_database()
    work = Path(tempfile.mkdtemp(prefix="packhouse-bench-cluster-"))
    store = SeaweedFS(work / "seaweedfs").start()
    cluster = single = None
    try:
        bucket = store.new_bucket("bench")
        cluster = Cluster(
            work / "cluster",
            database_url=f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
            redis_url=redis_url,
            storage_url=store.storage_url(bucket),
            node_workers=2,
            env={"PACKHOUSE_CACHE_PREFIX": f"bench-{uuid.uuid4().hex[:8]}"},
        )
        cluster.manage("migrate", "--noinput")
        token = re.search(r"api token: (\S+)", cluster.manage("bootstrap_admin")).group(1)
        cluster.start()
        form = "application/x-www-form-urlencoded"
        group = call("POST", cluster.api("groups"), token, b"name=bench&path=bench", form)
        project = call(
            "POST",
            cluster.api("projects"),
            token,
            f"name=bench&path=bench&namespace_id={group['id']}".encode(),
            form,
        )
        started = time.monotonic()
        for index in range(versions):
            body = npm_document("@bench/big", f"1.0.{index}")
            call(
                "PUT",
                cluster.api(f"projects/{project['id']}/packages/npm/@bench%2fbig"),
                token,
                body,
                "application/json",
            )
        seeding = time.monotonic() - started
        path = f"/api/v4/projects/{project['id']}/packages/npm/@bench%2fbig"

        results = {"versions": versions, "seconds": seconds, "seeding_s": round(seeding, 1)}
        results["two_nodes_behind_nginx"] = wrk(cluster.url + path, token, seconds)
        single = Node("single", free_port(), work / "single", cluster.env, 4, 8).start()
        results["one_node_4_workers"] = wrk(single.url + path, token, seconds)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(json.dumps(results, indent=2))
    finally:
        if single is not None:
            single.stop()
        if cluster is not None:
            cluster.stop()
        store.stop()


if __name__ == "__main__":
    main()
