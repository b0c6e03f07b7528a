"""Health endpoints, GitLab's names: `/-/liveness` (the process answers), `/-/readiness` (the
database, Redis and the blob store are reachable: each check with its status and latency in
milliseconds; 503 when one is down), and `/-/health` (liveness plus the database, kept for load
balancers and the test harness). None of them reads a credential or says more than up or down."""

import time

from django.db import connection
from django.http import JsonResponse

from registry import epochs
from registry.storage import BlobStore


def health(request):
    """Liveness and database reachability, for load balancers and the test harness."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def liveness(request):
    return JsonResponse({"status": "ok"})


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _storage():
    BlobStore().ping()


CHECKS = {"db_check": _database, "redis_check": epochs.ping, "storage_check": _storage}


def readiness(request):
    body = {}
    ready = True
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
            result = {"status": "ok"}
        except Exception as exc:  # any failure is "not ready", said by its class name only
            ready = False
            result = {"status": "failed", "message": exc.__class__.__name__}
        result["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
        body[name] = [result]
    body = {"status": "ok" if ready else "failed", **body}
    if not ready:
        connection.close_if_unusable_or_obsolete()
    return JsonResponse(body, status=200 if ready else 503)


def not_found(request, exception=None):
    """404 for unknown routes: JSON in GitLab's shape on the API, plain text elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"message": "404 Not Found"}, status=404)
    from django.http import HttpResponseNotFound

    return HttpResponseNotFound("Not Found")
