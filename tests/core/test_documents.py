"""Cached client documents: keyed on the packages' epochs (registry.epochs), ETag/304, built for
each request without epochs, and built anyway when the cache is down."""

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts.models import Project
from registry import epochs, request_freshness
from registry.access_cache import RequestMemory
from registry.documents import cached_document
from registry.models import Package
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

KEYS = epochs.package_keys("generic", "p")


@pytest.fixture
def package():
    return Package.objects.create(project=ProjectFactory(), format="generic", name="p", normalized_name="p")


def get(path="/doc", **headers):
    """A request whose view read the package's epochs first, as PackageAPIView does."""
    request = RequestFactory().get(path, **headers)
    request_freshness.of(request.META).package_stamps = tuple(epochs.current(KEYS))
    return request


def test_document_is_built_once_then_served_from_cache_until_a_write(package):
    calls = []

    def render():
        calls.append(1)
        return f"document v{len(calls)}"

    packages = Package.objects.filter(pk=package.pk)
    first = cached_document(get(), packages, render, "text/plain")
    second = cached_document(get(), packages, render, "text/plain")
    assert first.content == second.content == b"document v1"
    assert first["ETag"] == second["ETag"]
    assert len(calls) == 1

    epochs.bump(KEYS)  # what services.package_changed does for every write
    third = cached_document(get(), packages, render, "text/plain")
    assert third.content == b"document v2"
    assert third["ETag"] != first["ETag"]


def test_the_key_holds_which_packages_the_caller_may_pull(package):
    other = Package.objects.create(project=ProjectFactory(), format="generic", name="p", normalized_name="p")
    mine = cached_document(get(), Package.objects.filter(pk=package.pk), lambda: "one project", "text/plain")
    both = cached_document(get(), Package.objects.filter(pk__in=[package.pk, other.pk]), lambda: "two", "text/plain")
    assert (mine.content, both.content) == (b"one project", b"two")


def remembering(request):
    """`request` with the RequestMemory PackageAPIView gives it (the ids of a document's packages
    are remembered there)."""
    state = request_freshness.of(request.META)
    state.memory = RequestMemory.for_request(request, KEYS)
    state.package_stamps = tuple(state.memory.package_epochs)
    return request


def test_packages_that_can_match_nothing_make_a_document_too(package):
    """A caller whose token may pull nothing gets `.none()` projects: no SQL to key the ids on."""
    nothing = Package.objects.filter(project__in=Project.objects.none())
    for packages in (nothing, Package.objects.none()):
        response = cached_document(remembering(get()), packages, lambda: "nothing here", "text/plain")
        assert (response.status_code, response.content) == (200, b"nothing here")


def test_remembered_ids_follow_the_packages_epochs(package):
    packages = Package.objects.filter(normalized_name="p")
    assert cached_document(remembering(get()), packages, lambda: "one", "text/plain").content == b"one"
    with CaptureQueriesContext(connection) as queries:
        assert cached_document(remembering(get()), packages, lambda: "two", "text/plain").content == b"one"
    assert queries.captured_queries == []
    Package.objects.create(project=ProjectFactory(), format="generic", name="p", normalized_name="p")
    epochs.bump(KEYS)  # what the write service does when it creates a package
    assert cached_document(remembering(get()), packages, lambda: "three", "text/plain").content == b"three"


def test_if_none_match_gets_304(package):
    packages = Package.objects.filter(pk=package.pk)
    etag = cached_document(get(), packages, lambda: "x", "text/plain")["ETag"]
    response = cached_document(get(HTTP_IF_NONE_MATCH=etag), packages, lambda: "x", "text/plain")
    assert response.status_code == 304
    assert response["ETag"] == etag


def test_without_epochs_documents_are_built_for_each_request_and_still_answer_304(package):
    calls = []

    def render():
        calls.append(1)
        return "same bytes"

    packages = Package.objects.filter(pk=package.pk)
    first = cached_document(RequestFactory().get("/doc"), packages, render, "text/plain")
    again = cached_document(
        RequestFactory().get("/doc", HTTP_IF_NONE_MATCH=first["ETag"]), packages, render, "text/plain"
    )
    assert first.content == b"same bytes"
    assert again.status_code == 304
    assert len(calls) == 2


def test_documents_are_built_when_the_cache_is_unreachable(package, settings, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "accounts.redis_client.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    response = cached_document(get(), Package.objects.all(), lambda: "built", "text/plain")
    assert response.status_code == 200
    assert response.content == b"built"
    assert "cache get failed" in caplog.text
