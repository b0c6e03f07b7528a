"""Package pages: dashboard, project and group package lists, a version's page (files, install
snippets), deleting a version or a file."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts import roles
from accounts import services as services_accounts
from accounts.models import Membership
from api.serializers import base_url
from registry import formats, policy, protection, services
from registry.errors import Invalid, NotFound
from registry.middleware import API_POLICY
from registry.models import LISTED, PackageFile, PackageVersion, Status
from web import readme
from web.pages import group_nav, load_group, load_project, page, principal_of, project_nav
from web.snippets import install_snippets

SORTS = {
    "created_desc": ("-created_at", "-id"),
    "created_asc": ("created_at", "id"),
    "name_asc": ("package__name", "version", "id"),
    "name_desc": ("-package__name", "-version", "-id"),
    "version_desc": ("-version", "-id"),
    "version_asc": ("version", "id"),
}
PER_PAGE = 20
WEB_VISIBLE = (Status.DEFAULT, Status.DEPRECATED)


def format_names():
    """The list filter's choices: every installed format, in name order."""
    return sorted(package_format.name for package_format in formats.all_formats())


# --- dashboard --------------------------------------------------------------------------------


@require_GET
@login_required
def dashboard(request):
    principal = principal_of(request)
    projects = policy.visible_projects(principal).annotate(package_count=Count("packages", distinct=True))
    groups = policy.visible_groups(principal).order_by("full_path")
    member_projects = set(
        Membership.objects.filter(user=request.user, project__isnull=False).values_list("project_id", flat=True)
    )
    return render(
        request,
        "web/dashboard.html",
        {
            "projects": projects.order_by("full_path"),
            "groups": groups,
            "member_projects": member_projects,
            "can_create_group": services_accounts.may_create_top_level_group(principal),
        },
    )


# --- packages ---------------------------------------------------------------------------------


def _filtered_versions(request, versions):
    fmt = request.GET.get("format", "")
    name = request.GET.get("name", "").strip()
    sort = request.GET.get("sort", "created_desc")
    if sort not in SORTS:
        sort = "created_desc"
    versions = versions.filter(status__in=LISTED)
    if fmt in format_names():
        versions = versions.filter(package__format=fmt)
    if name:
        versions = versions.filter(package__name__icontains=name)
    versions = versions.select_related("package__project", "creator").order_by(*SORTS[sort])
    paginator = Paginator(versions, PER_PAGE)
    page_ = paginator.get_page(request.GET.get("page"))
    protected = protection.protected_package_ids(version.package for version in page_)
    for version in page_:
        version.protected = version.package_id in protected
    return page_, {"format": fmt, "name": name, "sort": sort}


@require_GET
@page
def project_packages(request, ref):
    project, _ = load_project(request, ref, roles.READ_PACKAGE)
    versions, filters = _filtered_versions(request, PackageVersion.objects.filter(package__project=project))
    context = {**project_nav(request, project), "versions": versions, "filters": filters, "formats": format_names()}
    return render(request, "web/package_list.html", context)


@require_GET
@page
def group_packages(request, ref):
    group = load_group(request, ref, roles.READ_PACKAGE)
    projects = policy.pullable_projects(principal_of(request), group)
    versions, filters = _filtered_versions(request, PackageVersion.objects.filter(package__project__in=projects))
    context = {
        **group_nav(request, group),
        "versions": versions,
        "filters": filters,
        "formats": format_names(),
    }
    return render(request, "web/package_list.html", context)


def _version_in(project, package_id, statuses=WEB_VISIBLE):
    version = (
        PackageVersion.objects.select_related("package__project", "creator", "deploy_token", "ci_job")
        .filter(package__project=project, pk=package_id, status__in=statuses)
        .first()
    )
    if version is None:
        raise NotFound()
    return version


@require_GET
@page
def package_detail(request, ref, package_id):
    project, _ = load_project(request, ref, roles.READ_PACKAGE)
    version = _version_in(project, package_id, statuses=(*WEB_VISIBLE, Status.HIDDEN))  # unlisted too
    principal = principal_of(request)
    files = list(
        version.files.filter(status=PackageFile.FileStatus.DEFAULT).select_related("blob").order_by("file_name", "id")
    )
    others = (
        PackageVersion.objects.filter(package=version.package, status__in=WEB_VISIBLE)
        .exclude(pk=version.pk)
        .order_by("-created_at")
    )
    snippets = install_snippets(
        version.package.format,
        base_url(request),
        project,
        version.package.name,
        version.version,
        [f.file_name for f in files],
    )
    context = {
        **project_nav(request, project),
        **version_details(version, files),
        "version": version,
        "package": version.package,
        "files": files,
        "total_size": sum(f.blob.size for f in files),
        "others": others,
        "snippets": snippets,
        "protected": bool(protection.rules_covering(version.package)),
        "can_delete": _may_delete(principal, project, version.package, roles.DESTROY_PACKAGE),
        "withdrawal": getattr(formats.find(version.package.format), "withdrawal", ""),
        "withdrawal_undone": getattr(formats.find(version.package.format), "withdrawal_undone", ""),
        "withdrawn": (version.metadata or {}).get("withdrawn"),
        "can_delete_file": _may_delete(principal, project, version.package, roles.DESTROY_PACKAGE_FILE),
    }
    return render(request, "web/package_detail.html", context)


