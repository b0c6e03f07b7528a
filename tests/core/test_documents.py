"""Cached client documents: keyed on package generations, ETag/304, and built anyway when the
cache is down."""

import pytest
from django.test import RequestFactory

from registry.documents import cached_document
from registry.models import Package
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def package():
    return Package.objects.create(project=ProjectFactory(), format="generic", name="p", normalized_name="p")


def test_document_is_built_once_then_served_from_cache_until_a_write(package):
    calls = []

    def render():
        calls.append(1)
        return f"document v{len(calls)}"

    request = RequestFactory().get("/doc")
    packages = Package.objects.filter(pk=package.pk)
    first = cached_document(request, packages, render, "text/plain")
    second = cached_document(request, packages, render, "text/plain")
    assert first.content == second.content == b"document v1"
    assert first["ETag"] == second["ETag"]
    assert len(calls) == 1

    Package.objects.filter(pk=package.pk).update(generation=package.generation + 1)
    third = cached_document(request, packages, render, "text/plain")
    assert third.content == b"document v2"
    assert third["ETag"] != first["ETag"]


def test_if_none_match_gets_304(package):
    packages = Package.objects.filter(pk=package.pk)
    etag = cached_document(RequestFactory().get("/doc"), packages, lambda: "x", "text/plain")["ETag"]
    response = cached_document(
        RequestFactory().get("/doc", HTTP_IF_NONE_MATCH=etag), packages, lambda: "x", "text/plain"
    )
    assert response.status_code == 304
    assert response["ETag"] == etag


def test_documents_are_built_when_the_cache_is_unreachable(package, settings, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    response = cached_document(RequestFactory().get("/doc"), Package.objects.all(), lambda: "built", "text/plain")
    assert response.status_code == 200
    assert response.content == b"built"
    assert "cache get failed" in caplog.text
