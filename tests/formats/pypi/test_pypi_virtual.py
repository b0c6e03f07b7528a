"""PyPI pages through a virtual registry (spec §2.3): always re-rendered (never the upstream's
HTML), PEP 691 JSON or PEP 503 HTML as negotiated, hashes, requires-python, yanked, PEP 714 keys."""

import hashlib

import pytest

from accounts.roles import AccessLevel
from registry.models import RegistryUpstream, Upstream, VirtualRegistry
from tests.factories import AccessTokenFactory, GroupFactory, member
from tests.helpers import auth_headers
from tests.upstreams import StaticUpstream

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("local_upstreams_allowed")]
JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture
def upstream(tmp_path):
    page = tmp_path / "simple" / "demo"
    page.mkdir(parents=True)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "demo-1.0.tar.gz").write_bytes(b"sdist")
    digest = hashlib.sha256(b"sdist").hexdigest()
    (page / "index.html").write_text(
        "<html><head><script>alert(1)</script></head><body>"
        f'<a href="../../files/demo-1.0.tar.gz#sha256={digest}" data-requires-python="&gt;=3.9&quot;&lt;x" '
        'data-yanked="bad &lt;b&gt;build" onclick="steal()">demo-1.0.tar.gz</a>'
        '<a href="../../files/demo-0.1.tar.gz">demo-0.1.tar.gz</a>'
        "</body></html>"
    )
    server = StaticUpstream(tmp_path, log_path=tmp_path / "log").start()
    server.digest = digest
    yield server
    server.stop()


@pytest.fixture
def registry(upstream):
    group = GroupFactory(path="acme")
    registry = VirtualRegistry.objects.create(group=group, format="pypi", name="py")
    remote = Upstream.objects.create(group=group, format="pypi", kind="remote", name="u", url=f"{upstream.url}/simple")
    RegistryUpstream.objects.create(registry=registry, upstream=remote, position=1)
    registry.reader = auth_headers(AccessTokenFactory(user=member(group, AccessLevel.GUEST)).plaintext)
    return registry


def url(registry, path):
    return f"/api/v4/virtual_registries/packages/pypi/{registry.pk}/{path}"


def test_html_is_rendered_here_never_passed_through(client, registry, upstream):
    response = client.get(url(registry, "simple/Demo/"), **registry.reader)
    assert response.status_code == 200 and response["Vary"] == "Accept, Accept-Encoding"
    html = response.content.decode()
    assert "<script>" not in html and "onclick" not in html and "steal" not in html
    files = f"http://testserver{url(registry, 'files/demo')}"
    assert f'href="{files}/{upstream.digest}/demo-1.0.tar.gz#sha256={upstream.digest}"' in html
    assert 'data-requires-python="&gt;=3.9&quot;&lt;x"' in html
    assert 'data-yanked="bad &lt;b&gt;build"' in html
    unhashed = "h-" + hashlib.sha256(b"../../files/demo-0.1.tar.gz").hexdigest()
    assert f'href="{files}/{unhashed}/demo-0.1.tar.gz"' in html


def test_json_page_and_files(client, registry, upstream):
    response = client.get(url(registry, "simple/demo/"), HTTP_ACCEPT=JSON, **registry.reader)
    assert response["Content-Type"] == JSON
    document = response.json()
    assert document["meta"] == {"api-version": "1.0"} and document["name"] == "demo"
    sdist = document["files"][0]
    assert sdist["hashes"] == {"sha256": upstream.digest}
    assert sdist["requires-python"] == '>=3.9"<x' and sdist["yanked"] == "bad <b>build"
    assert sdist["core-metadata"] is False and sdist["dist-info-metadata"] is False
    got = client.get(sdist["url"].removeprefix("http://testserver"), **registry.reader)
    assert got.status_code == 200 and b"".join(got.streaming_content) == b"sdist"
    missing = client.get(document["files"][1]["url"].removeprefix("http://testserver"), **registry.reader)
    assert missing.status_code == 404  # listed, but the upstream has no such file
    names = client.get(url(registry, "simple/"), HTTP_ACCEPT=JSON, **registry.reader).json()
    assert names["projects"] == [{"name": "demo"}]
    assert client.get(url(registry, "files/demo/nothex/demo-1.0.tar.gz"), **registry.reader).status_code == 400


