"""Members, personal access tokens, and project/group access tokens (bot users)."""

from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import AccessToken, Membership, User
from accounts.roles import AccessLevel
from tests.accounts.conftest import person
from tests.factories import AccessTokenFactory, UserFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db

PROJ = "/api/v4/projects/acme%2Fsub%2Fproj"


def generic_url(project, file_name="a.txt"):
    return f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0.0/{file_name}"


# --- members --------------------------------------------------------------------------------


def test_project_members_lifecycle(api, tree, people):
    newcomer = UserFactory()
    body = {"user_id": newcomer.pk, "access_level": 30, "expires_at": "2999-12-31"}
    assert api.post(f"{PROJ}/members", body, format="json", **people["developer"].headers).status_code == 403
    assert api.post(f"{PROJ}/members", body, format="json", **people["stranger"].headers).status_code == 404
    added = api.post(f"{PROJ}/members", body, format="json", **people["maintainer"].headers)
    assert added.status_code == 201
    assert added.json() == {
        "id": newcomer.pk,
        "username": newcomer.username,
        "name": newcomer.display_name,
        "state": "active",
        "access_level": 30,
        "expires_at": "2999-12-31",
        "created_at": added.json()["created_at"],
    }
    assert Membership.objects.get(user=newcomer, project=tree["proj"]).access_level == 30
    again = api.post(f"{PROJ}/members", body, format="json", **people["maintainer"].headers)
    assert again.status_code == 409

    listing = api.get(f"{PROJ}/members", **people["guest"].headers)
    assert listing.status_code == 200 and newcomer.pk in [m["id"] for m in listing.json()]
    assert listing["X-Total"] == str(Membership.objects.filter(project=tree["proj"]).count())
    assert api.get(f"{PROJ}/members/{newcomer.pk}", **people["guest"].headers).json()["access_level"] == 30

    changed = api.put(
        f"{PROJ}/members/{newcomer.pk}", {"access_level": 20}, format="json", **people["maintainer"].headers
    )
    assert changed.status_code == 200 and changed.json()["access_level"] == 20
    # A maintainer cannot hand out Owner.
    owner = api.put(
        f"{PROJ}/members/{newcomer.pk}", {"access_level": 50}, format="json", **people["maintainer"].headers
    )
    assert owner.status_code == 403
    bad = api.put(f"{PROJ}/members/{newcomer.pk}", {"access_level": 35}, format="json", **people["maintainer"].headers)
    assert bad.status_code == 400 and bad.json() == {"error": "access_level does not have a valid value"}
    assert api.delete(f"{PROJ}/members/{newcomer.pk}", **people["maintainer"].headers).status_code == 204
    assert not Membership.objects.filter(user=newcomer, project=tree["proj"]).exists()
    assert api.get(f"{PROJ}/members/{newcomer.pk}", **people["maintainer"].headers).status_code == 404


def test_group_members_need_owner(api, tree, people):
    newcomer = UserFactory()
    body = {"user_id": newcomer.pk, "access_level": 40}
    maintainer = person(AccessLevel.MAINTAINER, group=tree["acme"])
    assert api.post("/api/v4/groups/acme/members", body, format="json", **maintainer.headers).status_code == 403
    assert api.post("/api/v4/groups/acme/members", body, format="json", **people["owner"].headers).status_code == 201
    assert api.get("/api/v4/groups/acme/members", **maintainer.headers).status_code == 200
    assert api.get("/api/v4/groups/acme/members").status_code == 401
    unknown = api.post(
        "/api/v4/groups/acme/members", {"user_id": 999999, "access_level": 10}, format="json", **people["owner"].headers
    )
    assert unknown.status_code == 404


