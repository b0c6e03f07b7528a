"""Real `python -m build`, twine, pip and uv against a live gunicorn process: upload with every
credential kind (and from a CI job), --skip-existing, installs from the project and the group
index, and the refusals a user meets."""

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.roles import AccessLevel
from packages_pypi.models import Distribution
from registry import download_counts
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

NAME = "Packhouse.Tiny_Demo"  # installed as packhouse-tiny-demo
MODULE = "packhouse_tiny_demo"
VENV_BIN = Path(sys.executable).parent

PYPROJECT = f"""\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{NAME}"
version = "0.1.0"
description = "A tiny package for registry tests"
requires-python = ">=3.8"

[tool.setuptools]
py-modules = ["{MODULE}"]
"""


@pytest.fixture(scope="session")
def dists(tmp_path_factory):
    """An sdist and a wheel built once per session with `python -m build` (no isolation: offline
    and fast, with the test extra's setuptools)."""
    root = tmp_path_factory.mktemp("tiny")
    source = root / "src"
    source.mkdir()
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / f"{MODULE}.py").write_text('VALUE = "tiny"\n')
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--skip-dependency-check", "--outdir", str(root / "dist")],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=120,
    )
    files = sorted((root / "dist").iterdir())
    assert [f.name for f in files] == ["packhouse_tiny_demo-0.1.0-py3-none-any.whl", "packhouse_tiny_demo-0.1.0.tar.gz"]
    return files


