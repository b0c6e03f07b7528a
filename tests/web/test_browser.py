"""The web UI in a real browser: Playwright driving Debian's chromium against a live gunicorn.

Never `playwright install`: scripts/install-chromium.sh installs the system chromium (once),
and the browser is launched from /usr/bin/chromium. Screenshots of the main pages are saved
under the run's temporary directory and their paths printed (see `-s` or the captured output).
"""

import subprocess
from pathlib import Path

import pytest

from accounts.roles import AccessLevel
from tests.factories import (
    AccessTokenFactory,
    AdminFactory,
    CiJobFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "password-123"  # tests.factories.UserFactory's


def shot(page, screenshots, name):
    path = screenshots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def curl(*args):
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--output", "/dev/null", "--write-out", "%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return int(result.stdout[-3:])


def with_live_password(user):
    """The tests hash passwords with MD5 (fast); the live server only knows its default hashers."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "browsertestsalt", iterations=1000)
    user.save(update_fields=["password"])
    return user


def sign_in(page, live_registry, user):
    with_live_password(user)
    page.goto(f"{live_registry.url}/users/sign_in")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_registry.url}/")


def sign_out(page):
    page.click("header button:has-text('Sign out')")
    page.wait_for_url("**/users/sign_in")


@pytest.fixture
def setup(live_registry):
    acme = GroupFactory(path="acme", name="Acme")
    project = ProjectFactory(group=acme, path="tools", name="Tools")
    maintainer = UserFactory(username="maria")
    MembershipFactory(user=maintainer, project=project, access_level=AccessLevel.MAINTAINER)
    token = AccessTokenFactory(user=maintainer).plaintext
    file_url = live_registry.api(f"projects/{project.pk}/packages/generic/tool/1.0.0/tool.tar.gz")
    upload = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"PRIVATE-TOKEN: {token}",
         "--upload-file", str(ROOT / "README.md"), file_url],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert upload.stdout == "201"
    return {"acme": acme, "project": project, "maintainer": maintainer, "file_url": file_url}


def test_deploy_token_created_read_once_used_and_revoked_in_admin(page, live_registry, setup, screenshots):
    project, file_url = setup["project"], setup["file_url"]
    admin = AdminFactory(username="root")
    sign_in(page, live_registry, setup["maintainer"])
    assert page.get_by_role("link", name="acme/tools").first.is_visible()
    shot(page, screenshots, "dashboard")

    page.click("text=acme/tools")
    page.wait_for_url("**/acme/tools/-/packages")
    assert page.get_by_role("link", name="tool").is_visible()
    shot(page, screenshots, "package-list")
    page.get_by_role("link", name="tool").click()
    page.wait_for_url("**/acme/tools/-/packages/*")
    assert page.locator("[data-created-via]").inner_text() == "personal access token"
    assert f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0.0/tool.tar.gz" in page.content()
    shot(page, screenshots, "package-detail")

    page.get_by_role("link", name="Deploy tokens").click()
    page.fill("#id_name", "ci-pull")
    page.check("input[value=read_package_registry]")
    page.click("button:has-text('Create deploy token')")
    secret = page.input_value("#new-token-value")
    username = page.input_value("#new-token-username")
    assert secret.startswith("gldt-")
    shot(page, screenshots, "deploy-tokens")
    page.goto(f"{live_registry.url}/acme/tools/-/settings/repository")
    assert secret not in page.content()
    assert "ci-pull" in page.content()

    assert curl("--user", f"{username}:{secret}", file_url) == 200
    assert curl("--header", f"DEPLOY-TOKEN: {secret}", file_url) == 200

    sign_out(page)
    sign_in(page, live_registry, admin)
    page.goto(f"{live_registry.url}/admin/accounts/deploytoken/?revoked__exact=0")
    page.locator("input[name=_selected_action]").first.check()
    page.select_option("select[name=action]", "revoke_tokens")
    page.click("button[name=index]")
    page.wait_for_selector("text=Revoked 1 token(s).")
    shot(page, screenshots, "admin-deploy-tokens")
    assert curl("--header", f"DEPLOY-TOKEN: {secret}", file_url) == 401


def test_allow_anyone_to_pull_toggle(page, live_registry, setup, screenshots):
    assert curl(setup["file_url"]) == 401
    sign_in(page, live_registry, setup["maintainer"])
    page.goto(f"{live_registry.url}/acme/tools/-/settings/general")
    page.check("#id_allow_anyone_to_pull")
    page.click("button:has-text('Save changes')")
    page.wait_for_selector("text=Settings saved.")
    assert page.inner_text("#registry-access") == "public"
    shot(page, screenshots, "general-settings")
    assert curl(setup["file_url"]) == 200
    page.uncheck("#id_allow_anyone_to_pull")
    page.click("button:has-text('Save changes')")
    page.wait_for_selector("text=Settings saved.")
    assert curl(setup["file_url"]) == 401


def test_job_token_allowlist_in_the_ui(page, live_registry, setup, screenshots):
    other = ProjectFactory(group=GroupFactory(path="other"), path="ci", visibility="internal")
    member = UserFactory(username="ci-user")
    MembershipFactory(user=member, project=setup["project"], access_level=AccessLevel.REPORTER)
    MembershipFactory(user=member, project=other, access_level=AccessLevel.DEVELOPER)
    job_token = CiJobFactory(project=other, user=member).plaintext
    assert curl("--header", f"JOB-TOKEN: {job_token}", setup["file_url"]) == 404

    sign_in(page, live_registry, setup["maintainer"])
    page.goto(f"{live_registry.url}/acme/tools/-/settings/ci_cd")
    assert page.is_checked("#limit-access")
    page.select_option("#id_kind", "project")
    page.fill("#id_path", "other/ci")
    page.click("button:has-text('Add')")
    page.wait_for_selector("text=Added other/ci to the allowlist.")
    assert page.locator("table", has_text="other/ci").is_visible()
    shot(page, screenshots, "job-token-allowlist")
    assert curl("--header", f"JOB-TOKEN: {job_token}", setup["file_url"]) == 200

    page.click("tr:has-text('other/ci') button:has-text('Remove')")
    page.wait_for_selector("text=Removed from the allowlist.")
    assert curl("--header", f"JOB-TOKEN: {job_token}", setup["file_url"]) == 404
