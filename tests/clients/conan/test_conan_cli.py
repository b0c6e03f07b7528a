"""The real `conan` 2 client (from PyPI, pinned in the test extra) against a live gunicorn:
`conan remote add` and `conan remote login` with every kind of token, `conan create` of a small
header-only recipe, `conan upload`, then `conan install --requires` into a fresh cache; recipe
revisions; and the refusals.

Each run uses its own CONAN_HOME (non-interactive, no conancenter), with a fixed profile.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.roles import AccessLevel
from registry.models import PackageFile, PackageVersion
from tests.factories import (
    AccessTokenFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    credential,
)

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

CONAN = str(Path(sys.executable).parent / "conan")
PROFILE = """[settings]
os=Linux
arch=x86_64
build_type=Release
compiler=gcc
compiler.version=12
compiler.libcxx=libstdc++11
compiler.cppstd=17
"""
RECIPE = """from conan import ConanFile
from conan.tools.files import copy


class HelloConan(ConanFile):
    name = "hello"
    version = "{version}"
    package_type = "header-library"
    exports_sources = "include/*"
    no_copy_source = True

    def package(self):
        copy(self, "*.h", self.source_folder, self.package_folder)

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []

    def package_id(self):
        self.info.clear()
"""


class Conan:
    def __init__(self, tmp_path, registry):
        assert shutil.which(CONAN), "conan is installed with the test extra (pyproject.toml)"
        self.tmp_path = tmp_path
        self.registry = registry
        self.count = 0

    def home(self, base):
        """A fresh CONAN_HOME whose only remote is `packhouse`, at `base` (`projects/<id>`)."""
        self.count += 1
        home = self.tmp_path / f"conan-home-{self.count}"
        (home / "profiles").mkdir(parents=True)
        (home / "profiles" / "default").write_text(PROFILE)
        (home / "global.conf").write_text(
            "core:non_interactive = True\ncore.download:retry = 0\ncore.upload:retry = 0\n"
        )
        remote = {"name": "packhouse", "url": self.registry.api(f"{base}/packages/conan"), "verify_ssl": False}
        (home / "remotes.json").write_text(json.dumps({"remotes": [remote]}))
        return home

    def run(self, home, *args, cwd=None, check=True):
        env = {key: value for key, value in os.environ.items() if not key.startswith("CONAN")}
        env.update({"CONAN_HOME": str(home), "NO_COLOR": "1"})
        result = subprocess.run(
            [CONAN, *args], cwd=cwd or self.tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        output = result.stdout + result.stderr
        if check and result.returncode != 0:
            raise AssertionError(f"conan {' '.join(args)} failed ({result.returncode}):\n{output}")
        return result.returncode, output

    def login(self, home, user, token, check=True):
        return self.run(home, "remote", "login", "packhouse", user, "-p", token, check=check)

    def create(self, home, version="1.0", greeting="hello", *extra):
        self.count += 1
        directory = self.tmp_path / f"recipe-{self.count}"
        (directory / "include").mkdir(parents=True)
        (directory / "conanfile.py").write_text(RECIPE.format(version=version))
        (directory / "include" / "hello.h").write_text(f'#pragma once\n#define GREETING "{greeting}"\n')
        self.run(home, "create", ".", *extra, cwd=directory)
        return directory

    def install(self, home, reference, check=True):
        """`conan install --requires` deploying into a folder; the header it got, or the output."""
        self.count += 1
        out = self.tmp_path / f"deploy-{self.count}"
        code, output = self.run(
            home,
            "install",
            f"--requires={reference}",
            "-r",
            "packhouse",
            "--deployer=full_deploy",
            f"--deployer-folder={out}",
            check=check,
        )
        if code != 0:
            return None, output
        (header,) = out.rglob("hello.h")
        return header.read_text(), output


@pytest.fixture
def conan(tmp_path, live_registry):
    return Conan(tmp_path, live_registry)


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="cpp")


@pytest.fixture
def developer(project):
    user = UserFactory(username="dev")
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return user


@pytest.mark.parametrize("kind", ["personal", "project", "group", "deploy", "job"])
def test_create_upload_then_install_into_a_fresh_cache(conan, project, developer, kind):
    user, token = credential(kind, project, developer)
    home = conan.home(f"projects/{project.pk}")
    conan.login(home, user, token)
    conan.create(home, greeting=f"hello {kind}")
    conan.run(home, "upload", "hello/1.0", "-r", "packhouse", "-c")

    version = PackageVersion.objects.get()
    assert (version.package.name, version.version, version.created_via) == ("hello", "1.0", kind)
    names = sorted(PackageFile.objects.values_list("file_name", flat=True))
    assert [name.split("/", 1)[1].rsplit("/", 1)[-1] for name in names if "/export/" in name] == [
        "conan_sources.tgz",
        "conanfile.py",
        "conanmanifest.txt",
    ]
    assert sum("/package/" in name for name in names) == 3  # conaninfo, manifest, conan_package.tgz

    fresh = conan.home(f"projects/{project.pk}")
    conan.login(fresh, user, token)
    header, _ = conan.install(fresh, "hello/1.0")
    assert f'#define GREETING "hello {kind}"' in header
    _, output = conan.run(fresh, "list", "hello/1.0:*", "-r", "packhouse")
    assert "hello/1.0" in output and "revisions" in output


def test_new_revisions_user_channel_and_removal(conan, project, developer):
    maintainer = UserFactory(username="boss")
    MembershipFactory(user=maintainer, project=project, access_level=AccessLevel.MAINTAINER)
    home = conan.home(f"projects/{project.pk}")
    conan.login(home, "dev", AccessTokenFactory(user=developer).plaintext)
    conan.create(home, greeting="first")
    conan.run(home, "upload", "hello/1.0", "-r", "packhouse", "-c")
    conan.create(home, greeting="second")  # another recipe revision of the same version
    conan.run(home, "upload", "hello/1.0", "-r", "packhouse", "-c")
    _, output = conan.run(home, "list", "hello/1.0#*", "-r", "packhouse")
    assert output.count("(20") == 2, output  # two revisions, each with its time

    fresh = conan.home(f"projects/{project.pk}")
    conan.login(fresh, "dev", AccessTokenFactory(user=developer).plaintext)
    assert 'GREETING "second"' in conan.install(fresh, "hello/1.0")[0]  # the latest revision

    _, output = conan.run(home, "search", "hel*", "-r", "packhouse")
    assert "hello/1.0" in output

    code, output = conan.run(home, "remove", "hello/1.0#latest", "-r", "packhouse", "-c", check=False)
    assert code != 0 and ("403" in output or "Permission denied" in output), output  # a Developer
    boss = conan.home(f"projects/{project.pk}")
    conan.login(boss, "boss", AccessTokenFactory(user=maintainer).plaintext)
    conan.run(boss, "remove", "hello/1.0#latest", "-r", "packhouse", "-c")
    fresh = conan.home(f"projects/{project.pk}")
    conan.login(fresh, "dev", AccessTokenFactory(user=developer).plaintext)
    assert 'GREETING "first"' in conan.install(fresh, "hello/1.0")[0]

    # The same recipe with a user and channel is another package.
    conan.create(home, "1.0", "channelled", "--user=acme", "--channel=stable")
    conan.run(home, "upload", "hello/1.0@acme/stable", "-r", "packhouse", "-c")
    assert 'GREETING "channelled"' in conan.install(fresh, "hello/1.0@acme/stable")[0]
    assert 'GREETING "first"' in conan.install(fresh, "hello/1.0")[0]
    names = set(PackageVersion.objects.exclude(status="pending_destruction").values_list("package__name", flat=True))
    assert names == {"hello", "hello@acme/stable"}


def test_refusals(conan, project, developer):
    home = conan.home(f"projects/{project.pk}")
    code, output = conan.login(home, "dev", "glpat-not-a-token", check=False)
    assert code != 0 and "Wrong user or password" in output, output

    read_only = DeployTokenFactory(project=project, scopes=["read_package_registry"])
    conan.login(home, read_only.username, read_only.plaintext)
    conan.create(home)
    code, output = conan.run(home, "upload", "hello/1.0", "-r", "packhouse", "-c", check=False)
    assert code != 0 and ("403" in output or "Permission denied" in output), output
    assert not PackageVersion.objects.exists()

    # Without credentials, a private project is refused (non-interactive: no prompt).
    anonymous = conan.home(f"projects/{project.pk}")
    writer = conan.home(f"projects/{project.pk}")
    conan.login(writer, "dev", AccessTokenFactory(user=developer).plaintext)
    conan.create(writer)
    conan.run(writer, "upload", "hello/1.0", "-r", "packhouse", "-c")
    header, output = conan.install(anonymous, "hello/1.0", check=False)
    assert header is None and ("401" in output or "credentials" in output.lower()), output
    # A public project needs none.
    project.visibility = "public"
    project.save()
    header, _ = conan.install(conan.home(f"projects/{project.pk}"), "hello/1.0")
    assert 'GREETING "hello"' in header