def test_files_of_denied_versions_are_left_out_of_the_page(client, registry):
    """Version rules (spec §1.9) filter the page: its files and the JSON `versions`."""
    from registry.models import UpstreamRule

    remote = Upstream.objects.get()
    UpstreamRule.objects.create(
        upstream=remote, rule_type="deny", pattern_type="wildcard", target="version", pattern="0.*"
    )
    document = client.get(url(registry, "simple/demo/"), HTTP_ACCEPT=JSON, **registry.reader).json()
    assert [entry["filename"] for entry in document["files"]] == ["demo-1.0.tar.gz"]
    html = client.get(url(registry, "simple/demo/"), **registry.reader).content.decode()
    assert "demo-1.0.tar.gz" in html and "demo-0.1" not in html
    denied = client.get(url(registry, f"files/demo/h-{'0' * 64}/demo-0.1.tar.gz"), **registry.reader)
    assert denied.status_code == 404


def test_a_compressed_page_that_inflates_past_the_ratio_is_refused(client, tmp_path):
    """Spec §5.3: a gzip body may inflate at most 100:1 (past 1 MiB). nginx sends each page's
    `.gz` with `Content-Encoding: gzip`: an ordinary page is read; 20 MiB of blanks in 20 KiB
    (under the page cap, 1000:1) is a 502 and nothing is cached."""
    import gzip

    from registry.models import CacheEntry
    from tests.upstreams import Nginx

    digest = hashlib.sha256(b"sdist").hexdigest()
    for name, body in (
        ("fine", f'<a href="../../files/fine-1.0.tar.gz#sha256={digest}">fine-1.0.tar.gz</a>'.encode()),
        ("bomb", b"<html>" + b" " * (20 * 1024 * 1024) + b"</html>"),
    ):
        page = tmp_path / "root" / "simple" / name
        page.mkdir(parents=True)
        (page / "index.html").write_bytes(b"<html>uncompressed copy, never sent</html>")
        (page / "index.html.gz").write_bytes(gzip.compress(body, 9))
    server = Nginx(tmp_path / "nginx", {"index": ("127.0.0.1", tmp_path / "root")}).start()
    try:
        group = GroupFactory(path="acme")
        registry = VirtualRegistry.objects.create(group=group, format="pypi", name="py")
        remote = Upstream.objects.create(
            group=group, format="pypi", kind="remote", name="u", url=f"{server.url('index')}/simple"
        )
        RegistryUpstream.objects.create(registry=registry, upstream=remote, position=1)
        reader = auth_headers(AccessTokenFactory(user=member(group, AccessLevel.GUEST)).plaintext)
        fine = client.get(url(registry, "simple/fine/"), HTTP_ACCEPT=JSON, **reader)
        assert fine.status_code == 200 and fine.json()["files"][0]["filename"] == "fine-1.0.tar.gz"
        bomb = client.get(url(registry, "simple/bomb/"), **reader)
        assert bomb.status_code == 502 and "inflates more than 100:1" in bomb.content.decode()
        assert list(CacheEntry.objects.values_list("relative_path", flat=True)) == ["/fine/"]
        assert Upstream.objects.get(pk=remote.pk).consecutive_failures == 0  # the upstream is fine
    finally:
        server.stop()


# --- rendered answers: memoized, gzipped, 304 (issue 16) ---------------------------------------


def test_a_repeated_page_is_answered_without_reading_the_stored_page(client, registry, django_assert_max_num_queries):
    """Each rendering (HTML, JSON) of a cached page is remembered under the page's identity: the
    next identical request neither reads nor parses the stored page (taken out of the blob store
    meanwhile), in a bounded number of queries; gzipped when asked, 304 on a matching ETag."""
    import gzip

    from django.core.files.base import ContentFile

    from registry.models import CacheEntry
    from registry.storage import BlobStore

    html = client.get(url(registry, "simple/demo/"), **registry.reader)
    first = client.get(url(registry, "simple/demo/"), HTTP_ACCEPT=JSON, **registry.reader)
    assert html["ETag"] != first["ETag"] and html["Content-Type"].startswith("text/html")
    entry = CacheEntry.objects.select_related("blob").get()
    store = BlobStore()
    with store.open(entry.blob) as handle:
        stored = handle.read()
    store.storage.delete(entry.blob.key)
    try:
        with django_assert_max_num_queries(8):
            again = client.get(url(registry, "simple/demo/"), HTTP_ACCEPT=JSON, **registry.reader)
        zipped = client.get(url(registry, "simple/demo/"), HTTP_ACCEPT_ENCODING="gzip", **registry.reader)
        not_modified = client.get(url(registry, "simple/demo/"), HTTP_IF_NONE_MATCH=html["ETag"], **registry.reader)
    finally:
        store.storage.save(entry.blob.key, ContentFile(stored))
    assert again.status_code == 200 and again["X-Packhouse-Cache"] == "HIT"
    assert again.content == first.content and again["Content-Type"] == JSON
    assert zipped["Content-Encoding"] == "gzip" and gzip.decompress(zipped.content) == html.content
    assert not_modified.status_code == 304 and not_modified["ETag"] == html["ETag"]


