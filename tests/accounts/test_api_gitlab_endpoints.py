"""GitLab endpoints scripts use: members/all (inherited members at their effective level),
PUT /users/:id and block/unblock, a group's subgroups and projects; and a path no route has never
claims that the project or group in it is missing."""

from datetime import date, timedelta

import pytest

from accounts.models import User
from accounts.roles import AccessLevel
from tests.accounts.conftest import person
from tests.factories import GroupFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

ROUTE_404 = {"error": "404 Not Found"}


def levels(response):
    assert response.status_code == 200, response.content
    return {member["username"]: member["access_level"] for member in response.json()}


# --- a route that does not exist ----------------------------------------------------------


@pytest.mark.parametrize(
    "suffix", ["repository/tree", "members/everyone", "packages/generic", "deploy_tokens/1/extra", "issues"]
)
def test_unknown_route_under_a_visible_project_is_no_missing_project(api, tree, people, suffix):
    for ref in (tree["proj"].pk, "acme%2Fsub%2Fproj"):
        response = api.get(f"/api/v4/projects/{ref}/{suffix}", **people["maintainer"].headers)
        assert response.status_code == 404
        assert response.json() == ROUTE_404, (ref, suffix)


def test_unknown_route_under_a_visible_group_is_no_missing_group(api, tree, people):
    for method in ("get", "post", "delete"):
        response = getattr(api, method)(f"/api/v4/groups/{tree['acme'].pk}/epics/1", **people["owner"].headers)
        assert response.status_code == 404 and response.json() == ROUTE_404


def test_wrong_method_on_a_full_path(api, tree, people):
    """POST /projects/acme%2Fsub%2Fproj is a wrong method on a project the caller sees; on a path
    naming nothing they see, it is what a missing project is."""
    url = "/api/v4/projects/acme%2Fsub%2Fproj"
    allowed = api.post(url, **people["maintainer"].headers)
    assert allowed.status_code == 405 and allowed.json() == {"error": "405 Not Allowed"}
    assert api.post(url, **people["stranger"].headers).json() == {"message": "404 Project Not Found"}
    assert api.post("/api/v4/groups/acme%2Fsub", **people["developer"].headers).status_code == 405


def test_unknown_route_under_a_hidden_project_reveals_nothing(api, tree, people):
    hidden = api.get(f"/api/v4/projects/{tree['other'].pk}/repository/tree", **people["stranger"].headers)
    missing = api.get("/api/v4/projects/999999/repository/tree", **people["stranger"].headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json() == {"message": "404 Project Not Found"}
    assert api.get(f"/api/v4/projects/{tree['other'].pk}/repository/tree").status_code == 401


# --- members/all ---------------------------------------------------------------------------


@pytest.fixture
def crowd(tree, people):
    """Besides `people`: a user with Developer on acme and Maintainer on proj (effective
    Maintainer), one with Maintainer on acme and Guest on proj (effective Maintainer, from the
    group), and one whose group membership has expired."""
    both = UserFactory(username="both")
    MembershipFactory(user=both, group=tree["acme"], access_level=AccessLevel.DEVELOPER)
    MembershipFactory(user=both, project=tree["proj"], access_level=AccessLevel.MAINTAINER)
    higher_above = UserFactory(username="higher-above")
    MembershipFactory(user=higher_above, group=tree["acme"], access_level=AccessLevel.MAINTAINER)
    MembershipFactory(user=higher_above, project=tree["proj"], access_level=AccessLevel.GUEST)
    expired = UserFactory(username="expired")
    MembershipFactory(
        user=expired, group=tree["sub"], access_level=AccessLevel.OWNER, expires_at=date.today() - timedelta(days=1)
    )
    return {"both": both, "higher_above": higher_above, "expired": expired}


def test_project_members_all_lists_inherited_members_at_their_effective_level(api, tree, people, crowd):
    name = {key: people[key].user.username for key in people}
    url = f"/api/v4/projects/{tree['proj'].pk}/members/all"
    assert levels(api.get(url, **people["guest"].headers)) == {
        name["owner"]: AccessLevel.OWNER,
        name["maintainer"]: AccessLevel.MAINTAINER,
        name["developer"]: AccessLevel.DEVELOPER,
        name["reporter"]: AccessLevel.REPORTER,
        name["guest"]: AccessLevel.GUEST,
        "both": AccessLevel.MAINTAINER,
        "higher-above": AccessLevel.MAINTAINER,
    }
    # Only the direct ones on /members.
    direct = levels(api.get(f"/api/v4/projects/{tree['proj'].pk}/members", **people["guest"].headers))
    assert name["owner"] not in direct and direct["higher-above"] == AccessLevel.GUEST

    one = api.get(f"{url}/{people['owner'].user.pk}", **people["guest"].headers)
    assert one.status_code == 200
    assert one.json()["access_level"] == AccessLevel.OWNER and one.json()["username"] == name["owner"]
    assert api.get(f"{url}/{crowd['expired'].pk}", **people["guest"].headers).json() == {
        "message": "404 Member Not Found"
    }
    assert api.get(f"{url}/{people['stranger'].user.pk}", **people["guest"].headers).status_code == 404
    assert api.get(url, **people["stranger"].headers).json() == {"message": "404 Project Not Found"}
    assert api.get(url).status_code == 401

    page = api.get(url, {"per_page": 3, "page": 3}, **people["guest"].headers)
    assert page["X-Total"] == "7" and len(page.json()) == 1
    assert levels(api.get(url, {"query": "both"}, **people["guest"].headers)) == {"both": AccessLevel.MAINTAINER}


def test_group_members_all(api, tree, people, crowd):
    url = f"/api/v4/groups/{tree['sub'].pk}/members/all"
    assert levels(api.get(url, **people["developer"].headers)) == {
        people["owner"].user.username: AccessLevel.OWNER,
        people["developer"].user.username: AccessLevel.DEVELOPER,
        "both": AccessLevel.DEVELOPER,
        "higher-above": AccessLevel.MAINTAINER,
    }
    one = api.get(f"{url}/{crowd['higher_above'].pk}", **people["developer"].headers)
    assert one.status_code == 200 and one.json()["access_level"] == AccessLevel.MAINTAINER


def test_personal_project_members_all_shows_its_owner(api, people):
    owner = people["stranger"]
    project = ProjectFactory(group=None, namespace_owner=owner.user, path="mine")
    response = api.get(f"/api/v4/projects/{project.pk}/members/all", **owner.headers)
    assert levels(response) == {owner.user.username: AccessLevel.OWNER}


# --- PUT /users/:id, block, unblock ----------------------------------------------------------


def test_admin_updates_a_user(api, people):
    target = people["stranger"].user
    url = f"/api/v4/users/{target.pk}"
    body = {"name": "Renamed", "email": "renamed@example.com", "external": "True", "admin": "true"}
    response = api.put(url, body, format="json", **people["admin"].headers)
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["name"], data["email"], data["external"], data["is_admin"]) == (
        "Renamed",
        "renamed@example.com",
        True,
        True,
    )
    target.refresh_from_db()
    assert (target.name, target.email, target.is_external, target.is_superuser) == (
        "Renamed",
        "renamed@example.com",
        True,
        True,
    )
    # The token of the new admin now has admin powers, and loses them when demoted.
    assert api.get("/api/v4/deploy_tokens", **people["stranger"].headers).status_code == 200
    assert api.put(url, {"admin": False}, format="json", **people["admin"].headers).json()["is_admin"] is False
    assert api.get("/api/v4/deploy_tokens", **people["stranger"].headers).status_code == 403


