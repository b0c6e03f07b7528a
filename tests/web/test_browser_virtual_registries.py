"""The "Virtual registries" page in a real browser (Playwright on Debian's chromium, a live gunicorn
that may reach upstreams on 127.0.0.1): a Maintainer creates a PyPI registry, adds a remote upstream
pointing at a real index server (python's http.server with a PEP 503 tree) and a local upstream
(the group's project), moves the local one first, tests the remote's connection, copies the
pip.conf snippet; the real pip installs through the registry; the cache entry it left is found
with the search box and deleted; a deny rule added on the upstream's page (a regex RE2 refuses
first) keeps pip from getting the name; the registry's retain_removed_versions is switched on.
Every page is checked with axe-core (no serious or critical violation); screenshots are saved
where the other browser tests save them."""

import hashlib
import sys

import pytest

from accounts.roles import AccessLevel
from registry.models import CacheEntry, RegistryUpstream, VirtualRegistry
from tests.clients.pypi.test_pip_twine import client_env, run
from tests.clients.pypi.test_pip_virtual import simple_tree
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.payloads import wheel
from tests.upstreams import StaticUpstream
from tests.web.test_browser import shot, sign_in

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def index_server(tmp_path):
    root = tmp_path / "index"
    file_name, content = wheel("public-pkg", "1.0", "public")
    simple_tree(root, {"public-pkg": [(file_name, content, "", None)]})
    server = StaticUpstream(root, log_path=tmp_path / "index.log").start()
    server.wheel = (file_name, content)
    yield server
    server.stop()


def accessible(page, accessibility):
    violations = accessibility(page)
    assert violations == [], f"{page.url}: {violations}"


def order(page):
    return [
        cell.inner_text() for cell in page.locator("table[aria-labelledby=upstreams] tbody td:nth-child(2) a").all()
    ]