def test_an_upstream_reorder_makes_a_new_page_at_once(client, registry, upstream, tmp_path):
    """Another upstream put first serves the page on the very next request, and back again."""
    mirror = tmp_path / "mirror" / "demo"
    mirror.mkdir(parents=True)
    digest = hashlib.sha256(b"other").hexdigest()
    (mirror / "index.html").write_text(f'<a href="../../files/demo-2.0.tar.gz#sha256={digest}">demo-2.0.tar.gz</a>')
    first = Upstream.objects.get()
    second = Upstream.objects.create(
        group=registry.group, format="pypi", kind="remote", name="m", url=f"{upstream.url}/mirror"
    )
    link = RegistryUpstream.objects.create(registry=registry, upstream=second, position=2)
    maintainer = auth_headers(AccessTokenFactory(user=member(registry.group, AccessLevel.MAINTAINER)).plaintext)

    def filenames():
        response = client.get(url(registry, "simple/demo/"), HTTP_ACCEPT=JSON, **registry.reader)
        assert response.status_code == 200, response.content
        return [entry["filename"] for entry in response.json()["files"]], response["X-Packhouse-Upstream"]

    assert filenames() == (["demo-1.0.tar.gz", "demo-0.1.tar.gz"], str(first.pk))
    links = "/api/v4/virtual_registries/packages/pypi/registry_upstreams"
    moved = client.patch(f"{links}/{link.pk}", {"position": 1}, content_type="application/json", **maintainer)
    assert moved.status_code == 200, moved.content
    assert filenames() == (["demo-2.0.tar.gz"], str(second.pk))
    moved = client.patch(f"{links}/{link.pk}", {"position": 2}, content_type="application/json", **maintainer)
    assert moved.status_code == 200, moved.content
    assert filenames() == (["demo-1.0.tar.gz", "demo-0.1.tar.gz"], str(first.pk))


def test_file_urls_use_the_external_url_not_the_host(client, registry, upstream, settings):
    """File URLs of project pages (HTML and JSON) and the root index's links name Packhouse by
    PACKHOUSE_EXTERNAL_URL when it is set, whatever Host the request names, as the project
    endpoints do; a page remembered before the setting changed is not answered after it."""
    settings.ALLOWED_HOSTS = ["*"]
    files = url(registry, "files/demo")
    assert (
        f'href="http://testserver{files}/'
        in client.get(url(registry, "simple/demo/"), **registry.reader).content.decode()
    )
    settings.EXTERNAL_URL = "https://packages.example.com"
    html = client.get(url(registry, "simple/demo/"), HTTP_HOST="evil.example", **registry.reader).content.decode()
    assert html.count(f'href="https://packages.example.com{files}/') == 2 and "evil.example" not in html
    document = client.get(url(registry, "simple/demo/"), HTTP_ACCEPT=JSON, HTTP_HOST="evil.example", **registry.reader)
    assert [f["url"].startswith(f"https://packages.example.com{files}/") for f in document.json()["files"]] == [
        True
    ] * 2
    same_host = client.get(url(registry, "simple/demo/"), **registry.reader).content.decode()
    assert same_host.count(f'href="https://packages.example.com{files}/') == 2
    index = client.get(url(registry, "simple/"), HTTP_HOST="evil.example", **registry.reader).content.decode()
    assert f'href="https://packages.example.com{url(registry, "simple/demo/")}"' in index, index
