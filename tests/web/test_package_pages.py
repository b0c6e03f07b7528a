"""A version's page worth reading: README rendered and sanitized (hostile READMEs leave no
script, style, event attribute or javascript: URL), license, links, dependencies, dist-tags, how
it was published, file downloads and copy buttons."""

import json
import re

import pytest
from django.test import Client

from accounts.roles import AccessLevel
from registry.models import PackageVersion
from tests.factories import AccessTokenFactory, CiJobFactory, GroupFactory, ProjectFactory, UserFactory, member
from tests.formats.npm.npmdocs import publish_document
from tests.formats.pypi.dists import make_wheel, wheel_name
from tests.formats.pypi.test_pypi_api import form
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db

HOSTILE_MARKDOWN = """# Hello

<script>alert(1)</script>
<style>body { display: none }</style>
<img src="x" onerror="alert(2)">
<a href="javascript:alert(3)">click</a> [md link](javascript:alert(4))
<iframe src="https://evil.example"></iframe>
<svg onload="alert(5)"><script>alert(6)</script></svg>
<form action="https://evil.example"><input name="password"><button>Go</button></form>
<meta http-equiv="refresh" content="0;url=https://evil.example">
<base href="https://evil.example/">
<object data="x.swf"></object><embed src="x.swf">
<div style="position:fixed;top:0" onclick="alert(7)" onmouseover="alert(8)" id="main" class="x">styled</div>
<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data</a>
<math><mtext><table><mglyph><style><img src=x onerror=alert(9)></style></mglyph></table></mtext></math>

| a | b |
|---|---|
| **1** | 2 |
"""

HOSTILE_RST = """Title
=====

.. raw:: html

   <script>alert(1)</script>

.. include:: /etc/passwd

`bad <javascript:alert(2)>`_ and `good <https://example.com/>`_

.. image:: javascript:alert(3)
"""

