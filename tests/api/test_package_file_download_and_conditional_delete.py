"""GET …/packages/:id/package_files/:file_id/download (GitLab 18.4) and DELETE …/packages/:id
honouring If-Unmodified-Since (412)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.http import http_date

from accounts.roles import AccessLevel
from registry import download_counts
from registry.models import PackageFile, PackageVersion, Status
from tests.api.test_packages_api import Who, publish
from tests.factories import CiJobFactory, DeployTokenFactory, GroupFactory, ProjectFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="tools")


@pytest.fixture
def maintainer(project):
    return Who(AccessLevel.MAINTAINER, project=project)


def download_url(project, version, package_file):
    return f"/api/v4/projects/{project.pk}/packages/{version.pk}/package_files/{package_file.pk}/download"


def test_download_a_package_file(api, project, maintainer):
    version = publish(api, project, maintainer.headers, "tool", "1.0.0", "tool.bin", b"the bytes")
    package_file = version.files.get()
    url = download_url(project, version, package_file)

    response = api.get(url, **maintainer.headers)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"the bytes"
    assert "attachment" in response["Content-Disposition"] and "tool.bin" in response["Content-Disposition"]
    download_counts.flush()  # counted in Redis, written in batches
    assert PackageVersion.objects.get(pk=version.pk).download_count == 1

    reporter = Who(AccessLevel.REPORTER, project=project)
    assert api.get(url, **reporter.headers).status_code == 200
    job = CiJobFactory(project=project, user=maintainer.user)
    assert api.get(url, **auth_headers(job.plaintext, "job")).status_code == 200


def test_download_refusals(api, project, maintainer):
    version = publish(api, project, maintainer.headers, "tool", "1.0.0", "tool.bin")
    package_file = version.files.get()
    url = download_url(project, version, package_file)
    assert api.get(url).status_code == 401
    assert api.get(url, **Who().headers).json() == {"message": "404 Project Not Found"}
    guest = Who(AccessLevel.GUEST, project=project)
    assert api.get(url, **guest.headers).status_code == 403
    deploy = DeployTokenFactory(project=project)
    assert api.get(url, **auth_headers(deploy.plaintext, "deploy")).status_code == 403
    missing = f"/api/v4/projects/{project.pk}/packages/{version.pk}/package_files/999999/download"
    assert api.get(missing, **maintainer.headers).json() == {"message": "404 Package file Not Found"}
    PackageFile.objects.filter(pk=package_file.pk).update(status=PackageFile.FileStatus.PENDING_DESTRUCTION)
    assert api.get(url, **maintainer.headers).status_code == 404


def test_delete_honours_if_unmodified_since(api, project, maintainer):
    version = publish(api, project, maintainer.headers, "tool", "1.0.0")
    url = f"/api/v4/projects/{project.pk}/packages/{version.pk}"
    earlier = http_date((timezone.now() - timedelta(hours=1)).timestamp())

    refused = api.delete(url, HTTP_IF_UNMODIFIED_SINCE=earlier, **maintainer.headers)
    assert refused.status_code == 412
    assert refused.json() == {"message": "412 Precondition Failed"}
    assert PackageVersion.objects.get(pk=version.pk).status == Status.DEFAULT

    # A file added after the date counts as a change too.
    later_file = publish(api, project, maintainer.headers, "tool", "1.0.0", "second.bin")
    assert later_file.pk == version.pk
    PackageVersion.objects.filter(pk=version.pk).update(updated_at=timezone.now() - timedelta(days=1))
    PackageFile.objects.filter(version=version, file_name="f.bin").update(created_at=timezone.now() - timedelta(days=1))
    two_hours_ago = http_date((timezone.now() - timedelta(hours=2)).timestamp())
    assert api.delete(url, HTTP_IF_UNMODIFIED_SINCE=two_hours_ago, **maintainer.headers).status_code == 412

    # Not modified since: deleted. An unparseable date is ignored, as HTTP says.
    now = http_date(timezone.now().timestamp() + 1)
    assert api.delete(url, HTTP_IF_UNMODIFIED_SINCE=now, **maintainer.headers).status_code == 204
    assert PackageVersion.objects.get(pk=version.pk).status == Status.PENDING_DESTRUCTION
    other = publish(api, project, maintainer.headers, "other", "1.0.0")
    other_url = f"/api/v4/projects/{project.pk}/packages/{other.pk}"
    assert api.delete(other_url, HTTP_IF_UNMODIFIED_SINCE="yesterday", **maintainer.headers).status_code == 204
