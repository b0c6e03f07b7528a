"""The real npm installing through an npm virtual registry (spec §2.2, §3, §4.2, §5.4), with a real
Verdaccio as the remote upstream and the group's own project as the local upstream.

- packages from both, byte-identical to what was published, tarball URLs rewritten to Packhouse;
- `@acme/x` 1.0.0 published locally and 99.0.0 on the upstream: npm gets 1.0.0 and Verdaccio is
  never asked for that name;
- Verdaccio stopped, npm's cache wiped: a fresh install works from Packhouse's cache; a package
  never cached is a 503;
- a tarball whose bytes differ from its packument's integrity: npm fails, nothing is cached;
- a scope in the local upstream's `claimed_scopes` hides every remote name in it (spec §4.2);
- version rules filter the packument npm reads: versions, `time` and dist-tags (spec §1.9);
- `npm audit` reports the advisory of the first remote upstream (a real advisory server) for a
  public package, and that upstream never receives the name of the private one (issue 16).
"""

import hashlib
import json
import tarfile
import urllib.error
import urllib.request

import pytest

from accounts.roles import AccessLevel
from registry.models import CacheEntry, Upstream
from tests.clients.npm.test_npm_cli import Npm
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.upstreams import AdvisoryUpstream, Verdaccio

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def verdaccio(tmp_path):
    directory = tmp_path / "verdaccio"
    directory.mkdir()
    server = Verdaccio(directory).start()
    yield server
    server.stop()


def package_dir(tmp_path, name, version, body, npmrc_lines):
    directory = tmp_path / f"pkg-{name.replace('/', '-')}-{version}"
    directory.mkdir()
    (directory / "package.json").write_text(
        json.dumps({"name": name, "version": version, "main": "index.js", "license": "MIT"})
    )
    (directory / "index.js").write_text(body)
    (directory / ".npmrc").write_text("\n".join(npmrc_lines) + "\n")
    return directory


def consumer(tmp_path, label, registry_url, token, dependencies):
    directory = tmp_path / f"app-{label}"
    directory.mkdir()
    (directory / "package.json").write_text(
        json.dumps({"name": "app", "version": "1.0.0", "private": True, "dependencies": dependencies})
    )
    host_path = registry_url.split("://", 1)[1]
    # No retries: a 502 or 503 is the answer under test, not a hiccup to wait out.
    (directory / ".npmrc").write_text(f"registry={registry_url}/\n//{host_path}/:_authToken={token}\nfetch-retries=0\n")
    return directory


