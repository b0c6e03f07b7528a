"""npm's search endpoint (`/-/v1/search`) at project, group and instance level, over what the
caller may pull; and unknown paths under a format's prefix answered by the format (404)."""

import json

import pytest
from django.test import Client

from accounts.roles import AccessLevel
from tests.factories import (
    AccessTokenFactory,
    CiJobFactory,
    DeployTokenFactory,
    GroupFactory,
    ProjectFactory,
    UserFactory,
    member,
)
from tests.formats.npm.npmdocs import publish_document
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme():
    return GroupFactory(path="acme")


@pytest.fixture
def project(acme):
    return ProjectFactory(group=acme, path="web")


@pytest.fixture
def other(acme):
    return ProjectFactory(group=acme, path="secret")


def publish(project, token, name, version, **fields):
    response = Client().put(
        f"/api/v4/projects/{project.pk}/packages/npm/{name.replace('/', '%2f')}",
        data=json.dumps(publish_document(name, version, **fields)),
        content_type="application/json",
        **auth_headers(token, "bearer"),
    )
    assert response.status_code == 200, response.content


@pytest.fixture
def published(project, other):
    token = AccessTokenFactory(user=member(project, AccessLevel.DEVELOPER)).plaintext
    publish(project, token, "@acme/left-pad", "1.0.0", description="Pads strings on the left", keywords=["pad"])
    publish(project, token, "@acme/left-pad", "1.1.0", description="Pads strings on the left", keywords=["pad"])
    publish(project, token, "@acme/right-pad", "2.0.0", description="Pads on the right", keywords=["pad", "right"])
    publish(project, token, "@acme/trim", "0.1.0", description="Trims strings")
    secret_token = AccessTokenFactory(user=member(other, AccessLevel.DEVELOPER)).plaintext
    publish(other, secret_token, "@acme/secret-pad", "1.0.0", description="Pads secretly")


def names(response):
    assert response.status_code == 200, response.content
    return [entry["package"]["name"] for entry in response.json()["objects"]]


def test_project_search_shape_and_ranking(project, published):
    reader = AccessTokenFactory(user=member(project, AccessLevel.REPORTER)).plaintext
    url = f"/api/v4/projects/{project.pk}/packages/npm/-/v1/search"
    response = Client().get(url, {"text": "pad", "size": 20}, **auth_headers(reader, "bearer"))
    assert names(response) == ["@acme/right-pad", "@acme/left-pad"]
    body = response.json()
    assert body["total"] == 2 and body["time"].endswith("Z")
    left = body["objects"][1]
    assert left["package"]["version"] == "1.1.0" and left["package"]["scope"] == "acme"
    assert left["package"]["description"] == "Pads strings on the left" and left["package"]["keywords"] == ["pad"]
    assert set(left["score"]) == {"final", "detail"} and "searchScore" in left
    client = Client()
    assert names(client.get(url, {"text": "left-pad"}, **auth_headers(reader, "bearer"))) == ["@acme/left-pad"]
    assert names(client.get(url, {"text": "strings"}, **auth_headers(reader, "bearer"))) == [
        "@acme/trim",
        "@acme/left-pad",
    ]
    assert names(client.get(url, {"text": "keywords:right"}, **auth_headers(reader, "bearer"))) == ["@acme/right-pad"]
    paged = client.get(url, {"text": "pad", "size": 1, "from": 1}, **auth_headers(reader, "bearer")).json()
    assert [o["package"]["name"] for o in paged["objects"]] == ["@acme/left-pad"] and paged["total"] == 2
    assert names(client.get(url, {"text": "nothing-like-this"}, **auth_headers(reader, "bearer"))) == []


def test_group_and_instance_search_cover_only_what_the_caller_may_pull(acme, project, published):
    reader = AccessTokenFactory(user=member(project, AccessLevel.REPORTER)).plaintext
    for url in (f"/api/v4/groups/{acme.pk}/-/packages/npm/-/v1/search", "/api/v4/packages/npm/-/v1/search"):
        assert names(Client().get(url, {"text": "pad"}, **auth_headers(reader, "bearer"))) == [
            "@acme/right-pad",
            "@acme/left-pad",
        ]
    owner = AccessTokenFactory(user=member(acme, AccessLevel.OWNER)).plaintext
    everything = names(Client().get("/api/v4/packages/npm/-/v1/search", {"text": "pad"}, **auth_headers(owner)))
    assert "@acme/secret-pad" in everything


def test_search_with_deploy_and_job_tokens_and_refusals(project, published):
    url = f"/api/v4/projects/{project.pk}/packages/npm/-/v1/search"
    deploy = DeployTokenFactory(project=project, scopes=["read_package_registry"]).plaintext
    assert len(names(Client().get(url, {"text": "pad"}, **auth_headers(deploy, "bearer")))) == 2
    job = CiJobFactory(project=project, user=member(project, AccessLevel.DEVELOPER)).plaintext
    assert len(names(Client().get(url, {"text": "pad"}, **auth_headers(job, "bearer")))) == 2
    assert Client().get(url, {"text": "pad"}).status_code == 401
    stranger = AccessTokenFactory(user=UserFactory()).plaintext
    assert Client().get(url, {"text": "pad"}, **auth_headers(stranger, "bearer")).status_code == 404


@pytest.mark.parametrize("kind", ["deploy", "job", "personal"])
def test_unknown_paths_under_a_format_prefix_are_the_formats_404(project, kind):
    developer = member(project, AccessLevel.DEVELOPER)
    token = {
        "deploy": lambda: DeployTokenFactory(project=project, scopes=["read_package_registry"]).plaintext,
        "job": lambda: CiJobFactory(project=project, user=developer).plaintext,
        "personal": lambda: AccessTokenFactory(user=developer).plaintext,
    }[kind]()
    headers = auth_headers(token, "bearer")
    for url in (
        f"/api/v4/projects/{project.pk}/packages/npm/-/v1/unknown",
        f"/api/v4/projects/{project.pk}/packages/npm/-/whatever/else",
        f"/api/v4/groups/{project.group.pk}/-/packages/npm/-/v1/unknown/x",
        "/api/v4/packages/npm/-/not/here",
    ):
        response = Client().get(url, **headers)
        assert response.status_code == 404, (url, response.content)
        assert response.json()["error"] == "Not Found"
    assert Client().put(f"/api/v4/projects/{project.pk}/packages/npm/-/x/y", **headers).status_code == 404
