"""PEP 592 yank through Packhouse's withdrawal endpoint and the version's page: the simple
index marks the files (`data-yanked`, JSON `yanked`), nothing is removed, every change is
recorded; Maintainer+ only, as deleting."""

import json

import pytest
from django.test import Client

from accounts.roles import AccessLevel
from registry.models import PackageVersion
from tests.factories import AccessTokenFactory, GroupFactory, ProjectFactory, UserFactory, member
from tests.formats.npm.npmdocs import publish_document
from tests.formats.pypi.dists import make_wheel, wheel_name
from tests.formats.pypi.test_pypi_api import PIP_ACCEPT, form
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="py")


def upload(project, user, version):
    data = make_wheel("yankme", version)
    response = Client().post(
        f"/api/v4/projects/{project.pk}/packages/pypi",
        data=form("yankme", version, data, wheel_name("yankme", version)),
        **auth_headers(AccessTokenFactory(user=user).plaintext, "basic:__token__"),
    )
    assert response.status_code == 201
    return PackageVersion.objects.get(package__name="yankme", version=version)


def simple(project, user, accept="text/html"):
    response = Client().get(
        f"/api/v4/projects/{project.pk}/packages/pypi/simple/yankme/",
        HTTP_ACCEPT=accept,
        **auth_headers(AccessTokenFactory(user=user).plaintext, "basic:__token__"),
    )
    assert response.status_code == 200
    return b"".join(response.streaming_content) if response.streaming else response.content


def url(project, version):
    return f"/api/v4/projects/{project.pk}/packages/{version.pk}/withdrawal"


def test_yank_marks_the_index_and_unyank_clears_it(project):
    developer = member(project, AccessLevel.DEVELOPER)
    upload(project, developer, "1.0.0")
    second = upload(project, developer, "1.1.0")
    maintainer = AccessTokenFactory(user=member(project, AccessLevel.MAINTAINER)).plaintext
    response = Client().post(url(project, second), {"reason": 'broken "build" <1>'}, **auth_headers(maintainer))
    assert response.status_code == 201
    assert response.json()["withdrawn"]["reason"] == 'broken "build" <1>'
    html = simple(project, developer).decode()
    yanked = [line for line in html.splitlines() if "yankme-1.1.0" in line][0]
    assert 'data-yanked="broken &quot;build&quot; &lt;1&gt;"' in yanked
    assert "data-yanked" not in [line for line in html.splitlines() if "yankme-1.0.0" in line][0]
    files = json.loads(simple(project, developer, PIP_ACCEPT))["files"]
    assert {f["filename"].split("-")[1]: f["yanked"] for f in files} == {"1.0.0": False, "1.1.0": 'broken "build" <1>'}

    Client().post(url(project, second), {"reason": ""}, **auth_headers(maintainer))
    files = json.loads(simple(project, developer, PIP_ACCEPT))["files"]
    assert [f["yanked"] for f in files] == [False, True]  # yanked without a reason

    assert Client().delete(url(project, second), **auth_headers(maintainer)).status_code == 200
    assert "data-yanked" not in simple(project, developer).decode()
    second.refresh_from_db()
    assert [entry["action"] for entry in second.metadata["withdrawals"]] == ["yank", "yank", "unyank"]
    assert "withdrawn" not in second.metadata and second.status == "default"


def test_who_may_yank(project):
    version = upload(project, member(project, AccessLevel.DEVELOPER), "1.0.0")
    for level, expected in ((AccessLevel.REPORTER, 403), (AccessLevel.DEVELOPER, 403), (AccessLevel.OWNER, 201)):
        token = AccessTokenFactory(user=member(project, level)).plaintext
        assert Client().post(url(project, version), **auth_headers(token)).status_code == expected
    assert Client().post(url(project, version)).status_code == 401
    stranger = AccessTokenFactory(user=UserFactory()).plaintext
    assert Client().post(url(project, version), **auth_headers(stranger)).status_code == 404
    maintainer = AccessTokenFactory(user=member(project, AccessLevel.MAINTAINER)).plaintext
    bad = Client().post(url(project, version), {"reason": "line\nbreak"}, **auth_headers(maintainer))
    assert bad.status_code == 400


def test_a_format_without_withdrawal_refuses(project):
    developer = member(project, AccessLevel.DEVELOPER)
    response = Client().put(
        f"/api/v4/projects/{project.pk}/packages/npm/plain",
        data=json.dumps(publish_document("plain", "1.0.0")),
        content_type="application/json",
        **auth_headers(AccessTokenFactory(user=developer).plaintext, "bearer"),
    )
    assert response.status_code == 200
    version = PackageVersion.objects.get(package__name="plain")
    maintainer = AccessTokenFactory(user=member(project, AccessLevel.MAINTAINER)).plaintext
    response = Client().post(url(project, version), **auth_headers(maintainer))
    assert response.status_code == 400 and "cannot be withdrawn" in response.json()["message"]


def test_yank_from_the_version_page(project):
    version = upload(project, member(project, AccessLevel.DEVELOPER), "1.0.0")
    page_url = f"/acme/py/-/packages/{version.pk}"
    developer = Client()
    developer.force_login(member(project, AccessLevel.DEVELOPER))
    assert "Yank 1.0.0" not in developer.get(page_url).content.decode()
    assert developer.post(f"{page_url}/withdrawal", {"reason": "x"}).status_code == 403
    maintainer = Client()
    maintainer.force_login(member(project, AccessLevel.MAINTAINER))
    assert "Yank 1.0.0" in maintainer.get(page_url).content.decode()
    assert maintainer.post(f"{page_url}/withdrawal", {"reason": "CVE-2026-1"}).status_code == 302
    html = maintainer.get(page_url).content.decode()
    assert "<strong>Yanked</strong>: CVE-2026-1" in html and "Unyank 1.0.0" in html
    assert maintainer.post(f"{page_url}/withdrawal", {"action": "undo"}).status_code == 302
    version.refresh_from_db()
    assert "withdrawn" not in version.metadata
