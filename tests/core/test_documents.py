"""Cached client documents: keyed on the packages' epochs (registry.epochs), ETag/304, built for
each request without epochs, and built anyway when the cache is down."""

import pytest
from django.test import RequestFactory

from registry import epochs, request_freshness
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
