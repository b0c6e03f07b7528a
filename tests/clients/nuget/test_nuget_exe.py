"""The real NuGet clients against a live gunicorn process: NuGet.exe 5.8 (v3) on mono, and
Debian's nuget 2.8.7 (v2). scripts/install-nuget.sh installs them when missing.

NuGet.exe sends source credentials only after a 401 with the Basic challenge, and pushes a
chunked multipart body without Content-Length (twice with source credentials only).
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from accounts.roles import AccessLevel
from registry.models import PackageFile, PackageVersion
from tests.factories import (
    AccessTokenFactory,
    CiJobFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from tests.helpers import answered, flushed_download_count

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[3]

NUSPEC = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata>
    <id>{id}</id>
    <version>{version}</version>
    <authors>Acme</authors>
    <description>Packhouse client test package</description>
    <tags>packhouse test</tags>
  </metadata>
  <files><file src="readme.txt" target="content/readme.txt" /></files>
</package>
"""


@pytest.fixture(scope="session")
def nuget_exe():
    """The path of NuGet.exe 5.8 (mono and Debian's nuget installed alongside)."""
    result = subprocess.run(["sh", str(ROOT / "scripts/install-nuget.sh")], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"scripts/install-nuget.sh failed:\n{result.stdout}\n{result.stderr}")
    exe = result.stdout.strip().splitlines()[-1]
    assert Path(exe).is_file() and shutil.which("mono") and shutil.which("nuget")
    return exe


class Client:
    """One private HOME and NuGet.Config; runs `mono NuGet.exe` (or Debian's `nuget`)."""

    def __init__(self, exe, tmp_path):
        self.exe = exe
        self.tmp = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.config = tmp_path / "NuGet.Config"
        self.config.write_text('<?xml version="1.0" encoding="utf-8"?>\n<configuration />\n')
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_DATA_HOME": str(self.home / ".local/share"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "NUGET_PACKAGES": str(self.home / "packages"),
            "MONO_ENV_OPTIONS": "",
            "LANG": "C.UTF-8",
        }

    def run(self, *args, legacy=False, check=True):
        command = ["nuget", *args] if legacy else ["mono", self.exe, *args]
        for _attempt in range(2):
            result = subprocess.run(
                command, cwd=self.tmp, env=self.env, capture_output=True, text=True, timeout=120, check=False
            )
            output = result.stdout + result.stderr
            # Once in seven CI runs, mono aborted NuGet.exe 5.8 inside its own array sort
            # ("FATAL UNHANDLED EXCEPTION ... Failed to compare two elements in the array --->
            # System.Threading.ThreadAbortException") before it pushed: a crash of the client's
            # runtime, not an answer of ours, so that crash alone is run once more.
            if not ("FATAL UNHANDLED EXCEPTION" in output and "ThreadAbortException" in output):
                break
        if check:
            assert result.returncode == 0, f"{' '.join(command[:3])}... failed:\n{output}"
        return result.returncode, output

    def add_source(self, name, url, username, password, legacy=False, user_config=False):
        """Into the client's NuGet.Config, or with `user_config` into the user's own
        (~/.config/NuGet/NuGet.Config: the only one `nuget search` reads, it has no -ConfigFile)."""
        return self.run(
            "sources",
            "add",
            "-Name",
            name,
            "-Source",
            url,
            "-UserName",
            username,
            "-Password",
            password,
            *([] if legacy else ["-StorePasswordInClearText"]),
            # nuget 2.8.7 on mono mangles absolute paths: relative to its working directory
            *([] if user_config else ["-ConfigFile", self.config.name if legacy else str(self.config)]),
            legacy=legacy,
        )

    def pack(self, package_id, version):
        work = self.tmp / f"{package_id}-{version}"
        work.mkdir()
        (work / "readme.txt").write_text("hello from packhouse\n")
        (work / f"{package_id}.nuspec").write_text(NUSPEC.format(id=package_id, version=version))
        self.run("pack", str(work / f"{package_id}.nuspec"), "-OutputDirectory", str(self.tmp), "-NonInteractive")
        path = self.tmp / f"{package_id}.{version}.nupkg"
        assert path.is_file()
        return path

    def push(self, path, source, *extra, check=True):
        return self.run(
            "push",
            str(path),
            "-Source",
            source,
            *extra,
            "-ConfigFile",
            str(self.config),
            "-NonInteractive",
            check=check,
        )

    def install(self, package_id, version, source, check=True):
        out = self.tmp / "out"
        code, output = self.run(
            "install",
            package_id,
            "-Version",
            version,
            "-Source",
            source,
            "-OutputDirectory",
            str(out),
            "-ConfigFile",
            str(self.config),
            "-NoCache",
            "-NonInteractive",
            check=check,
        )
        installed = out / f"{package_id}.{version}" / "content" / "readme.txt"
        return code, output, installed

    def install_latest(self, package_id, source, out, legacy=False):
        """`install <id>` without -Version: the versions the client picked, as installed in `out`."""
        config = self.config.name if legacy else str(self.config)
        self.run(
            *("install", package_id, "-Source", source, "-OutputDirectory", str(out)),
            *("-ConfigFile", config, "-NoCache", "-NonInteractive"),
            legacy=legacy,
        )
        return sorted(path.name for path in out.iterdir())


