"""The search box: every package the caller may pull, by name, format or project path."""

import re

import pytest
from django.test import Client

from accounts.roles import AccessLevel
from tests.factories import AccessTokenFactory, GroupFactory, ProjectFactory, UserFactory, member
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


def put_generic(project, user, name, version="1.0.0"):
    token = AccessTokenFactory(user=user).plaintext
    response = Client().put(
        f"/api/v4/projects/{project.pk}/packages/generic/{name}/{version}/{name}.bin",
        data=b"x",
        content_type="application/octet-stream",
        **auth_headers(token),
    )
    assert response.status_code == 201


def names(client, **params):
    response = client.get("/search", params)
    html = response.content.decode()
    if 'aria-label="Packages found"' not in html:
        return []
    table = html.split('aria-label="Packages found"', 1)[1].split("</table>", 1)[0]
    return sorted(re.findall(r'/-/packages/\d+">([^<]+)</a>', table))


@pytest.fixture
def setup():
    public = ProjectFactory(group=GroupFactory(path="open", visibility="public"), path="tools", visibility="public")
    private = ProjectFactory(group=GroupFactory(path="acme"), path="secret")
    publisher = member(public, AccessLevel.DEVELOPER)
    insider = member(private, AccessLevel.DEVELOPER)
    put_generic(public, publisher, "widget")
    put_generic(public, publisher, "gadget")
    put_generic(private, insider, "widget-pro")
    return {"public": public, "private": private, "insider": insider}


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_anonymous_finds_public_packages_only(setup):
    assert names(Client(), search="widget") == ["widget"]
    assert names(Client(), search="generic") == ["gadget", "widget"]
    assert names(Client(), search="open/tools gad") == ["gadget"]


def test_members_find_their_private_packages_strangers_do_not(setup):
    assert names(signed_in(setup["insider"]), search="widget") == ["widget", "widget-pro"]
    assert names(signed_in(setup["insider"]), search="acme/secret") == ["widget-pro"]
    assert names(signed_in(member(setup["private"], AccessLevel.GUEST)), search="widget") == ["widget"]
    assert names(signed_in(UserFactory()), search="widget") == ["widget"]


def test_format_filter_and_search_box_on_every_page(setup):
    assert names(signed_in(setup["insider"]), search="widget", format="npm") == []
    assert names(signed_in(setup["insider"]), format="generic") == ["gadget", "widget", "widget-pro"]
    assert b'role="search"' in Client().get("/users/sign_in").content
