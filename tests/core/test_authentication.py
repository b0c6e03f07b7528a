"""Every credential spelling resolves to one Principal; a present but bad credential is a 401."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed

from accounts import tokens
from accounts.authentication import authenticate_request
from accounts.models import AccessToken, DeployToken
from tests.factories import AccessTokenFactory, CiJobFactory, DeployTokenFactory, ProjectFactory, bot_token, finish

pytestmark = pytest.mark.django_db


def resolve(**meta):
    class Request:
        META = meta

    return authenticate_request(Request())


def basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_no_credential_is_anonymous():
    assert resolve().is_anonymous


@pytest.mark.parametrize(
    "spelling",
    ["HTTP_PRIVATE_TOKEN", "bearer", "basic-any", "basic-token", "HTTP_X_NUGET_APIKEY", "raw"],
)
def test_access_token_spellings(spelling):
    token = AccessTokenFactory()
    meta = {
        "HTTP_PRIVATE_TOKEN": {"HTTP_PRIVATE_TOKEN": token.plaintext},
        "bearer": {"HTTP_AUTHORIZATION": f"Bearer {token.plaintext}"},
        "basic-any": {"HTTP_AUTHORIZATION": basic("whoever", token.plaintext)},
        "basic-token": {"HTTP_AUTHORIZATION": basic("__token__", token.plaintext)},
        "HTTP_X_NUGET_APIKEY": {"HTTP_X_NUGET_APIKEY": token.plaintext},
        "raw": {"HTTP_AUTHORIZATION": token.plaintext},
    }[spelling]
    principal = resolve(**meta)
    assert principal.kind == "access_token"
    assert principal.user == token.user
    assert principal.scopes == frozenset({"api"})


def test_deploy_token_spellings_and_username_rule():
    token = DeployTokenFactory(project=ProjectFactory())
    assert token.username == f"packhouse+deploy-token-{token.pk}"
    for meta in (
        {"HTTP_DEPLOY_TOKEN": token.plaintext},
        {"HTTP_AUTHORIZATION": f"Bearer {token.plaintext}"},
        {"HTTP_AUTHORIZATION": basic(token.username, token.plaintext)},
        {"HTTP_X_NUGET_APIKEY": token.plaintext},
        {"HTTP_AUTHORIZATION": token.plaintext},
    ):
        principal = resolve(**meta)
        assert principal.kind == "deploy_token"
        assert principal.deploy_token == token
        assert principal.user is None
    with pytest.raises(AuthenticationFailed):
        resolve(HTTP_AUTHORIZATION=basic("someone-else", token.plaintext))


def test_job_token_spellings_and_username_rule():
    job = CiJobFactory()
    for meta in (
        {"HTTP_JOB_TOKEN": job.plaintext},
        {"HTTP_AUTHORIZATION": f"Bearer {job.plaintext}"},
        {"HTTP_AUTHORIZATION": basic("gitlab-ci-token", job.plaintext)},
        {"HTTP_AUTHORIZATION": job.plaintext},
    ):
        principal = resolve(**meta)
        assert (principal.kind, principal.user, principal.job) == ("job_token", job.user, job)
    with pytest.raises(AuthenticationFailed):
        resolve(HTTP_AUTHORIZATION=basic("root", job.plaintext))
    finish(job)
    with pytest.raises(AuthenticationFailed):
        resolve(HTTP_JOB_TOKEN=job.plaintext)


@pytest.mark.parametrize(
    "meta",
    [
        {"HTTP_PRIVATE_TOKEN": "glpat-unknown"},
        {"HTTP_PRIVATE_TOKEN": "not-a-packhouse-token"},
        {"HTTP_AUTHORIZATION": "Bearer glcbt-unknown"},
        {"HTTP_AUTHORIZATION": "Basic !!!not-base64"},
        {"HTTP_AUTHORIZATION": basic("user", "an-account-password")},
        {"HTTP_AUTHORIZATION": "Digest abc"},
        {"HTTP_AUTHORIZATION": "glpat-unknown"},
        {"HTTP_AUTHORIZATION": "not-a-packhouse-token"},
        {"HTTP_DEPLOY_TOKEN": "gldt-unknown"},
    ],
)
def test_unknown_or_malformed_credentials_are_rejected(meta):
    with pytest.raises(AuthenticationFailed):
        resolve(**meta)


def test_a_token_in_the_wrong_header_is_rejected():
    deploy = DeployTokenFactory(project=ProjectFactory())
    with pytest.raises(AuthenticationFailed):
        resolve(HTTP_PRIVATE_TOKEN=deploy.plaintext)


def test_expired_and_revoked_tokens_are_rejected():
    expired = AccessTokenFactory(expires_at=timezone.now() - timedelta(seconds=1))
    revoked = AccessTokenFactory()
    revoked.revoke()
    for token in (expired, revoked):
        with pytest.raises(AuthenticationFailed):
            resolve(HTTP_PRIVATE_TOKEN=token.plaintext)


def test_tokens_are_stored_as_digests_only():
    token = AccessTokenFactory()
    row = AccessToken.objects.get(pk=token.pk)
    assert row.digest == tokens.digest(token.plaintext)
    assert token.plaintext.startswith("glpat-")
    assert row.token_prefix == token.plaintext[:10]
    deploy = DeployTokenFactory(project=ProjectFactory())
    assert deploy.plaintext.startswith("gldt-")
    stored = DeployToken.objects.filter(pk=deploy.pk).values().get()
    assert deploy.plaintext not in [str(v) for v in stored.values()]


def test_last_used_at_is_recorded(settings):
    settings.TOKEN_LAST_USED_INTERVAL = 0
    token = AccessTokenFactory()
    assert token.last_used_at is None
    resolve(HTTP_PRIVATE_TOKEN=token.plaintext)
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_bot_tokens_act_as_their_bot_user():
    project = ProjectFactory()
    token = bot_token(project, 30)
    principal = resolve(HTTP_PRIVATE_TOKEN=token.plaintext)
    assert principal.user.is_bot
    assert principal.token_kind == "project"


def test_blocked_users_tokens_are_rejected():
    token = AccessTokenFactory()
    token.user.is_active = False
    token.user.save()
    with pytest.raises(AuthenticationFailed):
        resolve(HTTP_PRIVATE_TOKEN=token.plaintext)


def test_two_different_credentials_are_refused_whichever_is_valid(client):
    valid = AccessTokenFactory().plaintext
    with pytest.raises(AuthenticationFailed, match="more than one credential"):
        resolve(HTTP_PRIVATE_TOKEN=valid, HTTP_JOB_TOKEN="glcbt-not-a-real-job-token")
    with pytest.raises(AuthenticationFailed, match="more than one credential"):
        resolve(HTTP_AUTHORIZATION=f"Bearer {valid}", HTTP_DEPLOY_TOKEN="gldt-unknown")
    response = client.get("/api/v4/user", HTTP_PRIVATE_TOKEN=valid, HTTP_JOB_TOKEN="glcbt-not-a-real-job-token")
    assert response.status_code == 401


def test_the_same_token_in_two_places_is_one_credential():
    token = AccessTokenFactory()
    principal = resolve(HTTP_PRIVATE_TOKEN=token.plaintext, HTTP_AUTHORIZATION=basic("nuget", token.plaintext))
    assert principal.access_token.pk == token.pk
