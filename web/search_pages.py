"""One search box over every package the caller may pull (`/search?search=`): each word must
match the package's name, its format or its project's path; `format` narrows to one format.
Projects come from the policy's pull rule (registry.policy.pullable_projects), so a package
shows up here exactly when its files could be downloaded."""

from django.core.paginator import Paginator
from django.db.models import Max, Q
from django.shortcuts import render
from django.views.decorators.http import require_GET

from registry import policy
from registry.models import LISTED, Package
from web.package_pages import format_names
from web.pages import principal_of

PER_PAGE = 20


def search_packages(principal, text, fmt=""):
    projects = policy.pullable_projects(principal)
    packages = Package.objects.filter(project__in=projects, versions__status__in=LISTED)
    known = format_names()
    for word in text.split():
        clause = Q(name__icontains=word) | Q(project__full_path__icontains=word)
        if word.lower() in known:
            clause |= Q(format=word.lower())
        packages = packages.filter(clause)
    if fmt in known:
        packages = packages.filter(format=fmt)
    return (
        packages.annotate(latest_at=Max("versions__created_at"))
        .select_related("project")
        .order_by("-latest_at", "name", "id")
        .distinct()
    )


@require_GET
def search(request):
    text = request.GET.get("search", "").strip()[:200]
    fmt = request.GET.get("format", "")
    results = None
    if text or fmt:
        packages = search_packages(principal_of(request), text, fmt)
        results = Paginator(packages, PER_PAGE).get_page(request.GET.get("page"))
        latest = {}
        for package in results:
            version = package.versions.filter(status__in=LISTED).order_by("-created_at", "-id").first()
            latest[package.pk] = version
        results = [(package, latest[package.pk]) for package in results], results
    context = {"search": text, "format": fmt, "formats": format_names(), "results": results}
    return render(request, "web/search.html", context)
