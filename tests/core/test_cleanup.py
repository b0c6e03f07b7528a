"""Cleanup policies on real rows: plans, application, idempotence, the beat task, the REST API
and the settings page."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.authentication import principal_for_token
from accounts.roles import AccessLevel
from registry import cleanup, epochs, formats, services, tasks
from registry.formats import FileDraft, PackageDraft
from registry.models import Blob, CleanupPolicy, PackageFile, PackageVersion, Status
from registry.spool import spool_bytes
from tests.factories import AccessTokenFactory, AdminFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.formats.npm.npmdocs import publish_document
from tests.helpers import auth_headers, stored_objects

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_grace(settings):
    settings.BLOB_GRACE_SECONDS = 0


@pytest.fixture
def admin():
    return principal_for_token(AccessTokenFactory(user=AdminFactory()).plaintext)


@pytest.fixture
def project():
    return ProjectFactory()


def publish(project, principal, name, version, file_name="f.bin", content=None):
    content = content if content is not None else f"{name} {version} {file_name}".encode()
    with spool_bytes(content) as spool:
        return services.publish(
            project, principal, formats.get("generic"), PackageDraft(name, version, files=[FileDraft(file_name, spool)])
        )


def live_versions(project, name):
    return list(
        PackageVersion.objects.filter(package__project=project, package__name=name)
        .exclude(status=Status.PENDING_DESTRUCTION)
        .order_by("pk")
        .values_list("version", flat=True)
    )


def all_versions(project):
    return sorted(PackageVersion.objects.filter(package__project=project).values_list("package__name", "version"))


def set_policy(project, **fields):
    return CleanupPolicy.objects.update_or_create(project=project, defaults=fields)[0]


def apply(project, capture):
    """Apply the policy as the worker would; objects are deleted on commit."""
    with capture(execute=True):
        return tasks.apply_cleanup_policy(project.pk)


def assert_storage_consistent(blob_dir):
    """Every file's blob has its object; every object has its Blob row."""
    objects = set(stored_objects(blob_dir))
    assert objects == {blob.key for blob in Blob.objects.all()}
    for package_file in PackageFile.objects.select_related("blob"):
        assert package_file.blob.key in objects


@pytest.fixture
def thirty(project, admin):
    """30 versions of `app` (1..30), 3 of `lib`, one file each, distinct bytes."""
    for n in range(1, 31):
        publish(project, admin, "app", str(n))
    for n in range(1, 4):
        publish(project, admin, "lib", f"0.{n}")
    return project


# --- the rules --------------------------------------------------------------------------


def test_keep_n_duplicated_files_keeps_the_newest_per_name(
    project, admin, blob_dir, django_capture_on_commit_callbacks
):
    files = [publish(project, admin, "dup", "1.0", "a.bin", f"a{n}".encode())[1][0] for n in range(5)]
    single = publish(project, admin, "dup", "1.0", "b.bin", b"b")[1][0]
    other = [publish(project, admin, "dup", "2.0", "a.bin", f"x{n}".encode())[1][0] for n in range(2)]
    assert len(stored_objects(blob_dir)) == 8
    set_policy(project, keep_n_duplicated_package_files="1")

    plan = cleanup.plan(CleanupPolicy.objects.get(project=project))
    assert plan.version_ids == []
    assert plan.file_ids == sorted(f.pk for f in files[:4] + other[:1])

    result = apply(project, django_capture_on_commit_callbacks)
    assert result["files"] == 5 and result["versions"] == 0
    remaining = set(PackageFile.objects.values_list("pk", flat=True))
    assert remaining == {files[4].pk, single.pk, other[1].pk}
    assert len(stored_objects(blob_dir)) == 3
    assert_storage_consistent(blob_dir)
    assert live_versions(project, "dup") == ["1.0", "2.0"]
    # Idempotent: nothing more the second time.
    assert apply(project, django_capture_on_commit_callbacks)["files"] == 0
    assert PackageFile.objects.count() == 3


