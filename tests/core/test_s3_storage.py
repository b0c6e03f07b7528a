"""S3 through django-storages, against a real S3 protocol server (moto's standalone server):
uploads land in the bucket, downloads redirect to a presigned URL, or stream when asked to."""

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from accounts.roles import AccessLevel
from packhouse.settings import _blob_storage
from registry.models import PackageFile
from tests.factories import AccessTokenFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db

CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            break
        except OSError as exc:
            if getattr(exc, "code", None):
                break
            time.sleep(0.1)
    yield endpoint
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def s3_storage(settings, s3_endpoint):
    bucket = f"packhouse-{time.monotonic_ns()}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    storage = _blob_storage(f"s3://{bucket}?endpoint_url={s3_endpoint}")
    storage["OPTIONS"].update(CREDENTIALS)
    settings.STORAGES = {**settings.STORAGES, "packages": storage}
    return bucket


def test_storage_url_selects_s3_with_its_options():
    config = _blob_storage("s3://my-bucket?endpoint_url=http://minio:9000&region_name=eu-west-1")
    assert config["BACKEND"] == "storages.backends.s3.S3Storage"
    assert config["OPTIONS"]["bucket_name"] == "my-bucket"
    assert config["OPTIONS"]["endpoint_url"] == "http://minio:9000"
    assert config["OPTIONS"]["region_name"] == "eu-west-1"
    assert _blob_storage("/srv/packhouse")["BACKEND"].endswith("FileSystemStorage")


def test_upload_to_s3_and_download_through_a_presigned_redirect(client, s3_storage, s3_endpoint):
    project = ProjectFactory()
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext)
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0/tool.bin"
    payload = b"bytes kept in object storage" * 1000

    response = client.put(url, data=payload, content_type="application/octet-stream", **headers)
    assert response.status_code == 201
    blob = PackageFile.objects.get().blob
    objects = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).list_objects_v2(Bucket=s3_storage)
    assert [o["Key"] for o in objects["Contents"]] == [blob.key]

    download = client.get(url, **headers)
    assert download.status_code == 302
    assert download["Location"].startswith(f"{s3_endpoint}/{s3_storage}/{blob.key}?")
    assert "Signature" in download["Location"] or "X-Amz-Signature" in download["Location"]
    expires = int(parse_qs(urlsplit(download["Location"]).query)["Expires"][0])
    assert 290 <= expires - time.time() <= 310  # PACKHOUSE_DOWNLOAD_URL_SECONDS: minutes, not an hour
    assert urllib.request.urlopen(download["Location"]).read() == payload


def test_s3_download_streams_when_redirects_are_not_allowed(client, s3_storage, rf):
    """Maven and NuGet clients get the bytes themselves, never a redirect."""
    from registry import services

    project = ProjectFactory()
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext)
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0/tool.bin"
    client.put(url, data=b"streamed", content_type="application/octet-stream", **headers)
    response = services.serve(PackageFile.objects.get(), rf.get("/"), allow_redirect=False)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"streamed"
    assert response["X-Checksum-SHA256"] == PackageFile.objects.get().blob.sha256