@pytest.fixture
def world():
    group = GroupFactory(path="dotnet")
    project = ProjectFactory(group=group, path="libs")
    user = UserFactory(username="dev")
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return group, project, user


def project_source(live_registry, project):
    return live_registry.api(f"projects/{project.pk}/packages/nuget/index.json")


def test_nuget_exe_pack_push_install_with_each_token_kind(nuget_exe, live_registry, world, tmp_path):
    group, project, user = world
    pat = AccessTokenFactory(user=user).plaintext
    deploy = DeployTokenFactory(project=project)
    job = CiJobFactory(project=project, user=user)
    client = Client(nuget_exe, tmp_path)

    # project source with a personal access token (Basic, after the challenge)
    client.add_source("packhouse", project_source(live_registry, project), user.username, pat)
    first = client.pack("Acme.Widgets", "1.0.0")
    # -ApiKey with a deploy token (X-NuGet-ApiKey on the chunked PUT)
    client.push(first, "packhouse", "-ApiKey", deploy.plaintext)
    version = PackageVersion.objects.get()
    assert (version.package.name, version.version, version.created_via) == ("Acme.Widgets", "1.0.0", "deploy")

    # source credentials only, a job token: the chunked body goes twice (anonymous, then Basic)
    ci = Client(nuget_exe, tmp_path / "ci")
    ci.add_source("packhouse", project_source(live_registry, project), "gitlab-ci-token", job.plaintext)
    second = client.pack("Acme.Widgets", "1.1.0")
    ci.push(second, "packhouse")
    puts = [
        line
        for line in live_registry.log().splitlines()
        if f'"PUT /api/v4/projects/{project.pk}/packages/nuget/ ' in line
    ]
    assert [line.split('" ')[1].split()[0] for line in puts] == ["201", "401", "201"], puts
    latest = PackageVersion.objects.get(version="1.1.0")
    assert latest.created_via == "job" and latest.ci_job_id == job.pk

    _, _, installed = client.install("Acme.Widgets", "1.0.0", "packhouse")
    assert installed.read_text() == "hello from packhouse\n"

    # the group source (registration packageContent -> project download), deploy token
    client.add_source(
        "group",
        live_registry.api(f"groups/{group.pk}/-/packages/nuget/index.json"),
        deploy.username,
        deploy.plaintext,
    )
    _, _, installed = client.install("Acme.Widgets", "1.1.0", "group")
    assert installed.is_file()
    # counted by the worker, sent to Redis and written to the row in batches
    assert flushed_download_count(PackageVersion.objects.filter(version="1.1.0"), 1) == 1