def test_the_last_owner_of_a_top_level_group_stays(api, tree, people):
    """GitLab's rule: a group keeps an Owner; removing or demoting the last one is 403 for
    everyone, the admin and the Owner themselves included, and changes nothing."""
    owner = people["owner"]
    member_url = f"/api/v4/groups/acme/members/{owner.user.pk}"
    forbidden = {"message": "403 Forbidden - A group must have at least one owner"}
    for who in (owner, people["admin"]):
        demote = api.put(member_url, {"access_level": 40}, format="json", **who.headers)
        assert (demote.status_code, demote.json()) == (403, forbidden)
        remove = api.delete(member_url, **who.headers)
        assert (remove.status_code, remove.json()) == (403, forbidden)
    assert Membership.objects.get(user=owner.user, group=tree["acme"]).access_level == AccessLevel.OWNER

    # Owners that do not count: a bot (a group access token's), a blocked user, an expired membership.
    bot = UserFactory(is_bot=True)
    Membership.objects.create(user=bot, group=tree["acme"], access_level=AccessLevel.OWNER)
    blocked = UserFactory(is_active=False)
    Membership.objects.create(user=blocked, group=tree["acme"], access_level=AccessLevel.OWNER)
    lapsed = UserFactory()
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    Membership.objects.create(user=lapsed, group=tree["acme"], access_level=AccessLevel.OWNER, expires_at=yesterday)
    # nor does an Owner of a subgroup below
    Membership.objects.create(user=UserFactory(), group=tree["sub"], access_level=AccessLevel.OWNER)
    assert api.delete(member_url, **people["admin"].headers).status_code == 403

    # With a second Owner, either may go, but not both.
    second = UserFactory()
    added = api.post(
        "/api/v4/groups/acme/members", {"user_id": second.pk, "access_level": 50}, format="json", **owner.headers
    )
    assert added.status_code == 201
    assert api.put(member_url, {"access_level": 30}, format="json", **owner.headers).status_code == 200
    last = api.delete(f"/api/v4/groups/acme/members/{second.pk}", **people["admin"].headers)
    assert (last.status_code, last.json()) == (403, forbidden)
    assert api.delete(member_url, **people["admin"].headers).status_code == 204  # no longer an Owner
    # the bot, blocked and lapsed Owners go freely
    for user in (bot, blocked, lapsed):
        assert api.delete(f"/api/v4/groups/acme/members/{user.pk}", **people["admin"].headers).status_code == 204
    owners = Membership.objects.filter(group=tree["acme"], access_level=AccessLevel.OWNER)
    assert list(owners.values_list("user_id", flat=True)) == [second.pk]


def test_a_subgroup_or_project_owner_may_go_while_a_group_above_has_one(api, tree, people):
    """A subgroup's and a project's Owners may all go while an Owner reaches them from a group
    above (GitLab counts the parents' Owners below the top level)."""
    sub_owner, proj_owner = UserFactory(), UserFactory()
    Membership.objects.create(user=sub_owner, group=tree["sub"], access_level=AccessLevel.OWNER)
    Membership.objects.create(user=proj_owner, project=tree["proj"], access_level=AccessLevel.OWNER)
    admin = people["admin"].headers
    assert api.put(f"{PROJ}/members/{proj_owner.pk}", {"access_level": 40}, format="json", **admin).status_code == 200
    assert api.delete(f"/api/v4/groups/acme%2Fsub/members/{sub_owner.pk}", **admin).status_code == 204

    # Without an Owner above (a group left so by an older version), the project keeps its last one.
    Membership.objects.filter(group=tree["acme"]).delete()
    Membership.objects.filter(user=proj_owner).update(access_level=AccessLevel.OWNER)
    refused = api.delete(f"{PROJ}/members/{proj_owner.pk}", **admin)
    assert refused.status_code == 403
    assert refused.json() == {"message": "403 Forbidden - A project must have at least one owner"}
    assert Membership.objects.filter(user=proj_owner, project=tree["proj"]).exists()


# --- personal access tokens -----------------------------------------------------------------


def test_admin_creates_token_for_user_shown_once(api, people):
    target = people["stranger"].user
    expires = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    body = {"name": "ci", "scopes": ["api", "read_user"], "expires_at": expires}
    assert (
        api.post(
            f"/api/v4/users/{target.pk}/personal_access_tokens", body, format="json", **people["owner"].headers
        ).status_code
        == 403
    )
    response = api.post(
        f"/api/v4/users/{target.pk}/personal_access_tokens", body, format="json", **people["admin"].headers
    )
    assert response.status_code == 201
    data = response.json()
    assert data["token"].startswith("glpat-")
    assert data["user_id"] == target.pk and data["expires_at"] == expires and data["active"] is True
    assert data["scopes"] == ["api", "read_user"] and data["revoked"] is False and data["last_used_at"] is None
    me = api.get("/api/v4/user", **auth_headers(data["token"]))
    assert me.json()["id"] == target.pk
    shown = api.get(f"/api/v4/personal_access_tokens/{data['id']}", **people["stranger"].headers)
    assert shown.status_code == 200 and "token" not in shown.json()
    assert shown.json()["last_used_at"] is not None


