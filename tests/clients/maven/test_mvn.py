"""The real `mvn` (Debian's Maven and plugins, offline) against a live gunicorn process.

Maven Central is unreachable here: a settings.xml mirrors `central` to Debian's
/usr/share/maven-repo (file://), with a throwaway local repository per run. Plugin versions
are pinned to the ones Debian ships. scripts/install-maven.sh installs Maven when missing.

Credentials as GitLab documents them in settings.xml: `<httpHeaders>` (Private-Token,
Deploy-Token, Job-Token: sent on every request) and `<username>/<password>` (Basic: on PUTs
at once, on GETs only after a 401 with the Basic challenge).
"""

import re
import shutil
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from accounts.roles import AccessLevel
from registry.models import Blob, DuplicateSetting, PackageFile, PackageVersion
from tests.factories import (
    AccessTokenFactory,
    CiJobFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from tests.helpers import answered, stored_objects

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[3]
DEBIAN_REPO = Path("/usr/share/maven-repo")
PLUGINS = ("clean", "resources", "compiler", "surefire", "jar", "install", "deploy", "dependency")
SERVER_ID = "gitlab-maven"


@pytest.fixture(scope="session")
def maven():
    """Install Maven and Debian's plugins when missing; the plugin versions to pin."""
    if not shutil.which("mvn") or not (DEBIAN_REPO / "org/apache/maven/plugins/maven-deploy-plugin").is_dir():
        result = subprocess.run(
            ["sh", str(ROOT / "scripts/install-maven.sh")], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            pytest.fail(f"scripts/install-maven.sh failed:\n{result.stdout}\n{result.stderr}")
    return {name: plugin_version(f"maven-{name}-plugin") for name in PLUGINS}


def plugin_version(artifact):
    """The newest version of a plugin with a jar in Debian's repository."""
    base = DEBIAN_REPO / "org/apache/maven/plugins" / artifact
    versions = [d.name for d in base.iterdir() if (d / f"{artifact}-{d.name}.jar").exists()]
    assert versions, f"{artifact} is not in {DEBIAN_REPO}"
    return max(versions, key=lambda v: [int(n) for n in re.findall(r"\d+", v)] or [-1])


def server_xml(credential):
    """The <server> element: `("header", name, token)` or `("basic", username, password)`."""
    if credential is None:
        return ""
    kind, first, second = credential
    if kind == "basic":
        return (
            f"<server><id>{SERVER_ID}</id><username>{escape(first)}</username>"
            f"<password>{escape(second)}</password></server>"
        )
    return (
        f"<server><id>{SERVER_ID}</id><configuration><httpHeaders><property>"
        f"<name>{first}</name><value>{escape(second)}</value>"
        "</property></httpHeaders></configuration></server>"
    )


def write_settings(directory, credential):
    path = directory / "settings.xml"
    path.write_text(
        f"""<settings>
  <localRepository>{directory / "m2"}</localRepository>
  <offline>false</offline>
  <interactiveMode>false</interactiveMode>
  <servers>{server_xml(credential)}</servers>
  <mirrors>
    <mirror><id>debian</id><mirrorOf>central</mirrorOf><url>file://{DEBIAN_REPO}</url></mirror>
  </mirrors>
</settings>
"""
    )
    return path


def write_project(directory, plugins, version, repository_url, marker):
    """A one-class jar project deploying to `repository_url`; `marker` changes the jar."""
    source = directory / "src/main/java/com/example"
    source.mkdir(parents=True, exist_ok=True)
    (source / "App.java").write_text(
        f'package com.example;\npublic class App {{ public static String id() {{ return "{marker}"; }} }}\n'
    )
    pinned = "".join(
        f"<plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-{name}-plugin</artifactId>"
        f"<version>{plugins[name]}</version></plugin>"
        for name in PLUGINS
    )
    (directory / "pom.xml").write_text(
        f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId>
  <artifactId>my-app</artifactId>
  <version>{version}</version>
  <packaging>jar</packaging>
  <properties>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <maven.compiler.release>17</maven.compiler.release>
  </properties>
  <distributionManagement>
    <repository><id>{SERVER_ID}</id><url>{repository_url}</url></repository>
    <snapshotRepository><id>{SERVER_ID}</id><url>{repository_url}</url></snapshotRepository>
  </distributionManagement>
  <build><plugins>{pinned}</plugins></build>
</project>
"""
    )
    return directory


def mvn(directory, settings, *args):
    result = subprocess.run(
        ["mvn", "-B", "--no-transfer-progress", "-s", str(settings), *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def deploy(tmp_path, plugins, project_url, credential, version, marker):
    """`mvn deploy` in a fresh directory; returns (exit code, output, built jar bytes)."""
    directory = tmp_path / f"producer-{marker}"
    directory.mkdir()
    write_project(directory, plugins, version, project_url, marker)
    settings = write_settings(directory, credential)
    code, output = mvn(directory, settings, "deploy", "-DskipTests")
    jar = directory / f"target/my-app-{version}.jar"
    return code, output, jar.read_bytes() if jar.exists() else None


def resolve(tmp_path, plugins, repository_url, credential, coordinates, label):
    """`mvn dependency:get` into a fresh local repository; returns (exit code, output, jar path)."""
    directory = tmp_path / f"consumer-{label}"
    directory.mkdir()
    settings = write_settings(directory, credential)
    code, output = mvn(
        directory,
        settings,
        f"org.apache.maven.plugins:maven-dependency-plugin:{plugins['dependency']}:get",
        f"-Dartifact={coordinates}",
        f"-DremoteRepositories={SERVER_ID}::default::{repository_url}",
        "-Dtransitive=false",
    )
    group_id, artifact_id, version = coordinates.split(":")
    jar = directory / "m2" / group_id.replace(".", "/") / artifact_id / version / f"{artifact_id}-{version}.jar"
    return code, output, jar


@pytest.fixture
def group():
    return GroupFactory(path="acme")


@pytest.fixture
def project(group):
    return ProjectFactory(group=group, path="libs")


@pytest.fixture
def developer(project):
    user = UserFactory(username="dev")
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return user


def urls(live_registry, project, group):
    return (
        live_registry.api(f"projects/{project.pk}/packages/maven"),
        live_registry.api(f"groups/{group.full_path}/-/packages/maven"),
    )


def test_release_deploy_then_resolve_from_project_and_group(live_registry, maven, project, group, developer, tmp_path):
    project_url, group_url = urls(live_registry, project, group)
    token = AccessTokenFactory(user=developer).plaintext
    code, output, jar = deploy(tmp_path, maven, project_url, ("header", "Private-Token", token), "1.0", "release")
    assert code == 0, output

    files = sorted(PackageFile.objects.values_list("version__version", "file_name"))
    assert files == [
        ("1.0", "my-app-1.0.jar"),
        ("1.0", "my-app-1.0.pom"),
        ("~metadata", "maven-metadata.xml"),
    ]
    assert PackageVersion.objects.get(version="1.0").created_via == "personal"
    assert len(stored_objects(live_registry.blob_dir)) == 3
    log = live_registry.log()
    assert re.search(
        r'"PUT /api/v4/projects/\d+/packages/maven/com/example/my-app/1.0/my-app-1.0.jar.sha1 [^"]*" 204', log
    )

    deploy_token = DeployTokenFactory(project=project, scopes=["read_package_registry"]).plaintext
    code, output, resolved = resolve(
        tmp_path, maven, project_url, ("header", "Deploy-Token", deploy_token), "com.example:my-app:1.0", "project"
    )
    assert code == 0, output
    assert resolved.read_bytes() == jar

    job = CiJobFactory(project=project, user=developer).plaintext
    code, output, resolved = resolve(
        tmp_path, maven, group_url, ("header", "Job-Token", job), "com.example:my-app:1.0", "group"
    )
    assert code == 0, output
    assert resolved.read_bytes() == jar
    assert "/api/v4/groups/acme/-/packages/maven/com/example/my-app/1.0/my-app-1.0.jar" in live_registry.log()


def test_snapshot_deploys_twice_and_basic_credentials_follow_the_challenge(
    live_registry, maven, project, group, developer, tmp_path
):
    # Release duplicates are refused; SNAPSHOT redeploys (metadata included) must still work.
    DuplicateSetting.objects.create(project=project, format="maven", allowed=False)
    project_url, _ = urls(live_registry, project, group)
    job = CiJobFactory(project=project, user=developer).plaintext
    code, output, _ = deploy(tmp_path, maven, project_url, ("header", "Job-Token", job), "1.1-SNAPSHOT", "first")
    assert code == 0, output
    writer = DeployTokenFactory(project=project)
    code, output, second = deploy(
        tmp_path, maven, project_url, ("basic", writer.username, writer.plaintext), "1.1-SNAPSHOT", "second"
    )
    assert code == 0, output

    version = PackageVersion.objects.get(version="1.1-SNAPSHOT")
    jars = sorted(version.files.filter(file_name__endswith=".jar").values_list("file_name", flat=True))
    assert len(jars) == 2 and jars[0].endswith("-1.jar") and jars[1].endswith("-2.jar"), jars
    assert version.files.filter(file_name="maven-metadata.xml").count() == 2
    assert version.created_via == "job"

    token = AccessTokenFactory(user=developer, scopes=["read_api"]).plaintext
    code, output, resolved = resolve(
        tmp_path, maven, project_url, ("basic", "dev", token), "com.example:my-app:1.1-SNAPSHOT", "snapshot"
    )
    assert code == 0, output
    assert resolved.read_bytes() == second
    # mvn asked anonymously first, got the challenge, then sent Basic.
    log = live_registry.log()
    metadata = r'"GET /api/v4/projects/\d+/packages/maven/com/example/my-app/1.1-SNAPSHOT/maven-metadata.xml [^"]*"'
    assert re.search(metadata + " 401", log), log
    assert re.search(metadata + " 200", log), log


def test_refusals(live_registry, maven, project, group, developer, tmp_path):
    project_url, _ = urls(live_registry, project, group)
    code, output, _ = deploy(tmp_path, maven, project_url, ("header", "Private-Token", "glpat-wrong"), "1.0", "wrong")
    assert code != 0
    assert "401" in output

    read_only = DeployTokenFactory(project=project, scopes=["read_package_registry"]).plaintext
    code, output, _ = deploy(tmp_path, maven, project_url, ("header", "Deploy-Token", read_only), "1.0", "readonly")
    assert code != 0
    assert "403" in output
    assert PackageFile.objects.count() == 0
    assert Blob.objects.count() == 0
    assert stored_objects(live_registry.blob_dir) == []

    # Something to fetch, then an anonymous consumer of the private project: refused.
    token = AccessTokenFactory(user=developer).plaintext
    code, output, _ = deploy(tmp_path, maven, project_url, ("header", "Private-Token", token), "1.0", "ok")
    assert code == 0, output
    code, output, resolved = resolve(tmp_path, maven, project_url, None, "com.example:my-app:1.0", "anonymous")
    assert code != 0
    assert not resolved.exists()
    assert re.search(
        r'"GET /api/v4/projects/\d+/packages/maven/com/example/my-app/1.0/my-app-1.0.pom [^"]*" 401',
        live_registry.log(),
    )


@pytest.mark.parametrize("credential", ["header", "basic"])
def test_resolve_from_s3_storage(live_registry_s3, maven, project, group, developer, tmp_path, credential):
    """On S3 the jar comes from the store by a presigned link: Maven follows the 302 (to another
    host, without its credentials) and checks the bytes against the .sha1 Packhouse serves."""
    project_url, group_url = urls(live_registry_s3, project, group)
    token = AccessTokenFactory(user=developer).plaintext
    code, output, jar = deploy(tmp_path, maven, project_url, ("header", "Private-Token", token), "2.0", "s3")
    assert code == 0, output
    blob = PackageFile.objects.get(file_name="my-app-2.0.jar").blob
    assert blob.key in live_registry_s3.bucket.keys()

    reader = ("header", "Private-Token", token) if credential == "header" else ("basic", "dev", token)
    code, output, resolved = resolve(tmp_path, maven, group_url, reader, "com.example:my-app:2.0", credential)
    assert code == 0, output
    assert resolved.read_bytes() == jar
    jar_path = r"/api/v4/groups/acme/-/packages/maven/com/example/my-app/2\.0/my-app-2\.0\.jar"
    assert answered(live_registry_s3.log(), "GET", jar_path)[-1] == 302
