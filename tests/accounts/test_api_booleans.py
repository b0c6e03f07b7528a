"""Boolean parameters as GitLab reads them: `true/false/t/f/1/0/yes/no` in any case (python-gitlab
sends `True`/`False`); anything else is 400 `{"error": "<param> is invalid"}`, never ignored."""

import pytest

from accounts.models import AccessToken, Project, User
from tests.factories import AccessTokenFactory, DeployTokenFactory, ProjectFactory, bot_token

pytestmark = pytest.mark.django_db

TRUE_SPELLINGS = ["True", "true", "TRUE", "1", "t", "T", "yes", "Yes"]
FALSE_SPELLINGS = ["False", "false", "0", "f", "no", "NO"]


def ids(response):
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()}


def invalid(response, param):
    assert response.status_code == 400, response.content
    assert response.json() == {"error": f"{param} is invalid"}


@pytest.mark.parametrize("where", ["project", "group", "instance"])
def test_deploy_tokens_active_filter_reads_every_spelling(api, tree, people, where):
    owner = {"project": {"project": tree["proj"]}, "group": {"group": tree["acme"]}, "instance": {}}[where]
    if not owner:
        owner = {"project": tree["other"]}
    live = DeployTokenFactory(**owner)
    revoked = DeployTokenFactory(revoked=True, **owner)
    url = {
        "project": f"/api/v4/projects/{tree['proj'].pk}/deploy_tokens",
        "group": f"/api/v4/groups/{tree['acme'].pk}/deploy_tokens",
        "instance": "/api/v4/deploy_tokens",
    }[where]
    headers = people["admin"].headers
    for spelling in TRUE_SPELLINGS:
        assert ids(api.get(url, {"active": spelling}, **headers)) == {live.pk}, spelling
    for spelling in FALSE_SPELLINGS:
        assert ids(api.get(url, {"active": spelling}, **headers)) == {revoked.pk}, spelling
    assert ids(api.get(url, **headers)) == {live.pk, revoked.pk}
    invalid(api.get(url, {"active": "maybe"}, **headers), "active")


def test_personal_tokens_revoked_and_active_filters(api, people):
    me = people["stranger"]
    revoked = AccessTokenFactory(user=me.user, revoked=True)
    listing = "/api/v4/personal_access_tokens"
    assert ids(api.get(listing, {"revoked": "False"}, **me.headers)) == {me.token.pk}
    assert ids(api.get(listing, {"revoked": "True"}, **me.headers)) == {revoked.pk}
    assert ids(api.get(listing, {"active": "True"}, **me.headers)) == {me.token.pk}
    assert ids(api.get(listing, {"active": "no"}, **me.headers)) == {revoked.pk}
    invalid(api.get(listing, {"revoked": "nope"}, **me.headers), "revoked")
    invalid(api.get(listing, {"active": "2"}, **me.headers), "active")


def test_resource_access_tokens_active_filter(api, tree, people):
    live = bot_token(tree["proj"], 40)
    gone = bot_token(tree["proj"], 40)
    AccessToken.objects.filter(pk=gone.pk).update(revoked=True)
    url = f"/api/v4/projects/{tree['proj'].pk}/access_tokens"
    assert ids(api.get(url, {"active": "True"}, **people["admin"].headers)) == {live.pk}
    invalid(api.get(url, {"active": "sometimes"}, **people["admin"].headers), "active")


def test_groups_top_level_only(api, tree, people):
    headers = people["admin"].headers
    listed = ids(api.get("/api/v4/groups", {"top_level_only": "True", "per_page": 100}, **headers))
    assert tree["acme"].pk in listed and tree["sub"].pk not in listed
    assert tree["sub"].pk in ids(api.get("/api/v4/groups", {"top_level_only": "False", "per_page": 100}, **headers))
    invalid(api.get("/api/v4/groups", {"top_level_only": "yes please"}, **headers), "top_level_only")


def test_projects_owned(api, tree, people):
    mine = ProjectFactory(group=None, namespace_owner=people["admin"].user, path="mine")
    theirs = ProjectFactory(group=None, namespace_owner=people["stranger"].user, path="theirs")
    headers = people["admin"].headers
    assert ids(api.get("/api/v4/projects", {"owned": "True"}, **headers)) == {mine.pk}
    assert theirs.pk in ids(api.get("/api/v4/projects", {"owned": "False", "per_page": 100}, **headers))
    invalid(api.get("/api/v4/projects", {"owned": "owned"}, **headers), "owned")


def test_group_packages_exclude_subgroups_refuses_garbage(api, tree, people):
    url = f"/api/v4/groups/{tree['acme'].pk}/packages"
    assert api.get(url, {"exclude_subgroups": "True"}, **people["owner"].headers).status_code == 200
    invalid(api.get(url, {"exclude_subgroups": "x"}, **people["owner"].headers), "exclude_subgroups")


@pytest.mark.parametrize("body_format", ["json", "multipart"])
def test_job_token_scope_enabled_body(api, tree, people, body_format):
    url = f"/api/v4/projects/{tree['proj'].pk}/job_token_scope"
    headers = people["maintainer"].headers
    assert api.patch(url, {"enabled": "False"}, format=body_format, **headers).status_code == 204
    assert Project.objects.get(pk=tree["proj"].pk).ci_job_token_scope_enabled is False
    assert api.patch(url, {"enabled": "yes"}, format=body_format, **headers).status_code == 204
    assert Project.objects.get(pk=tree["proj"].pk).ci_job_token_scope_enabled is True
    invalid(api.patch(url, {"enabled": "perhaps"}, format=body_format, **headers), "enabled")
    assert Project.objects.get(pk=tree["proj"].pk).ci_job_token_scope_enabled is True
    missing = api.patch(url, {}, format=body_format, **headers)
    assert missing.status_code == 400 and missing.json() == {"error": "enabled is missing"}


def test_user_create_reads_admin_and_external_flags(api, people):
    body = {"username": "newbie", "email": "newbie@example.com", "name": "Newbie", "admin": "False"}
    response = api.post("/api/v4/users", {**body, "external": "True"}, **people["admin"].headers)
    assert response.status_code == 201, response.content
    user = User.objects.get(username="newbie")
    assert (user.is_superuser, user.is_external) == (False, True)
    bad = {**body, "username": "other", "email": "other@example.com", "admin": "sure"}
    invalid(api.post("/api/v4/users", bad, **people["admin"].headers), "admin")
    assert not User.objects.filter(username="other").exists()
