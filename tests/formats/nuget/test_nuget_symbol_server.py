"""The NuGet symbol server (GitLab's `symbolfiles` route, as Visual Studio's debugger asks it):
portable PDBs of pushed symbol packages, by file name, signature and `SymbolChecksum`, when the
project's `nuget_symbol_server_enabled` package setting is on."""

import hashlib
import uuid

import pytest

from accounts.roles import AccessLevel
from registry.models import PackageVersion, Status
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.formats.nuget.nupkg import nupkg, portable_pdb
from tests.formats.nuget.test_nuget_api import member, prefix, push
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db

GUID = uuid.UUID("b91a1520-48fc-4b38-83bf-3cf73fbc03f1")
PDB, PDB_ID_AT = portable_pdb(GUID, filler=b"the tables of Acme.Tools")
SIGNATURE = "B91A152048FC4B3883BF3CF73FBC03F1FFFFFFFF"
CHECKSUM = hashlib.sha256(PDB[:PDB_ID_AT] + b"\0" * 20 + PDB[PDB_ID_AT + 20 :]).hexdigest()


@pytest.fixture
def group():
    return GroupFactory(path="acme")


@pytest.fixture
def project(group):
    return ProjectFactory(group=group, path="tools")


@pytest.fixture
def maintainer(project):
    return member(project, AccessLevel.MAINTAINER)


def snupkg(pdb=PDB):
    return nupkg(
        extra=[("lib/net8.0/Acme.Tools.pdb", pdb), ("lib/net8.0/Windows.pdb", b"Microsoft C/C++ MSF 7.00\r\n")]
    )


@pytest.fixture
def pushed(client, project, maintainer):
    assert push(client, project, nupkg(), maintainer).status_code == 201
    response = push(client, project, snupkg(), maintainer, path="/symbolpackage", file_name="package.snupkg")
    assert response.status_code == 201, response.content


def enable(client, project, headers, on=True):
    response = client.put(
        f"/api/v4/projects/{project.pk}/packages/settings",
        {"nuget_symbol_server_enabled": on},
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 200, response.content
    assert response.json()["nuget_symbol_server_enabled"] is on


def symbol_url(base, file_name="acme.tools.pdb", signature=SIGNATURE, same=None):
    return f"{base}/symbolfiles/{file_name}/{signature}/{same or file_name}"


def checksum_header(*checksums):
    return {"HTTP_SYMBOLCHECKSUM": ";".join(f"SHA256:{c}" for c in checksums)}


def content(response):
    return b"".join(response.streaming_content)


def test_visual_studios_request_gets_the_pdb(client, project, maintainer, pushed):
    enable(client, project, maintainer)
    response = client.get(symbol_url(prefix(project)), **checksum_header(CHECKSUM), **maintainer)
    assert response.status_code == 200
    assert content(response) == PDB
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Length"] == str(len(PDB))
    # The key is case-insensitive, the header may carry several checksums, in any case.
    lower = symbol_url(prefix(project), "Acme.Tools.pdb", SIGNATURE.lower())
    several = checksum_header("0" * 64, CHECKSUM.upper())
    assert content(client.get(lower, **several, **maintainer)) == PDB


def test_refusals(client, project, maintainer, pushed):
    url = symbol_url(prefix(project))
    off = client.get(url, **checksum_header(CHECKSUM), **maintainer)
    assert off.status_code == 403  # the setting is off by default
    enable(client, project, maintainer)
    missing_header = client.get(url, **maintainer)
    assert missing_header.status_code == 400
    assert "Symbolchecksum" in missing_header.json()["message"]
    assert client.get(url, HTTP_SYMBOLCHECKSUM="MD5:abc", **maintainer).status_code == 400
    assert client.get(url, **checksum_header("0" * 64), **maintainer).status_code == 404
    wrong_signature = symbol_url(prefix(project), signature="0" * 32 + "FFFFFFFF")
    assert client.get(wrong_signature, **checksum_header(CHECKSUM), **maintainer).status_code == 404
    other_name = symbol_url(prefix(project), same="other.pdb")
    assert client.get(other_name, **checksum_header(CHECKSUM), **maintainer).status_code == 404
    # A Windows PDB in the package is no portable PDB: not served.
    assert (
        client.get(symbol_url(prefix(project), "windows.pdb"), **checksum_header(CHECKSUM), **maintainer).status_code
        == 404
    )
    # Who may pull packages may pull symbols; nobody else.
    assert client.get(url, **checksum_header(CHECKSUM)).status_code == 401
    stranger = auth_headers(AccessTokenFactory(user=UserFactory()).plaintext, "basic:x")
    assert client.get(url, **checksum_header(CHECKSUM), **stranger).status_code == 404
    # Gone with its package.
    PackageVersion.objects.update(status=Status.PENDING_DESTRUCTION)
    assert client.get(url, **checksum_header(CHECKSUM), **maintainer).status_code == 404


def test_group_route_serves_the_projects_that_serve_symbols(client, group, project, maintainer, pushed):
    user = UserFactory()
    MembershipFactory(user=user, group=group, access_level=AccessLevel.REPORTER)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext, "basic:x")
    url = symbol_url(f"/api/v4/groups/{group.pk}/-/packages/nuget")
    assert client.get(url, **checksum_header(CHECKSUM), **headers).status_code == 403
    enable(client, project, maintainer)
    response = client.get(url, **checksum_header(CHECKSUM), **headers)
    assert response.status_code == 200 and content(response) == PDB
    enable(client, project, maintainer, on=False)
    assert client.get(url, **checksum_header(CHECKSUM), **headers).status_code == 403


def test_setting_refuses_garbage_and_needs_maintainer(client, project, maintainer):
    url = f"/api/v4/projects/{project.pk}/packages/settings"
    assert client.get(url, **maintainer).json()["nuget_symbol_server_enabled"] is False
    bad = client.put(url, {"nuget_symbol_server_enabled": "sometimes"}, content_type="application/json", **maintainer)
    assert bad.status_code == 400 and bad.json() == {"error": "nuget_symbol_server_enabled is invalid"}
    developer = member(project, AccessLevel.DEVELOPER)
    denied = client.put(url, {"nuget_symbol_server_enabled": True}, content_type="application/json", **developer)
    assert denied.status_code == 403
    assert client.get(url, **maintainer).json()["nuget_symbol_server_enabled"] is False
