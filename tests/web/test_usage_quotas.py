"""Storage usage per project and per group: what the packages add up to, what is stored once
identical files are kept once, each package's share; on the usage quotas pages and as GitLab's
`statistics=true` fields, for Reporter+ of a project and Owner of a group."""

import pytest
from django.test import Client

from accounts.roles import AccessLevel
from tests.factories import AccessTokenFactory, GroupFactory, ProjectFactory, member
from tests.helpers import auth_headers
from tests.web.test_management_pages import caller, expected, outcome

pytestmark = pytest.mark.django_db

SAME = b"x" * 1000  # one content in two packages: stored once


def put(project, token, name, data, version="1.0.0"):
    response = Client().put(
        f"/api/v4/projects/{project.pk}/packages/generic/{name}/{version}/{name}.bin",
        data=data,
        content_type="application/octet-stream",
        **auth_headers(token),
    )
    assert response.status_code == 201


@pytest.fixture
def world():
    acme = GroupFactory(path="acme")
    sub = GroupFactory(parent=acme, path="sub")
    app, lib = ProjectFactory(group=acme, path="app"), ProjectFactory(group=sub, path="lib")
    token = AccessTokenFactory(user=member(acme, AccessLevel.OWNER)).plaintext
    put(app, token, "big", SAME)
    put(app, token, "copy", SAME)
    put(app, token, "small", b"y" * 200)
    put(lib, token, "other", SAME)
    return {"acme": acme, "app": app, "lib": lib, "token": token}


def test_project_statistics_in_the_api(world):
    app = world["app"]
    reporter = AccessTokenFactory(user=member(app, AccessLevel.REPORTER)).plaintext
    data = Client().get(f"/api/v4/projects/{app.pk}", {"statistics": "true"}, **auth_headers(reporter)).json()
    stats = data["statistics"]
    assert (stats["packages_size"], stats["packages_stored_size"], stats["deduplication_saved_size"]) == (
        2200,
        1200,
        1000,
    )
    assert stats["storage_size"] == 1200 and stats["repository_size"] == 0
    assert "statistics" not in Client().get(f"/api/v4/projects/{app.pk}", **auth_headers(reporter)).json()
    guest = AccessTokenFactory(user=member(app, AccessLevel.GUEST)).plaintext
    guest_view = Client().get(f"/api/v4/projects/{app.pk}", {"statistics": "true"}, **auth_headers(guest)).json()
    assert "statistics" not in guest_view


def test_group_statistics_cover_subgroups_for_owners(world):
    acme = world["acme"]
    url = f"/api/v4/groups/{acme.pk}"
    stats = Client().get(url, {"statistics": "true"}, **auth_headers(world["token"])).json()["statistics"]
    assert (stats["packages_size"], stats["packages_stored_size"]) == (3200, 1200)
    maintainer = AccessTokenFactory(user=member(acme, AccessLevel.MAINTAINER)).plaintext
    assert "statistics" not in Client().get(url, {"statistics": "true"}, **auth_headers(maintainer)).json()


def test_a_deleted_version_no_longer_counts(world):
    app = world["app"]
    owner = Client()
    owner.force_login(member(world["acme"], AccessLevel.OWNER))
    page = owner.get("/acme/app/-/usage_quotas").content.decode()
    assert '<td id="packages-size">2.1\xa0KB <span class="muted">(2200 B)</span>' in page
    assert "<td>big</td>" in page and "45.5%" in page and "9.1%" in page
    version = app.packages.get(name="small").versions.get()
    assert owner.post(f"/acme/app/-/packages/{version.pk}/delete").status_code == 302
    page = owner.get("/acme/app/-/usage_quotas").content.decode()
    assert "(2000 B)" in page and "<td>small</td>" not in page


@pytest.mark.parametrize(("who", "answer"), expected("reporter", 200).items())
def test_project_usage_page_policy(world, who, answer):
    assert outcome(caller(who, world["app"]).get("/acme/app/-/usage_quotas")) == answer


@pytest.mark.parametrize(("who", "answer"), expected("owner", 200).items())
def test_group_usage_page_policy(world, who, answer):
    response = caller(who, world["acme"]).get("/groups/acme/-/usage_quotas")
    assert outcome(response) == answer
    if answer == 200:
        assert "(3200 B)" in response.content.decode() and "acme/sub/lib" in response.content.decode()


def test_the_tab_shows_for_who_may_open_it(world):
    reporter = Client()
    reporter.force_login(member(world["app"], AccessLevel.REPORTER))
    assert "/acme/app/-/usage_quotas" in reporter.get("/acme/app/-/packages").content.decode()
    stranger_in_group = Client()
    stranger_in_group.force_login(member(world["acme"], AccessLevel.GUEST))
    assert "/acme/app/-/usage_quotas" not in stranger_in_group.get("/acme/app/-/project_members").content.decode()