def test_keep_n_duplicated_ten_keeps_ten(project, admin, django_capture_on_commit_callbacks):
    for n in range(12):
        publish(project, admin, "dup", "1", "a.bin", f"{n}".encode())
    set_policy(project, keep_n_duplicated_package_files="10")
    assert apply(project, django_capture_on_commit_callbacks)["files"] == 2
    assert PackageFile.objects.count() == 10


def test_keep_n_versions_keeps_the_newest_per_package(thirty, blob_dir, django_capture_on_commit_callbacks):
    project = thirty
    stamps = epochs.current(epochs.package_keys("generic", "app"))
    set_policy(project, keep_n_versions=10)
    planned = cleanup.describe(cleanup.plan(CleanupPolicy.objects.get(project=project)))
    assert [(v["name"], v["version"]) for v in planned["versions"]] == [("app", str(n)) for n in range(1, 21)]

    result = apply(project, django_capture_on_commit_callbacks)
    assert result["versions"] == 20
    assert result["purged"]["versions"] == 20
    assert all_versions(project) == sorted(
        [("app", str(n)) for n in range(21, 31)] + [("lib", "0.1"), ("lib", "0.2"), ("lib", "0.3")]
    )
    assert PackageFile.objects.count() == 13
    assert len(stored_objects(blob_dir)) == 13
    assert_storage_consistent(blob_dir)
    assert epochs.current(epochs.package_keys("generic", "app")) != stamps  # caches invalidate
    assert apply(project, django_capture_on_commit_callbacks)["versions"] == 0
    assert PackageVersion.objects.count() == 13


def test_older_than_days(thirty, blob_dir, django_capture_on_commit_callbacks):
    project = thirty
    old = PackageVersion.objects.filter(package__name="app", version__in=["1", "2", "3", "4", "5"])
    old.update(created_at=timezone.now() - timedelta(days=40))
    PackageVersion.objects.filter(package__name="lib", version="0.1").update(
        created_at=timezone.now() - timedelta(days=29)
    )
    set_policy(project, older_than_days=30)
    assert apply(project, django_capture_on_commit_callbacks)["versions"] == 5
    assert live_versions(project, "app") == [str(n) for n in range(6, 31)]
    assert live_versions(project, "lib") == ["0.1", "0.2", "0.3"]
    assert len(stored_objects(blob_dir)) == 28
    assert_storage_consistent(blob_dir)


def test_keep_n_and_older_than_combine_with_and(thirty):
    project = thirty
    now = timezone.now()
    for version in PackageVersion.objects.filter(package__name="app"):  # app n is 31 - n days old
        PackageVersion.objects.filter(pk=version.pk).update(created_at=now - timedelta(days=31 - int(version.version)))

    def planned(**fields):
        plan = cleanup.plan(set_policy(project, **fields), now=now)
        return sorted(
            int(v) for v in PackageVersion.objects.filter(pk__in=plan.version_ids).values_list("version", flat=True)
        )

    assert planned(older_than_days=25) == [1, 2, 3, 4, 5]
    assert planned(older_than_days=25, keep_n_versions=28) == [1, 2]
    assert planned(older_than_days=25, keep_n_versions=3) == [1, 2, 3, 4, 5]
    assert planned(older_than_days=None, keep_n_versions=3) == list(range(1, 28))


def test_name_regex_delete_alone_and_with_keep_n(thirty, admin, django_capture_on_commit_callbacks):
    project = thirty
    publish(project, admin, "tmp-build", "1")
    publish(project, admin, "tmp-build", "2")
    set_policy(project, name_regex_delete="tmp-.*")
    assert apply(project, django_capture_on_commit_callbacks)["versions"] == 2
    assert live_versions(project, "tmp-build") == []
    assert len(live_versions(project, "app")) == 30

    # With keep_n_versions, the regex limits which packages are trimmed.
    set_policy(project, name_regex_delete="li.", keep_n_versions=1)
    assert apply(project, django_capture_on_commit_callbacks)["versions"] == 2
    assert live_versions(project, "lib") == ["0.3"]
    assert len(live_versions(project, "app")) == 30
    # fullmatch: "ap" matches nothing.
    set_policy(project, name_regex_delete="ap", keep_n_versions=1)
    assert cleanup.plan(CleanupPolicy.objects.get(project=project)).version_ids == []


