"""Job token scope (allowlist) API, jobs API, GET /job, and `manage.py ci_job`."""

import io
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import tokens
from accounts.models import CiJob, JobTokenScopeLink
from accounts.roles import AccessLevel
from tests.accounts.conftest import person
from tests.factories import CiJobFactory, GroupFactory, JobTokenScopeLinkFactory, ProjectFactory, finish
from tests.helpers import auth_headers

PROJ = "/api/v4/projects/acme%2Fsub%2Fproj"


def generic_url(project, file_name="a.txt"):
    return f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0.0/{file_name}"


# --- job token scope --------------------------------------------------------------------------


@pytest.mark.django_db
def test_scope_toggle_needs_maintainer(api, tree, people):
    assert api.get(f"{PROJ}/job_token_scope", **people["developer"].headers).status_code == 403
    assert api.get(f"{PROJ}/job_token_scope", **people["stranger"].headers).status_code == 404
    assert api.get(f"{PROJ}/job_token_scope").status_code == 401
    response = api.get(f"{PROJ}/job_token_scope", **people["maintainer"].headers)
    assert response.json() == {"inbound_enabled": True, "outbound_enabled": False}
    assert (
        api.patch(
            f"{PROJ}/job_token_scope", {"enabled": False}, format="json", **people["maintainer"].headers
        ).status_code
        == 204
    )
    tree["proj"].refresh_from_db()
    assert tree["proj"].ci_job_token_scope_enabled is False
    missing = api.patch(f"{PROJ}/job_token_scope", {}, format="json", **people["maintainer"].headers)
    assert missing.status_code == 400 and missing.json() == {"error": "enabled is missing"}


@pytest.mark.django_db
def test_project_allowlist_lets_another_projects_job_in(api, tree, people):
    proj, caller_project = tree["proj"], tree["other"]
    # The maintainer of proj is also a developer on the calling project and runs its job.
    maintainer = people["maintainer"]
    from tests.factories import MembershipFactory

    MembershipFactory(user=maintainer.user, project=caller_project, access_level=AccessLevel.DEVELOPER)
    job = CiJobFactory(project=caller_project, user=maintainer.user)
    job_headers = auth_headers(job.plaintext, "job")
    assert api.get(generic_url(proj), **job_headers).status_code in (403, 404)

    added = api.post(
        f"{PROJ}/job_token_scope/allowlist",
        {"target_project_id": caller_project.pk},
        format="json",
        **maintainer.headers,
    )
    assert added.status_code == 201
    assert added.json() == {"source_project_id": proj.pk, "target_project_id": caller_project.pk}
    upload = api.put(generic_url(proj), b"x", content_type="application/octet-stream", **job_headers)
    assert upload.status_code == 201
    dup = api.post(
        f"{PROJ}/job_token_scope/allowlist",
        {"target_project_id": caller_project.pk},
        format="json",
        **maintainer.headers,
    )
    assert dup.status_code == 400

    listing = api.get(f"{PROJ}/job_token_scope/allowlist", **maintainer.headers)
    assert [p["id"] for p in listing.json()] == [proj.pk, caller_project.pk]
    assert listing.json()[1]["path_with_namespace"] == caller_project.full_path
    assert listing["X-Total"] == "2"

    # Job tokens never manage the allowlist, even their own project's.
    own_job = CiJobFactory(project=proj, user=maintainer.user)
    assert api.get(f"{PROJ}/job_token_scope/allowlist", **auth_headers(own_job.plaintext, "job")).status_code == 403

    assert api.delete(f"{PROJ}/job_token_scope/allowlist/{caller_project.pk}", **maintainer.headers).status_code == 204
    assert api.delete(f"{PROJ}/job_token_scope/allowlist/{caller_project.pk}", **maintainer.headers).status_code == 404
    assert not JobTokenScopeLink.objects.exists()
    assert api.get(generic_url(proj, "a.txt"), **job_headers).status_code in (403, 404)


