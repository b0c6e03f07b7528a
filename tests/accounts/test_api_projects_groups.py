"""Users, groups and projects: creation rules, visibility, 401/403/404, %2F references, pagination."""

import pytest

from accounts.models import Group, Membership, Project, User
from accounts.roles import AccessLevel
from tests.accounts.conftest import person
from tests.factories import GroupFactory, ProjectFactory, UserFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


# --- pagination ---------------------------------------------------------------------------


def test_pagination_headers_and_links(api, people):
    group = GroupFactory(path="many", visibility="public")
    projects = [ProjectFactory(group=group, visibility="public") for _ in range(5)]
    response = api.get("/api/v4/projects?per_page=2&page=2&search=project", **people["stranger"].headers)
    assert response.status_code == 200
    ids = [p["id"] for p in response.json()]
    assert ids == [projects[2].pk, projects[1].pk]  # GitLab's default order: newest first
    assert response["X-Total"] == "5"
    assert response["X-Total-Pages"] == "3"
    assert response["X-Page"] == "2"
    assert response["X-Per-Page"] == "2"
    assert response["X-Next-Page"] == "3"
    assert response["X-Prev-Page"] == "1"
    link = response["Link"]
    assert '<http://testserver/api/v4/projects?page=3&per_page=2&search=project>; rel="next"' in link
    assert '<http://testserver/api/v4/projects?page=1&per_page=2&search=project>; rel="prev"' in link
    assert 'page=1&per_page=2&search=project>; rel="first"' in link
    assert 'page=3&per_page=2&search=project>; rel="last"' in link

    last = api.get("/api/v4/projects?per_page=2&page=3", **people["stranger"].headers)
    assert [p["id"] for p in last.json()] == [projects[0].pk]
    assert last["X-Next-Page"] == "" and last["X-Prev-Page"] == "2"
    assert 'rel="next"' not in last["Link"]


def test_pagination_defaults_and_caps(api, people):
    group = GroupFactory(visibility="public")
    for _ in range(3):
        ProjectFactory(group=group, visibility="public")
    default = api.get("/api/v4/projects", **people["stranger"].headers)
    assert default["X-Page"] == "1" and default["X-Per-Page"] == "20" and default["X-Total-Pages"] == "1"
    assert default["X-Prev-Page"] == "" and default["X-Next-Page"] == ""
    capped = api.get("/api/v4/projects?per_page=1000&page=junk", **people["stranger"].headers)
    assert capped["X-Per-Page"] == "100" and capped["X-Page"] == "1"
    empty = api.get("/api/v4/projects?page=9", **people["stranger"].headers)
    assert empty.json() == [] and empty["X-Total"] == "3"


# --- users --------------------------------------------------------------------------------


def test_admin_creates_users(api, people):
    body = {"username": "newbie", "email": "newbie@example.com", "name": "New Bie", "password": "s3cret-pass"}
    assert api.post("/api/v4/users", body, format="json", **people["owner"].headers).status_code == 403
    assert api.post("/api/v4/users", body, format="json").status_code == 401
    response = api.post("/api/v4/users", {**body, "external": True}, format="json", **people["admin"].headers)
    assert response.status_code == 201
    data = response.json()
    assert data["username"] == "newbie" and data["email"] == "newbie@example.com"
    assert data["state"] == "active" and data["external"] is True and data["is_admin"] is False
    user = User.objects.get(username="newbie")
    assert user.check_password("s3cret-pass") and user.is_external
    dup = api.post("/api/v4/users", body, format="json", **people["admin"].headers)
    assert dup.status_code == 409
    missing = api.post("/api/v4/users", {"username": "x"}, format="json", **people["admin"].headers)
    assert missing.status_code == 400 and missing.json()["error"].endswith("is missing")


