"""A live registry on the real S3 store (SeaweedFS): uploads stream from the spool in multipart
parts in constant memory, and the store's faults are 503s that leave nothing behind."""

import base64
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from datetime import timedelta
from pathlib import Path

import pytest

from accounts.roles import AccessLevel
from registry import tasks
from registry.models import Blob, PackageFile
from tests.conftest import start_live_server, stop_live_server
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]
MiB = 1024 * 1024


def curl(*args, timeout=600):
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--write-out", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status or 0), body + result.stderr


@pytest.fixture
def s3_registry(s3_storage, spool_dir, tmp_path):
    server = start_live_server(s3_storage.storage_url, spool_dir, tmp_path)
    yield server
    stop_live_server(server)


@pytest.fixture
def developer_token():
    project = ProjectFactory(group=GroupFactory(path="acme"), path="tools")
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return project, AccessTokenFactory(user=user).plaintext


def _peak_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _reset_peak(pid):
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak starts again from the current RSS
    return _peak_rss_kib(pid)


def _random_file(path, size):
    """`size` incompressible bytes, written 1 MiB at a time; returns their sha256."""
    digest = hashlib.sha256()
    block = os.urandom(MiB)
    with path.open("wb") as handle:
        for index in range(size // MiB):
            chunk = index.to_bytes(4, "big") + block[4:]
            handle.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def _npm_publish_body(path, name, version, payload):
    """An npm publish document on disk whose tarball holds `payload` (a file), base64 streamed."""
    manifest = {"name": name, "version": version, "main": "index.js", "license": "MIT"}
    tarball = path.with_suffix(".tgz")
    with tarfile.open(tarball, mode="w:gz", compresslevel=1) as tar:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("package/package.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        tar.add(payload, arcname="package/blob.bin")
    sha512, sha1 = hashlib.sha512(), hashlib.sha1()  # noqa: S324 - npm's shasum
    with tarball.open("rb") as handle:
        for chunk in iter(lambda: handle.read(MiB), b""):
            sha512.update(chunk)
            sha1.update(chunk)
    file_name = f"{name}-{version}.tgz"
    head, tail = (
        json.dumps(
            {
                "_id": name,
                "name": name,
                "dist-tags": {"latest": version},
                "versions": {
                    version: {
                        **manifest,
                        "dist": {
                            "shasum": sha1.hexdigest(),
                            "integrity": "sha512-" + base64.b64encode(sha512.digest()).decode(),
                            "tarball": f"http://x/{file_name}",
                        },
                    }
                },
                "_attachments": {
                    file_name: {
                        "content_type": "application/octet-stream",
                        "data": "@DATA@",
                        "length": tarball.stat().st_size,
                    }
                },
            }
        )
        .encode()
        .split(b"@DATA@")
    )
    with path.open("wb") as out, tarball.open("rb") as source:
        out.write(head)
        for chunk in iter(lambda: source.read(3 * MiB), b""):  # a multiple of 3: no padding mid-way
            out.write(base64.b64encode(chunk))
        out.write(tail)
    tarball.unlink()
    return path


def test_a_1_gib_upload_and_a_200_mib_npm_publish_go_to_s3_in_constant_memory(
    s3_registry, s3_storage, developer_token, tmp_path
):
    project, token = developer_token
    auth = ("--header", f"PRIVATE-TOKEN: {token}")
    generic = s3_registry.api(f"projects/{project.pk}/packages/generic")
    # Warm the worker up (Django, boto3's client and transfer threads) so the baseline holds them.
    warm = tmp_path / "warm.bin"
    _random_file(warm, 20 * MiB)
    assert curl(*auth, "--upload-file", str(warm), f"{generic}/warm/1/warm.bin")[0] == 201
    (worker,) = s3_registry.worker_pids()

    big = tmp_path / "big.bin"
    sha256 = _random_file(big, 1024 * MiB)
    before = _reset_peak(worker)
    status, output = curl(*auth, "--upload-file", str(big), f"{generic}/big/1.0.0/big.bin")
    assert status == 201, output
    growth_mib = (_peak_rss_kib(worker) - before) / 1024
    print(f"worker peak RSS growth over a 1 GiB upload to S3: {growth_mib:.1f} MiB")
    assert growth_mib < 64
    blob = Blob.objects.get(sha256=sha256)
    assert blob.size == 1024 * MiB
    assert blob.key in s3_storage.keys()
    head = s3_storage.server.client().head_object(Bucket=s3_storage.name, Key=blob.key)
    assert head["ContentLength"] == 1024 * MiB
    assert "-" in head["ETag"]  # a multipart upload's ETag: <md5 of the parts' md5s>-<parts>
    big.unlink()

    payload = tmp_path / "payload.bin"
    _random_file(payload, 200 * MiB)
    body = _npm_publish_body(tmp_path / "publish.json", "@acme/big", "1.0.0", payload)
    payload.unlink()
    before = _reset_peak(worker)
    status, output = curl(
        *("--header", f"Authorization: Bearer {token}", "--header", "Content-Type: application/json"),
        *("--request", "PUT", "--data-binary", f"@{body}"),
        s3_registry.api(f"projects/{project.pk}/packages/npm/@acme%2fbig"),
    )
    assert status in (200, 201), output
    growth_mib = (_peak_rss_kib(worker) - before) / 1024
    print(f"worker peak RSS growth over a 200 MiB npm publish to S3: {growth_mib:.1f} MiB")
    assert growth_mib < 64
    tarball = PackageFile.objects.get(version__package__name="@acme/big").blob
    assert tarball.size > 200 * MiB
    assert tarball.key in s3_storage.keys()


def test_store_stopped_mid_upload_is_503_and_leaves_no_row_and_no_object(
    s3_registry, s3_storage, developer_token, tmp_path, settings
):
    project, token = developer_token
    big = tmp_path / "big.bin"
    _random_file(big, 512 * MiB)
    url = s3_registry.api(f"projects/{project.pk}/packages/generic/big/1.0.0/big.bin")
    upload = subprocess.Popen(
        ["curl", "--silent", "--output", "/dev/null", "--write-out", "%{http_code}"]
        + ["--header", f"PRIVATE-TOKEN: {token}", "--upload-file", str(big), url],
        stdout=subprocess.PIPE,
        text=True,
    )
    store = s3_storage.server.client()
    # Wait until the node is sending parts to the store (a multipart upload is open), then stop it.
    while not store.list_multipart_uploads(Bucket=s3_storage.name).get("Uploads"):
        assert upload.poll() is None, "the upload ended before its multipart upload was seen"
        time.sleep(0.02)
    s3_storage.server.stop()
    status = int(upload.communicate(timeout=300)[0])
    assert status == 503
    assert not PackageFile.objects.exists()
    assert not Blob.objects.exists()

    s3_storage.server.start()
    assert s3_storage.keys() == []  # no object: the parts sent are not one
    tasks.collect_orphan_objects(grace=timedelta(0))  # the sweep aborts what the upload left
    assert not s3_storage.server.client().list_multipart_uploads(Bucket=s3_storage.name).get("Uploads")
    # and the same upload succeeds once the store is back
    assert curl("--header", f"PRIVATE-TOKEN: {token}", "--upload-file", str(big), url)[0] == 201
    assert s3_storage.keys() == [Blob.objects.get().key]


def test_store_stopped_downloads_are_503_until_it_is_back(s3_registry, s3_storage, developer_token, tmp_path):
    project, token = developer_token
    payload = tmp_path / "payload.bin"
    _random_file(payload, 3 * MiB)
    auth = ("--header", f"PRIVATE-TOKEN: {token}")
    url = s3_registry.api(f"projects/{project.pk}/packages/generic/tool/1.0.0/tool.bin")
    assert curl(*auth, "--upload-file", str(payload), url)[0] == 201

    s3_storage.server.stop()
    assert curl(*auth, "--location", "--output", "/dev/null", url)[0] == 503
    assert curl(*auth, "--head", url)[0] == 503
    missing = s3_registry.api(f"projects/{project.pk}/packages/generic/tool/1.0.0/missing.bin")
    assert curl(*auth, "--output", "/dev/null", missing)[0] == 404  # no such file is still 404

    s3_storage.server.start()
    back = tmp_path / "back.bin"
    assert curl(*auth, "--location", "--output", str(back), url)[0] == 200
    assert back.read_bytes() == payload.read_bytes()
    assert "Traceback" not in s3_registry.log()
