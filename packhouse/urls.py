"""The root URLconf: every registered format's routes (registry.routes), the REST API, the admin,
the pages. The pages come last: their `<ref>` routes catch project paths."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from registry.health import health, liveness, readiness
from registry.metrics import metrics_view
from registry.routes import format_patterns

handler404 = "registry.health.not_found"

urlpatterns = [
    *format_patterns(),
    path("api/v4/", include("api.urls")),
    path("", include("web.admin_urls")),
    path("admin/", admin.site.urls),
    path("-/health", health),
    path("-/liveness", liveness),
    path("-/readiness", readiness),
    path("-/metrics", metrics_view),
    *([path("oidc/", include("mozilla_django_oidc.urls"))] if settings.OIDC_ISSUER else []),
    path("", include("web.urls")),
]
