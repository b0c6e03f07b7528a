"""Real curl against a live server: every credential spelling, byte-identical downloads, refused
uploads answered with Packhouse's own status, and a 100 MB upload whose server memory does not
grow with the file."""

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from accounts.roles import AccessLevel
from registry.models import Blob, PackageFile, PackageVersion
from tests.factories import (
    AccessTokenFactory,
    CiJobFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    finish,
)
from tests.helpers import stored_objects

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


def curl(*args):
    """Run curl; returns (http status, stderr). Never raises on HTTP errors."""
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--path-as-is", "--write-out", "%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return int(result.stdout[-3:]), result.stdout[:-3] + result.stderr


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="releases")


@pytest.fixture
def developer(project):
    user = UserFactory(username="dev")
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return user


@pytest.fixture
def payload(tmp_path):
    path = tmp_path / "artifact.tar.gz"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return path


def credentials(kind, project, developer):
    if kind == "private-token":
        return ["--header", f"PRIVATE-TOKEN: {AccessTokenFactory(user=developer).plaintext}"]
    if kind == "job-token":
        return ["--header", f"JOB-TOKEN: {CiJobFactory(project=project, user=developer).plaintext}"]
    if kind == "deploy-token":
        return ["--header", f"DEPLOY-TOKEN: {DeployTokenFactory(project=project).plaintext}"]
    if kind == "basic-pat":
        return ["--user", f"dev:{AccessTokenFactory(user=developer).plaintext}"]
    if kind == "basic-job":
        return ["--user", f"gitlab-ci-token:{CiJobFactory(project=project, user=developer).plaintext}"]
    token = DeployTokenFactory(project=project)
    return ["--user", f"{token.username}:{token.plaintext}"]


@pytest.mark.parametrize(
    "kind", ["private-token", "job-token", "deploy-token", "basic-pat", "basic-job", "basic-deploy"]
)
def test_upload_and_download_with_each_credential(live_registry, project, developer, payload, tmp_path, kind):
    auth = credentials(kind, project, developer)
    url = live_registry.api(f"projects/{project.pk}/packages/generic/artifact/1.0.0/{payload.name}")
    status, output = curl(*auth, "--upload-file", str(payload), url)
    assert status == 201, output
    assert '"201 Created"' in output

    downloaded = tmp_path / "downloaded"
    status, output = curl(*auth, "--output", str(downloaded), url)
    assert status == 200, output
    assert downloaded.read_bytes() == payload.read_bytes()
    assert PackageVersion.objects.get().created_via == {
        "private-token": "personal",
        "basic-pat": "personal",
        "job-token": "job",
        "basic-job": "job",
    }.get(kind, "deploy")


def test_url_encoded_full_path_works_like_the_id(live_registry, project, developer, payload):
    auth = credentials("private-token", project, developer)
    url = live_registry.api("projects/acme%2Freleases/packages/generic/artifact/1.0.0/a.bin")
    assert curl(*auth, "--upload-file", str(payload), url)[0] == 201
    assert curl(*auth, "--output", "/dev/null", url)[0] == 200


def test_refusals_over_the_wire(live_registry, project, developer, payload, blob_dir):
    url = live_registry.api(f"projects/{project.pk}/packages/generic/artifact/1.0.0/x.bin")
    status, _ = curl("--upload-file", str(payload), url)
    assert status == 401
    status, headers = curl("--head", url)
    assert status == 401
    assert 'www-authenticate: basic realm="packhouse package registry"' in headers.lower()
    assert curl("--header", "PRIVATE-TOKEN: glpat-wrong", "--upload-file", str(payload), url)[0] == 401
    job = CiJobFactory(project=project, user=developer)
    finish(job)
    assert curl("--header", f"JOB-TOKEN: {job.plaintext}", "--upload-file", str(payload), url)[0] == 401
    read_only = DeployTokenFactory(project=project, scopes=["read_package_registry"])
    assert curl("--header", f"DEPLOY-TOKEN: {read_only.plaintext}", "--upload-file", str(payload), url)[0] == 403
    assert PackageFile.objects.count() == 0
    assert stored_objects(blob_dir) == []