@pytest.mark.django_db
def test_allowlist_target_must_be_visible_and_known(api, tree, people):
    hidden = ProjectFactory()
    response = api.post(
        f"{PROJ}/job_token_scope/allowlist",
        {"target_project_id": hidden.pk},
        format="json",
        **people["maintainer"].headers,
    )
    assert response.status_code == 404
    assert (
        api.post(
            f"{PROJ}/job_token_scope/allowlist",
            {"target_project_id": 999999},
            format="json",
            **people["maintainer"].headers,
        ).status_code
        == 404
    )
    missing = api.post(f"{PROJ}/job_token_scope/allowlist", {}, format="json", **people["maintainer"].headers)
    assert missing.status_code == 400
    assert (
        api.post(
            f"{PROJ}/job_token_scope/allowlist",
            {"target_project_id": hidden.pk},
            format="json",
            **people["developer"].headers,
        ).status_code
        == 403
    )


@pytest.mark.django_db
def test_group_allowlist(api, tree, people):
    public_group = GroupFactory(path="friends", visibility="public")
    hidden_group = GroupFactory(path="secret")
    maintainer = people["maintainer"]
    added = api.post(
        f"{PROJ}/job_token_scope/groups_allowlist",
        {"target_group_id": public_group.pk},
        format="json",
        **maintainer.headers,
    )
    assert added.status_code == 201
    assert added.json() == {"source_project_id": tree["proj"].pk, "target_group_id": public_group.pk}
    assert (
        api.post(
            f"{PROJ}/job_token_scope/groups_allowlist",
            {"target_group_id": hidden_group.pk},
            format="json",
            **maintainer.headers,
        ).status_code
        == 404
    )
    listing = api.get(f"{PROJ}/job_token_scope/groups_allowlist", **maintainer.headers).json()
    assert listing == [
        {"id": public_group.pk, "web_url": "http://testserver/groups/friends", "name": public_group.name}
    ]
    assert (
        api.delete(f"{PROJ}/job_token_scope/groups_allowlist/{public_group.pk}", **maintainer.headers).status_code
        == 204
    )
    assert api.get(f"{PROJ}/job_token_scope/groups_allowlist", **maintainer.headers).json() == []


@pytest.mark.django_db
def test_allowlist_is_capped(api, tree, people):
    group = GroupFactory(visibility="public")
    targets = [ProjectFactory(group=group, visibility="public") for _ in range(JobTokenScopeLink.MAX_ENTRIES + 1)]
    JobTokenScopeLink.objects.bulk_create(
        [JobTokenScopeLink(source_project=tree["proj"], target_project=p) for p in targets[:-1]]
    )
    response = api.post(
        f"{PROJ}/job_token_scope/allowlist",
        {"target_project_id": targets[-1].pk},
        format="json",
        **people["maintainer"].headers,
    )
    assert response.status_code == 400
    assert JobTokenScopeLink.objects.count() == JobTokenScopeLink.MAX_ENTRIES
    page = api.get(f"{PROJ}/job_token_scope/allowlist?per_page=100&page=3", **people["maintainer"].headers)
    assert page["X-Total"] == str(JobTokenScopeLink.MAX_ENTRIES + 1) and len(page.json()) == 1


