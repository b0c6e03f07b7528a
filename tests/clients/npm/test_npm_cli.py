"""The real npm CLI (npm 11) against a live gunicorn: publish with every kind of token,
install into a fresh project, dist-tags, deprecate, unpublish, and the refusals.

Each npm run happens in its own directory with an `.npmrc` written exactly as GitLab documents
it, a fresh `--cache`, and a private HOME (no user config leaks in).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from accounts.roles import AccessLevel
from packages_npm.models import NpmDistTag
from registry.models import PackageVersion
from tests.factories import (
    AccessTokenFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    credential,
)
from tests.helpers import answered

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[3]
NAME = "@acme/left-pad"
INDEX_JS = "module.exports = (s, n, c = ' ') => String(s).padStart(n, c);\n"


class Npm:
    def __init__(self, tmp_path, registry):
        self.tmp_path = tmp_path
        self.registry = registry
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.count = 0

    def env(self):
        return {
            **os.environ,
            "HOME": str(self.home),
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
            "npm_config_loglevel": "http",
        }

    def _npm(self, cwd, args):
        self.count += 1
        cache = self.tmp_path / f"cache-{self.count}"
        return subprocess.run(
            ["npm", *args, "--cache", str(cache)],
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def run(self, cwd, *args, check=True):
        result = self._npm(cwd, args)
        output = result.stdout + result.stderr
        if check and result.returncode != 0:
            raise AssertionError(f"npm {' '.join(args)} failed ({result.returncode}):\n{output}")
        return result.returncode, output

    def stdout(self, cwd, *args):
        """What the command printed on stdout (npm's http log goes to stderr)."""
        result = self._npm(cwd, args)
        result.check_returncode()
        return result.stdout.strip()

    def npmrc(self, directory, base, token=None):
        """`base` is `projects/<id>` or `groups/<id>/-`."""
        url = f"{self.registry.host}/api/v4/{base}/packages/npm/"
        lines = [f"@acme:registry=http://{url}"]
        if token:
            lines.append(f"//{url}:_authToken={token}")
        (directory / ".npmrc").write_text("\n".join(lines) + "\n")

    def package(self, version, base, token, name=NAME, body=INDEX_JS):
        directory = self.tmp_path / f"pkg-{version}-{self.count}"
        directory.mkdir()
        (directory / "package.json").write_text(
            json.dumps({"name": name, "version": version, "main": "index.js", "license": "MIT"})
        )
        (directory / "index.js").write_text(body)
        self.npmrc(directory, base, token)
        return directory

    def consumer(self, base, token, dependencies):
        directory = self.tmp_path / f"app-{self.count}"
        directory.mkdir()
        (directory / "package.json").write_text(
            json.dumps({"name": "app", "version": "1.0.0", "private": True, "dependencies": dependencies})
        )
        self.npmrc(directory, base, token)
        return directory


@pytest.fixture
def npm(tmp_path, live_registry):
    return Npm(tmp_path, live_registry)


@pytest.fixture
def group():
    return GroupFactory(path="acme")


@pytest.fixture
def project(group):
    return ProjectFactory(group=group, path="web")


@pytest.fixture
def developer(project):
    user = UserFactory(username="dev")
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return user


@pytest.fixture
def maintainer_token(project):
    user = UserFactory(username="boss")
    MembershipFactory(user=user, project=project, access_level=AccessLevel.MAINTAINER)
    return AccessTokenFactory(user=user).plaintext


def installed(app):
    module = app / "node_modules" / "@acme" / "left-pad"
    return json.loads((module / "package.json").read_text())["version"], (module / "index.js").read_text()


@pytest.mark.parametrize("kind", ["personal", "deploy", "job"])
def test_publish_with_each_token_then_install(npm, project, developer, kind):
    token = credential(kind, project, developer)[1]
    base = f"projects/{project.pk}"
    npm.run(npm.package("1.0.0", base, token), "publish")
    version = PackageVersion.objects.get()
    assert (version.package.name, version.version, version.created_via) == (NAME, "1.0.0", kind)

    app = npm.consumer(base, token, {NAME: "^1.0.0"})
    npm.run(app, "install")
    assert installed(app) == ("1.0.0", INDEX_JS)
    lock = json.loads((app / "package-lock.json").read_text())
    resolved = lock["packages"]["node_modules/@acme/left-pad"]["resolved"]
    assert resolved == f"{npm.registry.url}/api/v4/{base}/packages/npm/{NAME}/-/{NAME}-1.0.0.tgz"


def test_group_endpoint_install_gets_the_project_tarball(npm, group, project, developer):
    token = AccessTokenFactory(user=developer).plaintext
    npm.run(npm.package("1.0.0", f"projects/{project.pk}", token), "publish")
    npm.run(npm.package("1.2.0", f"projects/{project.pk}", token), "publish")
    app = npm.consumer(f"groups/{group.pk}/-", token, {NAME: "~1.0.0"})
    npm.run(app, "install")
    assert installed(app) == ("1.0.0", INDEX_JS)
    assert npm.stdout(app, "view", NAME, "dist-tags.latest") == "1.2.0"


def test_dist_tags_deprecate_and_unpublish(npm, project, developer, maintainer_token):
    base = f"projects/{project.pk}"
    dev_token = AccessTokenFactory(user=developer).plaintext
    npm.run(npm.package("1.0.0", base, dev_token), "publish")
    npm.run(npm.package("1.1.0", base, dev_token), "publish")
    npm.run(npm.package("2.0.0-rc.1", base, dev_token), "publish", "--tag", "next")

    work = npm.consumer(base, dev_token, {})
    npm.run(work, "dist-tag", "add", f"{NAME}@1.0.0", "stable")
    output = npm.stdout(work, "dist-tag", "ls", NAME)
    assert output.splitlines() == ["latest: 1.1.0", "next: 2.0.0-rc.1", "stable: 1.0.0"]
    code, output = npm.run(work, "dist-tag", "rm", NAME, "stable", check=False)
    assert code != 0  # a Developer may tag, not untag

    boss = npm.consumer(base, maintainer_token, {})
    npm.run(boss, "dist-tag", "rm", NAME, "stable")
    assert npm.stdout(boss, "dist-tag", "ls", NAME).splitlines() == ["latest: 1.1.0", "next: 2.0.0-rc.1"]

    code, _ = npm.run(work, "deprecate", f"{NAME}@1.0.0", "use 1.1", check=False)
    assert code != 0  # Developer
    npm.run(boss, "deprecate", f"{NAME}@1.0.0", "use 1.1")
    assert npm.stdout(boss, "view", f"{NAME}@1.0.0", "deprecated") == "use 1.1"
    assert PackageVersion.objects.get(version="1.0.0").metadata["deprecated"] == "use 1.1"
    app = npm.consumer(base, dev_token, {NAME: "1.0.0"})
    _, output = npm.run(app, "install")
    assert "deprecated" in output and "use 1.1" in output
    npm.run(boss, "deprecate", f"{NAME}@1.0.0", "")
    assert "deprecated" not in PackageVersion.objects.get(version="1.0.0").metadata

    npm.run(boss, "unpublish", f"{NAME}@1.1.0")
    assert json.loads(npm.stdout(boss, "view", NAME, "versions", "--json")) == ["1.0.0", "2.0.0-rc.1"]
    assert PackageVersion.objects.get(version="1.1.0").status == "pending_destruction"

    code, _ = npm.run(work, "unpublish", NAME, "--force", check=False)
    assert code != 0  # Developer
    npm.run(boss, "unpublish", NAME, "--force")
    code, output = npm.run(boss, "view", NAME, check=False)
    assert code != 0 and "E404" in output
    assert not PackageVersion.objects.exclude(status="pending_destruction").exists()


def test_dist_tags_through_the_group_and_instance_registries(npm, group, project, developer, maintainer_token):
    """`npm dist-tag add/rm` with the group or the instance endpoint as the scope's registry act
    on the package's project, under its rules."""
    dev_token = AccessTokenFactory(user=developer).plaintext
    npm.run(npm.package("1.0.0", f"projects/{project.pk}", dev_token), "publish")
    npm.run(npm.package("1.1.0", f"projects/{project.pk}", dev_token), "publish")

    def at(url, token):
        directory = npm.tmp_path / f"tagger-{len(list(npm.tmp_path.glob('tagger-*')))}"
        directory.mkdir()
        (directory / "package.json").write_text('{"name": "tagger", "version": "1.0.0", "private": true}')
        (directory / ".npmrc").write_text(f"@acme:registry=http://{url}\n//{url}:_authToken={token}\n")
        return directory

    host = npm.registry.host
    for url in (f"{host}/api/v4/groups/{group.pk}/-/packages/npm/", f"{host}/api/v4/packages/npm/"):
        dev, boss = at(url, dev_token), at(url, maintainer_token)
        npm.run(dev, "dist-tag", "add", f"{NAME}@1.0.0", "stable")
        assert npm.stdout(dev, "dist-tag", "ls", NAME).splitlines() == ["latest: 1.1.0", "stable: 1.0.0"]
        code, _ = npm.run(dev, "dist-tag", "rm", NAME, "stable", check=False)
        assert code != 0  # a Developer may tag, not untag
        npm.run(boss, "dist-tag", "rm", NAME, "stable")
        assert npm.stdout(boss, "dist-tag", "ls", NAME).splitlines() == ["latest: 1.1.0"]
    assert sorted(NpmDistTag.objects.values_list("tag", flat=True)) == ["latest"]


def test_refusals_and_anonymous_pull(npm, project, developer):
    base = f"projects/{project.pk}"
    good = AccessTokenFactory(user=developer).plaintext
    code, output = npm.run(npm.package("1.0.0", base, "glpat-not-a-token"), "publish", check=False)
    assert code != 0 and "401" in output
    read_only = DeployTokenFactory(project=project, scopes=["read_package_registry"]).plaintext
    code, output = npm.run(npm.package("1.0.0", base, read_only), "publish", check=False)
    assert code != 0 and "403" in output
    assert not PackageVersion.objects.exists()

    npm.run(npm.package("1.0.0", base, good), "publish")
    code, output = npm.run(npm.package("1.0.0", base, good, body="changed"), "publish", check=False)
    # npm 11 reads the packument first and refuses on its own; the server's 403 is the backstop
    assert code != 0, output
    assert "previously published versions: 1.0.0" in output or "Package already exists." in output

    app = npm.consumer(base, None, {NAME: "1.0.0"})
    code, output = npm.run(app, "install", check=False)
    assert code != 0 and "401" in output
    project.package_registry_access_level = "public"
    project.save()
    app = npm.consumer(base, None, {NAME: "1.0.0"})
    npm.run(app, "install")
    assert installed(app) == ("1.0.0", INDEX_JS)


def test_publish_from_a_ci_job(npm, project, developer, live_registry):
    if not (ROOT / "accounts" / "management" / "commands" / "ci_job.py").exists():
        pytest.skip("manage.py ci_job is not there yet")
    directory = npm.package("3.0.0", f"projects/{project.pk}", None)
    url = f"{live_registry.host}/api/v4/projects/{project.pk}/packages/npm/"
    (directory / ".npmrc").write_text(f"@acme:registry=http://{url}\n//{url}:_authToken=${{CI_JOB_TOKEN}}\n")
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "ci_job",
            "run",
            "--project",
            project.full_path,
            "--user",
            developer.username,
            "--server-url",
            live_registry.url,
            "--",
            "npm",
            "publish",
            "--cache",
            str(npm.tmp_path / "ci-cache"),
        ],
        cwd=directory,
        env={**npm.env(), "PACKHOUSE_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    version = PackageVersion.objects.get(version="3.0.0")
    assert version.created_via == "job"
    assert version.ci_job.status == "success"  # the job ended with the command


def _peak_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_large_package_publishes_in_bounded_server_memory(npm, live_registry, project, developer):
    token = AccessTokenFactory(user=developer).plaintext
    base = f"projects/{project.pk}"
    npm.run(npm.package("0.0.1", base, token), "publish")  # warm the worker up first
    package = npm.package("1.0.0", base, token)
    payload = os.urandom(40 * 1024 * 1024)  # incompressible: a 40 MiB tarball, a 54 MiB JSON body
    (package / "blob.bin").write_bytes(payload)
    (worker,) = live_registry.worker_pids()
    Path(f"/proc/{worker}/clear_refs").write_text("5")  # reset the peak to the current RSS
    before = _peak_rss_kib(worker)

    npm.run(package, "publish")

    growth_mib = (_peak_rss_kib(worker) - before) / 1024
    print(f"worker peak RSS growth over a 40 MiB npm publish: {growth_mib:.1f} MiB")
    assert growth_mib < 32  # the body parsed whole would hold it twice over: 100 MiB and more
    app = npm.consumer(base, token, {NAME: "1.0.0"})
    npm.run(app, "install")
    assert (app / "node_modules" / "@acme" / "left-pad" / "blob.bin").read_bytes() == payload


def test_install_from_s3_storage(live_registry_s3, tmp_path, group, project, developer):
    """On S3 the tarball comes from the store by a presigned link: npm follows the 302 (without
    its token: another origin) and checks the bytes against the packument's integrity."""
    npm = Npm(tmp_path, live_registry_s3)
    token = AccessTokenFactory(user=developer).plaintext
    npm.run(npm.package("1.0.0", f"projects/{project.pk}", token), "publish")
    blob = PackageVersion.objects.get().files.get().blob
    assert blob.key in live_registry_s3.bucket.keys()
    for base in (f"projects/{project.pk}", f"groups/{group.pk}/-"):
        app = npm.consumer(base, token, {NAME: "1.0.0"})
        npm.run(app, "install")
        assert installed(app) == ("1.0.0", INDEX_JS)
    # (the group's packument links its tarball below the group endpoint)
    tarball = r"/api/v4/(?:projects/\d+|groups/\d+/-)/packages/npm/@acme/left-pad/-/@acme/left-pad-1\.0\.0\.tgz"
    assert answered(live_registry_s3.log(), "GET", tarball) == [302, 302]


def test_npm_search_at_project_and_group_level(npm, group, project, developer):
    token = AccessTokenFactory(user=developer).plaintext
    npm.run(npm.package("1.0.0", f"projects/{project.pk}", token), "publish")
    npm.run(npm.package("0.3.0", f"projects/{project.pk}", token, name="@acme/right-pad"), "publish")
    for base in (f"projects/{project.pk}", f"groups/{group.pk}/-"):
        work = npm.consumer(base, token, {})
        registry = f"{npm.registry.url}/api/v4/{base}/packages/npm/"
        found = json.loads(npm.stdout(work, "search", "--json", f"--registry={registry}", "left"))
        assert [(hit["name"], hit["version"]) for hit in found] == [(NAME, "1.0.0")]
        assert found[0]["publisher"]["username"] == "dev"
        listing = npm.stdout(work, "search", f"--registry={registry}", "pad")
        assert NAME in listing and "@acme/right-pad" in listing
