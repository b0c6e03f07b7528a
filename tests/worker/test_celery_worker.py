"""Cleanup policies on a REAL Celery worker: a `celery worker` subprocess on Redis, against the
test database and blob directory. Two workers at once remove each thing once; a worker killed
mid-run leaves nothing half-deleted and the next run finishes the job."""

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from accounts.authentication import principal_for_token
from packhouse.celery import app
from registry import formats, services, tasks
from registry.formats import FileDraft, PackageDraft
from registry.models import Blob, CleanupPolicy, PackageFile, PackageVersion, Status
from registry.spool import spool_bytes
from tests.factories import AccessTokenFactory, AdminFactory, ProjectFactory
from tests.helpers import auth_headers, stored_objects

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent.parent
REDIS_URL = os.environ.get("PACKHOUSE_REDIS_URL", "")


class Worker:
    def __init__(self, queue, log_path, env):
        self.queue = queue
        self.log_path = log_path
        self.log_file = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "packhouse",
                "worker",
                "--pool",
                "solo",
                "--concurrency",
                "1",
                "--prefetch-multiplier",
                "1",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )

    def log(self):
        return Path(self.log_path).read_text(errors="replace")

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while " ready." not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log()}")
            time.sleep(0.1)

    def wait_for(self, pattern, count=1, timeout=120):  # a loaded machine (parallel workers) is slow
        deadline = time.monotonic() + timeout
        while len(re.findall(pattern, self.log())) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in the worker log:\n{self.log()}")
            time.sleep(0.05)

    def send(self, project):
        tasks.apply_cleanup_policy.apply_async(args=[project.pk], queue=self.queue)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log_file.close()


@pytest.fixture
def start_worker(transactional_db, blob_dir, spool_dir, tmp_path, settings):
    """start_worker(**env) -> a ready Worker on its own queue; all are stopped at teardown."""
    if not REDIS_URL:
        pytest.skip("needs PACKHOUSE_REDIS_URL (a real Redis broker)")
    settings.BLOB_GRACE_SECONDS = 0
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    started = []
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # this process sends; the worker runs

    def start(**extra):
        queue = f"cleanup-test-{uuid.uuid4().hex[:10]}"
        env = {
            **os.environ,
            "PACKHOUSE_DATABASE_URL": database_url,
            "PACKHOUSE_DATABASE_CONN_MAX_AGE": "0",
            "PACKHOUSE_REDIS_URL": REDIS_URL,
            "PACKHOUSE_TASKS_EAGER": "false",
            "PACKHOUSE_STORAGE_URL": str(blob_dir),
            "PACKHOUSE_SPOOL_DIR": str(spool_dir),
            "PACKHOUSE_BLOB_GRACE_SECONDS": "0",
            **{key: str(value) for key, value in extra.items()},
        }
        worker = Worker(queue, tmp_path / f"{queue}.log", env)
        started.append(worker)
        return worker

    yield start
    app.conf.task_always_eager = eager
    for worker in started:
        worker.stop()
    with app.connection_for_write() as conn:  # the queues' leftovers in our Redis DB
        client = conn.default_channel.client
        for worker in started:
            client.delete(worker.queue, *(f"_kombu.{kind}.{worker.queue}" for kind in ("binding", "binding_permanent")))


@pytest.fixture
def admin_token():
    return AccessTokenFactory(user=AdminFactory()).plaintext


def publish(project, token, name, version, file_name="f.bin", content=None):
    content = content if content is not None else f"{name} {version} {file_name}".encode()
    with spool_bytes(content) as spool:
        return services.publish(
            project,
            principal_for_token(token),
            formats.get("generic"),
            PackageDraft(name, version, files=[FileDraft(file_name, spool)]),
        )


def live(project):
    return sorted(
        PackageVersion.objects.filter(package__project=project)
        .exclude(status=Status.PENDING_DESTRUCTION)
        .values_list("package__name", "version")
    )


def assert_nothing_half_deleted(blob_dir):
    """Every file's blob has its object and every Blob row its object (objects without a row
    are orphans the sweep removes; rows without an object would be corruption)."""
    objects = set(stored_objects(blob_dir))
    assert not [name for name in objects if name.endswith(".part")]
    for blob in Blob.objects.all():
        assert blob.key in objects, f"Blob row {blob.sha256} lost its object"
    for package_file in PackageFile.objects.select_related("blob"):
        assert package_file.blob.key in objects


def marked_counts(*workers):
    versions = files = 0
    for worker in workers:
        for v, f in re.findall(r"marked (\d+) versions, (\d+) files", worker.log()):
            versions += int(v)
            files += int(f)
    return versions, files


def purged_versions(*workers):
    return sum(int(n) for worker in workers for n in re.findall(r": purged (\d+) versions", worker.log()))


def assert_clean_log(worker):
    log = worker.log()
    assert "Traceback" not in log and " ERROR " not in log, log