def test_name_regex_keep_always_protects(thirty, admin, django_capture_on_commit_callbacks):
    project = thirty
    for n in range(3):
        publish(project, admin, "lib", "0.3", "dup.bin", f"{n}".encode())
    set_policy(project, keep_n_versions=1, name_regex_keep="lib", keep_n_duplicated_package_files="1")
    result = apply(project, django_capture_on_commit_callbacks)
    assert result == {"versions": 29, "files": 0, "purged": result["purged"]}
    assert live_versions(project, "lib") == ["0.1", "0.2", "0.3"]
    assert PackageFile.objects.filter(version__package__name="lib").count() == 6  # duplicates protected too
    assert live_versions(project, "app") == ["30"]

    # The keep regex also protects by version string; it wins over name_regex_delete.
    for n in range(1, 4):
        publish(project, admin, "tool", f"{n}.0")
    set_policy(project, keep_n_versions=None, name_regex_keep=r"2\.0", name_regex_delete="tool|app")
    apply(project, django_capture_on_commit_callbacks)
    assert live_versions(project, "tool") == ["2.0"]
    assert live_versions(project, "app") == []


def test_dry_run_equals_what_apply_removes(thirty, admin, django_capture_on_commit_callbacks):
    project = thirty
    for n in range(4):
        publish(project, admin, "app", "30", "f.bin", f"again {n}".encode())
    PackageVersion.objects.filter(package__name="lib", version="0.1").update(
        created_at=timezone.now() - timedelta(days=100)
    )
    set_policy(project, keep_n_versions=25, older_than_days=1, keep_n_duplicated_package_files="1")
    PackageVersion.objects.filter(package__name="app", version__in=["1", "2", "3", "4", "5", "6"]).update(
        created_at=timezone.now() - timedelta(days=3)
    )
    listed = cleanup.describe(cleanup.plan(CleanupPolicy.objects.get(project=project)))
    before_versions = set(PackageVersion.objects.values_list("pk", flat=True))
    before_files = set(PackageFile.objects.values_list("pk", flat=True))
    apply(project, django_capture_on_commit_callbacks)
    removed_versions = before_versions - set(PackageVersion.objects.values_list("pk", flat=True))
    removed_files = before_files - set(PackageFile.objects.values_list("pk", flat=True))
    assert {v["id"] for v in listed["versions"]} == removed_versions
    assert [v["version"] for v in listed["versions"]] == ["1", "2", "3", "4", "5"]
    # Files of removed versions go with them; the listed duplicates are the other removed files.
    dropped_with_versions = removed_files - {f["id"] for f in listed["files"]}
    assert len(dropped_with_versions) == 5
    assert [(f["package_name"], f["version"], f["file_name"]) for f in listed["files"]] == [("app", "30", "f.bin")] * 4


def test_policy_with_no_rule_removes_nothing(thirty, django_capture_on_commit_callbacks):
    set_policy(thirty, name_regex_keep=".*")
    assert not cleanup.plan(CleanupPolicy.objects.get(project=thirty))
    assert apply(thirty, django_capture_on_commit_callbacks)["versions"] == 0


def test_pending_and_processing_versions_are_left_alone(project, admin):
    for n in range(1, 4):
        publish(project, admin, "app", str(n))
    PackageVersion.objects.filter(version="1").update(status=Status.PROCESSING)
    set_policy(project, keep_n_versions=1)
    plan = cleanup.plan(CleanupPolicy.objects.get(project=project))
    assert list(PackageVersion.objects.filter(pk__in=plan.version_ids).values_list("version", flat=True)) == ["2"]


