"""The project-level artifact maven-metadata.xml follows deletions (REST DELETE, cleanup
policies: registry.services.mark_version_for_destruction, then the purge task)."""

import gzip
import hashlib

import pytest

from packages_maven.format import VERSIONLESS
from registry import services, tasks
from registry.models import PackageVersion
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db

ARTIFACT = "com/example/my-app"
ALGORITHMS = ("md5", "sha1", "sha256", "sha512")


def pom(version):
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId>
  <artifactId>my-app</artifactId>
  <version>{version}</version>
</project>
""".encode()


def metadata(*versions):
    """What maven-deploy-plugin uploads after deploying the last of `versions`."""
    listed = "".join(f"\n      <version>{v}</version>" for v in versions)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>com.example</groupId>
  <artifactId>my-app</artifactId>
  <versioning>
    <latest>{versions[-1]}</latest>
    <release>{versions[-1]}</release>
    <versions>{listed}
    </versions>
    <lastUpdated>20240101120000</lastUpdated>
  </versioning>
</metadata>
""".encode()


@pytest.fixture
def group():
    return GroupFactory(path="acme")


@pytest.fixture
def project(group):
    return ProjectFactory(group=group, path="libs")


@pytest.fixture
def developer(project):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=30)
    return auth_headers(AccessTokenFactory(user=user).plaintext)


def url(project, path):
    return f"/api/v4/projects/{project.pk}/packages/maven/{path}"


def put(client, target, data, headers):
    return client.put(target, data=data, content_type="application/octet-stream", **headers)


def digest(algorithm, data):
    return hashlib.new(algorithm, data).hexdigest()


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def deploy(client, project, headers, version, known):
    """As `mvn deploy`: jar, pom (with checksums), then the merged artifact metadata."""
    base = f"{ARTIFACT}/{version}/my-app-{version}"
    for name, data in ((f"{base}.jar", f"jar {version}".encode()), (f"{base}.pom", pom(version))):
        assert put(client, url(project, name), data, headers).status_code == 200
        assert put(client, url(project, f"{name}.sha1"), digest("sha1", data).encode(), headers).status_code == 204
    document = metadata(*known)
    target = url(project, f"{ARTIFACT}/maven-metadata.xml")
    assert put(client, target, document, headers).status_code == 200
    for algorithm in ("md5", "sha1"):
        checksum = digest(algorithm, document).encode()
        assert put(client, f"{target}.{algorithm}", checksum, headers).status_code == 204
    return document


