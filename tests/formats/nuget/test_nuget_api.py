"""NuGet over HTTP: v3 service index, push, flat container, registration, search, delete,
group aggregation, the v2 feed; what is left in the database and storage."""

import base64
import hashlib
import io
import subprocess
import zipfile

import pytest

from accounts.roles import AccessLevel
from packages_nuget.models import NugetMetadatum
from packages_nuget.parsers import normalize_version
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
from tests.formats.nuget.nupkg import multipart, nupkg, nuspec
from tests.helpers import auth_headers, stored_objects

pytestmark = pytest.mark.django_db


@pytest.fixture
def group():
    return GroupFactory(path="acme")


@pytest.fixture
def project(group):
    return ProjectFactory(group=group, path="tools")


def member(project, level=AccessLevel.DEVELOPER, kind="basic:someone"):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=level)
    return auth_headers(AccessTokenFactory(user=user).plaintext, kind)


@pytest.fixture
def developer(project):
    return member(project)


def prefix(project):
    return f"/api/v4/projects/{project.pk}/packages/nuget"


def push(client, project, data, headers, path="/", file_name="package.nupkg"):
    body, content_type = multipart(data, file_name)
    return client.put(prefix(project) + path, data=body, content_type=content_type, **headers)


def content(response):
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def test_service_index_lists_the_v3_resources(client, project, developer):
    response = client.get(f"{prefix(project)}/index.json", **developer)
    assert response.status_code == 200
    resources = {r["@type"]: r["@id"] for r in response.json()["resources"]}
    base = f"http://testserver{prefix(project)}"
    assert resources["PackagePublish/2.0.0"] == base
    assert resources["PackageBaseAddress/3.0.0"] == f"{base}/download"
    assert resources["SymbolPackagePublish/4.9.0"] == f"{base}/symbolpackage"
    for kind in ("RegistrationsBaseUrl", "RegistrationsBaseUrl/3.0.0-beta", "RegistrationsBaseUrl/3.0.0-rc"):
        assert resources[kind] == f"{base}/metadata"
    for kind in ("SearchQueryService", "SearchQueryService/3.0.0-beta", "SearchQueryService/3.0.0-rc"):
        assert resources[kind] == f"{base}/query"
    assert response.json()["version"] == "3.0.0"


def test_anonymous_on_a_private_project_is_challenged(client, project):
    response = client.get(f"{prefix(project)}/index.json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic realm=")


def test_public_project_index_is_public(client):
    project = ProjectFactory(visibility="public", group=GroupFactory(visibility="public"))
    assert client.get(f"{prefix(project)}/index.json").status_code == 200