def test_user_update_refusals(api, people):
    url = f"/api/v4/users/{people['stranger'].user.pk}"
    assert api.put(url, {"name": "x"}, format="json", **people["owner"].headers).status_code == 403
    assert api.put(url, {"name": "x"}, format="json").status_code == 401
    taken = api.put(url, {"email": people["owner"].user.email}, format="json", **people["admin"].headers)
    assert taken.status_code == 409 and taken.json() == {"message": "Email has already been taken"}
    bad = api.put(url, {"external": "sometimes"}, format="json", **people["admin"].headers)
    assert bad.status_code == 400 and bad.json() == {"error": "external is invalid"}
    assert api.put("/api/v4/users/999999", {"name": "x"}, format="json", **people["admin"].headers).json() == {
        "message": "404 User Not Found"
    }
    me = f"/api/v4/users/{people['admin'].user.pk}"
    assert api.put(me, {"admin": False}, format="json", **people["admin"].headers).status_code == 403
    assert User.objects.get(pk=people["admin"].user.pk).is_superuser


def test_block_and_unblock(api, people):
    target = people["stranger"]
    url = f"/api/v4/users/{target.user.pk}"
    assert api.post(f"{url}/block", **people["owner"].headers).status_code == 403
    blocked = api.post(f"{url}/block", **people["admin"].headers)
    assert blocked.status_code == 201 and blocked.json() is True
    assert api.get("/api/v4/user", **target.headers).status_code == 401
    assert api.get(url, **people["admin"].headers).json()["state"] == "blocked"
    assert api.post(f"{url}/unblock", **people["admin"].headers).status_code == 201
    assert api.get("/api/v4/user", **target.headers).status_code == 200
    assert api.post(f"/api/v4/users/{people['admin'].user.pk}/block", **people["admin"].headers).status_code == 403


# --- a group's subgroups and projects -------------------------------------------------------