def test_worker_applies_a_policy(start_worker, admin_token, blob_dir, api):
    worker = start_worker()
    project = ProjectFactory()
    for n in range(1, 9):
        publish(project, admin_token, "app", f"{n}.0")
    duplicates = [publish(project, admin_token, "app", "8.0", "dup.bin", f"copy {n}".encode())[1][0] for n in range(3)]
    CleanupPolicy.objects.create(project=project, keep_n_versions=3, keep_n_duplicated_package_files="1")
    worker.wait_ready()

    worker.send(project)
    worker.wait_for(r"cleanup policy of project \d+: purged")
    assert live(project) == [("app", "6.0"), ("app", "7.0"), ("app", "8.0")]
    assert not PackageVersion.objects.filter(status=Status.PENDING_DESTRUCTION).exists()
    assert set(PackageFile.objects.filter(file_name="dup.bin").values_list("pk", flat=True)) == {duplicates[-1].pk}
    assert PackageFile.objects.count() == 4
    assert len(stored_objects(blob_dir)) == 4
    assert_nothing_half_deleted(blob_dir)
    assert CleanupPolicy.objects.get(project=project).next_run_at is not None
    assert_clean_log(worker)

    headers = auth_headers(admin_token)
    base = f"/api/v4/projects/{project.pk}/packages/generic/app"
    assert api.get(f"{base}/1.0/f.bin", **headers).status_code == 404
    kept = api.get(f"{base}/8.0/dup.bin", **headers)
    assert kept.status_code == 200
    assert b"".join(kept.streaming_content) == b"copy 2"

    # A second run removes nothing more.
    worker.send(project)
    worker.wait_for(r"cleanup policy of project \d+: purged", count=2)
    assert marked_counts(worker) == (5, 2)
    assert PackageFile.objects.count() == 4


def test_two_workers_at_once_remove_each_thing_once(start_worker, admin_token, blob_dir):
    first, second = start_worker(PACKHOUSE_CLEANUP_BATCH_SIZE=3), start_worker(PACKHOUSE_CLEANUP_BATCH_SIZE=3)
    project = ProjectFactory()
    for n in range(1, 41):
        publish(project, admin_token, "app", str(n))
    for n in range(6):
        publish(project, admin_token, "app", "40", "dup.bin", f"copy {n}".encode())
    CleanupPolicy.objects.create(project=project, keep_n_versions=5, keep_n_duplicated_package_files="1")
    first.wait_ready()
    second.wait_ready()

    first.send(project)
    second.send(project)
    first.wait_for(r": purged")
    second.wait_for(r": purged")
    assert marked_counts(first, second) == (35, 5)
    assert purged_versions(first, second) == 35
    assert live(project) == sorted(("app", str(n)) for n in range(36, 41))
    assert PackageVersion.objects.count() == 5
    assert PackageFile.objects.count() == 6
    assert len(stored_objects(blob_dir)) == 6
    assert_nothing_half_deleted(blob_dir)
    assert_clean_log(first)
    assert_clean_log(second)


def test_a_worker_killed_mid_run_leaves_nothing_half_deleted(start_worker, admin_token, blob_dir):
    doomed = start_worker(PACKHOUSE_CLEANUP_BATCH_SIZE=1)
    project = ProjectFactory()
    total = 150
    for n in range(1, total + 1):
        publish(project, admin_token, "app", str(n))
    CleanupPolicy.objects.create(project=project, keep_n_versions=1)
    doomed.wait_ready()

    doomed.send(project)
    deadline = time.monotonic() + 120
    while True:  # kill it once it has visibly started, at whatever point that is
        pending = PackageVersion.objects.filter(status=Status.PENDING_DESTRUCTION).count()
        if pending >= 5 or PackageVersion.objects.count() < total:
            break
        assert time.monotonic() < deadline, doomed.log()
        time.sleep(0.01)
    doomed.kill()
    remaining = PackageVersion.objects.count()
    assert 1 < remaining <= total, "the worker finished before it could be killed"
    assert_nothing_half_deleted(blob_dir)

    survivor = start_worker(PACKHOUSE_CLEANUP_BATCH_SIZE=50)
    survivor.wait_ready()
    survivor.send(project)
    survivor.wait_for(r": purged")
    assert live(project) == [("app", str(total))]
    assert PackageVersion.objects.count() == 1
    assert PackageFile.objects.count() == 1
    assert_nothing_half_deleted(blob_dir)
    # An object whose row went just before the kill is an orphan: the sweep takes it.
    tasks.collect_orphan_objects()
    assert stored_objects(blob_dir) == [Blob.objects.get().key]
    assert_clean_log(survivor)


def test_webhooks_are_delivered_by_the_worker_never_in_the_request(start_worker, client, settings):
    """The publish answers while the listener has not even answered yet: the delivery is the
    worker's. Then the worker's delivery reaches the listener and is logged."""
    from accounts.roles import AccessLevel
    from registry.models import Webhook, WebhookDelivery
    from tests.factories import MembershipFactory, UserFactory
    from tests.hook_listener import Listener

    settings.WEBHOOK_ALLOW_PRIVATE = True
    worker = start_worker(PACKHOUSE_WEBHOOK_ALLOW_PRIVATE="true")
    settings.WEBHOOK_QUEUE = worker.queue  # this process queues its deliveries for that worker
    worker.wait_ready()
    project = ProjectFactory()
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    token = AccessTokenFactory(user=user).plaintext
    with Listener(gated=True) as listener:
        Webhook.objects.create(project=project, url=listener.url)
        url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0/tool.bin"
        response = client.put(url, data=b"x", content_type="text/plain", **auth_headers(token))
        assert response.status_code == 201
        delivery = WebhookDelivery.objects.get()
        assert delivery.delivered_at is None  # answered before anything was delivered
        listener.gate.set()
        worker.wait_for(r"webhook \d+ published attempt 1: 200")
    delivery.refresh_from_db()
    assert delivery.status_code == 200 and delivery.delivered_at is not None
    assert [b["event_type"] for b in listener.bodies()] == ["published"]
    assert_clean_log(worker)