# --- scheduling -------------------------------------------------------------------------


def test_due_policies_run_once_and_move_their_next_run(thirty, settings, django_capture_on_commit_callbacks):
    settings.CLEANUP_INTERVAL_SECONDS = 3600
    other = ProjectFactory()
    set_policy(thirty, keep_n_versions=5)
    set_policy(other, name_regex_keep="x")  # no rule: never scheduled
    later = set_policy(ProjectFactory(), keep_n_versions=1, next_run_at=timezone.now() + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.run_due_cleanup_policies() == 1  # eager: applied in-process
    assert len(live_versions(thirty, "app")) == 5
    policy = CleanupPolicy.objects.get(project=thirty)
    assert timedelta(minutes=59) < policy.next_run_at - timezone.now() <= timedelta(hours=1)
    assert tasks.run_due_cleanup_policies() == 0
    CleanupPolicy.objects.filter(pk=later.pk).update(next_run_at=timezone.now() - timedelta(seconds=1))
    assert tasks.run_due_cleanup_policies() == 1


def test_run_cleanup_command(thirty, capsys, blob_dir):
    set_policy(thirty, keep_n_versions=3)
    call_command("run_cleanup")
    out = capsys.readouterr().out
    assert "1 due cleanup policies applied" in out
    assert live_versions(thirty, "app") == ["28", "29", "30"]
    call_command("run_cleanup", project=thirty.pk)
    assert "0 versions, 0 files removed" in capsys.readouterr().out


# --- REST -------------------------------------------------------------------------------


def member(project, level):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=level)
    return user


def token_for(user, scopes=("api",)):
    return auth_headers(AccessTokenFactory(user=user, scopes=list(scopes)).plaintext)


def url(project, suffix=""):
    return f"/api/v4/projects/{project.pk}/packages/cleanup_policy{suffix}"


def test_rest_statuses(api, project):
    reporter = token_for(member(project, AccessLevel.REPORTER))
    developer = token_for(member(project, AccessLevel.DEVELOPER))
    maintainer = token_for(member(project, AccessLevel.MAINTAINER))
    stranger = token_for(UserFactory())
    for method, suffix in (("get", ""), ("put", ""), ("post", "/dry_run")):
        call = getattr(api, method)
        assert call(url(project, suffix), format="json").status_code == 401
        assert call(url(project, suffix), format="json", **stranger).status_code == 404
        assert call(url(project, suffix), format="json", **reporter).status_code == 403
        assert call(url(project, suffix), format="json", **developer).status_code == 403
        assert call(url(project, suffix), format="json", **maintainer).status_code == 200
    read_only = token_for(member(project, AccessLevel.MAINTAINER), scopes=["read_api"])
    # Package settings are an admin action for the policy: a read_api token reads none of it.
    assert api.get(url(project), **read_only).status_code == 403
    assert api.put(url(project), {}, format="json", **read_only).status_code == 403
    assert api.get(f"/api/v4/projects/{project.pk + 1000}/packages/cleanup_policy", **maintainer).status_code == 404