def test_subgroups_lists_the_visible_children(api, tree, people):
    public_child = GroupFactory(parent=tree["acme"], path="pub", name="Pub", visibility="public")
    GroupFactory(parent=tree["sub"], path="grandchild")
    url = f"/api/v4/groups/{tree['acme'].pk}/subgroups"
    response = api.get(url, **people["owner"].headers)
    assert response.status_code == 200
    assert [g["id"] for g in response.json()] == [public_child.pk, tree["sub"].pk]  # by name
    assert response["X-Total"] == "2"
    by_id = api.get(url, {"order_by": "id", "sort": "desc"}, **people["owner"].headers).json()
    assert [g["id"] for g in by_id] == [public_child.pk, tree["sub"].pk]
    assert api.get(url, {"order_by": "stars"}, **people["owner"].headers).status_code == 400
    assert [g["id"] for g in api.get(url, {"search": "pub"}, **people["owner"].headers).json()] == [public_child.pk]
    # A member of sub only sees acme (its ancestor) and, below it, sub: not other private children.
    hidden = GroupFactory(parent=tree["acme"], path="hidden", name="Hidden")
    assert hidden.pk in [g["id"] for g in api.get(url, **people["owner"].headers).json()]
    assert [g["id"] for g in api.get(url, **people["developer"].headers).json()] == [public_child.pk, tree["sub"].pk]
    assert api.get(url, **people["stranger"].headers).json() == {"message": "404 Group Not Found"}
    assert api.get(url).status_code == 401


def test_group_projects_with_and_without_subgroups(api, tree, people):
    acme = tree["acme"]
    public = ProjectFactory(group=acme, path="public-one", name="Public one", visibility="public")
    internal = ProjectFactory(group=acme, path="internal-one", name="Internal one", visibility="internal")
    url = f"/api/v4/groups/{acme.pk}/projects"
    headers = people["owner"].headers

    def listed(**params):
        response = api.get(url, params, **headers)
        assert response.status_code == 200, response.content
        return [p["id"] for p in response.json()]

    assert listed() == [internal.pk, public.pk]  # GitLab's default order: newest first
    assert listed(order_by="name", sort="asc") == [internal.pk, public.pk]
    assert listed(order_by="id", sort="asc") == [public.pk, internal.pk]
    assert sorted(listed(include_subgroups="True")) == sorted([tree["proj"].pk, public.pk, internal.pk])
    assert listed(include_subgroups="true", visibility="private") == [tree["proj"].pk]
    assert listed(visibility="public") == [public.pk]
    assert listed(include_subgroups="true", per_page=2, page=2) == [tree["proj"].pk]
    bad = api.get(url, {"visibility": "secret"}, **headers)
    assert bad.status_code == 400 and bad.json() == {"error": "visibility does not have a valid value"}
    bad = api.get(url, {"include_subgroups": "both"}, **headers)
    assert bad.status_code == 400 and bad.json() == {"error": "include_subgroups is invalid"}
    # A member of the subgroup sees acme's subgroup project but not acme's private ones.
    developer = person(AccessLevel.DEVELOPER, group=tree["sub"])
    seen = api.get(url, {"include_subgroups": "true"}, **developer.headers).json()
    assert sorted(p["id"] for p in seen) == sorted([tree["proj"].pk, public.pk, internal.pk])
    private = ProjectFactory(group=acme, path="private-one")
    seen = api.get(url, {"include_subgroups": "true"}, **developer.headers).json()
    assert private.pk not in [p["id"] for p in seen]
    anonymous = api.get(url)
    assert anonymous.status_code == 401  # acme is private


# --- rotating a project or group access token -----------------------------------------------


@pytest.mark.parametrize("kind", ["project", "group"])
def test_resource_access_token_rotation(api, tree, people, kind):
    resource, admin_of = (tree["proj"], people["maintainer"]) if kind == "project" else (tree["acme"], people["owner"])
    base = f"/api/v4/{kind}s/{resource.pk}/access_tokens"
    created = api.post(base, {"name": "ci", "scopes": ["api"], "access_level": 30}, format="json", **admin_of.headers)
    assert created.status_code == 201, created.content
    old = created.json()
    assert api.get("/api/v4/user", HTTP_PRIVATE_TOKEN=old["token"]).status_code == 200

    assert api.post(f"{base}/{old['id']}/rotate", **people["developer"].headers).status_code == 403
    rotated = api.post(f"{base}/{old['id']}/rotate", **admin_of.headers)
    assert rotated.status_code == 200, rotated.content
    new = rotated.json()
    assert new["id"] != old["id"] and new["token"] != old["token"]
    assert (new["name"], new["scopes"], new["access_level"], new["user_id"]) == ("ci", ["api"], 30, old["user_id"])
    assert api.get("/api/v4/user", HTTP_PRIVATE_TOKEN=new["token"]).status_code == 200
    assert api.get("/api/v4/user", HTTP_PRIVATE_TOKEN=old["token"]).status_code == 401
    assert api.get("/api/v4/user", HTTP_PRIVATE_TOKEN=new["token"]).status_code == 401  # reuse: the family dies
    assert api.post(f"{base}/{old['id']}/rotate", **admin_of.headers).status_code == 401  # already revoked
    assert api.post(f"{base}/999999/rotate", **admin_of.headers).json() == {"message": "404 Access Token Not Found"}
