"""Maven repository over HTTP (APIClient): statuses, bodies, rows and storage."""

import hashlib

import pytest

from accounts.roles import AccessLevel
from packages_maven.format import VERSIONLESS
from registry import download_counts
from registry.models import Blob, DuplicateSetting, Package, PackageFile, PackageVersion
from tests.factories import (
    AccessTokenFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from tests.helpers import auth_headers, stored_objects

pytestmark = pytest.mark.django_db

POM = b"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId>
  <artifactId>my-app</artifactId>
  <version>1.0</version>
</project>
"""
METADATA = b"""<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>com.example</groupId>
  <artifactId>my-app</artifactId>
  <versioning><release>1.0</release><versions><version>1.0</version></versions></versioning>
</metadata>
"""
XXE_POM = b"""<?xml version="1.0"?>
<!DOCTYPE project [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<project><name>&xxe;</name></project>
"""
LAUGHS_POM = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]>\n<project>&lol9;</project>\n"
)
JAR = b"PK\x03\x04" + bytes(range(256)) * 40


@pytest.fixture
def group():
    return GroupFactory(path="acme")


@pytest.fixture
def project(group):
    return ProjectFactory(group=group, path="libs")


@pytest.fixture
def developer_user(project):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return user


@pytest.fixture
def developer(developer_user):
    return auth_headers(AccessTokenFactory(user=developer_user).plaintext)


def url(project, path):
    return f"/api/v4/projects/{project.pk}/packages/maven/{path}"


def put(client, target, data, headers):
    return client.put(target, data=data, content_type="application/octet-stream", **headers)


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def sha1(data):
    return hashlib.sha1(data).hexdigest()  # noqa: S324


def md5(data):
    return hashlib.md5(data).hexdigest()  # noqa: S324


def deploy_release(client, project, headers, version="1.0", jar=JAR):
    base = f"com/example/my-app/{version}/my-app-{version}"
    for name, data in ((f"{base}.jar", jar), (f"{base}.pom", POM)):
        assert put(client, url(project, name), data, headers).status_code == 200
        assert put(client, url(project, name + ".sha1"), sha1(data).encode(), headers).status_code == 204
        assert put(client, url(project, name + ".md5"), md5(data).encode(), headers).status_code == 204
    assert put(client, url(project, "com/example/my-app/maven-metadata.xml"), METADATA, headers).status_code == 200


def assert_nothing_stored(blob_dir):
    assert PackageFile.objects.count() == 0
    assert Blob.objects.count() == 0
    assert stored_objects(blob_dir) == []


def test_deploy_and_download_a_release(client, project, developer, blob_dir):
    deploy_release(client, project, developer)

    package = Package.objects.get()
    assert (package.format, package.name) == ("maven", "com/example/my-app")
    versions = {v.version: v.status for v in package.versions.all()}
    assert versions == {"1.0": "default", VERSIONLESS: "hidden"}
    assert sorted(PackageFile.objects.values_list("file_name", flat=True)) == [
        "maven-metadata.xml",
        "my-app-1.0.jar",
        "my-app-1.0.pom",
    ]  # checksum files are verified, not stored
    assert len(stored_objects(blob_dir)) == 3

    jar_url = url(project, "com/example/my-app/1.0/my-app-1.0.jar")
    download = client.get(jar_url, **developer)
    assert download.status_code == 200
    assert body(download) == JAR
    assert download["x-checksum-sha1"] == sha1(JAR)
    assert download["x-checksum-md5"] == md5(JAR)
    assert download["x-checksum-sha256"] == hashlib.sha256(JAR).hexdigest()
    assert download["Content-Type"] == "application/java-archive"

    head = client.head(jar_url, **developer)
    assert head.status_code == 200
    assert int(head["Content-Length"]) == len(JAR)

    for algorithm in ("md5", "sha1", "sha256", "sha512"):
        checksum = client.get(f"{jar_url}.{algorithm}", **developer)
        assert checksum.status_code == 200
        assert checksum.content.decode() == hashlib.new(algorithm, JAR).hexdigest()
        assert checksum["Content-Type"].startswith("text/plain")

    metadata = client.get(url(project, "com/example/my-app/maven-metadata.xml"), **developer)
    assert metadata.status_code == 200
    assert body(metadata) == METADATA  # the uploaded document, verbatim
    pom = client.get(url(project, "com/example/my-app/1.0/my-app-1.0.pom"), **developer)
    assert body(pom) == POM
    download_counts.flush()  # counted in Redis, written in batches
    assert PackageVersion.objects.get(version="1.0").download_count == 2  # the jar and the pom GETs


def test_classifier_jars_are_files_of_the_version(client, project, developer):
    base = "com/example/my-app/1.0/my-app-1.0"
    for suffix in ("-sources.jar", "-javadoc.jar", "-linux+x86_64.jar", ".module"):
        assert put(client, url(project, base + suffix), suffix.encode(), developer).status_code == 200
    assert PackageVersion.objects.get().files.count() == 4
    assert body(client.get(url(project, base + "-sources.jar"), **developer)) == b"-sources.jar"


def test_missing_file_is_404(client, project, developer):
    response = client.get(url(project, "com/example/my-app/1.0/my-app-1.0.jar"), **developer)
    assert response.status_code == 404
    assert response.json() == {"message": "404 Package Not Found"}
    assert client.get(url(project, "com/example/my-app/maven-metadata.xml.sha1"), **developer).status_code == 404


def test_checksum_mismatch_is_400_and_checksum_of_missing_file_404(client, project, developer, blob_dir):
    jar = "com/example/my-app/1.0/my-app-1.0.jar"
    assert put(client, url(project, jar), JAR, developer).status_code == 200
    before = stored_objects(blob_dir)
    for ext, wrong in ((".sha1", "0" * 40), (".md5", "f" * 32), (".sha256", "a" * 64), (".sha512", "b" * 128)):
        response = put(client, url(project, jar + ext), wrong.encode(), developer)
        assert response.status_code == 400, ext
        assert "checksum mismatch" in response.json()["message"]
    assert put(client, url(project, jar + ".sha1"), b"not hex", developer).status_code == 400
    # `<digest>  <file name>` (sha1sum's output) is accepted.
    ok = put(client, url(project, jar + ".sha256"), f"{hashlib.sha256(JAR).hexdigest()}  x.jar\n".encode(), developer)
    assert ok.status_code == 204
    missing = put(client, url(project, "com/example/my-app/1.0/other.jar.sha1"), sha1(JAR).encode(), developer)
    assert missing.status_code == 404
    assert PackageFile.objects.count() == 1
    assert stored_objects(blob_dir) == before


@pytest.mark.parametrize(
    "path",
    [
        "com/example/../my-app/1.0/my-app-1.0.jar",
        "com/example/%2e%2e/my-app/1.0/my-app-1.0.jar",
        "com/example/my-app/%2E%2E/my-app-1.0.jar",
        "com/example/my-app/1.0/..",
        "com/./my-app/1.0/my-app-1.0.jar",
        "com/example%2F..%2F..%2Fetc/my-app/1.0/my-app-1.0.jar",
        "com/example/my-app/1.0/my-app%2F..%2F..%2Fx.jar",
        "com//my-app/1.0/my-app-1.0.jar",
        "com/ex ample/my-app/1.0/my-app-1.0.jar",
        "com/example/my-app/1..0/my-app-1.0.jar",
        "com/example/my-app/1.0/my-app~1.0.jar",
        "com/example/my-app/1.0/",
        "my-app-1.0.jar",
        "1.0/my-app-1.0.jar",
        "maven-metadata.xml",
    ],
)
def test_invalid_paths_are_refused_and_store_nothing(client, project, developer, blob_dir, path):
    response = put(client, url(project, path), JAR, developer)
    assert response.status_code == 400, response.content
    assert response.json()["message"].startswith("400 Bad request")
    assert client.get(url(project, path), **developer).status_code == 400
    assert Package.objects.count() == 0
    assert_nothing_stored(blob_dir)


def test_long_file_names_are_refused(client, project, developer, blob_dir):
    name = "a" * 5001
    assert put(client, url(project, f"com/example/my-app/1.0/{name}"), b"x", developer).status_code == 400
    assert_nothing_stored(blob_dir)


@pytest.mark.parametrize("pom", [XXE_POM, LAUGHS_POM, b"<project><unclosed></project>", b"<notapom/>", b"\xff\xfe"])
def test_hostile_or_invalid_poms_are_400_and_store_nothing(client, project, developer, blob_dir, pom):
    response = put(client, url(project, "com/example/my-app/1.0/my-app-1.0.pom"), pom, developer)
    assert response.status_code == 400
    assert response.json()["message"].startswith("400 Bad request - pom")
    assert Package.objects.count() == 0
    assert_nothing_stored(blob_dir)


def test_hostile_metadata_is_400(client, project, developer, blob_dir):
    response = put(client, url(project, "com/example/my-app/maven-metadata.xml"), XXE_POM, developer)
    assert response.status_code == 400
    assert_nothing_stored(blob_dir)


def test_oversize_upload_is_413_and_stores_nothing(client, project, developer, settings, blob_dir):
    settings.PACKAGE_MAX_FILE_SIZE = {**settings.PACKAGE_MAX_FILE_SIZE, "maven": 1000}
    response = put(client, url(project, "com/example/my-app/1.0/my-app-1.0.jar"), b"x" * 1001, developer)
    assert response.status_code == 413
    assert Package.objects.count() == 0
    assert_nothing_stored(blob_dir)
    assert put(client, url(project, "com/example/my-app/1.0/my-app-1.0.jar"), b"x" * 1000, developer).status_code == 200


def test_release_duplicates_allowed_by_default_newest_served(client, project, developer):
    jar = url(project, "com/example/my-app/1.0/my-app-1.0.jar")
    assert put(client, jar, b"first", developer).status_code == 200
    assert put(client, jar, b"second", developer).status_code == 200
    assert PackageFile.objects.filter(file_name="my-app-1.0.jar").count() == 2
    assert body(client.get(jar, **developer)) == b"second"
    assert client.get(jar + ".sha1", **developer).content.decode() == sha1(b"second")


def test_release_duplicates_refused_by_setting_but_metadata_always_redeployable(client, project, developer, blob_dir):
    DuplicateSetting.objects.create(project=project, format="maven", allowed=False)
    deploy_release(client, project, developer)
    objects = stored_objects(blob_dir)
    jar = url(project, "com/example/my-app/1.0/my-app-1.0.jar")
    response = put(client, jar, b"other bytes", developer)
    assert response.status_code == 409
    assert response.json() == {"message": "409 Duplicate package is not allowed"}
    assert stored_objects(blob_dir) == objects
    assert PackageFile.objects.filter(file_name="my-app-1.0.jar").count() == 1
    # A second release re-uploads the artifact-level metadata: accepted.
    deploy_release(client, project, developer, version="1.1", jar=b"v1.1")
    assert PackageFile.objects.filter(file_name="maven-metadata.xml").count() == 2
    # A new file in an existing version is not a duplicate.
    assert (
        put(client, url(project, "com/example/my-app/1.0/my-app-1.0-sources.jar"), b"s", developer).status_code == 200
    )


def test_exception_regex_flips_the_setting(client, project, developer):
    DuplicateSetting.objects.create(project=project, format="maven", allowed=False, exception_regex=r".*-rc\d+")
    rc = url(project, "com/example/my-app/2.0-rc1/my-app-2.0-rc1.jar")
    assert put(client, rc, b"a", developer).status_code == 200
    assert put(client, rc, b"b", developer).status_code == 200
    final = url(project, "com/example/my-app/2.0/my-app-2.0.jar")
    assert put(client, final, b"a", developer).status_code == 200
    assert put(client, final, b"b", developer).status_code == 409

    settings_row = DuplicateSetting.objects.get(project=project, format="maven")
    settings_row.allowed = True
    settings_row.exception_regex = r"com/example/my-app"
    settings_row.save()
    assert put(client, final, b"c", developer).status_code == 409  # the regex matches the name: refused
    other = url(project, "com/example/other/1.0/other-1.0.jar")
    assert put(client, other, b"a", developer).status_code == 200
    assert put(client, other, b"b", developer).status_code == 200


def test_snapshot_redeploy_is_always_accepted(client, project, developer):
    DuplicateSetting.objects.create(project=project, format="maven", allowed=False)
    base = "com/example/my-app/1.1-SNAPSHOT"
    for build in ("20250101.100000-1", "20250101.110000-2"):
        jar = f"{base}/my-app-1.1-{build}.jar"
        assert put(client, url(project, jar), build.encode(), developer).status_code == 200
        snapshot_metadata = f"<metadata><version>1.1-SNAPSHOT</version><b>{build}</b></metadata>".encode()
        assert put(client, url(project, f"{base}/maven-metadata.xml"), snapshot_metadata, developer).status_code == 200
        assert (
            put(
                client, url(project, f"{base}/maven-metadata.xml.sha1"), sha1(snapshot_metadata).encode(), developer
            ).status_code
            == 204
        )
        assert (
            put(client, url(project, "com/example/my-app/maven-metadata.xml"), METADATA, developer).status_code == 200
        )
    # The same timestamped file again (a retried deploy): still accepted.
    assert put(client, url(project, f"{base}/my-app-1.1-20250101.110000-2.jar"), b"again", developer).status_code == 200

    version = PackageVersion.objects.get(version="1.1-SNAPSHOT")
    assert version.files.filter(file_name="maven-metadata.xml").count() == 2
    served = client.get(url(project, f"{base}/maven-metadata.xml"), **developer)
    assert b"20250101.110000-2" in body(served)
    assert PackageVersion.objects.filter(version=VERSIONLESS).count() == 1


def test_permissions(client, project, developer_user):
    jar = url(project, "com/example/my-app/1.0/my-app-1.0.jar")
    anonymous = put(client, jar, JAR, {})
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == 'Basic realm="Packhouse Package Registry"'
    get_anonymous = client.get(jar)
    assert get_anonymous.status_code == 401
    assert get_anonymous["WWW-Authenticate"] == 'Basic realm="Packhouse Package Registry"'
    assert put(client, jar, JAR, auth_headers("glpat-wrong")).status_code == 401

    reporter = UserFactory()
    MembershipFactory(user=reporter, project=project, access_level=AccessLevel.REPORTER)
    assert put(client, jar, JAR, auth_headers(AccessTokenFactory(user=reporter).plaintext)).status_code == 403
    read_only = DeployTokenFactory(project=project, scopes=["read_package_registry"])
    assert put(client, jar, JAR, auth_headers(read_only.plaintext, "deploy")).status_code == 403
    assert put(client, jar, JAR, auth_headers(AccessTokenFactory(user=UserFactory()).plaintext)).status_code == 404

    basic = auth_headers(AccessTokenFactory(user=developer_user).plaintext, f"basic:{developer_user.username}")
    assert put(client, jar, JAR, basic).status_code == 200
    assert client.get(jar, **auth_headers(read_only.plaintext, "deploy")).status_code == 200
    writer = DeployTokenFactory(project=project)
    assert client.get(jar, **auth_headers(writer.plaintext, f"basic:{writer.username}")).status_code == 200


def test_group_and_instance_endpoints_resolve_the_newest_file_and_merge_metadata(client, group, project, developer):
    other = ProjectFactory(group=group, path="more")
    hidden = ProjectFactory(group=GroupFactory(path="elsewhere"), path="secret")
    owner = UserFactory()
    MembershipFactory(user=owner, group=group, access_level=AccessLevel.MAINTAINER)
    MembershipFactory(user=owner, project=hidden, access_level=AccessLevel.MAINTAINER)
    headers = auth_headers(AccessTokenFactory(user=owner).plaintext)
    deploy_release(client, project, headers, version="1.0", jar=b"one")
    deploy_release(client, other, headers, version="2.0", jar=b"two")
    deploy_release(client, hidden, headers, version="3.0", jar=b"three")
    # the same version in two projects: the newest upload is served at group level
    assert put(client, url(other, "com/example/my-app/1.0/my-app-1.0.jar"), b"one-again", headers).status_code == 200

    group_url = f"/api/v4/groups/{group.pk}/-/packages/maven/com/example/my-app"
    jar = client.get(f"{group_url}/1.0/my-app-1.0.jar", **headers)
    assert jar.status_code == 200
    assert body(jar) == b"one-again"
    assert jar["x-checksum-sha1"] == sha1(b"one-again")
    assert client.get(f"{group_url}/1.0/my-app-1.0.jar.sha1", **headers).content.decode() == sha1(b"one-again")
    head = client.head(f"{group_url}/1.0/my-app-1.0.jar", **headers)
    assert (head.status_code, head["Content-Length"]) == (200, str(len(b"one-again")))
    assert client.get(f"{group_url}/3.0/my-app-3.0.jar", **headers).status_code == 404  # other group

    # Plugin-group metadata (no versions under that path): the newest uploaded document.
    plugins = b"<metadata><plugins><plugin><prefix>x</prefix></plugin></plugins></metadata>"
    assert put(client, url(other, "com/example/maven-metadata.xml"), plugins, headers).status_code == 200
    assert body(client.get(f"{group_url.rsplit('/', 1)[0]}/maven-metadata.xml", **headers)) == plugins

    metadata = client.get(f"{group_url}/maven-metadata.xml", **headers)
    assert metadata.status_code == 200
    document = metadata.content.decode()
    assert "<groupId>com.example</groupId>" in document
    assert "<artifactId>my-app</artifactId>" in document
    assert "<version>1.0</version>" in document and "<version>2.0</version>" in document
    assert "3.0" not in document
    assert document.count("<version>1.0</version>") == 1
    assert "<latest>1.0</latest>" in document  # re-published last, in the other project
    assert metadata["x-checksum-sha1"] == sha1(metadata.content)
    checksum = client.get(f"{group_url}/maven-metadata.xml.sha1", **headers)
    assert checksum.content.decode() == sha1(metadata.content)
    again = client.get(f"{group_url}/maven-metadata.xml", HTTP_IF_NONE_MATCH=metadata["ETag"], **headers)
    assert again.status_code == 304

    # the developer sees only `project`
    mine = client.get(f"{group_url}/maven-metadata.xml", **developer)
    assert mine.status_code == 200
    assert "<version>2.0</version>" not in mine.content.decode()

    instance = client.get("/api/v4/packages/maven/com/example/my-app/maven-metadata.xml", **headers)
    assert instance.status_code == 200
    assert all(f"<version>{v}</version>" in instance.content.decode() for v in ("1.0", "2.0", "3.0"))
    assert body(client.get("/api/v4/packages/maven/com/example/my-app/3.0/my-app-3.0.jar", **headers)) == b"three"

    # nobody publishes at group or instance level
    assert put(client, f"{group_url}/4.0/my-app-4.0.jar", b"x", headers).status_code == 405
    assert put(client, "/api/v4/packages/maven/com/example/my-app/4.0/my-app-4.0.jar", b"x", headers).status_code == 405


def test_anonymous_group_and_instance_misses_challenge(client, group, project, developer):
    deploy_release(client, project, developer)
    for target in (
        f"/api/v4/groups/{group.pk}/-/packages/maven/com/example/my-app/1.0/my-app-1.0.jar",
        "/api/v4/packages/maven/com/example/my-app/1.0/my-app-1.0.jar",
    ):
        response = client.get(target)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Basic realm="Packhouse Package Registry"'


def test_public_project_is_readable_anonymously_everywhere(client, group, developer_user):
    group.visibility = "public"
    group.save()
    public = ProjectFactory(group=group, path="open", visibility="public")
    MembershipFactory(user=developer_user, project=public, access_level=AccessLevel.DEVELOPER)
    deploy_release(client, public, auth_headers(AccessTokenFactory(user=developer_user).plaintext))
    assert body(client.get(url(public, "com/example/my-app/1.0/my-app-1.0.jar"))) == JAR
    group_jar = f"/api/v4/groups/{group.pk}/-/packages/maven/com/example/my-app/1.0/my-app-1.0.jar"
    assert body(client.get(group_jar)) == JAR
    assert body(client.get("/api/v4/packages/maven/com/example/my-app/1.0/my-app-1.0.jar")) == JAR