def test_own_tokens_scope_rules_listing_and_revocation(api, people):
    user = people["stranger"]
    forbidden = api.post(
        "/api/v4/user/personal_access_tokens", {"name": "x", "scopes": ["sudo"]}, format="json", **user.headers
    )
    assert forbidden.status_code == 400 and forbidden.json() == {"error": "scopes does not have a valid value"}
    created = api.post(
        "/api/v4/user/personal_access_tokens", {"name": "mine", "scopes": ["read_api"]}, format="json", **user.headers
    )
    assert created.status_code == 201
    token = created.json()["token"]
    past = api.post(
        "/api/v4/user/personal_access_tokens",
        {"name": "x", "scopes": ["api"], "expires_at": "2000-01-01"},
        format="json",
        **user.headers,
    )
    assert past.status_code == 400

    own = api.get("/api/v4/personal_access_tokens", **user.headers).json()
    assert {t["id"] for t in own} == {user.token.pk, created.json()["id"]}
    assert all("token" not in t for t in own)
    other = AccessTokenFactory()
    assert api.get(f"/api/v4/personal_access_tokens/{other.pk}", **user.headers).status_code == 404
    assert api.delete(f"/api/v4/personal_access_tokens/{other.pk}", **user.headers).status_code == 404
    admin_view = api.get(f"/api/v4/personal_access_tokens?user_id={other.user_id}", **people["admin"].headers)
    assert [t["id"] for t in admin_view.json()] == [other.pk]

    # read_api token reads itself but cannot revoke (a write).
    assert api.get("/api/v4/personal_access_tokens/self", **auth_headers(token)).json()["id"] == created.json()["id"]
    assert api.delete("/api/v4/personal_access_tokens/self", **auth_headers(token)).status_code == 403
    assert api.delete(f"/api/v4/personal_access_tokens/{created.json()['id']}", **user.headers).status_code == 204
    assert api.get("/api/v4/user", **auth_headers(token)).status_code == 401
    assert AccessToken.objects.get(pk=created.json()["id"]).revoked

    assert api.delete("/api/v4/personal_access_tokens/self", **user.headers).status_code == 204
    assert api.get("/api/v4/user", **user.headers).status_code == 401


def test_admin_may_revoke_any_token(api, people):
    victim = AccessTokenFactory()
    assert api.delete(f"/api/v4/personal_access_tokens/{victim.pk}", **people["admin"].headers).status_code == 204
    assert api.get("/api/v4/user", **auth_headers(victim.plaintext)).status_code == 401


# --- project and group access tokens ----------------------------------------------------------


def test_project_access_token_creates_a_bot_member(api, tree, people):
    body = {"name": "publisher", "scopes": ["api"], "access_level": 30}
    assert api.post(f"{PROJ}/access_tokens", body, format="json", **people["developer"].headers).status_code == 403
    response = api.post(f"{PROJ}/access_tokens", body, format="json", **people["maintainer"].headers)
    assert response.status_code == 201
    data = response.json()
    bot = User.objects.get(pk=data["user_id"])
    assert bot.is_bot and not bot.has_usable_password()
    assert bot.username.startswith(f"project_{tree['proj'].pk}_bot_")
    assert Membership.objects.get(user=bot, project=tree["proj"]).access_level == 30
    assert data["access_level"] == 30
    row = AccessToken.objects.get(pk=data["id"])
    assert row.kind == "project" and row.resource_project == tree["proj"]

    token = data["token"]
    upload = api.put(generic_url(tree["proj"]), b"x", content_type="application/octet-stream", **auth_headers(token))
    assert upload.status_code == 201
    listing = api.get(f"{PROJ}/access_tokens", **people["maintainer"].headers)
    assert [(t["id"], t["access_level"]) for t in listing.json()] == [(data["id"], 30)]
    assert "token" not in listing.json()[0]
    assert api.get(f"{PROJ}/access_tokens/{data['id']}", **people["maintainer"].headers).status_code == 200

    assert api.delete(f"{PROJ}/access_tokens/{data['id']}", **people["maintainer"].headers).status_code == 204
    bot.refresh_from_db()
    assert not bot.is_active and AccessToken.objects.get(pk=data["id"]).revoked
    assert api.get(generic_url(tree["proj"]), **auth_headers(token)).status_code == 401


def test_access_token_level_cannot_exceed_creator(api, tree, people):
    owner_level = {"name": "x", "scopes": ["api"], "access_level": 50}
    assert (
        api.post(f"{PROJ}/access_tokens", owner_level, format="json", **people["maintainer"].headers).status_code == 403
    )
    default = api.post(
        f"{PROJ}/access_tokens", {"name": "x", "scopes": ["read_api"]}, format="json", **people["maintainer"].headers
    )
    assert default.status_code == 201 and default.json()["access_level"] == 40
    assert api.post(f"{PROJ}/access_tokens", owner_level, format="json", **people["admin"].headers).status_code == 201