def test_rest_get_put_and_dry_run(api, thirty):
    project = thirty
    maintainer = token_for(member(project, AccessLevel.MAINTAINER))
    body = api.get(url(project), **maintainer).json()
    assert body == {
        "project_id": project.pk,
        "enabled": False,
        "keep_n_duplicated_package_files": "all",
        "keep_n_versions": None,
        "older_than_days": None,
        "name_regex_keep": "",
        "name_regex_delete": "",
        "next_run_at": None,
    }
    assert not CleanupPolicy.objects.exists()  # reading creates nothing

    response = api.put(
        url(project), {"keep_n_versions": 28, "keep_n_duplicated_package_files": 10}, format="json", **maintainer
    )
    assert response.status_code == 200
    assert response.json()["keep_n_versions"] == 28
    assert response.json()["keep_n_duplicated_package_files"] == "10"
    assert response.json()["enabled"] is True
    policy = CleanupPolicy.objects.get(project=project)
    assert policy.keep_n_versions == 28 and policy.next_run_at is None

    # By full path too; a partial PUT leaves the other fields alone.
    path = project.full_path.replace("/", "%2F")
    response = api.put(
        f"/api/v4/projects/{path}/packages/cleanup_policy", {"name_regex_keep": "lib"}, format="json", **maintainer
    )
    assert response.status_code == 200
    assert response.json()["keep_n_versions"] == 28

    dry = api.post(url(project, "/dry_run"), **maintainer)
    assert dry.status_code == 200
    assert dry.json() == {
        "protected": [],
        "versions": [
            {"id": PackageVersion.objects.get(package__name="app", version=v).pk, "name": "app", "version": v}
            for v in ("1", "2")
        ],
        "files": [],
    }
    assert PackageVersion.objects.count() == 33  # a dry run removes nothing


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"keep_n_duplicated_package_files": "5"}, "keep_n_duplicated_package_files must be one of"),
        ({"keep_n_versions": 0}, "keep_n_versions must be between 1"),
        ({"keep_n_versions": -3}, "keep_n_versions must be between 1"),
        ({"keep_n_versions": "many"}, "keep_n_versions must be an integer"),
        ({"keep_n_versions": True}, "keep_n_versions must be an integer"),
        ({"keep_n_versions": 1.5}, "keep_n_versions must be an integer"),
        ({"older_than_days": 0}, "older_than_days must be between 1"),
        ({"name_regex_keep": "("}, "name_regex_keep is an invalid regular expression"),
        ({"name_regex_delete": "a" * 256}, "name_regex_delete is too long"),
        ({"name_regex_delete": 5}, "name_regex_delete must be a string"),
    ],
)
def test_rest_validation(api, project, body, message):
    maintainer = token_for(member(project, AccessLevel.MAINTAINER))
    response = api.put(url(project), body, format="json", **maintainer)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)
    assert not CleanupPolicy.objects.exists()


def test_rest_non_object_body(api, project):
    maintainer = token_for(member(project, AccessLevel.MAINTAINER))
    response = api.put(url(project), [1, 2], format="json", **maintainer)
    assert response.status_code == 400 and "error" in response.json()


def test_generic_routes_are_not_shadowed(api, project, admin):
    publish(project, admin, "pkg", "1.0", "packages/cleanup_policy", b"a file with that name")
    headers = token_for(member(project, AccessLevel.MAINTAINER))
    response = api.get(f"/api/v4/projects/{project.pk}/packages/generic/pkg/1.0/packages/cleanup_policy", **headers)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"a file with that name"


# --- settings page ----------------------------------------------------------------------


def page(project):
    return f"/{project.full_path}/-/settings/packages_and_registries/cleanup"


def test_settings_page_access(client, project):
    response = client.get(page(project))
    assert response.status_code == 302 and response["Location"].startswith("/users/sign_in?next=")
    client.force_login(UserFactory())
    assert client.get(page(project)).status_code == 404
    client.force_login(member(project, AccessLevel.REPORTER))
    assert client.get(page(project)).status_code == 403
    client.force_login(member(project, AccessLevel.MAINTAINER))
    response = client.get(page(project))
    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content
    assert b'name="keep_n_versions"' in response.content
    assert client.get("/no/such-project/-/settings/packages_and_registries/cleanup").status_code == 404