# --- jobs -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_start_job_get_job_and_finish(api, tree, people):
    developer = people["developer"]
    assert api.post(f"{PROJ}/jobs", {"name": "build"}, format="json", **people["reporter"].headers).status_code == 403
    assert api.post(f"{PROJ}/jobs", {}, format="json", **people["stranger"].headers).status_code == 404
    assert api.post(f"{PROJ}/jobs", {}, format="json").status_code == 401
    response = api.post(f"{PROJ}/jobs", {"name": "build", "ref": "v1"}, format="json", **developer.headers)
    assert response.status_code == 201
    data = response.json()
    token = data.pop("token")
    assert token.startswith(tokens.JOB_PREFIX)
    assert data["status"] == "running" and data["name"] == "build" and data["ref"] == "v1"
    assert data["project_id"] == tree["proj"].pk
    assert data["user"]["id"] == developer.user.pk and data["user"]["username"] == developer.user.username
    job = CiJob.objects.get(pk=data["id"])
    assert job.token_digest == tokens.digest(token)

    job_headers = auth_headers(token, "job")
    current = api.get("/api/v4/job", **job_headers)
    assert current.status_code == 200 and current.json()["id"] == job.pk and "token" not in current.json()
    assert api.get("/api/v4/job", **auth_headers(token, "basic:gitlab-ci-token")).status_code == 200
    assert api.get("/api/v4/job", **developer.headers).status_code == 401
    assert api.get("/api/v4/job").status_code == 401
    # The job token publishes, and is refused on management endpoints.
    assert (
        api.put(generic_url(tree["proj"]), b"x", content_type="application/octet-stream", **job_headers).status_code
        == 201
    )
    assert api.get(PROJ, **job_headers).status_code == 403
    assert api.post(f"{PROJ}/jobs", {}, format="json", **job_headers).status_code == 403

    finished = api.post(f"{PROJ}/jobs/{job.pk}/finish", {"status": "failed"}, format="json", **job_headers)
    assert finished.status_code == 200
    assert finished.json()["status"] == "failed" and finished.json()["finished_at"] is not None
    assert api.get("/api/v4/job", **job_headers).status_code == 401
    assert api.get(generic_url(tree["proj"]), **job_headers).status_code == 401


@pytest.mark.django_db
def test_who_may_finish_a_job(api, tree, people):
    job = CiJobFactory(project=tree["proj"], user=people["developer"].user)
    other_job = CiJobFactory(project=tree["proj"], user=people["developer"].user)
    url = f"{PROJ}/jobs/{job.pk}/finish"
    assert api.post(url, {}, format="json", **auth_headers(other_job.plaintext, "job")).status_code == 403
    assert api.post(url, {}, format="json", **people["reporter"].headers).status_code == 403
    assert api.post(url, {"status": "running"}, format="json", **people["maintainer"].headers).status_code == 400
    assert api.post(f"{PROJ}/jobs/999999/finish", {}, format="json", **people["maintainer"].headers).status_code == 404
    response = api.post(url, {}, format="json", **people["maintainer"].headers)
    assert response.status_code == 200 and response.json()["status"] == "success"
    assert api.post(url, {}, format="json", **people["developer"].headers).status_code == 400
    assert (
        api.post(
            f"{PROJ}/jobs/{other_job.pk}/finish", {"status": "canceled"}, format="json", **people["developer"].headers
        ).json()["status"]
        == "canceled"
    )


# --- ci_job command ---------------------------------------------------------------------------