def test_maintainer_sets_up_a_pypi_virtual_registry(
    page, virtual_server, index_server, screenshots, accessibility, tmp_path
):
    url = virtual_server.url
    acme = GroupFactory(path="acme", name="Acme")
    ProjectFactory(group=acme, path="tools", name="Tools")
    maria = UserFactory(username="maria")
    MembershipFactory(user=maria, group=acme, access_level=AccessLevel.MAINTAINER)
    token = AccessTokenFactory(user=maria, scopes=["read_api"]).plaintext
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    sign_in(page, virtual_server, maria)

    page.goto(f"{url}/groups/acme/-/packages")
    page.click("ul.tabs >> text=Virtual registries")
    page.wait_for_url(f"{url}/groups/acme/-/virtual_registries")
    assert page.get_by_text("No PyPI registry.").is_visible()
    accessible(page, accessibility)
    page.select_option("#new-registry-format", "pypi")
    page.fill("#new-registry-name", "python")
    page.fill("#new-registry-description", "Everything pip installs")
    page.click("button:has-text('Create registry')")
    page.wait_for_selector("text=Registry python created.")
    registry = VirtualRegistry.objects.get(group=acme, name="python")
    assert page.url == f"{url}/groups/acme/-/virtual_registries/pypi/registries/{registry.pk}"
    accessible(page, accessibility)

    # A remote upstream: the index server (its simple base), with credentials that are never shown back.
    page.fill("#remote-url", f"{index_server.url}/simple")
    page.fill("#remote-name", "index")
    page.fill("#remote-username", "mirror")
    page.fill("#remote-password", "index-secret")
    page.click("button:has-text('Add remote upstream')")
    page.wait_for_selector("text=Upstream index added.")
    assert "index-secret" not in page.content()
    assert page.get_by_text("(credentials set)").is_visible()
    # A local upstream: the group's project.
    page.select_option("#local-target", label="acme/tools")
    page.fill("#local-name", "ours")
    page.click("button:has-text('Add local upstream')")
    page.wait_for_selector("text=Local upstream ours added.")
    assert order(page) == ["index", "ours"]

    # The group's own packages first.
    page.click("button[aria-label='Move ours up']")
    page.wait_for_selector("text=Upstream ours moved up.")
    assert order(page) == ["ours", "index"]
    assert [link.upstream.name for link in RegistryUpstream.objects.filter(registry=registry).order_by("position")] == [
        "ours",
        "index",
    ]

    page.click("button[aria-label='Test connection to index']")
    page.wait_for_selector("text=Connection to index succeeded.")
    assert any(line.startswith("HEAD /simple/") for line in index_server.requests())
    remote_id = RegistryUpstream.objects.get(registry=registry, position=2).upstream_id
    # a successful test connection records the upstream as healthy
    assert page.inner_text(f"#upstream-{remote_id} .health") == "healthy"
    accessible(page, accessibility)

    page.click("button[aria-label='Copy pip.conf']")
    page.locator("button[aria-label='Copy pip.conf'] + [role=status]").get_by_text("Copied").wait_for()
    endpoint = f"{url}/api/v4/virtual_registries/packages/pypi/{registry.pk}"
    host_path = endpoint.split("://", 1)[1]
    snippet = page.evaluate("navigator.clipboard.readText()")
    assert snippet == f"[global]\nindex-url = http://__token__:${{TOKEN}}@{host_path}/simple/"
    shot(page, screenshots, "virtual-registry")

    # The real pip, through the registry, with the snippet's index and a read_api token.
    index = snippet.split(" = ", 1)[1].replace("${TOKEN}", token)
    target = tmp_path / "site"
    args = ["-m", "pip", "install", "--no-cache-dir", "--no-deps", "--target", str(target), "--index-url", index]
    code, output = run([sys.executable, *args, "public-pkg"], client_env())
    assert code == 0, output
    assert (target / "public_pkg" / "__init__.py").read_text() == "VALUE = 1  # public\n"
    file_name, content = index_server.wheel
    entry = CacheEntry.objects.get(relative_path__endswith=f"/{file_name}", status="default")
    assert entry.verified and entry.blob.sha256 == hashlib.sha256(content).hexdigest()

    # The entry on the upstream's page: found by the search box, then deleted.
    page.reload()
    page.click("table[aria-labelledby=upstreams] a:has-text('index')")
    page.wait_for_selector("h2:has-text('index')")
    assert page.locator("table[aria-label='Cache entries'] tbody tr").count() == 2  # the page and the wheel
    page.fill("#cache-search", ".whl")
    page.press("#cache-search", "Enter")
    page.wait_for_selector("text=Page 1 of 1 · 1 entry")
    rows = page.locator("table[aria-label='Cache entries'] tbody tr")
    assert rows.count() == 1 and file_name in rows.first.inner_text()
    accessible(page, accessibility)
    shot(page, screenshots, "virtual-upstream-cache")
    page.click(f"button[aria-label='Delete cache entry {entry.relative_path}']")
    page.wait_for_selector(f"text=Cache entry {entry.relative_path} deleted.")
    assert "search=.whl" in page.url  # back where it was
    page.wait_for_selector("text=No cache entry matches.")
    entry.refresh_from_db()
    assert entry.status == "pending_destruction"
    assert CacheEntry.objects.filter(status="default").count() == 1  # the project page stays
    accessible(page, accessibility)

    # A deny rule on the remote upstream (Maintainers; the API's check): a refused regex says why,
    # then a wildcard rule is listed, and pip no longer gets the name from that upstream.
    page.select_option("#rule-target", "name")
    page.select_option("#rule-pattern_type", "regex")
    page.fill("#rule-pattern", "(public)\\1")
    page.click("button:has-text('Add rule')")
    page.wait_for_selector("text=Pattern is not a regular expression RE2 accepts")
    page.select_option("#rule-pattern_type", "wildcard")
    page.fill("#rule-pattern", "public-*")
    page.click("button:has-text('Add rule')")
    page.wait_for_selector("text=Rule added: deny name public-*.")
    assert "public-*" in page.inner_text("table[aria-labelledby=rules] tbody")
    accessible(page, accessibility)
    shot(page, screenshots, "virtual-upstream-rules")
    denied = run([sys.executable, *args, "--upgrade", "public-pkg"], client_env())
    assert denied[0] != 0 and "No matching distribution found for public-pkg" in denied[1], denied[1]

    # The registry's own settings: removed versions kept, shown on its page.
    page.goto(f"{url}/groups/acme/-/virtual_registries/pypi/registries/{registry.pk}")
    page.check("#registry-retain_removed_versions")
    page.click("button:has-text('Save registry')")
    page.wait_for_selector("text=Registry saved.")
    assert "on" in page.inner_text("table[aria-label='Registry settings'] td")
    registry.refresh_from_db()
    assert registry.retain_removed_versions
    accessible(page, accessibility)

    page.click(".crumbs >> text=Virtual registries")
    page.wait_for_url(f"{url}/groups/acme/-/virtual_registries")
    assert page.locator("table[aria-label='PyPI registries'] tbody tr").first.inner_text().startswith("python")
    accessible(page, accessibility)
    shot(page, screenshots, "virtual-registries")
