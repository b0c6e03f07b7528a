"""Management pages: new group and subgroup, new project, members of a project and of a group,
the admin area's users. Each page answers every role as the REST API's policy does (a matrix per
page: Guest, Reporter, Developer, Maintainer, Owner, non-member, anonymous), and accepts what the
API accepts."""

from datetime import date, timedelta

import pytest
from django.test import Client

from accounts.models import Group, Membership, Project, User
from accounts.roles import AccessLevel
from tests.factories import AccessTokenFactory, AdminFactory, GroupFactory, ProjectFactory, UserFactory, member
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db

ROLES = {
    "guest": AccessLevel.GUEST,
    "reporter": AccessLevel.REPORTER,
    "developer": AccessLevel.DEVELOPER,
    "maintainer": AccessLevel.MAINTAINER,
    "owner": AccessLevel.OWNER,
}


@pytest.fixture
def acme():
    return GroupFactory(path="acme", visibility="private")


@pytest.fixture
def project(acme):
    return ProjectFactory(group=acme, path="tools", visibility="private")


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def caller(who, resource):
    """A client for `who` ("guest" … "owner" of `resource`, "non-member", "anonymous")."""
    if who == "anonymous":
        return Client()
    if who == "non-member":
        return signed_in(UserFactory())
    return signed_in(member(resource, ROLES[who]))


def outcome(response):
    """What the caller was shown: a status, or `sign-in` for the redirect to the sign-in page."""
    if response.status_code == 302 and response["Location"].startswith("/users/sign_in?next="):
        return "sign-in"
    return response.status_code


EVERYONE = ["guest", "reporter", "developer", "maintainer", "owner", "non-member", "anonymous"]


def expected(allowed_from, ok, *, hidden=404):
    """{who: outcome} for a page open to members of at least `allowed_from`."""
    answers = {}
    for who in EVERYONE:
        if who == "anonymous":
            answers[who] = "sign-in"
        elif who == "non-member":
            answers[who] = hidden
        else:
            answers[who] = ok if ROLES[who] >= ROLES[allowed_from] else 403
    return answers


# --- new subgroup and new project -----------------------------------------------------------------


@pytest.mark.parametrize(("who", "answer"), expected("maintainer", 200).items())
def test_new_subgroup_page_policy(acme, who, answer):
    client = caller(who, acme)
    assert outcome(client.get(f"/groups/new?parent_id={acme.pk}")) == answer
    response = client.post("/groups/new", {"parent_id": acme.pk, "name": "Sub", "path": "sub", "visibility": "private"})
    created = Group.objects.filter(full_path="acme/sub").exists()
    if answer == 200:
        assert response.status_code == 302 and response["Location"] == "/groups/acme/sub"
        assert created
    else:
        assert outcome(response) == answer and not created


@pytest.mark.parametrize(("who", "answer"), expected("maintainer", 200).items())
def test_new_project_page_policy(acme, who, answer):
    client = caller(who, acme)
    assert outcome(client.get(f"/projects/new?namespace_id={acme.pk}")) == answer
    response = client.post("/projects/new", {"namespace_id": acme.pk, "name": "Web App", "visibility": "private"})
    created = Project.objects.filter(full_path="acme/web-app").exists()
    if answer == 200:
        assert response.status_code == 302 and response["Location"] == "/acme/web-app/-/packages"
        assert created
    else:
        assert outcome(response) == answer and not created


def test_new_top_level_group_owned_by_its_creator_and_not_for_external_users():
    user = UserFactory()
    client = signed_in(user)
    assert client.get("/groups/new").status_code == 200
    response = client.post("/groups/new", {"name": "Acme", "path": "acme", "visibility": "internal"})
    assert response.status_code == 302
    group = Group.objects.get(full_path="acme")
    assert group.visibility == "internal"
    assert Membership.objects.get(group=group, user=user).access_level == AccessLevel.OWNER
    taken = client.post("/groups/new", {"name": "Acme", "path": "ACME", "visibility": "private"})
    assert taken.status_code == 400 and b"has already been taken" in taken.content
    external = signed_in(UserFactory(is_external=True))
    assert external.get("/groups/new").status_code == 403
    assert external.post("/groups/new", {"name": "X", "path": "x"}).status_code == 403
    assert not Group.objects.filter(path="x").exists()
    assert Client().get("/groups/new").status_code == 302


def test_visibility_is_bounded_by_the_group_as_in_the_api(acme):
    owner = member(acme, AccessLevel.OWNER)
    client = signed_in(owner)
    page = client.post("/projects/new", {"namespace_id": acme.pk, "name": "Open", "visibility": "public"})
    assert page.status_code == 400
    assert b"visibility_level of the project is not allowed in a private group" in page.content
    sub = client.post("/groups/new", {"parent_id": acme.pk, "name": "Open", "path": "open", "visibility": "internal"})
    assert sub.status_code == 400
    assert b"visibility_level of the group is not allowed in a private group" in sub.content
    token = AccessTokenFactory(user=owner).plaintext
    api = Client().post(
        "/api/v4/projects", {"namespace_id": acme.pk, "name": "Open", "visibility": "public"}, **auth_headers(token)
    )
    assert api.status_code == 400
    assert (
        api.json()["message"] == "400 Bad request - visibility_level of the project is not allowed in a private group"
    )
    assert not Project.objects.filter(path="open").exists() and not Group.objects.filter(path="open").exists()


