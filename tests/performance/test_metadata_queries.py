"""Issue 9: no metadata GET runs more SQL queries when there is more data (no N+1).

Every endpoint in ENDPOINTS is asked twice by the same caller: once when the group holds one
package of one version in one project (SMALL), and again after more versions, more packages and
more projects of the group, one of them in a subgroup, were published (LARGE). Both answers must
cost the same number of queries (a failure shows the SQL of both runs), be 200, and the second
must show data the second publishing added, so an empty answer cannot pass.

Everything is published through the real endpoints with the Django test client, so the rows are
what clients leave (REST and web pages are seeded with generic packages, which carry several
files per version).

Each measured request is the first one for its data: the unmeasured warm-up request (where the
token's `last_used_at` is written) comes before anything is published, and the shared cache is
cleared right before measuring, so the document is built rather than replayed
(registry/documents.py also keeps a per-process copy keyed on the packages' epochs, which
`cache.clear()` does not reach and only a publish moves past).
"""

import difflib
import json
from dataclasses import dataclass
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import AccessLevel
from packages_npm.views import PackumentView
from registry import access_cache
from registry.models import PackageVersion
from tests.factories import (
    AccessTokenFactory,
    CiJobFactory,
    GroupFactory,
    JobTokenScopeLinkFactory,
    ProjectFactory,
    member,
)
from tests.formats.golang.modules import module_zip
from tests.formats.nuget.nupkg import multipart, nupkg
from tests.formats.rubygems.gems import gem
from tests.helpers import auth_headers
from tests.payloads import cargo_publish_body, npm_document, twine_form

pytestmark = pytest.mark.django_db

PEP691 = "application/vnd.pypi.simple.v1+json"

# (project, package: 0 the measured one / 1 another, version), published before each measurement.
SMALL = [("main", 0, "1.0.0")]
LARGE = [
    ("main", 0, "1.0.1"),
    ("main", 0, "1.0.2"),
    ("main", 1, "1.0.0"),
    ("main", 1, "1.1.0"),
    ("more", 0, "2.0.0"),
    ("more", 1, "2.1.0"),
    ("deep", 0, "3.0.0"),
    ("deep", 0, "3.0.1"),
    ("deep", 1, "3.1.0"),
]


# --- publishing through the real endpoints -----------------------------------------------------


def _put(client, url, body, headers, content_type="application/octet-stream", status=200):
    response = client.put(url, data=body, content_type=content_type, **headers)
    assert response.status_code == status, (url, response.status_code, response.content[:500])


def publish_npm(client, headers, project, name, version):
    """The same name in several projects of the group is refused now (one project owns an npm
    name per top-level group); the world is data left from before that rule."""
    url = f"/api/v4/projects/{project.pk}/packages/npm/{name.replace('/', '%2f')}"
    with mock.patch.object(PackumentView, "refuse_name_held_elsewhere", lambda self, name: None):
        _put(client, url, npm_document(name, version), headers, "application/json")


def npm_extras(client, headers, world):
    """`npm dist-tag add`: more tags in the measured project and in the subgroup's project."""
    for project, tag, version in (("main", "stable", "1.0.1"), ("main", "next", "1.0.2"), ("deep", "beta", "3.0.0")):
        tags = f"/api/v4/projects/{world[project].pk}/packages/npm/-/package/@acme%2fleft-pad/dist-tags"
        _put(client, f"{tags}/{tag}", json.dumps(version), headers, "application/json", status=204)


def publish_pypi(client, headers, project, name, version):
    body, content_type = twine_form(name, version)
    response = client.post(
        f"/api/v4/projects/{project.pk}/packages/pypi", data=body, content_type=content_type, **headers
    )
    assert response.status_code == 201, response.content