FORBIDDEN = re.compile(
    r"<script|<style|<iframe|<svg|<form|<input|<meta|<base|<object|<embed|<math|\bon[a-z]+\s*=|"
    r"(href|src|action)\s*=\s*[\"']?\s*(javascript|data):|style=|\bid=|class=|root:x:0",
    re.IGNORECASE,
)


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="tools")


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def npm_publish(project, headers, document):
    name = document["name"]
    response = Client().put(
        f"/api/v4/projects/{project.pk}/packages/npm/{name.replace('/', '%2f')}",
        data=json.dumps(document),
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 200, response.content
    return PackageVersion.objects.get(package__name=name)


def readme_of(content):
    html = content.decode()
    assert '<section class="readme"' in html
    return html.split('<section class="readme"', 1)[1].split("</section>", 1)[0]  # nh3 lets no <section> through


def test_hostile_markdown_readme_is_rendered_without_anything_that_runs(project):
    developer = member(project, AccessLevel.DEVELOPER)
    token = AccessTokenFactory(user=developer).plaintext
    document = publish_document("hostile", "1.0.0")
    document["readme"] = HOSTILE_MARKDOWN
    version = npm_publish(project, auth_headers(token, "bearer"), document)
    page = signed_in(developer).get(f"/acme/tools/-/packages/{version.pk}")
    assert page.status_code == 200
    readme = readme_of(page.content)
    assert "<h1>Hello</h1>" in readme and "<strong>1</strong>" in readme and "<table>" in readme
    assert "styled" in readme and ">click</a>" in readme
    assert not FORBIDDEN.search(readme), FORBIDDEN.search(readme)
    assert "script-src 'self'" in page["Content-Security-Policy"]


def test_hostile_restructuredtext_description(project):
    developer = member(project, AccessLevel.DEVELOPER)
    metadata = (
        "Metadata-Version: 2.1\nName: hostile\nVersion: 1.0.0\nSummary: s\nDescription-Content-Type: text/x-rst\n\n"
        + HOSTILE_RST
    ).encode()
    data = make_wheel("hostile", "1.0.0", metadata=metadata)
    response = Client().post(
        f"/api/v4/projects/{project.pk}/packages/pypi",
        data=form("hostile", "1.0.0", data, wheel_name("hostile", "1.0.0")),
        **auth_headers(AccessTokenFactory(user=developer).plaintext, "basic:__token__"),
    )
    assert response.status_code == 201
    version = PackageVersion.objects.get(package__name="hostile")
    readme = readme_of(signed_in(developer).get(f"/acme/tools/-/packages/{version.pk}").content)
    assert "<h2>Title</h2>" in readme and 'href="https://example.com/"' in readme
    assert not FORBIDDEN.search(readme), FORBIDDEN.search(readme)


def test_markdown_long_description_license_links_and_requires_dist(project):
    developer = member(project, AccessLevel.DEVELOPER)
    metadata = (
        b"Metadata-Version: 2.1\nName: nice\nVersion: 2.0.0\nSummary: A nice package\nLicense: MIT\n"
        b"Home-page: javascript:alert(1)\nProject-URL: Docs, https://docs.example.com/nice\n"
        b"Requires-Dist: requests>=2\nDescription-Content-Type: text/markdown\n\n# Nice\n\nUse `nice`.\n"
    )
    data = make_wheel("nice", "2.0.0", metadata=metadata)
    Client().post(
        f"/api/v4/projects/{project.pk}/packages/pypi",
        data=form("nice", "2.0.0", data, wheel_name("nice", "2.0.0")),
        **auth_headers(AccessTokenFactory(user=developer).plaintext, "basic:__token__"),
    )
    version = PackageVersion.objects.get(package__name="nice")
    html = signed_in(developer).get(f"/acme/tools/-/packages/{version.pk}").content.decode()
    assert '<p class="summary" id="summary">A nice package</p>' in html
    assert '<td id="license">MIT</td>' in html
    assert '<a href="https://docs.example.com/nice"' in html
    assert "javascript:" not in html
    assert "<code>requests</code></td><td><code>&gt;=2</code>" in html
    assert "<h1>Nice</h1>" in readme_of(html.encode())


def test_npm_dependencies_dist_tags_and_the_ci_job_that_published(project):
    developer = member(project, AccessLevel.DEVELOPER)
    job = CiJobFactory(project=project, user=developer, name="release", ref="main")
    document = publish_document(
        "@acme/lib", "3.1.0", description="A lib", license="ISC", dependencies={"left-pad": "^1.3.0"},
        peerDependencies={"react": ">=18"}, tag="next",
    )  # fmt: skip
    version = npm_publish(project, auth_headers(job.plaintext, "job"), document)
    html = signed_in(developer).get(f"/acme/tools/-/packages/{version.pk}").content.decode()
    assert 'data-created-via="job">CI job token</span>' in html
    assert f'<span id="ci-job">#{job.pk} release (main)</span>' in html
    assert '<span class="badge">next: 3.1.0</span>' in html
    assert "Peer dependencies (1)" in html and "<code>left-pad</code></td><td><code>^1.3.0</code>" in html
    assert '<td id="license">ISC</td>' in html


def test_install_snippets_have_copy_buttons_served_as_a_script_of_our_own(project):
    developer = member(project, AccessLevel.DEVELOPER)
    document = publish_document("copyme", "1.0.0")
    version = npm_publish(project, auth_headers(AccessTokenFactory(user=developer).plaintext, "bearer"), document)
    html = signed_in(developer).get(f"/acme/tools/-/packages/{version.pk}").content.decode()
    snippets = re.findall(r'<pre id="(snippet-\d+)"', html)
    assert snippets and all(f'data-copy="{snippet}"' in html for snippet in snippets)
    assert '<script src="/static/web/copy.js" defer></script>' in html
    assert "<script>" not in html and " onclick=" not in html


def test_file_download_link_follows_the_pull_rule(project):
    developer = member(project, AccessLevel.DEVELOPER)
    document = publish_document("fetchme", "1.0.0")
    version = npm_publish(project, auth_headers(AccessTokenFactory(user=developer).plaintext, "bearer"), document)
    package_file = version.files.get()
    url = f"/acme/tools/-/package_files/{package_file.pk}/download"
    assert f'href="{url}"' in signed_in(developer).get(f"/acme/tools/-/packages/{version.pk}").content.decode()
    response = signed_in(member(project, AccessLevel.REPORTER)).get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:2] == b"\x1f\x8b"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert signed_in(member(project, AccessLevel.GUEST)).get(url).status_code == 403
    assert signed_in(UserFactory()).get(url).status_code == 404
    assert Client().get(url).status_code == 302
    other = ProjectFactory(group=GroupFactory(path="other"), path="x")
    assert (
        signed_in(member(other, AccessLevel.OWNER))
        .get(f"/other/x/-/package_files/{package_file.pk}/download")
        .status_code
        == 404
    )
