"""NuGet unlist and relist (nuget.org's way): an unlisted version leaves search, is marked
`listed: false` in the registration (clients leave it out of version ranges) and v2 feeds, and
stays downloadable by exact version; Maintainer+ through the withdrawal endpoint or the page."""

import json
from xml.etree import ElementTree

import pytest
from django.test import Client

from accounts.roles import AccessLevel
from registry.models import PackageVersion
from tests.factories import GroupFactory, ProjectFactory
from tests.factories import member as member_of
from tests.formats.nuget.nupkg import nupkg
from tests.formats.nuget.test_nuget_api import content, member, prefix, push

pytestmark = pytest.mark.django_db

M = "http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="tools")


@pytest.fixture
def published(project):
    developer = member(project)
    for version in ("1.0.0", "1.1.0"):
        assert push(Client(), project, nupkg(version=version), developer).status_code == 201
    return developer


def withdrawal(project, version):
    return f"/api/v4/projects/{project.pk}/packages/{version.pk}/withdrawal"


def v2_flags(feed):
    """{version: (Listed, IsLatestVersion, IsAbsoluteLatestVersion, published on 1900-01-01)} of a v2 feed."""
    root = ElementTree.fromstring(feed)
    flags = {}
    for properties in root.iter(f"{{{M}}}properties"):
        value = {child.tag.split("}")[1]: child.text for child in properties}
        latest = (value["IsLatestVersion"], value["IsAbsoluteLatestVersion"])
        flags[value["Version"]] = (value["Listed"], *latest, value["Published"].startswith("1900-01-01"))
    return flags


def test_unlist_then_relist(project, published):
    newer = PackageVersion.objects.get(version="1.1.0")
    maintainer = member(project, AccessLevel.MAINTAINER, kind="private")
    assert Client().post(withdrawal(project, newer), **published).status_code in (401, 403)
    assert Client().post(withdrawal(project, newer), {"reason": "bad"}, **maintainer).status_code == 201
    newer.refresh_from_db()
    assert newer.status == "hidden"

    index = json.loads(content(Client().get(f"{prefix(project)}/metadata/acme.tools/index.json", **published)))
    listed = {item["catalogEntry"]["version"]: item["catalogEntry"]["listed"] for item in index["items"][0]["items"]}
    assert listed == {"1.0.0": True, "1.1.0": False}
    search = json.loads(content(Client().get(f"{prefix(project)}/query", {"q": "acme"}, **published)))
    assert [v["version"] for v in search["data"][0]["versions"]] == ["1.0.0"]
    assert search["data"][0]["version"] == "1.0.0"
    flat = json.loads(content(Client().get(f"{prefix(project)}/download/acme.tools/index.json", **published)))
    assert flat["versions"] == ["1.0.0", "1.1.0"]
    download = Client().get(f"{prefix(project)}/download/acme.tools/1.1.0/acme.tools.1.1.0.nupkg", **published)
    assert download.status_code == 200
    v2 = content(Client().get(f"{prefix(project)}/v2/FindPackagesById()", {"id": "'Acme.Tools'"}, **published))
    assert v2_flags(v2) == {
        "1.0.0": ("true", "true", "true", False),  # Listed, IsLatestVersion, IsAbsoluteLatestVersion,
        "1.1.0": ("false", "false", "false", True),  # Published on 1900-01-01
    }
    v2_search = content(Client().get(f"{prefix(project)}/v2/Search()", {"searchTerm": "'acme'"}, **published))
    assert list(v2_flags(v2_search)) == ["1.0.0"]

    assert Client().delete(withdrawal(project, newer), **maintainer).status_code == 200
    newer.refresh_from_db()
    assert newer.status == "default"
    search = json.loads(content(Client().get(f"{prefix(project)}/query", {"q": "acme"}, **published)))
    assert search["data"][0]["version"] == "1.1.0"
    assert [entry["action"] for entry in newer.metadata["withdrawals"]] == ["unlist", "relist"]


def test_unlist_from_the_version_page(project, published):
    newer = PackageVersion.objects.get(version="1.1.0")
    client = Client()
    client.force_login(member_of(project, AccessLevel.MAINTAINER))
    page_url = f"/acme/tools/-/packages/{newer.pk}"
    assert "Unlist 1.1.0" in client.get(page_url).content.decode()
    assert client.post(f"{page_url}/withdrawal", {"reason": "superseded"}).status_code == 302
    html = client.get(page_url).content.decode()  # still reachable, to relist it
    assert "<strong>Unlisted</strong>: superseded" in html and "Relist 1.1.0" in html