def publish_maven(client, headers, project, name, version):
    """What `mvn deploy` leaves: the jar, the pom, then the artifact's maven-metadata.xml listing
    every version deployed to the project so far (checksum files are verified, never stored)."""
    group_id, artifact = name.rsplit("/", 1)
    base = f"/api/v4/projects/{project.pk}/packages/maven/{name}"
    pom = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<project xmlns="http://maven.apache.org/POM/4.0.0">'
        f"<modelVersion>4.0.0</modelVersion><groupId>{group_id.replace('/', '.')}</groupId>"
        f"<artifactId>{artifact}</artifactId><version>{version}</version></project>\n"
    )
    _put(client, f"{base}/{version}/{artifact}-{version}.jar", f"PK jar {name} {version}".encode(), headers)
    _put(client, f"{base}/{version}/{artifact}-{version}.pom", pom.encode(), headers)
    deployed = PackageVersion.objects.filter(package__project=project, package__name=name, status="default")
    versions = "".join(f"<version>{v}</version>" for v in deployed.order_by("id").values_list("version", flat=True))
    metadata = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<metadata><groupId>{group_id.replace("/", ".")}</groupId>'
        f"<artifactId>{artifact}</artifactId><versioning><latest>{version}</latest><release>{version}</release>"
        f"<versions>{versions}</versions><lastUpdated>20250101000000</lastUpdated></versioning></metadata>\n"
    )
    _put(client, f"{base}/maven-metadata.xml", metadata.encode(), headers)


def publish_nuget(client, headers, project, name, version):
    body, content_type = multipart(nupkg(name, version))
    _put(client, f"/api/v4/projects/{project.pk}/packages/nuget/", body, headers, content_type, status=201)


def publish_generic(client, headers, project, name, version, file_name=None):
    url = f"/api/v4/projects/{project.pk}/packages/generic/{name}/{version}/{file_name or name + '.tar.gz'}"
    _put(client, url, f"{name} {version} {file_name}".encode(), headers, status=201)


def generic_extras(client, headers, world):
    """More files in the measured version (its detail page and package_files list them)."""
    for index in range(3):
        publish_generic(client, headers, world["main"], "tool", "1.0.0", f"tool-extra-{index}.bin")


def publish_cargo(client, headers, project, name, version):
    url = f"/api/v4/projects/{project.pk}/packages/cargo/api/v1/crates/new"
    _put(client, url, cargo_publish_body(name, version), headers)


CONAN_RREV = "1" * 32
CONAN_PID = "2" * 40
CONAN_EXTRA_RREV = "3" * 32
CONAN_EXTRA_PID = "4" * 40


def publish_conan(client, headers, project, name, version, rrev=CONAN_RREV, package_id=CONAN_PID):
    """What `conan upload` sends: the recipe revision's files, then one package revision's."""
    recipe = f"/api/v4/projects/{project.pk}/packages/conan/v2/conans/{name}/{version}/_/_/revisions/{rrev}"
    for path in ("conanfile.py", "conanmanifest.txt"):
        _put(client, f"{recipe}/files/{path}", f"{name} {version} {rrev} {path}".encode(), headers, status=201)
    package = f"{recipe}/packages/{package_id}/revisions/{'5' * 32}"
    for path in ("conan_package.tgz", "conaninfo.txt", "conanmanifest.txt"):
        _put(client, f"{package}/files/{path}", f"[settings]\n{name} {version} {path}".encode(), headers, status=201)


def conan_extras(client, headers, world):
    """Another recipe revision of the measured version, with another package."""
    publish_conan(client, headers, world["main"], "hello-lib", "1.0.0", CONAN_EXTRA_RREV, CONAN_EXTRA_PID)


def publish_rubygems(client, headers, project, name, version):
    response = client.post(
        f"/api/v4/projects/{project.pk}/packages/rubygems/api/v1/gems",
        data=gem(name, version),
        content_type="application/octet-stream",
        **headers,
    )
    assert response.status_code == 200, response.content


def publish_golang(client, headers, project, name, version):
    """Go versions have a `v`; a v2+ module without a /v2 path is `+incompatible`."""
    version = f"v{version}" + ("+incompatible" if int(version.split(".")[0]) >= 2 else "")
    url = f"/api/v4/projects/{project.pk}/packages/go/upload"
    _put(client, url, module_zip(name, version), headers, "application/zip", status=201)


