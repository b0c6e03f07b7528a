"""S3 through django-storages, against a real S3 server (SeaweedFS, tests/seaweed.py): uploads
land in the bucket, downloads redirect to a presigned URL the store checks, or stream when asked to."""

import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest

from accounts.roles import AccessLevel
from packhouse.settings import _blob_storage
from registry.models import PackageFile
from tests.factories import AccessTokenFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


def test_storage_url_selects_s3_with_its_options():
    config = _blob_storage("s3://my-bucket?endpoint_url=http://minio:9000&region_name=eu-west-1")
    assert config["BACKEND"] == "storages.backends.s3.S3Storage"
    assert config["OPTIONS"]["bucket_name"] == "my-bucket"
    assert config["OPTIONS"]["endpoint_url"] == "http://minio:9000"
    assert config["OPTIONS"]["region_name"] == "eu-west-1"
    assert _blob_storage("/srv/packhouse")["BACKEND"].endswith("FileSystemStorage")


def test_upload_to_s3_and_download_through_a_presigned_redirect(client, s3_storage):
    project = ProjectFactory()
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext)
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0/tool.bin"
    payload = b"bytes kept in object storage" * 1000

    response = client.put(url, data=payload, content_type="application/octet-stream", **headers)
    assert response.status_code == 201
    blob = PackageFile.objects.get().blob
    assert s3_storage.keys() == [blob.key]

    download = client.get(url, **headers)
    assert download.status_code == 302
    location = download["Location"]
    assert location.startswith(f"{s3_storage.server.endpoint}/{s3_storage.name}/{blob.key}?")
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == ["300"]  # PACKHOUSE_DOWNLOAD_URL_SECONDS: minutes, not an hour
    with urllib.request.urlopen(location) as answer:
        assert answer.read() == payload
        assert answer.headers["Content-Disposition"] == 'attachment; filename="tool.bin"'
    # The store checks the signature: a link changed by one character is refused.
    tampered = location.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered)
    assert refused.value.code == 403


def test_a_presigned_link_expires(client, s3_storage, settings):
    short = _blob_storage(s3_storage.storage_url)
    short["OPTIONS"]["querystring_expire"] = 1
    settings.STORAGES = {**settings.STORAGES, "packages": short}
    project = ProjectFactory()
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext)
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0/tool.bin"
    assert client.put(url, data=b"short-lived", content_type="application/octet-stream", **headers).status_code == 201
    location = client.get(url, **headers)["Location"]
    time.sleep(2.5)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(location)
    assert refused.value.code == 403


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


def test_the_test_store_starts_on_new_ports_when_one_it_picked_is_taken(tmp_path):
    """The picked ports of a first start are free when picked, not when weed binds them (in CI a
    filer gRPC port was taken meanwhile, and 15 tests errored); the start picks again."""
    import socket

    from tests.seaweed import SeaweedFS

    store = SeaweedFS(tmp_path)
    taken = store.ports["filer.port.grpc"]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        try:
            store.start()
            assert store.running
            assert taken not in store.ports.values()
            assert "address already in use" in store.log_path.read_text(errors="replace")
            bucket = store.new_bucket("moved")
            store.client().put_object(Bucket=bucket, Key="k", Body=b"stored")
            assert store.keys(bucket) == ["k"]
        finally:
            store.stop()