def run_ci_job(project, user, *command, server_url="http://registry.test:8080"):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command(
            "ci_job",
            "run",
            "--project",
            project.full_path,
            "--user",
            user.username,
            "--server-url",
            server_url,
            "--",
            *command,
            stdout=out,
            stderr=err,
        )
    except CommandError as exc:
        code = exc.returncode
    return code, out.getvalue(), err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_ci_job_masks_the_token_and_finishes(tree, people, api):
    user = people["developer"].user
    script = (
        "import os, sys\n"
        "print('token=' + os.environ['CI_JOB_TOKEN'])\n"
        "print('err ' + os.environ['CI_JOB_TOKEN'], file=sys.stderr)\n"
        "for k in ('CI_API_V4_URL', 'CI_SERVER_HOST', 'CI_SERVER_URL', 'CI_PROJECT_ID', 'CI_PROJECT_PATH',\n"
        "          'CI_PROJECT_NAMESPACE_ID', 'CI_PROJECT_ROOT_NAMESPACE', 'CI_JOB_ID'):\n"
        "    print(k + '=' + os.environ[k])\n"
        "open(os.environ['OUT'], 'w').write(os.environ['CI_JOB_TOKEN'])\n"
    )
    import os
    import tempfile

    with tempfile.NamedTemporaryFile(delete=False) as handle:
        os.environ["OUT"] = handle.name
    try:
        code, out, err = run_ci_job(tree["proj"], user, sys.executable, "-c", script)
        token = open(handle.name).read()
    finally:
        del os.environ["OUT"]
        os.unlink(handle.name)
    assert code == 0, err
    assert token.startswith(tokens.JOB_PREFIX)
    assert token not in out and token not in err
    assert "token=[MASKED]" in out and "err [MASKED]" in err
    job = CiJob.objects.get()
    assert f"CI_JOB_ID={job.pk}" in out
    assert "CI_API_V4_URL=http://registry.test:8080/api/v4" in out
    assert "CI_SERVER_HOST=registry.test:8080" in out
    assert "CI_SERVER_URL=http://registry.test:8080" in out
    assert f"CI_PROJECT_ID={tree['proj'].pk}" in out
    assert "CI_PROJECT_PATH=acme/sub/proj" in out
    assert f"CI_PROJECT_NAMESPACE_ID={tree['sub'].pk}" in out
    assert "CI_PROJECT_ROOT_NAMESPACE=acme" in out
    assert job.status == "success" and job.finished_at is not None and job.user == user
    assert job.token_digest == tokens.digest(token)
    assert api.get("/api/v4/job", **auth_headers(token, "job")).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_ci_job_failure_exit_code_and_status(tree, people):
    code, out, err = run_ci_job(
        tree["proj"], people["developer"].user, sys.executable, "-c", "import sys; print('bye'); sys.exit(3)"
    )
    assert code == 3 and "bye" in out
    assert CiJob.objects.get().status == "failed"
    code, _, _ = run_ci_job(tree["proj"], people["developer"].user, "/nonexistent/command")
    assert code == 127
    assert list(CiJob.objects.order_by("id").values_list("status", flat=True)) == ["failed", "failed"]


@pytest.mark.django_db(transaction=True)
def test_ci_job_against_a_live_server(tree, people, live_registry):
    """The job's token works against the real server while the job runs, and is masked."""
    user = people["developer"].user
    script = (
        "import os, json, urllib.request\n"
        "req = urllib.request.Request(os.environ['CI_API_V4_URL'] + '/job',\n"
        "                             headers={'JOB-TOKEN': os.environ['CI_JOB_TOKEN']})\n"
        "body = json.load(urllib.request.urlopen(req))\n"
        "print('job', body['id'], body['status'], os.environ['CI_JOB_TOKEN'])\n"
        "url = os.environ['CI_API_V4_URL'] + '/projects/' + os.environ['CI_PROJECT_ID'] +"
        " '/packages/generic/tool/1.0.0/ci.txt'\n"
        "put = urllib.request.Request(url, data=b'built', method='PUT',\n"
        "                             headers={'JOB-TOKEN': os.environ['CI_JOB_TOKEN']})\n"
        "print('upload', urllib.request.urlopen(put).status)\n"
    )
    code, out, err = run_ci_job(tree["proj"], user, sys.executable, "-c", script, server_url=live_registry.url)
    assert code == 0, out + err
    job = CiJob.objects.get()
    assert f"job {job.pk} running [MASKED]" in out
    assert "upload 201" in out
    assert job.status == "success"


@pytest.mark.django_db
def test_finished_jobs_factory_token_is_dead(api, tree):
    job = finish(CiJobFactory(project=tree["proj"]))
    assert api.get("/api/v4/job", **auth_headers(job.plaintext, "job")).status_code == 401


@pytest.mark.django_db
def test_job_from_unlisted_project_is_kept_out(api, tree):
    """Sanity check that the allowlist gates a foreign job on a private project."""
    user = person(AccessLevel.DEVELOPER, project=tree["proj"]).user
    from tests.factories import MembershipFactory

    MembershipFactory(user=user, project=tree["other"], access_level=AccessLevel.DEVELOPER)
    job = CiJobFactory(project=tree["other"], user=user)
    link = JobTokenScopeLinkFactory(source_project=tree["proj"], target_group=tree["other"].group)
    assert api.get(f"{PROJ}/job_token_scope/groups_allowlist", **auth_headers(job.plaintext, "job")).status_code == 403
    assert link.pk