def test_project_input_is_the_apis(acme):
    client = signed_in(member(acme, AccessLevel.MAINTAINER))
    bad_path = client.post("/projects/new", {"namespace_id": acme.pk, "name": "x", "path": "-bad path"})
    assert bad_path.status_code == 400 and b"is invalid" in bad_path.content
    bad_choice = client.post("/projects/new", {"namespace_id": acme.pk, "name": "x", "visibility": "secret"})
    assert bad_choice.status_code == 400
    assert not Project.objects.filter(group=acme).exists()


def test_personal_project(acme):
    user = UserFactory(username="ann")
    response = signed_in(user).post("/projects/new", {"namespace_id": "", "name": "Notes", "visibility": "private"})
    assert response.status_code == 302
    assert Project.objects.get(full_path="ann/notes").namespace_owner == user


# --- members --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "answer"), expected("guest", 200).items())
def test_project_members_page_seen_by_members(project, who, answer):
    assert outcome(caller(who, project).get("/acme/tools/-/project_members")) == answer


@pytest.mark.parametrize(("who", "answer"), expected("maintainer", 302).items())
def test_project_members_managed_by_maintainers(project, who, answer):
    target = UserFactory(username="newcomer")
    expiry = (date.today() + timedelta(days=30)).isoformat()
    response = caller(who, project).post(
        "/acme/tools/-/project_members",
        {"username": "newcomer", "access_level": int(AccessLevel.DEVELOPER), "expires_at": expiry},
    )
    assert outcome(response) == answer
    row = Membership.objects.filter(project=project, user=target).first()
    if answer == 302:
        assert row.access_level == AccessLevel.DEVELOPER and row.expires_at.isoformat() == expiry
    else:
        assert row is None


@pytest.mark.parametrize(("who", "answer"), expected("guest", 200).items())
def test_group_members_page_seen_by_members(acme, who, answer):
    assert outcome(caller(who, acme).get("/groups/acme/-/group_members")) == answer


@pytest.mark.parametrize(("who", "answer"), expected("owner", 302).items())
def test_group_members_managed_by_owners(acme, who, answer):
    target = UserFactory(username="newcomer")
    response = caller(who, acme).post(
        "/groups/acme/-/group_members", {"username": "newcomer", "access_level": int(AccessLevel.REPORTER)}
    )
    assert outcome(response) == answer
    assert Membership.objects.filter(group=acme, user=target).exists() == (answer == 302)


def test_change_and_remove_a_member_and_their_token_stops_working(project):
    maintainer = member(project, AccessLevel.MAINTAINER)
    developer = member(project, AccessLevel.DEVELOPER)
    token = AccessTokenFactory(user=developer).plaintext
    client = signed_in(maintainer)
    url = f"/acme/tools/-/project_members/{developer.pk}"
    assert client.post(url, {"action": "update", "access_level": int(AccessLevel.REPORTER)}).status_code == 302
    assert Membership.objects.get(project=project, user=developer).access_level == AccessLevel.REPORTER
    package_url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0.0/tool.bin"
    assert Client().get(package_url, **auth_headers(token)).status_code == 404  # reads the registry: member
    assert client.post(url, {"action": "remove"}).status_code == 302
    assert not Membership.objects.filter(project=project, user=developer).exists()
    assert Client().get(package_url, **auth_headers(token)).status_code == 404  # the project is hidden now
    listing = client.get(
        "/api/v4/projects/acme%2Ftools/members", **auth_headers(AccessTokenFactory(user=maintainer).plaintext)
    )
    assert developer.pk not in [m["id"] for m in listing.json()]


def test_nobody_grants_a_role_above_their_own(project):
    maintainer = member(project, AccessLevel.MAINTAINER)
    UserFactory(username="newcomer")
    client = signed_in(maintainer)
    response = client.post(
        "/acme/tools/-/project_members", {"username": "newcomer", "access_level": int(AccessLevel.OWNER)}
    )
    assert response.status_code == 400 and b"you cannot grant a role above your own" in response.content
    owner = member(project, AccessLevel.OWNER)
    client.post(f"/acme/tools/-/project_members/{owner.pk}", {"action": "remove"})
    assert Membership.objects.filter(project=project, user=owner).exists()
    unknown = client.post("/acme/tools/-/project_members", {"username": "nobody", "access_level": 30})
    assert unknown.status_code == 400 and b"No user with this username" in unknown.content
    past = client.post(
        "/acme/tools/-/project_members", {"username": "newcomer", "access_level": 30, "expires_at": "2000-01-01"}
    )
    assert past.status_code == 400 and b"must be in the future" in past.content
    assert Membership.objects.filter(project=project).count() == 2


