"""Deploy tokens API (spec §4.2): who may manage them, the secret shown once, revocation."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import DeployToken
from tests.factories import DeployTokenFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db

PROJ = "acme%2Fsub%2Fproj"


def generic_url(project, file_name="a.txt"):
    return f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0.0/{file_name}"


def create(api, headers, target=f"projects/{PROJ}", **body):
    body.setdefault("name", "ci")
    body.setdefault("scopes", ["read_package_registry", "write_package_registry"])
    return api.post(f"/api/v4/{target}/deploy_tokens", body, format="json", **headers)


def test_create_shows_secret_once_and_it_publishes(api, tree, people):
    response = create(api, people["maintainer"].headers, expires_at="2999-01-02")
    assert response.status_code == 201, response.content
    data = response.json()
    token = data.pop("token")
    assert token.startswith("gldt-")
    assert data == {
        "id": data["id"],
        "name": "ci",
        "username": f"packhouse+deploy-token-{data['id']}",
        "expires_at": "2999-01-02T00:00:00.000Z",
        "revoked": False,
        "expired": False,
        "scopes": ["read_package_registry", "write_package_registry"],
    }
    row = DeployToken.objects.get(pk=data["id"])
    assert row.project == tree["proj"] and row.creator == people["maintainer"].user
    assert token not in (row.digest, row.token_prefix)

    listing = api.get(f"/api/v4/projects/{PROJ}/deploy_tokens", **people["maintainer"].headers)
    assert listing.status_code == 200
    assert [t["id"] for t in listing.json()] == [data["id"]]
    assert "token" not in listing.json()[0]
    detail = api.get(f"/api/v4/projects/{tree['proj'].pk}/deploy_tokens/{data['id']}", **people["maintainer"].headers)
    assert detail.status_code == 200 and "token" not in detail.json()
    assert token not in listing.content.decode() + detail.content.decode()

    upload = api.put(
        generic_url(tree["proj"]), b"hello", content_type="application/octet-stream", **auth_headers(token, "deploy")
    )
    assert upload.status_code == 201


def test_delete_revokes_and_token_stops_at_once(api, tree, people):
    created = create(api, people["maintainer"].headers).json()
    headers = auth_headers(created["token"], "deploy")
    assert (
        api.put(generic_url(tree["proj"]), b"x", content_type="application/octet-stream", **headers).status_code == 201
    )

    response = api.delete(f"/api/v4/projects/{PROJ}/deploy_tokens/{created['id']}", **people["maintainer"].headers)
    assert response.status_code == 204
    row = DeployToken.objects.get(pk=created["id"])
    assert row.revoked and row.revoked_at is not None

    assert api.get(generic_url(tree["proj"]), **headers).status_code == 401
    assert (
        api.put(
            generic_url(tree["proj"], "b.txt"), b"x", content_type="application/octet-stream", **headers
        ).status_code
        == 401
    )
    # Kept for audit, excluded from active listings; a second delete finds nothing.
    everything = api.get(f"/api/v4/projects/{PROJ}/deploy_tokens", **people["maintainer"].headers).json()
    assert [t["revoked"] for t in everything] == [True]
    active = api.get(f"/api/v4/projects/{PROJ}/deploy_tokens?active=true", **people["maintainer"].headers)
    assert active.json() == []
    again = api.delete(f"/api/v4/projects/{PROJ}/deploy_tokens/{created['id']}", **people["maintainer"].headers)
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("admin", 201),
        ("owner", 201),
        ("maintainer", 201),
        ("developer", 403),
        ("reporter", 403),
        ("guest", 403),
        ("stranger", 404),
    ],
)
def test_project_tokens_need_maintainer(api, tree, people, who, expected):
    assert create(api, people[who].headers).status_code == expected
    assert api.get(f"/api/v4/projects/{PROJ}/deploy_tokens", **people[who].headers).status_code == (
        200 if expected == 201 else expected
    )


def test_anonymous_and_unknown_project(api, tree, people):
    assert create(api, {}).status_code == 401
    assert api.get(f"/api/v4/projects/{PROJ}/deploy_tokens").status_code == 401
    assert api.get(f"/api/v4/projects/{PROJ}/deploy_tokens")["WWW-Authenticate"].startswith("Basic")
    assert create(api, {}, target="projects/nope%2Fnothing").status_code == 401
    missing = create(api, people["admin"].headers, target="projects/nope%2Fnothing")
    assert missing.status_code == 404
    assert missing.json() == {"message": "404 Project Not Found"}


def test_group_tokens_read_maintainer_write_owner(api, tree, people):
    from accounts.roles import AccessLevel
    from tests.accounts.conftest import person

    group_maintainer = person(AccessLevel.MAINTAINER, group=tree["acme"])
    assert create(api, group_maintainer.headers, target="groups/acme").status_code == 403
    created = create(api, people["owner"].headers, target="groups/acme")
    assert created.status_code == 201
    token_id = created.json()["id"]
    assert DeployToken.objects.get(pk=token_id).group == tree["acme"]
    listing = api.get("/api/v4/groups/acme/deploy_tokens", **group_maintainer.headers)
    assert listing.status_code == 200 and [t["id"] for t in listing.json()] == [token_id]
    assert (
        api.get(f"/api/v4/groups/{tree['acme'].pk}/deploy_tokens/{token_id}", **group_maintainer.headers).status_code
        == 200
    )
    assert api.get("/api/v4/groups/acme/deploy_tokens", **people["developer"].headers).status_code == 403
    assert api.delete(f"/api/v4/groups/acme/deploy_tokens/{token_id}", **group_maintainer.headers).status_code == 403
    # A group token reaches the project in the subgroup.
    upload = api.put(
        generic_url(tree["proj"]),
        b"x",
        content_type="application/octet-stream",
        **auth_headers(created.json()["token"], "deploy"),
    )
    assert upload.status_code == 201
    assert api.delete(f"/api/v4/groups/acme/deploy_tokens/{token_id}", **people["owner"].headers).status_code == 204
    assert api.get(generic_url(tree["proj"]), **auth_headers(created.json()["token"], "deploy")).status_code == 401


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"scopes": ["read_package_registry", "bogus"]}, "scopes does not have a valid value"),
        ({"scopes": "bogus"}, "scopes does not have a valid value"),
        ({"scopes": []}, "scopes is missing"),
        ({"name": ""}, "name is empty"),
        ({"username": "bad name!"}, "username is invalid"),
        ({"expires_at": "not-a-date"}, "expires_at is invalid"),
    ],
)
def test_validation_errors(api, tree, people, body, error):
    response = create(api, people["maintainer"].headers, **body)
    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert not DeployToken.objects.exists()


def test_missing_scopes_and_comma_separated_scopes(api, tree, people):
    missing = api.post(
        f"/api/v4/projects/{PROJ}/deploy_tokens", {"name": "x"}, format="json", **people["maintainer"].headers
    )
    assert missing.status_code == 400 and missing.json() == {"error": "scopes is missing"}
    form = api.post(
        f"/api/v4/projects/{PROJ}/deploy_tokens",
        {"name": "x", "scopes": "read_registry,read_package_registry", "username": "robot.one"},
        **people["maintainer"].headers,
    )
    assert form.status_code == 201, form.content
    assert form.json()["scopes"] == ["read_registry", "read_package_registry"]
    assert form.json()["username"] == "robot.one"


def test_instance_listing_is_admin_only_with_active_filter(api, tree, people):
    live = DeployTokenFactory(project=tree["proj"])
    revoked = DeployTokenFactory(group=tree["acme"], revoked=True)
    expired = DeployTokenFactory(project=tree["other"], expires_at=timezone.now() - timedelta(days=1))
    assert api.get("/api/v4/deploy_tokens", **people["owner"].headers).status_code == 403
    assert api.get("/api/v4/deploy_tokens").status_code == 401
    everything = api.get("/api/v4/deploy_tokens", **people["admin"].headers)
    assert [t["id"] for t in everything.json()] == [live.pk, revoked.pk, expired.pk]
    assert everything.json()[2]["expired"] is True
    active = api.get("/api/v4/deploy_tokens?active=true", **people["admin"].headers).json()
    assert [t["id"] for t in active] == [live.pk]
    inactive = api.get("/api/v4/deploy_tokens?active=false", **people["admin"].headers).json()
    assert [t["id"] for t in inactive] == [revoked.pk, expired.pk]


def test_deploy_tokens_are_refused_on_the_management_api(api, tree):
    token = DeployTokenFactory(project=tree["proj"])
    headers = auth_headers(token.plaintext, "deploy")
    assert api.get(f"/api/v4/projects/{PROJ}/deploy_tokens", **headers).status_code == 403
    assert api.get(f"/api/v4/projects/{PROJ}", **headers).status_code == 403
    assert create(api, headers).status_code == 403