def test_user_lookups_and_email_privacy(api, people):
    me = api.get("/api/v4/user", **people["stranger"].headers)
    assert me.status_code == 200 and me.json()["email"] == people["stranger"].user.email
    assert api.get("/api/v4/user").status_code == 401
    other = api.get(f"/api/v4/users/{people['owner'].user.pk}", **people["stranger"].headers)
    assert other.status_code == 200 and "email" not in other.json()
    as_admin = api.get(f"/api/v4/users/{people['owner'].user.pk}", **people["admin"].headers)
    assert as_admin.json()["email"] == people["owner"].user.email
    assert api.get("/api/v4/users/999999", **people["stranger"].headers).status_code == 404
    # Non-admins see only themselves in the list; admins everyone.
    mine = api.get("/api/v4/users", **people["stranger"].headers).json()
    assert [u["id"] for u in mine] == [people["stranger"].user.pk]
    everyone = api.get("/api/v4/users?per_page=100", **people["admin"].headers)
    assert int(everyone["X-Total"]) == User.objects.count()
    # read_user suffices for reading users, not for anything else.
    reader = person(scopes=("read_user",))
    assert api.get("/api/v4/user", **reader.headers).status_code == 200
    assert api.get("/api/v4/projects", **reader.headers).status_code == 403


# --- groups -------------------------------------------------------------------------------


def test_create_top_level_group_makes_creator_owner(api, people):
    user = people["stranger"]
    response = api.post(
        "/api/v4/groups",
        {"name": "Widgets", "path": "widgets", "visibility": "internal"},
        format="json",
        **user.headers,
    )
    assert response.status_code == 201
    data = response.json()
    assert data["full_path"] == "widgets" and data["parent_id"] is None and data["visibility"] == "internal"
    assert data["web_url"] == "http://testserver/groups/widgets"
    group = Group.objects.get(pk=data["id"])
    assert Membership.objects.get(group=group).user == user.user
    assert Membership.objects.get(group=group).access_level == AccessLevel.OWNER
    taken = api.post("/api/v4/groups", {"name": "W", "path": "widgets"}, format="json", **user.headers)
    assert taken.status_code == 400 and taken.json() == {"message": {"path": ["has already been taken"]}}


def test_subgroups_need_maintainer_on_parent_and_fit_its_visibility(api, tree, people):
    body = {"name": "Deep", "path": "deep", "parent_id": tree["sub"].pk}
    assert api.post("/api/v4/groups", body, format="json", **people["developer"].headers).status_code == 403
    assert api.post("/api/v4/groups", body, format="json", **people["stranger"].headers).status_code == 404
    public = api.post("/api/v4/groups", {**body, "visibility": "public"}, format="json", **people["owner"].headers)
    assert public.status_code == 400
    response = api.post("/api/v4/groups", body, format="json", **people["owner"].headers)
    assert response.status_code == 201
    assert response.json()["full_path"] == "acme/sub/deep"
    assert response.json()["full_name"] == "Acme / Sub / Deep"


def test_external_users_cannot_create_top_level_groups(api):
    external = person(is_external=True)
    response = api.post("/api/v4/groups", {"name": "X", "path": "x"}, format="json", **external.headers)
    assert response.status_code == 403


def test_group_visibility(api, tree, people):
    public = GroupFactory(path="open", visibility="public")
    internal = GroupFactory(path="inside", visibility="internal")
    anonymous = api.get("/api/v4/groups")
    assert anonymous.status_code == 200 and [g["id"] for g in anonymous.json()] == [public.pk]
    stranger = {g["full_path"] for g in api.get("/api/v4/groups", **people["stranger"].headers).json()}
    assert stranger == {"open", "inside"}
    developer = {g["full_path"] for g in api.get("/api/v4/groups", **people["developer"].headers).json()}
    # Member of acme/sub: sees it, its ancestor, and the public/internal ones.
    assert developer == {"acme", "acme/sub", "open", "inside"}
    assert api.get("/api/v4/groups/acme%2Fsub", **people["developer"].headers).status_code == 200
    assert api.get("/api/v4/groups/acme%2Fsub", **people["stranger"].headers).status_code == 404
    assert api.get("/api/v4/groups/acme%2Fsub").status_code == 401
    assert api.get("/api/v4/groups/nothing").status_code == 401
    assert api.get("/api/v4/groups/nothing", **people["stranger"].headers).status_code == 404
    assert api.get(f"/api/v4/groups/{internal.pk}").status_code == 401


# --- projects -----------------------------------------------------------------------------