def test_traversal_over_the_wire_is_refused(live_registry, project, developer, payload, blob_dir):
    auth = credentials("private-token", project, developer)
    base = live_registry.api(f"projects/{project.pk}/packages/generic")
    for suffix in ("../x/1.0/f", "a/1.0/../../../etc/passwd", "a/1.0/%2e%2e%2fetc", "a/1.0/f%00.bin"):
        status, _ = curl(*auth, "--upload-file", str(payload), f"{base}/{suffix}")
        assert status in (400, 404), suffix
    assert stored_objects(blob_dir) == []


def test_a_refused_upload_gets_packhouses_status_not_a_proxy_error(
    live_registry, project, developer, payload, blob_dir
):
    """Packhouse refuses these before reading the body; on a node, nginx is still sending it when
    the answer comes, and answered 502 (a reset) unless the application read the rest first."""
    token = AccessTokenFactory(user=developer).plaintext
    public = ProjectFactory(visibility="public")  # visible to the developer, not theirs to write
    refused = {
        f"projects/{public.pk}/packages/generic/a/1.0/a.bin": {403},
        "projects/999999/packages/generic/a/1.0/a.bin": {404},  # no such project
        # A traversal: 400 from Packhouse, or 404 once nginx has resolved the dots.
        f"projects/{project.pk}/packages/generic/a/1.0/%2e%2e%2fetc": {400, 404},
    }
    for path, expected in refused.items():
        statuses = {
            curl("--header", f"PRIVATE-TOKEN: {token}", "--upload-file", str(payload), live_registry.api(path))[0]
            for _ in range(15)
        }
        assert statuses <= expected, (path, statuses)
    assert stored_objects(blob_dir) == []


def _peak_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_100_mb_upload_and_download_in_constant_memory(live_registry, project, developer, tmp_path):
    big = tmp_path / "big.bin"
    block = os.urandom(1024 * 1024)
    digest = hashlib.sha256()
    with big.open("wb") as handle:
        for index in range(100):
            chunk = bytes([index]) + block[1:]
            handle.write(chunk)
            digest.update(chunk)
    auth = credentials("private-token", project, developer)
    url = live_registry.api(f"projects/{project.pk}/packages/generic/big/1.0.0/big.bin")
    # Warm the worker up so its baseline includes Django's own footprint.
    curl(
        *auth, "--upload-file", str(Path(__file__)), live_registry.api(f"projects/{project.pk}/packages/generic/w/1/w")
    )
    (worker,) = live_registry.worker_pids()
    Path(f"/proc/{worker}/clear_refs").write_text("5")  # reset the peak to the current RSS
    before = _peak_rss_kib(worker)

    status, output = curl(*auth, "--upload-file", str(big), url)
    assert status == 201, output
    downloaded = tmp_path / "back.bin"
    assert curl(*auth, "--output", str(downloaded), url)[0] == 200

    growth_mib = (_peak_rss_kib(worker) - before) / 1024
    print(f"worker peak RSS growth over a 100 MiB upload + download: {growth_mib:.1f} MiB")
    assert growth_mib < 32
    assert Blob.objects.get(size=100 * 1024 * 1024).sha256 == digest.hexdigest()
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == digest.hexdigest()


def test_curl_follows_the_presigned_link_from_s3_storage(live_registry_s3, project, developer, payload, tmp_path):
    """On S3 a download is a 302 to a presigned link: `curl -L` gets the bytes (without its
    credentials: another origin), plain `curl` gets the 302 and its Location."""
    auth = credentials("basic-pat", project, developer)
    url = live_registry_s3.api(f"projects/{project.pk}/packages/generic/artifact/1.0.0/{payload.name}")
    assert curl(*auth, "--upload-file", str(payload), url)[0] == 201
    assert PackageFile.objects.get().blob.key in live_registry_s3.bucket.keys()

    downloaded = tmp_path / "downloaded"
    status, _ = curl(*auth, "--location", "--output", str(downloaded), url)
    assert status == 200
    assert downloaded.read_bytes() == payload.read_bytes()
    status, headers = curl(*auth, "--head", "--request", "GET", url)
    assert status == 302
    assert f"location: {live_registry_s3.bucket.server.endpoint}/" in headers.lower()