def fetch_metadata(client, project, headers):
    """The served document, checked against its headers, HEAD and every checksum route."""
    target = url(project, f"{ARTIFACT}/maven-metadata.xml")
    response = client.get(target, **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    served = body(response)
    for algorithm in ("md5", "sha1", "sha256"):
        assert response[f"X-Checksum-{algorithm.upper()}"] == digest(algorithm, served)
    for algorithm in ALGORITHMS:
        checksum = client.get(f"{target}.{algorithm}", **headers)
        assert checksum.status_code == 200
        assert checksum.content.decode() == digest(algorithm, served)
        assert client.head(f"{target}.{algorithm}", **headers).status_code == 200
    assert client.head(target, **headers).status_code == 200
    return served.decode()


def versions_in(document):
    return [line.strip()[9:-10] for line in document.splitlines() if line.strip().startswith("<version>")]


def test_uploaded_metadata_is_served_while_it_lists_exactly_the_live_versions(client, project, developer):
    deploy(client, project, developer, "1.0.0", ["1.0.0"])
    uploaded = deploy(client, project, developer, "2.0.0", ["1.0.0", "2.0.0"])
    assert fetch_metadata(client, project, developer).encode() == uploaded  # mvn's own bytes


@pytest.mark.parametrize("purge", [False, True], ids=["marked", "purged"])
def test_deleted_version_disappears_from_project_metadata(client, group, project, developer, purge):
    deploy(client, project, developer, "1.0.0", ["1.0.0"])
    deploy(client, project, developer, "2.0.0", ["1.0.0", "2.0.0"])
    before = fetch_metadata(client, project, developer)
    assert versions_in(before) == ["1.0.0", "2.0.0"]

    services.mark_version_for_destruction(PackageVersion.objects.get(version="2.0.0"))
    if purge:
        assert tasks.purge_pending_destruction()["versions"] == 1
        assert not PackageVersion.objects.filter(version="2.0.0").exists()

    document = fetch_metadata(client, project, developer)
    assert versions_in(document) == ["1.0.0"]
    assert "<latest>1.0.0</latest>" in document
    assert "<release>1.0.0</release>" in document
    assert "<groupId>com.example</groupId>" in document and "<artifactId>my-app</artifactId>" in document
    newest = PackageVersion.objects.get(version="1.0.0").created_at
    assert f"<lastUpdated>{newest.strftime('%Y%m%d%H%M%S')}</lastUpdated>" in document
    assert "2.0.0" not in document
    # the uploaded document and the remaining version are untouched
    assert PackageVersion.objects.filter(version=VERSIONLESS, status="hidden").exists()
    jar = client.get(url(project, f"{ARTIFACT}/1.0.0/my-app-1.0.0.jar"), **developer)
    assert (jar.status_code, body(jar)) == (200, b"jar 1.0.0")

    # gzip: the headers describe the decompressed bytes, the same as the plain response
    target = url(project, f"{ARTIFACT}/maven-metadata.xml")
    compressed = client.get(target, HTTP_ACCEPT_ENCODING="gzip", **developer)
    if compressed.get("Content-Encoding") == "gzip":
        assert gzip.decompress(compressed.content).decode() == document
    assert compressed["X-Checksum-SHA1"] == digest("sha1", document.encode())
    again = client.get(target, HTTP_IF_NONE_MATCH=compressed["ETag"], **developer)
    assert again.status_code == 304

    # group level agrees
    owner = UserFactory()
    MembershipFactory(user=owner, group=group, access_level=40)
    headers = auth_headers(AccessTokenFactory(user=owner).plaintext)
    merged = client.get(f"/api/v4/groups/{group.pk}/-/packages/maven/{ARTIFACT}/maven-metadata.xml", **headers)
    assert versions_in(merged.content.decode()) == ["1.0.0"]

    # a redeploy of 2.0.0 (mvn merges the served document and uploads it): mvn's bytes again
    uploaded = deploy(client, project, developer, "2.0.0", ["1.0.0", "2.0.0"])
    assert fetch_metadata(client, project, developer).encode() == uploaded


def test_metadata_listing_a_deleted_version_is_never_served_verbatim(client, project, developer):
    deploy(client, project, developer, "1.0.0", ["1.0.0"])
    # a document listing a version that was never published here (or has been deleted)
    target = url(project, f"{ARTIFACT}/maven-metadata.xml")
    assert put(client, target, metadata("1.0.0", "0.9"), developer).status_code == 200
    document = fetch_metadata(client, project, developer)
    assert versions_in(document) == ["1.0.0"]
    assert "<latest>1.0.0</latest>" in document


def test_deleting_every_version_removes_the_artifact_metadata(client, project, developer):
    deploy(client, project, developer, "1.0.0", ["1.0.0"])
    plugins = b"<metadata><plugins><plugin><prefix>x</prefix></plugin></plugins></metadata>"
    assert put(client, url(project, "com/example/maven-metadata.xml"), plugins, developer).status_code == 200

    services.mark_version_for_destruction(PackageVersion.objects.get(version="1.0.0"))
    target = url(project, f"{ARTIFACT}/maven-metadata.xml")
    assert client.get(target, **developer).status_code == 404
    assert client.get(f"{target}.sha1", **developer).status_code == 404

    tasks.purge_pending_destruction()  # the version, and with it the orphaned artifact metadata
    assert client.get(target, **developer).status_code == 404
    marker = PackageVersion.objects.filter(package__name=ARTIFACT, version=VERSIONLESS)
    assert list(marker.values_list("status", flat=True)) in ([], ["pending_destruction"])
    tasks.purge_pending_destruction()
    assert not marker.exists()

    # plugin-group metadata (no versions under that path) is still the uploaded document
    assert body(client.get(url(project, "com/example/maven-metadata.xml"), **developer)) == plugins

    # deploying again starts afresh
    uploaded = deploy(client, project, developer, "1.0.0", ["1.0.0"])
    assert fetch_metadata(client, project, developer).encode() == uploaded
