"""The management pages in a real browser (Playwright on Debian's chromium, live gunicorn): an
administrator creates a user, a group and a project, adds the user as a Developer; the user
publishes with a token, reads the README on the version's page, copies an install snippet and
finds the package with the search box; the administrator yanks a PyPI release.
Every page is checked with axe-core (no serious or critical violation); screenshots are saved."""

import hashlib
import json
import subprocess

import pytest

from accounts.models import Group, Membership, Project, User
from accounts.roles import AccessLevel
from tests.factories import AccessTokenFactory, AdminFactory
from tests.formats.npm.npmdocs import publish_document
from tests.formats.pypi.dists import make_wheel
from tests.web.test_browser import PASSWORD, shot, sign_in, sign_out, with_live_password

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


def accessible(page, accessibility):
    violations = accessibility(page)
    assert violations == [], f"{page.url}: {violations}"


def test_admin_sets_up_a_team_and_a_member_publishes(page, live_registry, screenshots, accessibility, tmp_path):
    url = live_registry.url
    admin = AdminFactory(username="root")
    sign_in(page, live_registry, admin)
    accessible(page, accessibility)

    page.click("header >> text=Admin area")
    page.wait_for_url(f"{url}/admin/users")
    page.click("text=New user")
    page.fill("#id_name", "Dana Developer")
    page.fill("#id_username", "dana")
    page.fill("#id_email", "dana@example.com")
    page.fill("#id_password", PASSWORD)
    accessible(page, accessibility)
    page.click("main button[type=submit]")
    page.wait_for_selector("text=User dana was created.")
    accessible(page, accessibility)
    shot(page, screenshots, "admin-users")

    page.goto(f"{url}/")
    page.click("text=New group")
    page.fill("#id_name", "Acme")
    page.fill("#id_path", "acme")
    page.select_option("#id_visibility", "internal")
    accessible(page, accessibility)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{url}/groups/acme/-/packages")
    assert Group.objects.get(full_path="acme").visibility == "internal"

    page.click("text=New project")
    page.fill("#id_name", "Tools")
    page.select_option("#id_visibility", "public")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=visibility_level of the project is not allowed in a internal group")
    accessible(page, accessibility)
    shot(page, screenshots, "new-project-refused")
    page.select_option("#id_visibility", "private")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{url}/acme/tools/-/packages")
    project = Project.objects.get(full_path="acme/tools")

    page.click("ul.tabs >> text=Members")
    page.wait_for_url(f"{url}/acme/tools/-/project_members")
    page.fill("#id_username", "dana")
    page.select_option("#id_access_level", str(int(AccessLevel.DEVELOPER)))
    page.click("main button:has-text('Add member')")
    page.wait_for_selector("text=Added dana.")
    assert page.inner_text("#member-dana .role") == "Developer"
    accessible(page, accessibility)
    shot(page, screenshots, "project-members")
    dana = User.objects.get(username="dana")
    assert Membership.objects.get(project=project, user=dana).access_level == AccessLevel.DEVELOPER
    sign_out(page)

    token = AccessTokenFactory(user=dana).plaintext
    document = publish_document("hello", "1.0.0", description="Says hello", license="MIT")
    document["readme"] = "# Hello\n\nRun `hello` <script>alert(1)</script>"
    body = tmp_path / "publish.json"
    body.write_text(json.dumps(document))
    status = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-H", f"Authorization: Bearer {token}",
         "-H", "Content-Type: application/json", "--data-binary", f"@{body}",
         live_registry.api(f"projects/{project.pk}/packages/npm/hello")],
        capture_output=True, text=True, check=False, timeout=60,
    ).stdout  # fmt: skip
    assert status == "200"

    with_live_password(dana)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    sign_in(page, live_registry, dana)
    page.goto(f"{url}/acme/tools/-/packages")
    page.get_by_role("link", name="hello").click()
    page.wait_for_selector("section.readme h1:has-text('Hello')")
    assert page.locator("section.readme script").count() == 0
    assert page.inner_text("#license") == "MIT"
    page.click("button[aria-label='Copy npm install']")
    status = page.locator("button[aria-label='Copy npm install'] + [role=status]")
    status.get_by_text("Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == "npm install hello@1.0.0"
    accessible(page, accessibility)
    shot(page, screenshots, "package-readme")

    page.fill("#top-search", "hello")
    page.press("#top-search", "Enter")
    page.wait_for_url(f"{url}/search?search=hello")
    results = page.locator("table[aria-label='Packages found'] tbody tr")
    assert results.count() == 1 and "acme/tools" in results.first.inner_text()
    accessible(page, accessibility)
    shot(page, screenshots, "search")
    sign_out(page)

    wheel = make_wheel("hello-py", "1.0.0")
    (tmp_path / "hello_py-1.0.0-py3-none-any.whl").write_bytes(wheel)
    status = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", f"__token__:{token}",
         "-F", ":action=file_upload", "-F", "name=hello-py", "-F", "version=1.0.0",
         "-F", f"sha256_digest={hashlib.sha256(wheel).hexdigest()}",
         "-F", f"content=@{tmp_path / 'hello_py-1.0.0-py3-none-any.whl'}",
         live_registry.api(f"projects/{project.pk}/packages/pypi")],
        capture_output=True, text=True, check=False, timeout=60,
    ).stdout  # fmt: skip
    assert status == "201"
    sign_in(page, live_registry, admin)
    page.goto(f"{url}/acme/tools/-/packages")
    page.get_by_role("link", name="hello-py").click()
    page.fill("#withdrawal-reason", "built from the wrong branch")
    page.click("button:has-text('Yank 1.0.0')")
    page.wait_for_selector("#withdrawn:has-text('built from the wrong branch')")
    accessible(page, accessibility)
    shot(page, screenshots, "yanked")
    index = live_registry.api(f"projects/{project.pk}/packages/pypi/simple/hello-py/")
    simple = subprocess.run(
        ["curl", "-s", "-u", f"__token__:{token}", index], capture_output=True, text=True, check=False, timeout=60
    ).stdout
    assert 'data-yanked="built from the wrong branch"' in simple
