"""With OpenID Connect configured but its provider unreachable, local passwords and sessions
keep working (Django builds every backend for every sign-in)."""

import pytest
from django.test import Client, override_settings

from tests.conftest import _free_port
from tests.factories import AdminFactory

pytestmark = pytest.mark.django_db


def test_local_password_signs_in_while_the_provider_is_down():
    closed = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    backends = ["accounts.oidc.Backend", "django.contrib.auth.backends.ModelBackend"]  # asked first
    with override_settings(
        AUTHENTICATION_BACKENDS=backends,
        OIDC_ISSUER=closed,
        OIDC_RP_CLIENT_ID="x",
        OIDC_RP_CLIENT_SECRET="y",
        OIDC_RP_SIGN_ALGO="RS256",
        OIDC_TIMEOUT=2,
    ):
        admin = AdminFactory()
        client = Client()
        response = client.post("/users/sign_in", {"username": admin.username, "password": "password-123"})
        assert response.status_code == 302 and response["Location"] == "/"
        assert client.get("/").status_code == 200