def test_create_project_in_group_and_personal_namespace(api, tree, people):
    body = {"name": "Lib", "path": "lib", "namespace_id": tree["sub"].pk, "package_registry_access_level": "private"}
    assert api.post("/api/v4/projects", body, format="json", **people["developer"].headers).status_code == 403
    assert api.post("/api/v4/projects", body, format="json", **people["stranger"].headers).status_code == 404
    response = api.post("/api/v4/projects", body, format="json", **people["owner"].headers)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["path_with_namespace"] == "acme/sub/lib"
    assert data["namespace"] == {
        "id": tree["sub"].pk,
        "name": "Sub",
        "path": "sub",
        "full_path": "acme/sub",
        "kind": "group",
    }
    assert data["package_registry_access_level"] == "private" and data["packages_enabled"] is True
    assert data["ci_job_token_scope_enabled"] is True and data["visibility"] == "private"
    assert data["web_url"] == "http://testserver/acme/sub/lib"

    mine = api.post("/api/v4/projects", {"name": "My Thing"}, format="json", **people["stranger"].headers)
    assert mine.status_code == 201
    user = people["stranger"].user
    assert mine.json()["path_with_namespace"] == f"{user.username}/my-thing"
    assert mine.json()["namespace"]["kind"] == "user"
    project = Project.objects.get(pk=mine.json()["id"])
    assert project.namespace_owner == user
    # The personal project's owner manages it.
    assert api.get(f"/api/v4/projects/{project.pk}/deploy_tokens", **people["stranger"].headers).status_code == 200
    dup = api.post("/api/v4/projects", {"name": "My Thing"}, format="json", **people["stranger"].headers)
    assert dup.status_code == 400
    bad = api.post("/api/v4/projects", {"name": "x", "path": "bad path"}, format="json", **people["stranger"].headers)
    assert bad.status_code == 400


def test_project_reads_401_403_404_and_path_refs(api, tree, people):
    proj = tree["proj"]
    assert api.get("/api/v4/projects/acme%2Fsub%2Fproj", **people["guest"].headers).json()["id"] == proj.pk
    assert api.get("/api/v4/projects/ACME%2Fsub%2Fproj", **people["developer"].headers).status_code == 200
    assert api.get(f"/api/v4/projects/{proj.pk}", **people["stranger"].headers).status_code == 404
    assert api.get(f"/api/v4/projects/{proj.pk}").status_code == 401
    assert api.get("/api/v4/projects/acme%2Fnope", **people["stranger"].headers).status_code == 404
    assert api.get("/api/v4/projects/acme%2Fnope").status_code == 401
    public = ProjectFactory(group=GroupFactory(visibility="public"), visibility="public")
    assert api.get(f"/api/v4/projects/{public.pk}").status_code == 200
    listed = {p["id"] for p in api.get("/api/v4/projects").json()}
    assert listed == {public.pk}
    developer = {p["id"] for p in api.get("/api/v4/projects", **people["developer"].headers).json()}
    assert developer == {public.pk, proj.pk}


def test_update_project_needs_maintainer(api, tree, people):
    url = "/api/v4/projects/acme%2Fsub%2Fproj"
    body = {"package_registry_access_level": "disabled"}
    assert api.put(url, body, format="json", **people["developer"].headers).status_code == 403
    assert api.put(url, body, format="json", **people["stranger"].headers).status_code == 404
    assert api.put(url, body, format="json").status_code == 401
    response = api.put(url, body, format="json", **people["maintainer"].headers)
    assert response.status_code == 200
    assert response.json()["packages_enabled"] is False
    tree["proj"].refresh_from_db()
    assert tree["proj"].package_registry_access_level == "disabled"
    bad = api.put(url, {"package_registry_access_level": "sometimes"}, format="json", **people["maintainer"].headers)
    assert bad.status_code == 400
    assert bad.json() == {"error": "package_registry_access_level does not have a valid value"}
    # Not more visible than its private group.
    assert api.put(url, {"visibility": "public"}, format="json", **people["maintainer"].headers).status_code == 400


def test_read_api_token_reads_but_cannot_write(api, tree):
    reader = person(AccessLevel.MAINTAINER, project=tree["proj"], scopes=("read_api",))
    assert api.get("/api/v4/projects/acme%2Fsub%2Fproj", **reader.headers).status_code == 200
    assert (
        api.put(
            "/api/v4/projects/acme%2Fsub%2Fproj", {"visibility": "private"}, format="json", **reader.headers
        ).status_code
        == 403
    )


def test_bad_credentials_are_401(api, tree):
    assert api.get("/api/v4/projects", **auth_headers("glpat-nonsense")).status_code == 401
    blocked = UserFactory(is_active=False)
    token = person().token
    token.user = blocked
    token.save()
    assert api.get("/api/v4/user", **auth_headers(token.plaintext)).status_code == 401