def api(server, token, path, **body):
    request = urllib.request.Request(
        server.api(path),
        data=json.dumps(body).encode(),
        headers={"Private-Token": token, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        return json.loads(response.read())


def module(app, name):
    root = app / "node_modules" / name
    return json.loads((root / "package.json").read_text())["version"], (root / "index.js").read_text()


@pytest.fixture
def setup(virtual_server, verdaccio, tmp_path):
    group = GroupFactory(path="acme")
    project = ProjectFactory(group=group, path="web")
    user = UserFactory(username="dev")
    MembershipFactory(user=user, group=group, access_level=AccessLevel.MAINTAINER)
    token = AccessTokenFactory(user=user).plaintext
    npm = Npm(tmp_path, virtual_server)
    # Upstream: an ordinary public package, and a higher version of the group's own name.
    npm.run(
        package_dir(tmp_path, "pad-lite", "1.0.0", "module.exports = 'public';\n", verdaccio.npmrc_lines()), "publish"
    )
    npm.run(
        package_dir(tmp_path, "@acme/x", "99.0.0", "module.exports = 'evil';\n", verdaccio.npmrc_lines()), "publish"
    )
    # Local: @acme/x 1.0.0 in the group's project.
    project_url = virtual_server.api(f"projects/{project.pk}/packages/npm")
    local_lines = [f"@acme:registry={project_url}/", f"//{project_url.split('://', 1)[1]}/:_authToken={token}"]
    npm.run(package_dir(tmp_path, "@acme/x", "1.0.0", "module.exports = 'ours';\n", local_lines), "publish")

    # The registry, as a Maintainer sets it up through the REST API (after the local publish: the
    # local upstream claims the names its project already holds).
    registry = api(virtual_server, token, f"groups/{group.pk}/-/virtual_registries/packages/npm/registries", name="all")
    base = f"virtual_registries/packages/npm/registries/{registry['id']}"
    remote = api(virtual_server, token, f"{base}/upstreams", url=verdaccio.url, name="verdaccio")
    api(virtual_server, token, f"{base}/local/upstreams", name="ours", local_project_id=project.pk)
    remote = Upstream.objects.get(pk=remote["id"])
    registry_url = virtual_server.api(f"virtual_registries/packages/npm/{registry['id']}")
    return npm, registry_url, token, remote


def test_npm_installs_from_both_upstreams_and_survives_an_outage(setup, verdaccio, tmp_path):
    npm, registry_url, token, remote = setup
    before = len(verdaccio.requests())
    app = consumer(tmp_path, "first", registry_url, token, {"pad-lite": "^1.0.0", "@acme/x": "*"})
    npm.run(app, "install")
    assert module(app, "pad-lite") == ("1.0.0", "module.exports = 'public';\n")
    assert module(app, "@acme/x") == ("1.0.0", "module.exports = 'ours';\n")  # never 99.0.0
    lock = json.loads((app / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/pad-lite"]["resolved"] == f"{registry_url}/pad-lite/-/pad-lite-1.0.0.tgz"
    assert lock["node_modules/@acme/x"]["resolved"] == f"{registry_url}/@acme/x/-/x-1.0.0.tgz"
    asked = verdaccio.requests()[before:]
    assert any("pad-lite" in line for line in asked)
    assert not any("acme" in line for line in asked), asked
    # The cached tarball is the upstream's bytes.
    tarball = CacheEntry.objects.get(upstream=remote, relative_path="/pad-lite/-/pad-lite-1.0.0.tgz")
    stored = next((verdaccio.storage / "pad-lite").glob("*.tgz")).read_bytes()
    assert tarball.verified and tarball.blob.sha256 == hashlib.sha256(stored).hexdigest()

    verdaccio.stop()
    offline = consumer(tmp_path, "offline", registry_url, token, {"pad-lite": "^1.0.0", "@acme/x": "*"})
    npm.run(offline, "install")  # a fresh npm cache: everything from Packhouse
    assert module(offline, "pad-lite") == ("1.0.0", "module.exports = 'public';\n")
    missing = consumer(tmp_path, "missing", registry_url, token, {"never-cached": "*"})
    code, output = npm.run(missing, "install", check=False)
    assert code != 0 and "503" in output


def test_a_tarball_that_does_not_match_its_integrity_is_refused(setup, verdaccio, tmp_path):
    npm, registry_url, token, remote = setup
    stored = next((verdaccio.storage / "pad-lite").glob("*.tgz"))
    work = tmp_path / "tamper"
    work.mkdir()
    (work / "package").mkdir()
    (work / "package" / "package.json").write_text(json.dumps({"name": "pad-lite", "version": "1.0.0"}))
    (work / "package" / "index.js").write_text("module.exports = 'tampered';\n")
    with tarfile.open(stored, "w:gz") as archive:
        archive.add(work / "package", arcname="package")

    app = consumer(tmp_path, "tampered", registry_url, token, {"pad-lite": "1.0.0"})
    code, output = npm.run(app, "install", check=False)
    assert code != 0 and "502" in output, output
    assert not (app / "node_modules" / "pad-lite").exists()
    assert not CacheEntry.objects.filter(relative_path__endswith=".tgz").exists()


def call(server, token, method, path, body):
    request = urllib.request.Request(
        server.api(path),
        data=json.dumps(body).encode(),
        headers={"Private-Token": token, "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_a_claimed_scope_hides_every_remote_name_in_it(setup, virtual_server, verdaccio, tmp_path):
    npm, registry_url, token, remote = setup
    lib = package_dir(tmp_path, "@partner/lib", "1.0.0", "module.exports = 'partner';\n", verdaccio.npmrc_lines())
    npm.run(lib, "publish")
    app = consumer(tmp_path, "open", registry_url, token, {"@partner/lib": "^1.0.0"})
    npm.run(app, "install")  # nobody claims @partner yet: the upstream's
    assert module(app, "@partner/lib")[0] == "1.0.0"

    local = Upstream.objects.get(kind="local")
    path = f"virtual_registries/packages/npm/local/upstreams/{local.pk}"
    claimed = call(virtual_server, token, "PATCH", path, {"claimed_scopes": ["@acme", "partner"]})
    assert claimed["claimed_scopes"] == ["@acme", "@partner"]

    before = len(verdaccio.requests())
    closed = consumer(tmp_path, "closed", registry_url, token, {"@partner/lib": "^1.0.0"})
    code, output = npm.run(closed, "install", check=False)
    assert code != 0 and "404" in output, output  # the project holds no @partner/lib: still hidden
    assert not (closed / "node_modules").exists()
    assert not any("partner" in line for line in verdaccio.requests()[before:])  # nor fetched, nor cached copy


def test_version_rules_filter_the_packument_npm_reads(setup, virtual_server, verdaccio, tmp_path):
    npm, registry_url, token, remote = setup
    for version, tag in (("2.0.0", None), ("2.1.0", None), ("3.0.0-rc.1", "next")):
        body = f"module.exports = '{version}';\n"
        directory = package_dir(tmp_path, "pad-lite", version, body, verdaccio.npmrc_lines())
        npm.run(directory, "publish", *(("--tag", tag) if tag else ()))
    rules = f"virtual_registries/packages/npm/upstreams/{remote.pk}/rules"
    api(virtual_server, token, rules, rule_type="deny", pattern_type="wildcard", target="version", pattern="2.1.*")
    api(virtual_server, token, rules, rule_type="deny", pattern_type="wildcard", target="version", pattern="3.*")

    app = consumer(tmp_path, "rules", registry_url, token, {"pad-lite": "*"})
    npm.run(app, "install")
    assert module(app, "pad-lite") == ("2.0.0", "module.exports = '2.0.0';\n")  # latest 2.1.0 denied
    request = urllib.request.Request(f"{registry_url}/pad-lite", headers={"Private-Token": token})
    full = json.loads(urllib.request.urlopen(request, timeout=30).read())
    assert sorted(full["versions"]) == ["1.0.0", "2.0.0"]
    assert full["dist-tags"] == {"latest": "2.0.0"}  # `next` pointed at a denied version: dropped
    assert set(full["time"]) - {"created", "modified"} == {"1.0.0", "2.0.0"}
    request = urllib.request.Request(f"{registry_url}/-/package/pad-lite/dist-tags", headers={"Private-Token": token})
    assert json.loads(urllib.request.urlopen(request, timeout=30).read()) == {"latest": "2.0.0"}
    pinned = consumer(tmp_path, "pinned", registry_url, token, {"pad-lite": "2.1.0"})
    code, output = npm.run(pinned, "install", check=False)
    assert code != 0 and "ETARGET" in output, output
    tarball = urllib.request.Request(f"{registry_url}/pad-lite/-/pad-lite-2.1.0.tgz", headers={"Private-Token": token})
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(tarball, timeout=30)
    assert denied.value.code == 404
    assert not CacheEntry.objects.filter(relative_path="/pad-lite/-/pad-lite-2.1.0.tgz").exists()


UPSTREAM_SECRET = "upstream-secret-5d2a"


def test_npm_audit_reports_advisories_without_sending_private_names(virtual_server, tmp_path):
    advisories = AdvisoryUpstream(tmp_path / "advisories").start()
    try:
        advisories.publish("pad-lite", "1.0.0", {"index.js": "module.exports = 'public';\n"})
        advisory = {
            "id": 1001,
            "url": "https://github.com/advisories/GHSA-test-0001",
            "title": "Prototype pollution in pad-lite",
            "severity": "high",
            "vulnerable_versions": "<1.0.1",
            "cwe": ["CWE-1321"],
            "cvss": {"score": 7.5, "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N"},
        }
        advisories.set_advisories({"pad-lite": [advisory], "@acme/x": [{**advisory, "id": 666}]})
        group = GroupFactory(path="acme")
        project = ProjectFactory(group=group, path="web")
        user = UserFactory(username="dev")
        MembershipFactory(user=user, group=group, access_level=AccessLevel.MAINTAINER)
        token = AccessTokenFactory(user=user).plaintext
        npm = Npm(tmp_path, virtual_server)
        project_url = virtual_server.api(f"projects/{project.pk}/packages/npm")
        local_lines = [f"@acme:registry={project_url}/", f"//{project_url.split('://', 1)[1]}/:_authToken={token}"]
        npm.run(package_dir(tmp_path, "@acme/x", "1.0.0", "module.exports = 'ours';\n", local_lines), "publish")
        registry = api(
            virtual_server, token, f"groups/{group.pk}/-/virtual_registries/packages/npm/registries", name="all"
        )
        base = f"virtual_registries/packages/npm/registries/{registry['id']}"
        api(virtual_server, token, f"{base}/upstreams", url=advisories.url, name="public", auth_token=UPSTREAM_SECRET)
        api(virtual_server, token, f"{base}/local/upstreams", name="ours", local_project_id=project.pk)
        registry_url = virtual_server.api(f"virtual_registries/packages/npm/{registry['id']}")

        app = consumer(tmp_path, "audited", registry_url, token, {"pad-lite": "1.0.0", "@acme/x": "^1.0.0"})
        npm.run(app, "install")  # audit off (Npm's environment): the lockfile only
        lock = json.loads((app / "package-lock.json").read_text())["packages"]
        assert (
            lock["node_modules/@acme/x"]["version"] == "1.0.0" and lock["node_modules/pad-lite"]["version"] == "1.0.0"
        )
        result = npm._npm(app, ["audit", "--json"])
        report = json.loads(result.stdout)
        assert result.returncode == 1, result.stdout + result.stderr  # vulnerabilities found
        assert set(report["vulnerabilities"]) == {"pad-lite"}, report
        found = report["vulnerabilities"]["pad-lite"]
        assert found["severity"] == "high" and found["via"][0]["url"] == advisory["url"]

        received = advisories.audits()
        assert [request["path"] for request in received] == ["/-/npm/v1/security/advisories/bulk"]
        assert json.loads(received[0]["body"]) == {"pad-lite": ["1.0.0"]}
        assert "acme" not in received[0]["body"]
        assert received[0]["authorization"] == f"Bearer {UPSTREAM_SECRET}"  # never the caller's token
        log = virtual_server.log()
        assert token not in log and UPSTREAM_SECRET not in log

        advisories.stop()  # the upstream down: npm reports an audit error, not "0 vulnerabilities"
        failed = npm._npm(app, ["audit", "--json"])
        assert failed.returncode != 0, failed.stdout + failed.stderr
        error = json.loads(failed.stdout)
        assert error["statusCode"] == 503 and "upstream public is unavailable" in error["message"]
        assert "vulnerabilities" not in error
    finally:
        advisories.stop()