def test_nuget_exe_refusals(nuget_exe, live_registry, world, tmp_path):
    group, project, user = world
    pat = AccessTokenFactory(user=user).plaintext
    read_only = DeployTokenFactory(project=project, scopes=["read_package_registry"])
    client = Client(nuget_exe, tmp_path)
    client.add_source("packhouse", project_source(live_registry, project), user.username, pat)
    package = client.pack("Acme.Refused", "1.0.0")

    code, output = client.push(package, "packhouse", "-ApiKey", "glpat-wrong-token", check=False)
    assert code != 0 and "401" in output
    code, output = client.push(package, "packhouse", "-ApiKey", read_only.plaintext, check=False)
    assert code != 0 and "403" in output
    assert not PackageFile.objects.exists()

    # anonymous on a private project: challenged, and no credentials to answer with
    anonymous = Client(nuget_exe, tmp_path / "anonymous")
    code, output, installed = anonymous.install(
        "Acme.Refused", "1.0.0", project_source(live_registry, project), check=False
    )
    assert code != 0 and not installed.exists()
    assert "401" in output, output


def test_debian_nuget_v2_push_and_install(nuget_exe, live_registry, world, tmp_path):
    group, project, user = world
    pat = AccessTokenFactory(user=user).plaintext
    client = Client(nuget_exe, tmp_path)
    package = client.pack("Acme.Legacy", "2.0.0")
    v2 = live_registry.api(f"projects/{project.pk}/packages/nuget/v2")
    client.add_source("legacy", v2, user.username, pat, legacy=True)
    client.run(
        "push", package.name, pat, "-Source", v2, "-ConfigFile", client.config.name, "-NonInteractive", legacy=True
    )
    assert PackageVersion.objects.get().package.name == "Acme.Legacy"
    out = tmp_path / "legacy-out"
    client.run(
        "install",
        "Acme.Legacy",
        "-Version",
        "2.0.0",
        "-Source",
        v2,
        "-OutputDirectory",
        str(out),
        "-ConfigFile",
        str(client.config),
        "-NoCache",
        "-NonInteractive",
        legacy=True,
    )
    assert (out / "Acme.Legacy.2.0.0" / "content" / "readme.txt").is_file()


def test_install_from_s3_storage(nuget_exe, live_registry_s3, world, tmp_path):
    """On S3 the .nupkg comes from the store by a presigned link: NuGet.exe (v3, project and
    group sources) and Debian's nuget (v2) follow the 302 without their source credentials."""
    group, project, user = world
    pat = AccessTokenFactory(user=user).plaintext
    client = Client(nuget_exe, tmp_path)
    client.add_source("packhouse", project_source(live_registry_s3, project), user.username, pat)
    client.push(client.pack("Acme.Stored", "1.0.0"), "packhouse")
    blob = PackageFile.objects.get(file_name__endswith=".nupkg").blob
    assert blob.key in live_registry_s3.bucket.keys()

    _, _, installed = client.install("Acme.Stored", "1.0.0", "packhouse")
    assert installed.read_text() == "hello from packhouse\n"
    deploy = DeployTokenFactory(project=project)
    grouped = Client(nuget_exe, tmp_path / "group")
    grouped.add_source(
        "group",
        live_registry_s3.api(f"groups/{group.pk}/-/packages/nuget/index.json"),
        deploy.username,
        deploy.plaintext,
    )
    _, _, installed = grouped.install("Acme.Stored", "1.0.0", "group")
    assert installed.read_text() == "hello from packhouse\n"

    legacy = Client(nuget_exe, tmp_path / "legacy")
    v2 = live_registry_s3.api(f"projects/{project.pk}/packages/nuget/v2")
    legacy.add_source("legacy", v2, user.username, pat, legacy=True)
    out = tmp_path / "legacy" / "out"
    legacy.run(
        *("install", "Acme.Stored", "-Version", "1.0.0", "-Source", v2, "-OutputDirectory", str(out)),
        *("-ConfigFile", str(legacy.config), "-NoCache", "-NonInteractive"),
        legacy=True,
    )
    assert (out / "Acme.Stored.1.0.0" / "content" / "readme.txt").read_text() == "hello from packhouse\n"

    # Each client asks anonymously first (401, the challenge), then with its credentials (302).
    log = live_registry_s3.log()
    assert answered(log, "GET", r"/api/v4/projects/\d+/packages/nuget/download/[^ ]+\.nupkg") == [401, 302] * 2
    assert answered(log, "GET", r"/api/v4/projects/\d+/packages/nuget/v2/download/[^ ]+")[-1] == 302