def test_settings_page_saves_and_lists_the_dry_run(client, thirty):
    project = thirty
    client.force_login(member(project, AccessLevel.MAINTAINER))
    form = {
        "keep_n_duplicated_package_files": "all",
        "keep_n_versions": "29",
        "older_than_days": "",
        "name_regex_keep": "",
        "name_regex_delete": "",
    }
    response = client.post(page(project), form)
    assert response.status_code == 302
    policy = CleanupPolicy.objects.get(project=project)
    assert policy.keep_n_versions == 29 and policy.older_than_days is None
    content = client.get(page(project)).content.decode()
    assert "app 1</li>" in content
    assert "app 2</li>" not in content

    response = client.post(page(project), {**form, "keep_n_versions": "0"})
    assert response.status_code == 400
    assert "keep_n_versions must be between 1" in response.content.decode()
    assert CleanupPolicy.objects.get(project=project).keep_n_versions == 29


def test_settings_page_refuses_a_post_without_csrf(project):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member(project, AccessLevel.MAINTAINER))
    response = client.post(page(project), {"keep_n_duplicated_package_files": "1"})
    assert response.status_code == 403
    assert not CleanupPolicy.objects.exists()
    # With the token from the form, the same post is accepted.
    client.get(page(project))
    token = client.cookies["csrftoken"].value
    response = client.post(page(project), {"keep_n_duplicated_package_files": "1", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert CleanupPolicy.objects.get(project=project).keep_n_duplicated_package_files == "1"


# --- formats react through the contract -------------------------------------------------


def test_npm_documents_follow_a_cleanup(client, django_capture_on_commit_callbacks):
    project = ProjectFactory()
    headers = token_for(member(project, AccessLevel.MAINTAINER))
    name = "@acme/left-pad"
    base = f"/api/v4/projects/{project.pk}/packages/npm/{name.replace('/', '%2f')}"
    for version, tag in (("1.0.0", "latest"), ("1.1.0", "latest"), ("2.0.0-beta.1", "next")):
        document = json.dumps(publish_document(name, version, tag=tag))
        assert client.put(base, data=document, content_type="application/json", **headers).status_code == 200
    before = client.get(base, **headers).json()  # cached, keyed on the package's epochs
    assert before["dist-tags"] == {"latest": "1.1.0", "next": "2.0.0-beta.1"}

    set_policy(project, keep_n_versions=1)
    assert apply(project, django_capture_on_commit_callbacks)["versions"] == 2
    after = client.get(base, **headers).json()
    assert list(after["versions"]) == ["2.0.0-beta.1"]
    assert set(after["dist-tags"].values()) <= {"2.0.0-beta.1"}
    assert client.get(f"{base}/-/left-pad-1.1.0.tgz", **headers).status_code == 404


def test_protected_packages_are_kept_and_the_dry_run_says_so(
    api, thirty, admin, blob_dir, django_capture_on_commit_callbacks
):
    """A package a protection rule covers loses nothing to a cleanup policy; the dry run (REST
    and page) lists what it would otherwise have removed as kept."""
    from registry.models import ProtectionRule

    project = thirty
    for n in range(3):
        publish(project, admin, "lib", "0.3", "f.bin", f"again {n}".encode())
    ProtectionRule.objects.create(
        project=project, package_type="generic", package_name_pattern="AP*", minimum_access_level_for_delete=50
    )
    set_policy(project, keep_n_versions=1, keep_n_duplicated_package_files="1")
    maintainer = member(project, AccessLevel.MAINTAINER)
    dry = api.post(url(project, "/dry_run"), **token_for(maintainer)).json()
    assert [(v["name"], v["version"]) for v in dry["versions"]] == [("lib", "0.1"), ("lib", "0.2")]
    assert [(v["name"], v["version"], v["package_type"]) for v in dry["protected"]] == [
        ("app", str(n), "generic") for n in range(1, 30)
    ]
    client = Client()
    client.force_login(maintainer)
    content = client.get(page(project)).content.decode()
    assert "Kept: protected packages (29)" in content
    assert "never removed" in content

    apply(project, django_capture_on_commit_callbacks)
    assert live_versions(project, "app") == [str(n) for n in range(1, 31)]
    assert live_versions(project, "lib") == ["0.3"]
    assert PackageFile.objects.filter(version__package__name="lib").count() == 1
    assert_storage_consistent(blob_dir)
