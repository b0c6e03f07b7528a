"""What users upload never runs in a browser on Packhouse's origin (registry.middleware).

Each format's files and the documents built from them are published with a script inside that
would log to the console and open a dialog, then opened in Chromium the way a signed-in user
follows a link: nothing runs. The same headers are checked on every response of the package API.
"""

import hashlib
import io
import json
import urllib.request

import pytest
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from accounts.roles import AccessLevel
from tests.conftest import TEST_SERVER, start_live_server, stop_live_server
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.formats.npm.npmdocs import publish_document, tarball
from tests.formats.nuget.nupkg import nupkg

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

SCRIPT = "console.log('PWNED');alert('PWNED')"
XHTML_SCRIPT = f'<x:script xmlns:x="http://www.w3.org/1999/xhtml">{SCRIPT}</x:script>'
HTML = f"<!doctype html><html><body><script>{SCRIPT}</script></body></html>".encode()
EVIL_NUSPEC = f"""<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata>
    <id>Evil.Pkg</id><version>1.0.0</version><authors>x</authors><description>d</description>
  </metadata>
  {XHTML_SCRIPT}
</package>
"""
EVIL_METADATA = f"""<?xml version="1.0" encoding="UTF-8"?>
<metadata>{XHTML_SCRIPT}<groupId>com.acme</groupId><artifactId>evil</artifactId>
<versioning><versions><version>1.0</version></versions></versioning></metadata>
""".encode()
EVIL_POM = f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>com.acme</groupId><artifactId>evil</artifactId><version>1.0</version>{XHTML_SCRIPT}</project>
""".encode()
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'none'; sandbox", "X-Content-Type-Options": "nosniff"}


def send(method, url, token, data=None, content_type="application/octet-stream"):
    headers = {"PRIVATE-TOKEN": token}
    if data is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - local server
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.status, dict(response.headers)


@pytest.fixture
def published(live_registry):
    """A public project holding a hostile file of every format; returns the URLs to open."""
    return publish_hostile_files(live_registry)


@pytest.fixture
def registry_behind_nginx(request, tmp_path):
    """A node as `make serve` runs it (packhouse.node): nginx sends the downloads
    (X-Accel-Redirect, deploy/nginx-x-accel.conf). The suite's live server when it is one, else
    one of this test's own."""
    if TEST_SERVER == "node":
        yield request.getfixturevalue("live_registry")
        return
    blobs, spool = tmp_path / "blobs", tmp_path / "spool"
    blobs.mkdir()
    spool.mkdir()
    server = start_live_server(blobs, spool, tmp_path, shape="node")
    yield server
    stop_live_server(server)


def publish_hostile_files(registry):
    project = ProjectFactory(group=GroupFactory(path="evil", visibility="public"), path="pkgs", visibility="public")
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.MAINTAINER)
    token = AccessTokenFactory(user=user).plaintext
    base = registry.api(f"projects/{project.pk}/packages")

    generic = f"{base}/generic/evil/1.0.0/index.html"
    assert send("PUT", generic, token, HTML, "text/html")[0] == 201

    maven_metadata = f"{base}/maven/com/acme/evil/maven-metadata.xml"
    assert send("PUT", f"{base}/maven/com/acme/evil/1.0/evil-1.0.pom", token, EVIL_POM, "text/xml")[0] == 200
    assert send("PUT", maven_metadata, token, EVIL_METADATA, "application/xml")[0] == 200

    part = io.BytesIO(nupkg("Evil.Pkg", "1.0.0", spec=EVIL_NUSPEC))
    part.name = "evil.nupkg"
    body = encode_multipart(BOUNDARY, {"package": part})
    assert send("PUT", f"{base}/nuget/", token, body, MULTIPART_CONTENT)[0] == 201

    manifest = {"name": "evil", "version": "1.0.0", "description": f"<script>{SCRIPT}</script>"}
    document = publish_document("evil", "1.0.0", tarball(manifest, {"package/x.html": HTML}), manifest=manifest)
    assert send("PUT", f"{base}/npm/evil", token, json.dumps(document).encode(), "application/json")[0] == 200

    return [
        generic,
        maven_metadata,
        f"{base}/maven/com/acme/evil/1.0/evil-1.0.pom",
        f"{base}/nuget/download/evil.pkg/1.0.0/evil.pkg.1.0.0.nuspec",
        f"{base}/nuget/download/evil.pkg/1.0.0/evil.pkg.1.0.0.nupkg",
        f"{base}/npm/evil",
        f"{base}/npm/evil/-/evil-1.0.0.tgz",
        f"{base}/nuget/v2/FindPackagesById()?id='Evil.Pkg'",
    ]


def test_behind_nginx_every_file_it_sends_keeps_packhouses_headers(registry_behind_nginx):
    """nginx answers an X-Accel-Redirect with the file's own headers: deploy/nginx-x-accel.conf
    copies Packhouse's, on the answer Django built and on its replay."""
    urls = publish_hostile_files(registry_behind_nginx)
    for url in urls[:1] + urls[2:]:  # the files (maven-metadata.xml is a document Django sends)
        for _ in range(2):  # built by Django, then replayed
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - local server
                headers, body = response.headers, response.read()
            for name, value in SECURITY_HEADERS.items():
                assert headers[name] == value, (url, name, headers[name])
            assert headers["X-Frame-Options"] == "DENY", url
            if url.endswith((".html", ".pom", ".nupkg", ".tgz")):  # stored files (a .nuspec is read from its .nupkg)
                assert headers["Accept-Ranges"] == "bytes", url  # nginx sent the file, not Django
                assert headers["X-Checksum-SHA256"] == hashlib.sha256(body).hexdigest(), url
                assert headers["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"', url
                assert headers["Content-Disposition"].startswith("attachment"), url


def test_hostile_package_files_run_nothing_when_opened_in_a_browser(browser, published):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    ran = []
    page.on("console", lambda message: ran.append(message.text))
    page.on("dialog", lambda dialog: (ran.append(dialog.message), dialog.dismiss()))
    try:
        for url in published:
            try:
                page.goto(url, wait_until="load")
            except Exception as error:  # an attachment is downloaded, not shown: nothing to run
                assert "Download is starting" in str(error), (url, error)
            page.wait_for_timeout(200)
    finally:
        context.close()
    assert not [text for text in ran if "PWNED" in text], ran


def test_every_package_api_answer_forbids_scripts_and_sniffing(live_registry, published):
    for url in published:
        request = urllib.request.Request(url)  # noqa: S310 - local server
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            for name, value in SECURITY_HEADERS.items():
                assert response.headers[name] == value, (url, name, response.headers[name])
            if "/download/" in url or url.endswith((".tgz", ".html", ".pom", ".nupkg", ".nuspec")):
                assert response.headers["Content-Disposition"].startswith("attachment"), url
            assert "html" not in response.headers["Content-Type"], url
