"""Sign-in with OpenID Connect against a real OpenID provider (the npm package oidc-provider,
started here with its development login pages), in a real browser: the first sign-in creates
the user linked to the provider's `sub`; the user's tokens work for clients; a blocked user
neither signs in nor uses a token; local passwords keep working for the admin."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from accounts.models import ExternalIdentity, User
from tests.conftest import _free_port, start_live_server, stop_live_server
from tests.factories import AccessTokenFactory, AdminFactory
from tests.web.test_browser import curl, sign_in

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

PROVIDER_VERSION = "9.13.3"
SCRIPT = Path(__file__).resolve().parents[1] / "accounts" / "oidc_provider.mjs"
CLIENT_ID, CLIENT_SECRET = "packhouse", "client-secret-for-tests"


@pytest.fixture(scope="session")
def oidc_provider_dir(tmp_path_factory):
    """oidc-provider installed from the npm registry with the real npm (once), beside our script."""
    directory = tmp_path_factory.mktemp("oidc-provider")
    subprocess.run(
        ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(directory),
         f"oidc-provider@{PROVIDER_VERSION}"],
        check=True, capture_output=True, timeout=300,
        env={**os.environ, "HOME": str(directory), "npm_config_cache": str(directory / "cache")},
    )  # fmt: skip
    shutil.copy(SCRIPT, directory / "server.mjs")
    return directory


@pytest.fixture
def sso(oidc_provider_dir, blob_dir, spool_dir, tmp_path):
    """The provider and a live Packhouse that signs in through it, each on its own port."""
    provider_port, packhouse_port = _free_port(), _free_port()
    issuer = f"http://127.0.0.1:{provider_port}"
    log = open(tmp_path / "provider.log", "wb")  # noqa: SIM115
    provider = subprocess.Popen(
        ["node", "server.mjs"],
        cwd=oidc_provider_dir,
        env={
            **os.environ,
            "PORT": str(provider_port),
            "REDIRECT_URI": f"http://127.0.0.1:{packhouse_port}/oidc/callback/",
            "CLIENT_ID": CLIENT_ID,
            "CLIENT_SECRET": CLIENT_SECRET,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while b"ready" not in (tmp_path / "provider.log").read_bytes():
        assert provider.poll() is None and time.monotonic() < deadline, (tmp_path / "provider.log").read_text()
        time.sleep(0.1)
    server = start_live_server(
        blob_dir,
        spool_dir,
        tmp_path,
        port=packhouse_port,
        PACKHOUSE_OIDC_ISSUER=issuer,
        PACKHOUSE_OIDC_CLIENT_ID=CLIENT_ID,
        PACKHOUSE_OIDC_CLIENT_SECRET=CLIENT_SECRET,
        PACKHOUSE_OIDC_NAME="Acme SSO",
    )
    yield server
    stop_live_server(server)
    provider.terminate()
    provider.wait(timeout=10)
    log.close()


def sign_in_with_sso(page, server, login):
    """Through the provider's pages: its login form and consent when it asks for them (a
    provider session already signed in skips them), until the browser is back at Packhouse."""

    def back(url):
        return url.startswith(server.url) and "/oidc/" not in url and not url.endswith("/users/sign_in")

    page.goto(f"{server.url}/users/sign_in")
    page.click("text=Sign in with Acme SSO")
    for _ in range(3):
        page.wait_for_url(lambda url: "/interaction/" in url or back(url))
        page.wait_for_load_state()
        if back(page.url):
            return
        if page.locator("input[name=login]").count():
            page.fill("input[name=login]", login)
            page.fill("input[name=password]", "anything")
        with page.expect_navigation():
            page.click("button[type=submit]")
    raise AssertionError(f"still at {page.url}")


def test_sign_in_with_openid_connect(page, sso, screenshots):
    sign_in_with_sso(page, sso, "olga")
    page.wait_for_url(f"{sso.url}/")
    assert "Welcome, Olga Example" in page.inner_text("main h1")
    olga = User.objects.get(username="olga")
    assert (olga.email, olga.has_usable_password()) == ("olga@example.org", False)
    assert ExternalIdentity.objects.get(user=olga).uid == "olga"  # the provider's `sub`
    page.screenshot(path=str(screenshots / "oidc-dashboard.png"), full_page=True)

    token = AccessTokenFactory(user=olga).plaintext
    assert curl("--header", f"PRIVATE-TOKEN: {token}", f"{sso.url}/api/v4/user") == 200
    page.click("header button:has-text('Sign out')")
    page.wait_for_url("**/users/sign_in")
    sign_in_with_sso(page, sso, "olga")  # the provider remembers her: same user, not a new one
    page.wait_for_url(f"{sso.url}/")
    assert User.objects.filter(email="olga@example.org").count() == 1
    page.click("header button:has-text('Sign out')")

    olga.is_active = False
    olga.save(update_fields=["is_active"])
    assert curl("--header", f"PRIVATE-TOKEN: {token}", f"{sso.url}/api/v4/user") == 401
    sign_in_with_sso(page, sso, "olga")
    page.wait_for_url("**/users/sign_in?sign_in_failed=oidc")
    assert "Signing in with Acme SSO failed." in page.content()

    sign_in(page, sso, AdminFactory(username="root"))  # a local password still signs in