def test_group_access_tokens_need_owner(api, tree, people):
    maintainer = person(AccessLevel.MAINTAINER, group=tree["acme"])
    body = {"name": "grp", "scopes": ["api"], "access_level": 30}
    assert api.post("/api/v4/groups/acme/access_tokens", body, format="json", **maintainer.headers).status_code == 403
    response = api.post("/api/v4/groups/acme/access_tokens", body, format="json", **people["owner"].headers)
    assert response.status_code == 201
    bot = User.objects.get(pk=response.json()["user_id"])
    assert bot.username.startswith(f"group_{tree['acme'].pk}_bot_")
    assert Membership.objects.get(user=bot, group=tree["acme"]).access_level == 30
    # Reaches projects below the group through inherited membership.
    upload = api.put(
        generic_url(tree["proj"]),
        b"x",
        content_type="application/octet-stream",
        **auth_headers(response.json()["token"]),
    )
    assert upload.status_code == 201
    assert api.get("/api/v4/groups/acme/access_tokens", **people["owner"].headers).json()[0]["access_level"] == 30


def test_access_tokens_live_at_most_the_instance_maximum(api, people, settings):
    settings.ACCESS_TOKEN_MAX_LIFETIME_DAYS = 365
    headers = people["stranger"].headers
    url = "/api/v4/user/personal_access_tokens"
    today = datetime.now(UTC).date()
    unbounded = api.post(url, {"name": "forever", "scopes": ["api"]}, format="json", **headers)
    assert unbounded.status_code == 201
    assert unbounded.json()["expires_at"].startswith((today + timedelta(days=365)).isoformat())
    far = api.post(url, {"name": "far", "scopes": ["api"], "expires_at": "2999-01-01"}, format="json", **headers)
    assert far.status_code == 400 and "365 days" in far.json()["error"]
    limit = (today + timedelta(days=365)).isoformat()
    assert (
        api.post(url, {"name": "ok", "scopes": ["api"], "expires_at": limit}, format="json", **headers).status_code
        == 201
    )

    settings.ACCESS_TOKEN_MAX_LIFETIME_DAYS = 0  # no limit
    open_ended = api.post(url, {"name": "open", "scopes": ["api"]}, format="json", **headers)
    assert open_ended.status_code == 201 and open_ended.json()["expires_at"] is None


def test_a_rotated_token_dies_and_its_successor_works(api, people):
    user = people["stranger"]
    created = api.post(
        "/api/v4/user/personal_access_tokens", {"name": "ci", "scopes": ["api"]}, format="json", **user.headers
    ).json()
    old = created["token"]
    rotated = api.post(f"/api/v4/personal_access_tokens/{created['id']}/rotate", **auth_headers(old))
    assert rotated.status_code == 200, rotated.content
    new = rotated.json()
    assert new["token"].startswith("glpat-") and new["token"] != old
    assert (new["name"], new["scopes"], new["revoked"]) == ("ci", ["api"], False)
    assert new["expires_at"] == (datetime.now(UTC).date() + timedelta(days=7)).isoformat()
    assert api.get("/api/v4/user", **auth_headers(new["token"])).status_code == 200
    assert api.post(f"/api/v4/personal_access_tokens/{created['id']}/rotate", **user.headers).status_code == 401
    other = AccessTokenFactory()
    assert api.post(f"/api/v4/personal_access_tokens/{other.pk}/rotate", **user.headers).status_code == 404
    self_rotated = api.post("/api/v4/personal_access_tokens/self/rotate", {"expires_at": "2000-01-01"}, **user.headers)
    assert self_rotated.status_code == 400


def test_presenting_a_rotated_away_token_revokes_its_whole_family(api, people):
    """GitLab's reuse detection: a rotated token used again may have leaked, so every token
    rotated from it dies too; a token that was simply revoked takes nothing with it."""
    user = people["stranger"]
    created = api.post(
        "/api/v4/user/personal_access_tokens", {"name": "ci", "scopes": ["api"]}, format="json", **user.headers
    ).json()
    first = created["token"]
    second = api.post("/api/v4/personal_access_tokens/self/rotate", **auth_headers(first)).json()["token"]
    third = api.post("/api/v4/personal_access_tokens/self/rotate", **auth_headers(second)).json()["token"]
    assert api.get("/api/v4/user", **auth_headers(third)).status_code == 200

    assert api.post("/api/v4/personal_access_tokens/self/rotate", **auth_headers(first)).status_code == 401
    assert api.get("/api/v4/user", **auth_headers(third)).status_code == 401
    assert set(AccessToken.objects.filter(name="ci").values_list("revoked", flat=True)) == {True}

    unrelated = AccessTokenFactory(user=user.user)
    plain = AccessTokenFactory(user=user.user)
    plain.revoke()
    assert api.get("/api/v4/user", **auth_headers(plain.plaintext)).status_code == 401
    assert api.get("/api/v4/user", **auth_headers(unrelated.plaintext)).status_code == 200