def test_push_then_flat_container_registration_and_search(client, project, developer, blob_dir):
    data = nupkg("Acme.Tools", "01.2.3.0")
    response = push(client, project, data, developer)
    assert response.status_code == 201, response.content
    assert response.json() == {"message": "201 Created"}

    version = PackageVersion.objects.get()
    assert (version.package.name, version.package.normalized_name) == ("Acme.Tools", "acme.tools")
    assert (version.version, version.normalized_version) == ("01.2.3.0", "1.2.3")
    meta = NugetMetadatum.objects.get(version=version)
    assert meta.authors == "Acme" and meta.tags == "alpha beta"
    assert meta.dependency_groups[0] == {
        "targetFramework": ".NETFramework4.5",
        "dependencies": [{"id": "Newtonsoft.Json", "range": "[12.0.1, )"}],
    }
    sha256 = hashlib.sha256(data).hexdigest()
    assert stored_objects(blob_dir) == [f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"]
    assert PackageFile.objects.get().file_name == "acme.tools.1.2.3.nupkg"

    versions = client.get(f"{prefix(project)}/download/acme.tools/index.json", **developer)
    assert versions.json() == {"versions": ["1.2.3"]}
    download = client.get(f"{prefix(project)}/download/acme.tools/1.2.3/acme.tools.1.2.3.nupkg", **developer)
    assert download.status_code == 200
    assert content(download) == data
    spec = client.get(f"{prefix(project)}/download/acme.tools/1.2.3/acme.tools.1.2.3.nuspec", **developer)
    assert b"<id>Acme.Tools</id>" in spec.content

    index = client.get(f"{prefix(project)}/metadata/Acme.Tools/index.json", **developer)
    assert index.status_code == 200
    page = index.json()["items"][0]
    assert (page["lower"], page["upper"], page["count"]) == ("1.2.3", "1.2.3", 1)
    entry = page["items"][0]["catalogEntry"]
    assert entry["id"] == "Acme.Tools" and entry["version"] == "1.2.3"
    assert entry["authors"] == "Acme" and entry["description"] == "Tools for Acme"
    assert entry["tags"] == "alpha beta" and entry["listed"] is True
    assert entry["projectUrl"] == "https://example.com/project"
    assert entry["packageContent"].endswith("/download/acme.tools/1.2.3/acme.tools.1.2.3.nupkg")
    assert entry["dependencyGroups"][0]["dependencies"][0]["id"] == "Newtonsoft.Json"
    assert entry["dependencyGroups"][1] == {"@type": "PackageDependencyGroup", "targetFramework": ".NETStandard2.0"}

    leaf = client.get(f"{prefix(project)}/metadata/acme.tools/1.2.3.0.json", **developer)
    assert leaf.status_code == 200
    assert leaf.json()["catalogEntry"]["version"] == "1.2.3"
    again = client.get(
        f"{prefix(project)}/metadata/acme.tools/1.2.3.0.json", HTTP_IF_NONE_MATCH=leaf["ETag"], **developer
    )
    assert again.status_code == 304

    download_counts.flush()  # counted in Redis, written in batches
    search = client.get(f"{prefix(project)}/query?q=tools&skip=0&take=20&prerelease=true", **developer).json()
    assert search["totalHits"] == 1
    hit = search["data"][0]
    assert (hit["id"], hit["version"]) == ("Acme.Tools", "1.2.3")
    assert hit["versions"][0]["version"] == "1.2.3" and hit["versions"][0]["downloads"] == 1
    assert client.get(f"{prefix(project)}/query?q=nothing", **developer).json() == {"totalHits": 0, "data": []}


def test_versions_are_sorted_and_prerelease_filtered(client, project, developer):
    for version in ("1.10.0", "1.2.0", "2.0.0-beta.1", "1.2.0-alpha"):
        assert push(client, project, nupkg("Acme.Tools", version), developer).status_code == 201
    versions = client.get(f"{prefix(project)}/download/acme.tools/index.json", **developer).json()
    assert versions == {"versions": ["1.2.0-alpha", "1.2.0", "1.10.0", "2.0.0-beta.1"]}
    search = client.get(f"{prefix(project)}/query?prerelease=false", **developer).json()
    assert search["data"][0]["version"] == "1.10.0"
    assert [v["version"] for v in search["data"][0]["versions"]] == ["1.2.0", "1.10.0"]
    assert client.get(f"{prefix(project)}/query?take=0", **developer).status_code == 400
    assert client.get(f"{prefix(project)}/query?skip=-1", **developer).status_code == 400


def test_duplicates_allowed_by_default_then_refused_with_409(client, project, developer, blob_dir):
    assert push(client, project, nupkg(description="first"), developer).status_code == 201
    second = nupkg(description="second")
    assert push(client, project, second, developer).status_code == 201
    assert PackageFile.objects.count() == 2
    download = client.get(f"{prefix(project)}/download/acme.tools/1.2.3/acme.tools.1.2.3.nupkg", **developer)
    assert content(download) == second
    assert NugetMetadatum.objects.get().description == "second"

    DuplicateSetting.objects.create(project=project, format="nuget", allowed=False)
    before = stored_objects(blob_dir)
    response = push(client, project, nupkg(description="third"), developer)
    assert response.status_code == 409
    assert "already exists" in response.json()["message"]
    assert stored_objects(blob_dir) == before
    assert PackageFile.objects.count() == 2


def test_delete_needs_maintainer(client, project, developer):
    assert push(client, project, nupkg(), developer).status_code == 201
    assert client.delete(f"{prefix(project)}/Acme.Tools/1.2.3", **developer).status_code == 403
    maintainer = member(project, AccessLevel.MAINTAINER)
    assert client.delete(f"{prefix(project)}/Acme.Tools/1.2.3", **maintainer).status_code == 204
    assert PackageVersion.objects.get().status == "pending_destruction"
    assert client.get(f"{prefix(project)}/download/acme.tools/index.json", **developer).status_code == 404
    assert client.get(f"{prefix(project)}/metadata/acme.tools/index.json", **developer).status_code == 404
    assert client.delete(f"{prefix(project)}/Acme.Tools/1.2.3", **maintainer).status_code == 404
    # deleted: the same version can be published again
    assert push(client, project, nupkg(), developer).status_code == 201


def test_symbol_package_needs_its_package(client, project, developer):
    response = push(client, project, nupkg(), developer, path="/symbolpackage", file_name="package.snupkg")
    assert response.status_code == 400
    assert push(client, project, nupkg(), developer).status_code == 201
    response = push(client, project, nupkg(), developer, path="/symbolpackage", file_name="package.snupkg")
    assert response.status_code == 201
    assert sorted(PackageFile.objects.values_list("file_name", flat=True)) == [
        "acme.tools.1.2.3.nupkg",
        "acme.tools.1.2.3.snupkg",
    ]


def test_push_credentials(client, project):
    data = nupkg()
    assert push(client, project, data, {}).status_code == 401
    reporter = member(project, AccessLevel.REPORTER)
    assert push(client, project, data, reporter).status_code == 403
    read_only = DeployTokenFactory(project=project, scopes=["read_package_registry"])
    assert push(client, project, data, {"HTTP_X_NUGET_APIKEY": read_only.plaintext}).status_code == 403
    deploy = DeployTokenFactory(project=project)
    assert push(client, project, data, {"HTTP_X_NUGET_APIKEY": deploy.plaintext}).status_code == 201
    assert push(client, project, data, {"HTTP_X_NUGET_APIKEY": "glpat-nonsense"}).status_code == 401
    assert PackageVersion.objects.get().created_via == "deploy"


def _zip(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


XXE = """<?xml version="1.0"?>
<!DOCTYPE package [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<package><metadata><id>Acme.Tools</id><version>1.0.0</version><authors>&xxe;</authors>
<description>x</description></metadata></package>"""

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<package><metadata><id>Acme.Tools</id><version>1.0.0</version><authors>&lol3;</authors>
<description>x</description></metadata></package>"""


@pytest.mark.parametrize(
    ("data", "file_name"),
    [
        (b"this is not a zip", "package.nupkg"),
        (_zip([("../evil.nuspec", nuspec()), ("Acme.Tools.nuspec", nuspec())]), "package.nupkg"),
        (_zip([("/etc/evil", b"x"), ("Acme.Tools.nuspec", nuspec())]), "package.nupkg"),
        (_zip([("lib/a.dll", b"x")]), "package.nupkg"),
        (_zip([("a.nuspec", nuspec()), ("b.nuspec", nuspec())]), "package.nupkg"),
        (_zip([("Acme.Tools.nuspec", XXE)]), "package.nupkg"),
        (_zip([("Acme.Tools.nuspec", LAUGHS)]), "package.nupkg"),
        (_zip([("Acme.Tools.nuspec", nuspec(authors=""))]), "package.nupkg"),
        (_zip([("Acme.Tools.nuspec", nuspec(version="not-a-version"))]), "package.nupkg"),
        (_zip([("Acme.Tools.nuspec", nuspec(package_id="bad/id"))]), "package.nupkg"),
        (_zip([("Acme.Tools.nuspec", b"<package><metadata>")]), "package.nupkg"),
        (nupkg("Acme.Tools", "1.2.3"), "Other.Tools.1.2.3.nupkg"),
        (nupkg("Acme.Tools", "1.2.3"), "Acme.Tools.2.0.0.nupkg"),
    ],
    ids=[
        "not-zip",
        "zip-slip-dotdot",
        "absolute-name",
        "no-nuspec",
        "two-nuspecs",
        "xxe",
        "billion-laughs",
        "no-authors",
        "bad-version",
        "bad-id",
        "broken-xml",
        "file-name-id-mismatch",
        "file-name-version-mismatch",
    ],
)
def test_bad_packages_are_refused_and_nothing_is_stored(
    client, project, developer, blob_dir, spool_dir, data, file_name
):
    spooled = set(spool_dir.iterdir())
    response = push(client, project, data, developer, file_name=file_name)
    assert response.status_code == 400, response.content
    assert set(spool_dir.iterdir()) == spooled  # temp files removed
    assert "message" in response.json()
    assert not Package.objects.exists() and not PackageVersion.objects.exists() and not Blob.objects.exists()
    assert stored_objects(blob_dir) == []


def test_malformed_bodies_are_400(client, project, developer):
    url = f"{prefix(project)}/"
    assert client.put(url, data=b"raw", content_type="application/octet-stream", **developer).status_code == 400
    response = client.put(url, data=b"--x\r\nnope", content_type="multipart/form-data; boundary=x", **developer)
    assert response.status_code == 400


def test_too_large_is_413(client, project, developer, settings, blob_dir, spool_dir):
    settings.PACKAGE_MAX_FILE_SIZE = {**settings.PACKAGE_MAX_FILE_SIZE, "nuget": 1024}
    data = nupkg(extra=[("lib/big.bin", bytes(range(256)) * 40)])
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_STORED) as archive:
        with zipfile.ZipFile(io.BytesIO(data)) as source:
            for info in source.infolist():
                archive.writestr(info.filename, source.read(info))
    spooled = set(spool_dir.iterdir())
    response = push(client, project, zipped.getvalue(), developer)
    assert response.status_code == 413
    assert set(spool_dir.iterdir()) == spooled
    assert stored_objects(blob_dir) == []


def test_group_aggregates_pullable_projects(client, group, project, developer):
    other = ProjectFactory(group=group, path="other")
    hidden = ProjectFactory(group=group, path="hidden")
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    MembershipFactory(user=user, project=other, access_level=AccessLevel.DEVELOPER)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext, "basic:x")
    assert push(client, project, nupkg("Acme.Tools", "1.0.0"), headers).status_code == 201
    assert push(client, other, nupkg("Acme.Tools", "2.0.0"), headers).status_code == 201
    owner = member(hidden)
    assert push(client, hidden, nupkg("Acme.Tools", "3.0.0"), owner).status_code == 201

    group_prefix = f"/api/v4/groups/{group.pk}/-/packages/nuget"
    index = client.get(f"{group_prefix}/index.json", **headers).json()
    types = {r["@type"] for r in index["resources"]}
    assert "PackageBaseAddress/3.0.0" not in types and "PackagePublish/2.0.0" not in types
    assert "RegistrationsBaseUrl/3.0.0-rc" in types

    registration = client.get(f"{group_prefix}/metadata/acme.tools/index.json", **headers).json()
    leaves = registration["items"][0]["items"]
    assert [leaf["catalogEntry"]["version"] for leaf in leaves] == ["1.0.0", "2.0.0"]
    assert leaves[0]["packageContent"].startswith(f"http://testserver{prefix(project)}/download/")
    assert leaves[1]["packageContent"].startswith(f"http://testserver{prefix(other)}/download/")
    leaf = client.get(f"{group_prefix}/metadata/acme.tools/2.0.0.json", **headers)
    assert leaf.status_code == 200
    assert client.get(f"{group_prefix}/metadata/acme.tools/3.0.0.json", **headers).status_code == 404
    search = client.get(f"{group_prefix}/query?q=acme", **headers).json()
    assert search["totalHits"] == 1 and search["data"][0]["version"] == "2.0.0"
    assert client.get(f"{group_prefix}/index.json").status_code == 401


def test_v2_feed(client, project, developer):
    data = nupkg("Acme.Tools", "1.2.3")
    response = push(client, project, data, developer, path="/v2")
    assert response.status_code == 201
    assert push(client, project, nupkg("Acme.Tools", "2.0.0-beta"), developer, path="/v2").status_code == 201

    service = client.get(f"{prefix(project)}/v2", **developer)
    assert service.status_code == 200 and b'<collection href="Packages">' in service.content
    metadata = client.get(f"{prefix(project)}/v2/$metadata", **developer)
    assert b'FunctionImport Name="FindPackagesById"' in metadata.content

    feed = client.get(f"{prefix(project)}/v2/FindPackagesById()?id='acme.tools'", **developer)
    assert feed.status_code == 200
    assert feed["Content-Type"].startswith("application/atom+xml")
    text = feed.content.decode()
    assert text.count("<entry>") == 2
    sha512 = base64.b64encode(hashlib.sha512(data).digest()).decode()
    assert f"<d:PackageHash>{sha512}</d:PackageHash>" in text
    assert f'<d:PackageSize m:type="Edm.Int64">{len(data)}</d:PackageSize>' in text
    assert "<d:Dependencies>Newtonsoft.Json:[12.0.1, ):.NETFramework4.5|::.NETStandard2.0</d:Dependencies>" in text
    assert '<d:IsLatestVersion m:type="Edm.Boolean">true</d:IsLatestVersion>' in text
    assert f'src="http://testserver{prefix(project)}/v2/download/acme.tools/1.2.3"' in text

    filtered = client.get(
        f"{prefix(project)}/v2/Packages()?$filter=(tolower(Id) eq 'acme.tools') and IsLatestVersion", **developer
    )
    assert filtered.content.decode().count("<entry>") == 2
    single = client.get(f"{prefix(project)}/v2/Packages(Id='Acme.Tools',Version='1.2.3')", **developer)
    assert single.status_code == 200 and single.content.decode().count("<entry ") == 1
    download = client.get(f"{prefix(project)}/v2/download/acme.tools/1.2.3", **developer)
    assert content(download) == data
    assert client.get(f"{prefix(project)}/v2/Packages(Id='Acme.Tools',Version='9.9.9')", **developer).status_code == 404


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("1.0", "1.0.0"),
        ("01.02.03", "1.2.3"),
        ("1.2.3.0", "1.2.3"),
        ("1.2.3.4", "1.2.3.4"),
        ("1.2.3-Beta+build.5", "1.2.3-beta"),
        ("1.0.0.0-RC.1", "1.0.0-rc.1"),
    ],
)
def test_version_normalisation(raw, normalized):
    assert normalize_version(raw) == normalized


@pytest.mark.django_db(transaction=True)
def test_chunked_put_through_the_live_server(live_registry, tmp_path, blob_dir):
    project = ProjectFactory(group=GroupFactory())
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    token = AccessTokenFactory(user=user).plaintext
    package = tmp_path / "Acme.Live.1.0.0.nupkg"
    package.write_bytes(nupkg("Acme.Live", "1.0.0"))
    url = live_registry.api(f"projects/{project.pk}/packages/nuget/")

    def curl(*args):
        result = subprocess.run(
            [
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                "Transfer-Encoding: chunked",
                "-F",
                f"package=@{package}",
                "-X",
                "PUT",
                *args,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return result.stdout

    assert curl() == "401"  # anonymous: challenged before the body is read
    assert curl("--user", f"{user.username}:wrong") == "401"
    assert curl("--user", f"{user.username}:{token}") == "201"
    version = PackageVersion.objects.get()
    assert version.package.name == "Acme.Live"
    assert PackageFile.objects.get().blob.sha256 == hashlib.sha256(package.read_bytes()).hexdigest()
    # the server still answers after the refused chunked bodies
    assert curl("-H", f"X-NuGet-ApiKey: {token}") == "201"