def test_an_unlisted_version(nuget_exe, live_registry, world, tmp_path):
    """nuget.org's unlisting as far as each real client lets a server take it: out of search
    (NuGet.exe's v3 `search`), out of "the latest" for Debian's nuget 2.8.7 (v2: `Listed` false,
    `Published` 1900-01-01, not IsLatestVersion), still installed by exact version by both.

    NuGet.exe 5.8's `install <id>` without -Version takes the highest version whatever the
    server says: its InstallCommand builds the ResolutionContext with `includeUnlisted: true`,
    so NuGetPackageManager.GetLatestVersionCoreAsync keeps `package.Listed ||
    resolutionContext.IncludeUnlisted`, true for every version of the registration it read
    (`listed: false` is parsed, then ignored). NuGet.Client fixed it in 5.9.0 (e9722d69, "Do not
    install unlisted package in NuGet.exe", NuGet/Home#7466). No other answer helps 5.8: the
    exact-version install reads the same registration index (DependencyInfoResourceV3.
    ResolvePackage), so a version left out of it could not be installed by exact version either.
    The assertion below pins 5.8's behaviour; with a NuGet.exe of 5.9 or later it is 1.0.0."""
    group, project, user = world
    boss = UserFactory(username="boss")
    MembershipFactory(user=boss, project=project, access_level=AccessLevel.MAINTAINER)
    pat = AccessTokenFactory(user=user).plaintext
    client = Client(nuget_exe, tmp_path / "publisher")  # (its NuGet.Config is not above `fresh`'s)
    client.add_source("packhouse", project_source(live_registry, project), user.username, pat)
    for version in ("1.0.0", "1.1.0"):
        client.push(client.pack("Acme.Widgets", version), "packhouse")
    newer = PackageVersion.objects.get(version="1.1.0")
    unlist = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H",
         f"PRIVATE-TOKEN: {AccessTokenFactory(user=boss).plaintext}", "--data", "reason=superseded",
         live_registry.api(f"projects/{project.pk}/packages/{newer.pk}/withdrawal")],
        capture_output=True, text=True, timeout=60, check=False,
    ).stdout  # fmt: skip
    assert unlist == "201"

    _, _, installed = client.install("Acme.Widgets", "1.1.0", "packhouse")  # exact version: still installable
    assert installed.read_text() == "hello from packhouse\n"

    # A client that has never read the registration (so no HTTP cache: 5.8 applies -NoCache only
    # after it has picked the latest version, and keeps a registration index for 30 minutes).
    fresh = Client(nuget_exe, tmp_path / "fresh")
    fresh.add_source("packhouse", project_source(live_registry, project), user.username, pat, user_config=True)
    fresh.add_source("packhouse", project_source(live_registry, project), user.username, pat)
    _, output = fresh.run("search", "Acme", "-Source", "packhouse", "-NonInteractive")
    assert "> Acme.Widgets | 1.0.0 |" in output and "1.1.0" not in output, output
    assert fresh.install_latest("Acme.Widgets", "packhouse", tmp_path / "latest") == ["Acme.Widgets.1.1.0"]

    v2 = live_registry.api(f"projects/{project.pk}/packages/nuget/v2")
    legacy = Client(nuget_exe, tmp_path / "legacy")
    legacy.add_source("legacy", v2, user.username, pat, legacy=True)
    assert legacy.install_latest("Acme.Widgets", v2, tmp_path / "legacy-latest", legacy=True) == ["Acme.Widgets.1.0.0"]
    out = tmp_path / "legacy-exact"
    legacy.run(
        *("install", "Acme.Widgets", "-Version", "1.1.0", "-Source", v2, "-OutputDirectory", str(out)),
        *("-ConfigFile", legacy.config.name, "-NoCache", "-NonInteractive"),
        legacy=True,
    )
    assert (out / "Acme.Widgets.1.1.0" / "content" / "readme.txt").is_file()