@dataclass(frozen=True)
class Format:
    names: tuple  # the measured package, another one
    publish: object  # (client, headers, project, name, version)
    extras: object = None  # (client, headers, world), after LARGE


FORMATS = {
    "npm": Format(("@acme/left-pad", "@acme/right-pad"), publish_npm, npm_extras),
    "pypi": Format(("my-pkg", "other-pkg"), publish_pypi),
    "maven": Format(("com/example/my-app", "com/example/other-app"), publish_maven),
    "nuget": Format(("Acme.Tools", "Acme.Other"), publish_nuget),
    "generic": Format(("tool", "other-tool"), publish_generic, generic_extras),
    "cargo": Format(("left-pad", "right-pad"), publish_cargo),
    "conan": Format(("hello-lib", "other-lib"), publish_conan, conan_extras),
    "rubygems": Format(("hola", "other-gem"), publish_rubygems),
    "golang": Format(("example.com/acme/greet", "example.com/acme/other"), publish_golang),
}


# --- the endpoints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """`path` and `shows` are formatted with the world: {p} the measured project's id, {pp} its
    full path, {g} the group's id, {deep} the subgroup project's id, {v} the measured version's
    id. `shows` must be in the second answer; when `added`, it must not be in the first.
    `caller`: the group Maintainer's personal access token, its session ("session"), or the
    token of a CI job they run in the sibling project, which the others allowlist ("job")."""

    format: str
    path: str
    shows: str
    added: bool = True
    accept: str = ""
    caller: str = "token"


NPM_PROJECT = "/api/v4/projects/{p}/packages/npm"
NPM_GROUP = "/api/v4/groups/{g}/-/packages/npm"
NPM_INSTANCE = "/api/v4/packages/npm"
DEEP_TARBALL_NAME = "@acme/left-pad/-/@acme/left-pad-3.0.1.tgz"
PYPI_PROJECT = "/api/v4/projects/{p}/packages/pypi/simple/"
PYPI_GROUP = "/api/v4/groups/{g}/-/packages/pypi/simple/"
MAVEN = "packages/maven/com/example/my-app/maven-metadata.xml"
NUGET_PROJECT = "/api/v4/projects/{p}/packages/nuget"
NUGET_GROUP = "/api/v4/groups/{g}/-/packages/nuget"
CARGO_PROJECT = "/api/v4/projects/{p}/packages/cargo/index"
CARGO_GROUP = "/api/v4/groups/{g}/-/packages/cargo/index"
CONAN = "/api/v4/projects/{p}/packages/conan/v2/conans"
CONAN_RECIPE = f"{CONAN}/hello-lib/1.0.0/_/_"
GEMS = "/api/v4/projects/{p}/packages/rubygems"
GO_PROJECT = "/api/v4/projects/{p}/packages/go/example.com/acme/greet"
GO_GROUP = "/api/v4/groups/{g}/-/packages/go/example.com/acme/greet"

ENDPOINTS = {
    "npm-packument-project": Endpoint("npm", f"{NPM_PROJECT}/@acme%2fleft-pad", '"1.0.2"'),
    # tarballs linked below the endpoint asked (path-scoped clients send their token there)
    "npm-packument-group": Endpoint("npm", f"{NPM_GROUP}/@acme%2fleft-pad", f"{NPM_GROUP}/{DEEP_TARBALL_NAME}"),
    "npm-packument-instance": Endpoint(
        "npm", f"{NPM_INSTANCE}/@acme%2fleft-pad", f"{NPM_INSTANCE}/{DEEP_TARBALL_NAME}"
    ),
    "npm-dist-tags-project": Endpoint("npm", f"{NPM_PROJECT}/-/package/@acme%2fleft-pad/dist-tags", '"stable"'),
    "npm-dist-tags-group": Endpoint("npm", f"{NPM_GROUP}/-/package/@acme%2fleft-pad/dist-tags", '"beta"'),
    "npm-dist-tags-instance": Endpoint("npm", f"{NPM_INSTANCE}/-/package/@acme%2fleft-pad/dist-tags", '"beta"'),
    "pypi-index-project-html": Endpoint("pypi", PYPI_PROJECT, ">other-pkg</a>", accept="text/html"),
    "pypi-index-project-json": Endpoint("pypi", PYPI_PROJECT, '"other-pkg"', accept=PEP691),
    "pypi-index-group-html": Endpoint("pypi", PYPI_GROUP, ">other-pkg</a>", accept="text/html"),
    "pypi-index-group-json": Endpoint("pypi", PYPI_GROUP, '"other-pkg"', accept=PEP691),
    "pypi-simple-project-html": Endpoint(
        "pypi", f"{PYPI_PROJECT}my-pkg/", ">my_pkg-1.0.2-py3-none-any.whl</a>", accept="text/html"
    ),
    "pypi-simple-project-json": Endpoint(
        "pypi", f"{PYPI_PROJECT}my-pkg/", '"my_pkg-1.0.2-py3-none-any.whl"', accept=PEP691
    ),
    "pypi-simple-group-html": Endpoint(
        "pypi", f"{PYPI_GROUP}my-pkg/", "/api/v4/projects/{deep}/packages/pypi/files/", accept="text/html"
    ),
    "pypi-simple-group-json": Endpoint(
        "pypi", f"{PYPI_GROUP}my-pkg/", "/api/v4/projects/{deep}/packages/pypi/files/", accept=PEP691
    ),
    "maven-metadata-project": Endpoint("maven", f"/api/v4/projects/{{p}}/{MAVEN}", "<version>1.0.2</version>"),
    "maven-metadata-group": Endpoint("maven", f"/api/v4/groups/{{g}}/-/{MAVEN}", "<version>3.0.1</version>"),
    "maven-metadata-instance": Endpoint("maven", f"/api/v4/{MAVEN}", "<version>3.0.1</version>"),
    "nuget-index-project": Endpoint("nuget", f"{NUGET_PROJECT}/index.json", "RegistrationsBaseUrl", added=False),
    "nuget-query-project": Endpoint("nuget", f"{NUGET_PROJECT}/query?q=acme", '"Acme.Other"'),
    "nuget-registration-project": Endpoint("nuget", f"{NUGET_PROJECT}/metadata/acme.tools/index.json", '"1.0.2"'),
    "nuget-registration-leaf-project": Endpoint(
        "nuget", f"{NUGET_PROJECT}/metadata/acme.tools/1.0.0.json", "/download/acme.tools/1.0.0/", added=False
    ),
    "nuget-flat-versions-project": Endpoint("nuget", f"{NUGET_PROJECT}/download/acme.tools/index.json", '"1.0.2"'),
    "nuget-v2-find-by-id-project": Endpoint(
        "nuget", f"{NUGET_PROJECT}/v2/FindPackagesById()?id='Acme.Tools'", "Version='1.0.2'"
    ),
    "nuget-v2-packages-project": Endpoint("nuget", f"{NUGET_PROJECT}/v2/Packages()", "Id='Acme.Other'"),
    "nuget-v2-search-project": Endpoint("nuget", f"{NUGET_PROJECT}/v2/Search()", "Id='Acme.Other'"),
    "nuget-v2-package-project": Endpoint(
        "nuget", f"{NUGET_PROJECT}/v2/Packages(Id='Acme.Tools',Version='1.0.0')", "Version='1.0.0'", added=False
    ),
    "nuget-index-group": Endpoint("nuget", f"{NUGET_GROUP}/index.json", "RegistrationsBaseUrl", added=False),
    "nuget-query-group": Endpoint("nuget", f"{NUGET_GROUP}/query?q=acme", '"3.0.1"'),
    "nuget-registration-group": Endpoint("nuget", f"{NUGET_GROUP}/metadata/acme.tools/index.json", '"3.0.1"'),
    "nuget-registration-leaf-group": Endpoint(
        "nuget", f"{NUGET_GROUP}/metadata/acme.tools/1.0.0.json", "/download/acme.tools/1.0.0/", added=False
    ),
    "cargo-index-project": Endpoint("cargo", f"{CARGO_PROJECT}/le/ft/left-pad", '"vers":"1.0.2"'),
    "cargo-index-group": Endpoint("cargo", f"{CARGO_GROUP}/le/ft/left-pad", '"vers":"3.0.1"'),
    "cargo-config-group": Endpoint("cargo", f"{CARGO_GROUP}/config.json", '"auth-required": true', added=False),
    "conan-search-project": Endpoint("conan", f"{CONAN}/search?q=*", '"other-lib/1.1.0"'),
    "conan-revisions-project": Endpoint("conan", f"{CONAN_RECIPE}/revisions", CONAN_EXTRA_RREV),
    "conan-latest-project": Endpoint("conan", f"{CONAN_RECIPE}/latest", CONAN_EXTRA_RREV),
    "conan-files-project": Endpoint(
        "conan", f"{CONAN_RECIPE}/revisions/{CONAN_RREV}/files", '"conanfile.py"', added=False
    ),
    "conan-package-search-project": Endpoint("conan", f"{CONAN_RECIPE}/search", CONAN_EXTRA_PID),
    "rubygems-specs-project": Endpoint("rubygems", f"{GEMS}/specs.4.8.gz", "", added=False),
    "rubygems-versions-project": Endpoint("rubygems", f"{GEMS}/versions", "other-gem 1.0.0,1.1.0 "),
    "rubygems-info-project": Endpoint("rubygems", f"{GEMS}/info/hola", "\n1.0.2 |checksum:"),
    "rubygems-names-project": Endpoint("rubygems", f"{GEMS}/names", "other-gem"),
    "rubygems-quick-spec-project": Endpoint(
        "rubygems", f"{GEMS}/quick/Marshal.4.8/hola-1.0.0.gemspec.rz", "", added=False
    ),
    "golang-list-project": Endpoint("golang", f"{GO_PROJECT}/@v/list", "v1.0.2"),
    "golang-list-group": Endpoint("golang", f"{GO_GROUP}/@v/list", "v3.0.1"),
    "golang-latest-project": Endpoint("golang", f"{GO_PROJECT}/@latest", '"v1.0.2"'),
    "golang-latest-group": Endpoint("golang", f"{GO_GROUP}/@latest", '"v3.0.1+incompatible"'),
    "golang-info-project": Endpoint("golang", f"{GO_PROJECT}/@v/v1.0.0.info", '"v1.0.0"', added=False),
    "rest-project-packages": Endpoint("generic", "/api/v4/projects/{p}/packages", '"name":"other-tool"'),
    "rest-group-packages": Endpoint("generic", "/api/v4/groups/{g}/packages", '"project_path":"acme/sub/deep"'),
    "rest-group-packages-job-token": Endpoint(
        "generic", "/api/v4/groups/{g}/packages", '"project_path":"acme/sub/deep"', caller="job"
    ),
    "rest-package": Endpoint("generic", "/api/v4/projects/{p}/packages/{v}", '"version":"1.0.2"'),
    "rest-package-files": Endpoint(
        "generic", "/api/v4/projects/{p}/packages/{v}/package_files", '"file_name":"tool-extra-2.bin"'
    ),
    "web-project-packages": Endpoint("generic", "/{pp}/-/packages", ">other-tool</a>", caller="session"),
    "web-group-packages": Endpoint("generic", "/groups/acme/-/packages", ">acme/sub/deep</a>", caller="session"),
    "web-package-detail": Endpoint(
        "generic", "/{pp}/-/packages/{v}", "download>tool-extra-2.bin</a></td>", caller="session"
    ),
}


# --- measuring -----------------------------------------------------------------------------------


@pytest.fixture
def world():
    """The group `acme` (npm's instance endpoint resolves `@acme/...` to it), its project `app`
    (measured), a sibling `more` and `sub/deep` in a subgroup; a Maintainer of the group."""
    group = GroupFactory(path="acme", name="Acme")
    user = member(group, AccessLevel.MAINTAINER)
    return {
        "group": group,
        "main": ProjectFactory(group=group, path="app"),
        "more": ProjectFactory(group=group, path="more"),
        "deep": ProjectFactory(group=GroupFactory(path="sub", parent=group), path="deep"),
        "user": user,
        "headers": auth_headers(AccessTokenFactory(user=user).plaintext),
    }


def _publish(client, world, fmt, plan):
    spec = FORMATS[fmt]
    for project, package, version in plan:
        spec.publish(client, world["headers"], world[project], spec.names[package], version)


def _fill(template, world, version_id):
    main = world["main"]
    return template.format(p=main.pk, pp=main.full_path, g=world["group"].pk, deep=world["deep"].pk, v=version_id or 0)


def _caller(client, world, caller):
    """The measured caller's request headers (none for a session: the client is signed in)."""
    if caller == "session":
        client.force_login(world["user"])
        return {}
    if caller == "job":
        JobTokenScopeLinkFactory(source_project=world["main"], target_project=world["more"])
        JobTokenScopeLinkFactory(source_project=world["deep"], target_group=world["group"])
        return auth_headers(CiJobFactory(project=world["more"], user=world["user"]).plaintext, "job")
    return world["headers"]


def _get(client, headers, endpoint, url):
    if endpoint.accept:
        headers = {**headers, "HTTP_ACCEPT": endpoint.accept}
    return client.get(url, **headers)


def _measure(client, world, headers, endpoint, version_id):
    url = _fill(endpoint.path, world, version_id)
    cache.clear()
    # What the process remembers of the caller goes too: the flush reaches it through the epoch
    # mirror's push, which once arrived after this request had read the epochs (4 workers on 2
    # cores), so both measurements start from the same state whatever the push timing.
    access_cache.memory.clear()
    with CaptureQueriesContext(connection) as queries:
        response = _get(client, headers, endpoint, url)
    assert response.status_code == 200, (url, response.status_code, response.content[:500])
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return [query["sql"] for query in queries.captured_queries], body.decode(
        errors="replace"
    )  # binary documents (gzip, Marshal) too


def _sql_report(small, large):
    def listing(queries):
        return "\n".join(f"  {number}. {sql}" for number, sql in enumerate(queries, 1))

    diff = "\n".join(difflib.unified_diff(small, large, "small", "large", lineterm="", n=0))
    return (
        f"{len(small)} queries with small data, {len(large)} with large data\n"
        f"--- small:\n{listing(small)}\n--- large:\n{listing(large)}\n--- diff:\n{diff}"
    )


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_query_count_does_not_grow_with_the_data(client, world, name):
    endpoint = ENDPOINTS[name]
    spec = FORMATS[endpoint.format]
    headers = _caller(client, world, endpoint.caller)
    _get(client, headers, endpoint, _fill(endpoint.path, world, None))  # warm-up, before any package

    _publish(client, world, endpoint.format, SMALL)
    measured = PackageVersion.objects.get(
        package__project=world["main"], package__name=spec.names[0], version__in=("1.0.0", "v1.0.0")
    )
    small, small_body = _measure(client, world, headers, endpoint, measured.pk)

    _publish(client, world, endpoint.format, LARGE)
    if spec.extras is not None:
        spec.extras(client, world["headers"], world)
    large, large_body = _measure(client, world, headers, endpoint, measured.pk)

    shows = _fill(endpoint.shows, world, measured.pk)
    assert shows in large_body, (shows, large_body[:2000])
    if endpoint.added:
        assert shows not in small_body, (shows, small_body[:2000])
    assert len(small) == len(large), _sql_report(small, large)
    print(f"{name}: {len(small)} queries with small and large data")