def client_env(**extra):
    """The machine's pip/uv configuration (extra indexes, find-links) left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "TWINE_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INPUT="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        UV_NO_CONFIG="1",
        UV_PYTHON_DOWNLOADS="never",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.update(extra)
    return env


def run(args, env, timeout=120):
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return result.returncode, result.stdout + result.stderr


def twine(registry, project, username, password, files, *flags):
    url = registry.api(f"projects/{project.pk}/packages/pypi")
    env = client_env(TWINE_USERNAME=username, TWINE_PASSWORD=password)
    return run(
        [
            sys.executable,
            "-m",
            "twine",
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            url,
        ]
        + list(flags)
        + [str(f) for f in files],
        env,
    )


def twine_would_skip(registry, project, token, path):
    """Upload again with twine's own Repository code and ask twine's skip_upload() about it."""
    from twine.commands.upload import skip_upload
    from twine.package import PackageFile as TwinePackage
    from twine.repository import Repository

    package = TwinePackage.from_filename(str(path), None)
    repository = Repository(registry.api(f"projects/{project.pk}/packages/pypi"), "__token__", token, True)
    try:
        response = repository.upload(package)
    finally:
        repository.close()
    assert response.status_code == 400
    assert response.reason == "File already exists"
    return skip_upload(response, True, package)


def index_url(registry, path, token=None, username="__token__"):
    base = registry.api(f"{path}/packages/pypi/simple")
    if token is None:
        return base
    return base.replace("http://", f"http://{username}:{token}@")


def pip_install(index, target):
    return run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--no-deps",
            "--target",
            str(target),
            "--index-url",
            index,
            "packhouse-tiny-demo",
        ],
        client_env(),
    )


def uv_install(index, target):
    return run(
        [
            str(VENV_BIN / "uv"),
            "pip",
            "install",
            "--no-cache",
            "--no-deps",
            "--python",
            sys.executable,
            "--target",
            str(target),
            "--index-url",
            index,
            "packhouse-tiny-demo",
        ],
        client_env(),
    )


@pytest.fixture
def group():
    return GroupFactory(path="acme")


@pytest.fixture
def project(group):
    return ProjectFactory(group=group, path="py")


@pytest.fixture
def developer(project):
    user = UserFactory(username="dev")
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return user


def test_twine_upload_skip_existing_then_pip_and_uv_install(live_registry, project, developer, dists, tmp_path):
    token = AccessTokenFactory(user=developer).plaintext
    code, output = twine(live_registry, project, "__token__", token, dists)
    assert code == 0, output
    assert PackageFile.objects.count() == 2
    version = PackageVersion.objects.select_related("package").get()
    package = version.package
    assert (package.normalized_name, version.version, version.metadata["requires_python"]) == (
        "packhouse-tiny-demo",
        "0.1.0",
        ">=3.8",
    )
    assert Distribution.objects.count() == 2

    code, output = twine(live_registry, project, "__token__", token, dists)
    assert code != 0
    assert "File already exists" in output
    # twine 7 only allows --skip-existing towards pypi.org; its rule for skipping a refused upload
    # (400 whose reason or text says "already exist") is checked with its own code here.
    code, output = twine(live_registry, project, "__token__", token, dists, "--skip-existing")
    assert code != 0 and "UnsupportedConfiguration" in output
    assert twine_would_skip(live_registry, project, token, dists[0])
    assert PackageFile.objects.count() == 2

    project_index = index_url(live_registry, f"projects/{project.pk}", token)
    code, output = pip_install(project_index, tmp_path / "pip")
    assert code == 0, output
    assert (tmp_path / "pip" / f"{MODULE}.py").read_text() == 'VALUE = "tiny"\n'

    code, output = uv_install(project_index, tmp_path / "uv")
    assert code == 0, output
    assert (tmp_path / "uv" / f"{MODULE}.py").exists()

    group_index = index_url(live_registry, f"groups/{project.group.pk}/-", token)
    code, output = pip_install(group_index, tmp_path / "group")
    assert code == 0, output
    assert (tmp_path / "group" / f"{MODULE}.py").exists()
    code, output = uv_install(group_index, tmp_path / "uv-group")
    assert code == 0, output
    # counted by the workers, sent to Redis and written to the row in batches
    assert flushed_download_count(PackageVersion.objects.all(), 4) == 4


@pytest.mark.parametrize("kind", ["deploy", "job"])
def test_twine_upload_with_deploy_and_job_tokens(live_registry, project, developer, dists, kind, tmp_path):
    if kind == "deploy":
        deploy = DeployTokenFactory(project=project)
        username, password = deploy.username, deploy.plaintext
    else:
        username, password = "gitlab-ci-token", CiJobFactory(project=project, user=developer).plaintext
    code, output = twine(live_registry, project, username, password, dists)
    assert code == 0, output
    assert PackageVersion.objects.get().created_via == kind
    code, output = pip_install(index_url(live_registry, f"projects/{project.pk}", password, username), tmp_path / "t")
    assert code == 0, output


def test_twine_upload_from_a_ci_job(live_registry, project, developer, dists, monkeypatch):
    """`manage.py ci_job run` starts a job; twine inside it uploads with CI_JOB_TOKEN."""
    files = " ".join(str(f) for f in dists)
    script = (
        f"TWINE_USERNAME=gitlab-ci-token TWINE_PASSWORD=$CI_JOB_TOKEN {sys.executable} -m twine upload "
        "--non-interactive --disable-progress-bar "
        f"--repository-url $CI_API_V4_URL/projects/$CI_PROJECT_ID/packages/pypi {files}"
    )
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(
            "ci_job",
            "run",
            "--project",
            project.full_path,
            "--user",
            developer.username,
            "--server-url",
            live_registry.url,
            "--",
            "sh",
            "-c",
            script,
            stdout=out,
            stderr=err,
        )
    except CommandError as exc:
        pytest.fail(f"ci_job failed: {exc}\n{out.getvalue()}\n{err.getvalue()}")
    version = PackageVersion.objects.get()
    assert version.created_via == "job"
    assert version.ci_job.status == "success"
    assert PackageFile.objects.count() == 2
    assert "[MASKED]" not in out.getvalue() or version.ci_job.token_digest  # the token never shows


def test_refusals(live_registry, project, developer, dists, tmp_path):
    code, output = twine(live_registry, project, "__token__", "glpat-not-a-real-token", dists)
    assert code != 0
    assert "401" in output

    reader = DeployTokenFactory(project=project, scopes=["read_package_registry"])
    code, output = twine(live_registry, project, reader.username, reader.plaintext, dists)
    assert code != 0
    assert "403" in output
    assert PackageFile.objects.count() == 0

    token = AccessTokenFactory(user=developer).plaintext
    assert twine(live_registry, project, "__token__", token, dists)[0] == 0

    code, output = pip_install(index_url(live_registry, f"projects/{project.pk}"), tmp_path / "anon")
    assert code != 0
    assert not (tmp_path / "anon" / f"{MODULE}.py").exists()
    code, output = pip_install(
        index_url(live_registry, f"projects/{project.pk}", "glpat-not-a-real-token"), tmp_path / "bad"
    )
    assert code != 0
    code, output = uv_install(index_url(live_registry, f"projects/{project.pk}"), tmp_path / "uv-anon")
    assert code != 0
    # A stranger's valid token sees nothing of the private project.
    stranger = AccessTokenFactory(user=UserFactory()).plaintext
    code, output = pip_install(index_url(live_registry, f"projects/{project.pk}", stranger), tmp_path / "stranger")
    assert code != 0
    time.sleep(1)  # five of the live server's batch intervals: a counted download would be in Redis
    download_counts.flush()
    assert PackageVersion.objects.get().download_count == 0


def test_skip_existing_with_a_twine_that_allows_it(live_registry, project, developer, dists):
    """twine 7 refuses --skip-existing for every repository but PyPI's own; twine 6.1, still in wide
    use, honours it against our `400 File already exists` (run through `uv tool run`)."""
    token = AccessTokenFactory(user=developer).plaintext
    url = live_registry.api(f"projects/{project.pk}/packages/pypi")
    env = client_env(TWINE_USERNAME="__token__", TWINE_PASSWORD=token)
    command = [
        str(VENV_BIN / "uv"),
        "tool",
        "run",
        "--from",
        "twine==6.1.0",
        "twine",
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
        "--repository-url",
        url,
        "--skip-existing",
        *map(str, dists),
    ]
    code, output = run(command, env, timeout=300)
    assert code == 0, output
    code, output = run(command, env, timeout=300)
    assert code == 0, output
    assert "Skipping" in output
    assert PackageFile.objects.count() == 2


def test_pip_and_uv_install_from_s3_storage(live_registry_s3, project, developer, dists, tmp_path):
    """On S3 each file comes from the store by a presigned link: pip and uv follow the 302 (to
    another origin, so without the index URL's credentials) and check the sha256 the page gives."""
    token = AccessTokenFactory(user=developer).plaintext
    code, output = twine(live_registry_s3, project, "__token__", token, dists)
    assert code == 0, output
    assert {f.blob.key for f in PackageFile.objects.all()} <= set(live_registry_s3.bucket.keys())

    for scope in (f"projects/{project.pk}", f"groups/{project.group.pk}/-"):
        index = index_url(live_registry_s3, scope, token)
        code, output = pip_install(index, tmp_path / f"pip-{scope[0]}")
        assert code == 0, output
        assert (tmp_path / f"pip-{scope[0]}" / f"{MODULE}.py").read_text() == 'VALUE = "tiny"\n'
        code, output = uv_install(index, tmp_path / f"uv-{scope[0]}")
        assert code == 0, output
        assert (tmp_path / f"uv-{scope[0]}" / f"{MODULE}.py").read_text() == 'VALUE = "tiny"\n'
    wheel = r"/api/v4/projects/\d+/packages/pypi/files/[0-9a-f]{64}/[^ ]+\.whl"
    # (uv asks the group's download anonymously first: 401, the challenge, then 302)
    assert [status for status in answered(live_registry_s3.log(), "GET", wheel) if status != 401] == [302] * 4


def build(root, version, value):
    """A wheel of packhouse-tiny-demo at `version` whose module holds `value`."""
    source = root / f"src-{version}"
    source.mkdir()
    (source / "pyproject.toml").write_text(PYPROJECT.replace('version = "0.1.0"', f'version = "{version}"'))
    (source / f"{MODULE}.py").write_text(f"VALUE = {value!r}\n")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check", "--outdir", str(root)],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return root / f"{MODULE}-{version}-py3-none-any.whl"


def pip_install_spec(index, target, spec):
    return run(
        [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps", "--target", str(target),
         "--index-url", index, spec],
        client_env(),
    )  # fmt: skip


def withdrawal(registry, project, version, token, method, reason=""):
    result = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, "-H", f"PRIVATE-TOKEN: {token}",
         "--data-urlencode", f"reason={reason}",
         registry.api(f"projects/{project.pk}/packages/{version.pk}/withdrawal")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return int(result.stdout)


def test_pip_skips_a_yanked_release_unless_pinned(live_registry, project, developer, tmp_path):
    token = AccessTokenFactory(user=developer).plaintext
    wheels = [build(tmp_path, "0.1.0", "first"), build(tmp_path, "0.2.0", "second")]
    code, output = twine(live_registry, project, "__token__", token, wheels)
    assert code == 0, output
    second = PackageVersion.objects.get(version="0.2.0")
    boss = UserFactory(username="boss")
    MembershipFactory(user=boss, project=project, access_level=AccessLevel.MAINTAINER)
    boss_token = AccessTokenFactory(user=boss).plaintext
    assert withdrawal(live_registry, project, second, token, "POST", "broken") == 403  # a Developer
    assert withdrawal(live_registry, project, second, boss_token, "POST", "broken build") == 201

    index = index_url(live_registry, f"projects/{project.pk}", token)
    code, output = pip_install_spec(index, tmp_path / "latest", "packhouse-tiny-demo")
    assert code == 0, output
    assert (tmp_path / "latest" / f"{MODULE}.py").read_text() == "VALUE = 'first'\n"
    code, output = pip_install_spec(index, tmp_path / "pinned", "packhouse-tiny-demo==0.2.0")
    assert code == 0, output
    assert (tmp_path / "pinned" / f"{MODULE}.py").read_text() == "VALUE = 'second'\n"
    assert "yanked" in output and "broken build" in output

    assert withdrawal(live_registry, project, second, boss_token, "DELETE") == 200
    code, output = pip_install_spec(index, tmp_path / "unyanked", "packhouse-tiny-demo")
    assert code == 0, output
    assert (tmp_path / "unyanked" / f"{MODULE}.py").read_text() == "VALUE = 'second'\n"
    second.refresh_from_db()
    assert [(entry["action"], entry["by"]) for entry in second.metadata["withdrawals"]] == [
        ("yank", "boss"),
        ("unyank", "boss"),
    ]
