"""Browser fixtures: Playwright driving Debian's chromium (never `playwright install`:
scripts/install-chromium.sh installs the system chromium once)."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium():
    subprocess.run([str(ROOT / "scripts" / "install-chromium.sh")], check=True, timeout=900)
    assert Path(CHROMIUM).exists()
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium):
    # Playwright's sync API keeps an event loop in this thread; the ORM calls of the test
    # itself are still plain synchronous calls.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20000)
    yield page
    context.close()


AXE_VERSION = "4.14.1"


@pytest.fixture(scope="session")
def axe_source(tmp_path_factory):
    """axe-core's browser bundle, installed from the npm registry with the real npm (once)."""
    prefix = tmp_path_factory.mktemp("axe")
    subprocess.run(
        ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(prefix), f"axe-core@{AXE_VERSION}"],
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "HOME": str(prefix), "npm_config_cache": str(prefix / "cache")},
    )
    return (prefix / "node_modules" / "axe-core" / "axe.min.js").read_text()


@pytest.fixture
def accessibility(axe_source):
    """`accessibility(page)`: axe-core's serious and critical violations on the page, run through
    the DevTools protocol (the pages' Content-Security-Policy runs no injected script tag)."""

    def check(page):
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(axe_source)  # a script evaluated as it is, in the page's global scope
        return page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
                .filter(v => v.impact === "serious" || v.impact === "critical")
                .map(v => ({id: v.id, impact: v.impact, help: v.help,
                            targets: v.nodes.map(n => n.target.join(" "))}))"""
        )

    return check
