"""The format contract's `version_details`: what each format tells a version's page, from what its
client sent (published through each format's own endpoint, as the clients do)."""

import json

import pytest
from django.test import Client

from accounts.roles import AccessLevel
from registry import formats
from registry.models import PackageVersion
from tests.factories import AccessTokenFactory, GroupFactory, ProjectFactory, member
from tests.formats.maven.test_maven_api import put, sha1
from tests.formats.npm.npmdocs import publish_document, tarball
from tests.formats.nuget.nupkg import multipart, nupkg
from tests.formats.pypi.dists import make_wheel, wheel_name
from tests.formats.pypi.test_pypi_api import form
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="tools")


@pytest.fixture
def token(project):
    return AccessTokenFactory(user=member(project, AccessLevel.DEVELOPER)).plaintext


def details_of(project, fmt, name, version):
    row = PackageVersion.objects.get(package__project=project, package__format=fmt, package__name=name, version=version)
    files = list(row.files.select_related("blob"))
    return formats.get(fmt).version_details(row, files)


def deps(details):
    return {group.title: [(d.name, d.requirement) for d in group.dependencies] for group in details.dependency_groups}


def npm_publish(project, token, document, name):
    escaped = name.replace("/", "%2f")
    response = Client().put(
        f"/api/v4/projects/{project.pk}/packages/npm/{escaped}",
        data=json.dumps(document),
        content_type="application/json",
        **auth_headers(token, "bearer"),
    )
    assert response.status_code == 200, response.content


def test_npm_readme_license_links_dependencies_and_tags(project, token):
    fields = {
        "description": "Pads strings",
        "license": "MIT",
        "homepage": "https://example.com/left-pad",
        "repository": {"type": "git", "url": "git+https://example.com/left-pad.git"},
        "dependencies": {"lodash": "^4.17.0"},
        "peerDependencies": {"react": ">=18"},
        "optionalDependencies": {"fsevents": "^2"},
    }
    document = publish_document("@acme/left-pad", "1.0.0", **fields)
    document["readme"] = "# left-pad\n\nPads *strings*."
    npm_publish(project, token, document, "@acme/left-pad")
    details = details_of(project, "npm", "@acme/left-pad", "1.0.0")
    assert details.summary == "Pads strings" and details.license == "MIT"
    assert details.readme == "# left-pad\n\nPads *strings*." and details.readme_markup == "markdown"
    assert ("Homepage", "https://example.com/left-pad") in details.links
    assert ("Repository", "https://example.com/left-pad") in details.links
    assert deps(details) == {
        "Dependencies": [("lodash", "^4.17.0")],
        "Peer dependencies": [("react", ">=18")],
        "Optional dependencies": [("fsevents", "^2")],
    }
    assert details.tags == [("latest", "1.0.0")]


def test_npm_readme_from_the_tarball_when_the_body_has_none(project, token):
    manifest = {"name": "plain", "version": "2.0.0"}
    data = tarball(manifest, {"package/README.md": b"# From the tarball"})
    npm_publish(project, token, publish_document("plain", "2.0.0", data, manifest=manifest), "plain")
    assert details_of(project, "npm", "plain", "2.0.0").readme == "# From the tarball"


METADATA = b"""Metadata-Version: 2.1
Name: fancy
Version: 1.0.0
Summary: A fancy package
Home-page: https://example.com/fancy
License: BSD-3-Clause
Project-URL: Source, https://example.com/fancy/src
Requires-Dist: requests>=2.0
Requires-Dist: rich; extra == "cli"
Description-Content-Type: text/x-rst

Fancy
=====

Some *emphasis*.
"""


def test_pypi_long_description_in_its_markup_and_requires_dist(project, token):
    data = make_wheel("fancy", "1.0.0", metadata=METADATA)
    response = Client().post(
        f"/api/v4/projects/{project.pk}/packages/pypi",
        data=form("fancy", "1.0.0", data, wheel_name("fancy", "1.0.0")),
        **auth_headers(token, "basic:__token__"),
    )
    assert response.status_code == 201, response.content
    details = details_of(project, "pypi", "fancy", "1.0.0")
    assert details.summary == "A fancy package" and details.license == "BSD-3-Clause"
    assert details.readme_markup == "rst" and details.readme.startswith("Fancy\n=====")
    assert details.links == [("Homepage", "https://example.com/fancy"), ("Source", "https://example.com/fancy/src")]
    assert deps(details) == {"Requires-Dist": [("requests", ">=2.0"), ("rich", 'extra == "cli"')]}


NUSPEC = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata>
    <id>Acme.Tools</id>
    <version>1.2.3</version>
    <authors>Acme</authors>
    <description>Tools for Acme</description>
    <license type="expression">Apache-2.0</license>
    <readme>docs\\README.md</readme>
    <projectUrl>https://example.com/project</projectUrl>
    <dependencies>
      <group targetFramework="net8.0"><dependency id="Newtonsoft.Json" version="[13.0.1, )" /></group>
    </dependencies>
  </metadata>
</package>
"""


def test_nuget_readme_file_license_and_dependency_groups(project, token):
    data = nupkg(spec=NUSPEC, extra=[("docs/README.md", b"# Acme tools\n")])
    body, content_type = multipart(data)
    response = Client().put(
        f"/api/v4/projects/{project.pk}/packages/nuget/",
        data=body,
        content_type=content_type,
        **auth_headers(token, "basic:someone"),
    )
    assert response.status_code == 201, response.content
    details = details_of(project, "nuget", "Acme.Tools", "1.2.3")
    assert details.readme == "# Acme tools\n" and details.readme_markup == "markdown"
    assert details.summary == "Tools for Acme" and details.license == "Apache-2.0"
    assert ("Project", "https://example.com/project") in details.links
    assert deps(details) == {"net8.0": [("Newtonsoft.Json", "[13.0.1, )")]}


POM = b"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId>
  <artifactId>my-app</artifactId>
  <version>1.0</version>
  <name>My App</name>
  <description>An app for the tests.</description>
  <url>https://example.com/my-app</url>
  <licenses><license><name>MIT</name><url>https://opensource.org/licenses/MIT</url></license></licenses>
  <dependencies>
    <dependency><groupId>junit</groupId><artifactId>junit</artifactId><version>4.13.2</version><scope>test</scope></dependency>
    <dependency><groupId>com.google.guava</groupId><artifactId>guava</artifactId><version>33.0</version></dependency>
  </dependencies>
</project>
"""


def test_maven_pom_description_licenses_and_dependencies_by_scope(project, token):
    url = f"/api/v4/projects/{project.pk}/packages/maven/com/example/my-app/1.0/my-app-1.0.pom"
    headers = auth_headers(token)
    assert put(Client(), url, POM, headers).status_code == 200
    assert put(Client(), url + ".sha1", sha1(POM).encode(), headers).status_code == 204
    details = details_of(project, "maven", "com/example/my-app", "1.0")
    assert details.summary == "My App" and details.readme == "An app for the tests."
    assert details.license == "MIT"
    assert ("Project", "https://example.com/my-app") in details.links
    assert deps(details) == {"test": [("junit:junit", "4.13.2")], "compile": [("com.google.guava:guava", "33.0")]}
