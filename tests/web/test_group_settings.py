"""Group general settings page: Owners change the group's visibility, within GitLab's rules."""

import pytest
from django.test import Client

from accounts.models import Group
from accounts.roles import AccessLevel
from tests.factories import GroupFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/groups/acme/-/settings/general"


@pytest.fixture
def acme():
    return GroupFactory(path="acme", visibility="private")


def member(group=None, level=AccessLevel.OWNER):
    user = UserFactory()
    if group is not None:
        MembershipFactory(user=user, group=group, access_level=level)
    return user


def signed_in(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


def visibility_of(group):
    return Group.objects.get(pk=group.pk).visibility


def test_owner_changes_visibility(acme):
    client = signed_in(member(acme))
    page = client.get(URL)
    assert page.status_code == 200
    assert b'href="/groups/acme/-/settings/general"' in page.content
    response = client.post(URL, {"visibility": "internal"})
    assert response.status_code == 302 and response["Location"] == URL
    assert visibility_of(acme) == "internal"
    assert b"Settings saved." in client.get(URL).content
    client.post(URL, {"visibility": "private"})
    assert visibility_of(acme) == "private"


def test_nav_links_general_for_owners_only(acme):
    ProjectFactory(group=acme, path="tools")
    owner_page = signed_in(member(acme)).get("/groups/acme/-/packages")
    assert b'href="/groups/acme/-/settings/general"' in owner_page.content
    maintainer_page = signed_in(member(acme, AccessLevel.MAINTAINER)).get("/groups/acme/-/packages")
    assert maintainer_page.status_code == 200
    assert b"/-/settings/general" not in maintainer_page.content


def test_access_checks(acme):
    maintainer = signed_in(member(acme, AccessLevel.MAINTAINER))
    assert maintainer.get(URL).status_code == 403
    assert maintainer.post(URL, {"visibility": "public"}).status_code == 403
    stranger = signed_in(member())
    assert stranger.get(URL).status_code == 404
    assert stranger.post(URL, {"visibility": "public"}).status_code == 404
    response = Client().get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/users/sign_in?next=")
    assert Client().post(URL, {"visibility": "public"}).status_code == 302
    assert signed_in(member(acme, AccessLevel.OWNER)).get(URL).status_code == 200
    assert visibility_of(acme) == "private"


def test_unknown_group_404():
    assert signed_in(member()).get("/groups/nope/-/settings/general").status_code == 404


def test_post_without_csrf_refused(acme):
    client = signed_in(member(acme), enforce_csrf_checks=True)
    assert client.post(URL, {"visibility": "public"}).status_code == 403
    assert visibility_of(acme) == "private"


def test_invalid_choice_rejected(acme):
    response = signed_in(member(acme)).post(URL, {"visibility": "secret"})
    assert response.status_code == 400
    assert visibility_of(acme) == "private"


def test_cannot_go_below_a_project(acme):
    acme.visibility = "public"
    acme.save()
    ProjectFactory(group=acme, path="tools", visibility="internal")
    client = signed_in(member(acme))
    response = client.post(URL, {"visibility": "private"})
    assert response.status_code == 400
    assert b"projects with higher visibility" in response.content
    assert visibility_of(acme) == "public"
    # Down to the project's own level is fine.
    assert client.post(URL, {"visibility": "internal"}).status_code == 302
    assert visibility_of(acme) == "internal"


def test_cannot_go_below_a_subgroup_or_its_projects(acme):
    acme.visibility = "public"
    acme.save()
    sub = GroupFactory(path="sub", parent=acme, visibility="internal")
    deep = GroupFactory(path="deep", parent=sub, visibility="internal")
    client = signed_in(member(acme))
    response = client.post(URL, {"visibility": "private"})
    assert response.status_code == 400
    assert b"subgroups with higher visibility" in response.content
    assert visibility_of(acme) == "public"
    # A public project deep down blocks even `internal`.
    ProjectFactory(group=deep, path="lib", visibility="public")
    response = client.post(URL, {"visibility": "internal"})
    assert response.status_code == 400
    assert b"projects with higher visibility" in response.content
    assert visibility_of(acme) == "public"


def test_cannot_exceed_parent(acme):
    acme.visibility = "internal"
    acme.save()
    sub = GroupFactory(path="sub", parent=acme, visibility="private")
    client = signed_in(member(sub))
    url = "/groups/acme/sub/-/settings/general"
    response = client.post(url, {"visibility": "public"})
    assert response.status_code == 400
    assert b"not allowed in a internal parent group" in response.content
    assert visibility_of(sub) == "private"
    assert client.post(url, {"visibility": "internal"}).status_code == 302
    assert visibility_of(sub) == "internal"


def test_parent_owner_can_manage_subgroup(acme):
    sub = GroupFactory(path="sub", parent=acme, visibility="private")
    acme.visibility = "public"
    acme.save()
    client = signed_in(member(acme))
    assert client.post("/groups/acme/sub/-/settings/general", {"visibility": "public"}).status_code == 302
    assert visibility_of(sub) == "public"