def _may_delete(principal, project, package, action):
    """Whether the delete buttons show: the policy allows the action and no protection rule
    keeps this principal from deleting the package."""
    access = policy.ProjectAccess(principal, project)
    return access.allowed(action) and not policy.protection_refuses(access, package, protection.DELETE)


CREATED_VIA = {
    "personal": "personal access token",
    "project": "project access token",
    "group": "group access token",
    "deploy": "deploy token",
    "job": "CI job token",
    "session": "signed-in session",
}


def version_details(version, files):
    """What the format tells about the version (registry.formats.VersionDetails), ready for the
    page: the README rendered and sanitized (web.readme), only http(s) links."""
    package_format = formats.find(version.package.format)
    details = package_format.version_details(version, files) if package_format else formats.VersionDetails()
    return {
        "summary": details.summary,
        "readme_html": readme.render(details.readme, details.readme_markup),
        "license": details.license,
        "links": [(label, url) for label, url in details.links if readme.safe_url(url)],
        "dependency_groups": details.dependency_groups,
        "tags": details.tags,
        "created_via_label": CREATED_VIA.get(version.created_via, version.created_via or "unknown"),
    }


@require_GET
@page
def package_file_download(request, ref, file_id):
    """GitLab's `/<project>/-/package_files/<id>/download`: a file of a listed version, to whoever
    may pull from the project, served as a download that runs nothing."""
    project, _ = load_project(request, ref, roles.READ_PACKAGE)
    package_file = (
        PackageFile.objects.select_related("blob", "version__package")
        .filter(
            pk=file_id,
            status=PackageFile.FileStatus.DEFAULT,
            version__package__project=project,
            version__status__in=WEB_VISIBLE,
        )
        .first()
    )
    if package_file is None:
        raise NotFound()
    response = services.serve(package_file, request)
    response["Content-Security-Policy"] = API_POLICY
    return response


@require_POST
@page
def package_withdrawal(request, ref, package_id):
    """The format's withdrawal (a yank...) with a reason, or its undoing (`action=undo`)."""
    project, _ = load_project(request, ref, roles.DESTROY_PACKAGE)
    version = _version_in(project, package_id, statuses=[*WEB_VISIBLE, Status.HIDDEN])
    package_format = formats.find(version.package.format)
    if package_format is None or not package_format.withdrawal:
        raise NotFound()
    withdrawn = request.POST.get("action") != "undo"
    try:
        services.set_withdrawn(version, principal_of(request), withdrawn, request.POST.get("reason", ""))
    except Invalid as exc:
        messages.error(request, exc.message)
    else:
        verb = package_format.withdrawal if withdrawn else package_format.withdrawal_undone
        messages.success(request, f"{version.package.name} {version.version}: {verb} done.")
    return redirect("web:package_detail", ref=project.full_path, package_id=version.pk)


@require_POST
@page
def package_delete(request, ref, package_id):
    project, _ = load_project(request, ref, roles.DESTROY_PACKAGE)
    version = _version_in(project, package_id, statuses=[s for s in Status.values if s != Status.PENDING_DESTRUCTION])
    services.mark_version_for_destruction(version)
    messages.success(request, f"Deleted {version.package.name} {version.version}.")
    return redirect("web:project_packages", ref=project.full_path)


@require_POST
@page
def package_file_delete(request, ref, package_id, file_id):
    project, _ = load_project(request, ref, roles.DESTROY_PACKAGE_FILE)
    version = _version_in(project, package_id, statuses=[s for s in Status.values if s != Status.PENDING_DESTRUCTION])
    package_file = version.files.filter(pk=file_id, status=PackageFile.FileStatus.DEFAULT).first()
    if package_file is None:
        raise NotFound()
    services.mark_file_for_destruction(package_file)
    messages.success(request, f"Deleted file {package_file.file_name}.")
    return redirect("web:package_detail", ref=project.full_path, package_id=version.pk)


@require_GET
@page
def project_home(request, ref):
    project, _ = load_project(request, ref, roles.READ_PROJECT)
    return redirect("web:project_packages", ref=project.full_path)


@require_GET
@page
def group_home(request, ref):
    group = load_group(request, ref, roles.READ_GROUP)
    return redirect("web:group_packages", ref=group.full_path)