def test_the_last_owner_is_neither_removed_nor_demoted(acme):
    owner = member(acme, AccessLevel.OWNER)
    url = f"/groups/acme/-/group_members/{owner.pk}"
    for user in (owner, AdminFactory()):
        client = signed_in(user)
        for form in ({"action": "remove"}, {"action": "update", "access_level": int(AccessLevel.MAINTAINER)}):
            response = client.post(url, form, follow=True)
            assert response.redirect_chain == [("/groups/acme/-/group_members", 302)]
            assert "A group must have at least one owner" in response.content.decode()
    assert list(Membership.objects.filter(group=acme).values_list("user_id", "access_level")) == [
        (owner.pk, AccessLevel.OWNER)
    ]
    second = member(acme, AccessLevel.OWNER)
    assert signed_in(owner).post(url, {"action": "remove"}).status_code == 302  # (leaving the private group)
    assert list(Membership.objects.filter(group=acme).values_list("user_id", flat=True)) == [second.pk]


def test_inherited_members_show_where_they_come_from(acme):
    sub = GroupFactory(parent=acme, path="sub")
    project = ProjectFactory(group=sub, path="lib")
    root_owner = member(acme, AccessLevel.OWNER)
    sub_dev = member(sub, AccessLevel.DEVELOPER)
    direct = member(project, AccessLevel.MAINTAINER)
    content = signed_in(direct).get("/acme/sub/lib/-/project_members").content.decode()
    inherited = content.split('id="inherited"')[1]
    assert f"@{root_owner.username}" in inherited and f"@{sub_dev.username}" in inherited
    assert 'inherited from <a href="/groups/acme/-/group_members">acme</a>' in inherited
    assert 'inherited from <a href="/groups/acme/sub/-/group_members">acme/sub</a>' in inherited
    assert f"@{direct.username}" not in inherited
    group_page = signed_in(root_owner).get("/groups/acme/sub/-/group_members").content.decode()
    assert f"@{root_owner.username}" in group_page.split('id="inherited"')[1]


# --- admin area -----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", EVERYONE)
def test_admin_users_is_for_administrators_only(project, who):
    client = caller(who, project)
    answer = "sign-in" if who == "anonymous" else 403
    assert outcome(client.get("/admin/users")) == answer
    assert outcome(client.get("/admin/users/new")) == answer
    victim = UserFactory()
    assert outcome(client.post(f"/admin/users/{victim.pk}/block")) == answer
    assert outcome(client.post("/admin/users/new", {"name": "E", "username": "eve", "email": "e@x.org"})) == answer
    victim.refresh_from_db()
    assert victim.is_active and not User.objects.filter(username="eve").exists()


def test_admin_creates_blocks_unblocks_and_promotes(project):
    admin = AdminFactory()
    client = signed_in(admin)
    assert client.get("/admin/users").status_code == 200
    response = client.post(
        "/admin/users/new", {"name": "Bo", "username": "bo", "email": "bo@example.org", "password": "long-enough-1"}
    )
    assert response.status_code == 302
    bo = User.objects.get(username="bo")
    assert bo.check_password("long-enough-1") and not bo.is_superuser
    again = client.post("/admin/users/new", {"name": "Bo", "username": "BO", "email": "b2@example.org"})
    assert again.status_code == 400 and b"Username has already been taken" in again.content
    short = client.post("/admin/users/new", {"name": "C", "username": "c", "email": "c@example.org", "password": "x"})
    assert short.status_code == 400 and not User.objects.filter(username="c").exists()

    Membership.objects.create(user=bo, project=project, access_level=AccessLevel.DEVELOPER)
    token = AccessTokenFactory(user=bo).plaintext
    packages = f"/api/v4/projects/{project.pk}/packages"
    assert Client().get(packages, **auth_headers(token)).status_code == 200
    assert client.post(f"/admin/users/{bo.pk}/block").status_code == 302
    assert Client().get(packages, **auth_headers(token)).status_code == 401
    assert b"blocked" in client.get("/admin/users?filter=blocked").content
    assert not Client().login(username="bo", password="long-enough-1")
    assert client.post(f"/admin/users/{bo.pk}/unblock").status_code == 302
    assert Client().get(packages, **auth_headers(token)).status_code == 200
    assert client.post(f"/admin/users/{bo.pk}/make_admin").status_code == 302
    bo.refresh_from_db()
    assert bo.is_superuser
    client.post(f"/admin/users/{admin.pk}/block")
    admin.refresh_from_db()
    assert admin.is_active
    assert client.post(f"/admin/users/{bo.pk}/explode").status_code == 404


def test_block_through_the_api(project):
    admin_token = AccessTokenFactory(user=AdminFactory()).plaintext
    user = member(project, AccessLevel.DEVELOPER)
    token = AccessTokenFactory(user=user).plaintext
    assert Client().post(f"/api/v4/users/{user.pk}/block", **auth_headers(token)).status_code == 403
    assert Client().post(f"/api/v4/users/{user.pk}/block", **auth_headers(admin_token)).status_code == 201
    assert Client().get("/api/v4/user", **auth_headers(token)).status_code == 401
    assert Client().post(f"/api/v4/users/{user.pk}/unblock", **auth_headers(admin_token)).status_code == 201
    assert Client().get("/api/v4/user", **auth_headers(token)).status_code == 200
