"""Packages REST API (spec §4.1) on the management API's gate (`ManagementView`).

A "package" in GitLab's sense is one of our `PackageVersion` rows: `id` is its primary key,
`name` the package's name. Every decision goes through `registry.policy` via
`ManagementView.get_project` / `get_group`; job tokens are accepted (the allowlist applies),
deploy tokens are not (GitLab's REST packages API does not take them).

Also our REST extension: GET/PUT /projects/:id/packages/settings (duplicate rules).
"""

from django.db import transaction
from django.db.models import F
from django.utils.http import parse_http_date_safe
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts import roles
from api.base import ManagementView, not_found
from api.exceptions import ApiError
from api.params import BooleanField, boolean_param
from api.serializers import GitLabSerializer, base_url, iso
from registry import formats, policy, services
from registry.models import LISTED, PackageFile, PackageVersion, Status, validate_regex

WEB_VISIBLE = (Status.DEFAULT, Status.DEPRECATED)
ORDERINGS = {
    "created_at": ("created_at",),
    "name": ("package__name",),
    "version": ("version",),
    "type": ("package__format",),
}
FILE_ORDERINGS = {"id": "id", "created_at": "created_at", "file_name": "file_name"}


def filter_versions(versions, params, *, group=False):
    """The list filters shared by the project and group listings (and the web pages)."""
    statuses = params.get("status")
    if statuses:
        if statuses not in Status.values:
            raise ApiError(400, "400 Bad request - status does not have a valid value")
        versions = versions.filter(status=statuses)
    else:
        versions = versions.filter(status__in=LISTED)
    package_type = params.get("package_type")
    if package_type:
        versions = versions.filter(package__format=package_type)
    if params.get("package_name"):
        versions = versions.filter(package__name__icontains=params["package_name"])
    if params.get("package_version"):
        versions = versions.filter(version=params["package_version"])
    order_by = params.get("order_by") or "created_at"
    orderings = dict(ORDERINGS)
    if group:
        orderings["project_path"] = ("package__project__full_path",)
    if order_by not in orderings:
        raise ApiError(400, "400 Bad request - order_by does not have a valid value")
    sort = (params.get("sort") or "asc").lower()
    if sort not in ("asc", "desc"):
        raise ApiError(400, "400 Bad request - sort does not have a valid value")
    fields = [*orderings[order_by], "id"]
    return versions.order_by(*[F(f).desc() if sort == "desc" else F(f).asc() for f in fields])


def package_json(version, request, *, can_delete, with_project=False):
    package = version.package
    project = package.project
    links = {}
    if version.status in WEB_VISIBLE:
        links["web_path"] = f"/{project.full_path}/-/packages/{version.pk}"
    if can_delete:
        links["delete_api_path"] = f"{base_url(request)}/api/v4/projects/{project.pk}/packages/{version.pk}"
    data = {
        "id": version.pk,
        "name": package.name,
        "version": version.version,
        "package_type": package.format,
        "status": version.status,
        "_links": links,
        "created_at": iso(version.created_at),
        "last_downloaded_at": iso(version.last_downloaded_at),
        "tags": [],
        "withdrawn": (version.metadata or {}).get("withdrawn"),  # Packhouse: a yank or unlisting
    }
    if with_project:
        data["project_id"] = project.pk
        data["project_path"] = project.full_path
    return data


def package_file_json(package_file):
    blob = package_file.blob
    return {
        "id": package_file.pk,
        "package_id": package_file.version_id,
        "created_at": iso(package_file.created_at),
        "file_name": package_file.file_name,
        "size": blob.size,
        "file_md5": blob.md5,
        "file_sha1": blob.sha1,
        "file_sha256": blob.sha256,
    }


def _versions():
    return PackageVersion.objects.select_related("package__project")


class PackagesView(ManagementView):
    """GET /projects/:id/packages (project_kind="project") and GET /groups/:id/packages."""

    anonymous_methods = ("GET", "HEAD")
    allow_job_token = True
    target_kind = "project"

    def get(self, request, ref):
        if self.target_kind == "project":
            project = self.get_project(ref, roles.READ_PACKAGE)
            versions = _versions().filter(package__project=project)
            can_delete = policy.can(self.principal, project, roles.DESTROY_PACKAGE)
            versions = filter_versions(versions, request.query_params)
            return self.paginate(versions, lambda v: package_json(v, request, can_delete=can_delete))
        group = self.get_group(ref, roles.READ_PACKAGE)
        projects = policy.pullable_projects(self.principal, group)
        if boolean_param(request.query_params, "exclude_subgroups"):
            projects = projects.filter(group=group)
        versions = filter_versions(
            _versions().select_related("package__project__group").filter(package__project__in=projects),
            request.query_params,
            group=True,
        )

        def render(page):
            # Whether each project's packages may be deleted: decided for the whole page at once.
            deletable = policy.can_each(self.principal, [v.package.project for v in page], roles.DESTROY_PACKAGE)
            return [
                package_json(v, request, can_delete=deletable[v.package.project_id], with_project=True) for v in page
            ]

        return self.paginate_page(versions, render)


class PackageMixin:
    anonymous_methods = ("GET", "HEAD")
    allow_job_token = True

    def version(self, project, package_id, statuses=WEB_VISIBLE):
        version = _versions().filter(package__project=project, pk=package_id, status__in=statuses).first()
        if version is None:
            not_found("Package")
        return version


class PackageDetailView(PackageMixin, ManagementView):
    def get(self, request, ref, package_id):
        project = self.get_project(ref, roles.READ_PACKAGE)
        version = self.version(project, package_id)
        can_delete = policy.can(self.principal, project, roles.DESTROY_PACKAGE)
        data = package_json(version, request, can_delete=can_delete)
        others = (
            PackageVersion.objects.filter(package=version.package, status__in=WEB_VISIBLE)
            .exclude(pk=version.pk)
            .order_by("created_at", "id")
        )
        data["versions"] = [
            {"id": v.pk, "version": v.version, "created_at": iso(v.created_at), "pipelines": []} for v in others
        ]
        return Response(data)

    def delete(self, request, ref, package_id):
        """204; 412 when `If-Unmodified-Since` is older than the package's last change (compared
        in whole seconds, the resolution of HTTP dates)."""
        project = self.get_project(ref, roles.DESTROY_PACKAGE)
        since = parse_http_date_safe(request.headers.get("If-Unmodified-Since") or "")
        deletable = [s for s in Status.values if s != "pending_destruction"]
        with transaction.atomic():
            version = self.version(project, package_id, statuses=deletable)
            PackageVersion.objects.select_for_update().filter(pk=version.pk).first()
            if since is not None and int(services.version_last_modified(version).timestamp()) > since:
                raise ApiError(412, "412 Precondition Failed")
            services.mark_version_for_destruction(version)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WithdrawalInput(GitLabSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=1024, default="")


class PackageWithdrawalView(PackageMixin, ManagementView):
    """Packhouse's extension: POST /projects/:id/packages/:package_id/withdrawal takes a version
    out of sight the way its format does (a yank, an unlisting: the format's
    `withdrawal`), with an optional `reason`; DELETE undoes it. Maintainer+ (DESTROY_PACKAGE)."""

    anonymous_methods = ()

    def _version(self, ref, package_id):
        project = self.get_project(ref, roles.DESTROY_PACKAGE)
        version = self.version(project, package_id, statuses=[*WEB_VISIBLE, Status.HIDDEN])
        if not formats.get(version.package.format).withdrawal:
            raise ApiError(400, f"400 Bad request - {version.package.format} packages cannot be withdrawn")
        return version

    def post(self, request, ref, package_id):
        version = self._version(ref, package_id)
        data = WithdrawalInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.set_withdrawn(version, self.principal, True, data.validated_data["reason"])
        return Response(package_json(version, request, can_delete=True), status=status.HTTP_201_CREATED)

    def delete(self, request, ref, package_id):
        version = self._version(ref, package_id)
        services.set_withdrawn(version, self.principal, False)
        return Response(package_json(version, request, can_delete=True))


class PackageFilesView(PackageMixin, ManagementView):
    def get(self, request, ref, package_id):
        project = self.get_project(ref, roles.READ_PACKAGE)
        version = self.version(project, package_id)
        params = request.query_params
        order_by = params.get("order_by") or "id"
        sort = (params.get("sort") or "asc").lower()
        if order_by not in FILE_ORDERINGS:
            raise ApiError(400, "400 Bad request - order_by does not have a valid value")
        if sort not in ("asc", "desc"):
            raise ApiError(400, "400 Bad request - sort does not have a valid value")
        prefix = "-" if sort == "desc" else ""
        files = (
            PackageFile.objects.select_related("blob")
            .filter(version=version, status=PackageFile.FileStatus.DEFAULT)
            .order_by(f"{prefix}{FILE_ORDERINGS[order_by]}", f"{prefix}id")
        )
        return self.paginate(files, package_file_json)


class PackageFileDetailView(PackageMixin, ManagementView):
    def delete(self, request, ref, package_id, file_id):
        project = self.get_project(ref, roles.DESTROY_PACKAGE_FILE)
        version = self.version(project, package_id, statuses=[s for s in Status.values if s != "pending_destruction"])
        package_file = (
            PackageFile.objects.select_related("version")
            .filter(version=version, pk=file_id, status=PackageFile.FileStatus.DEFAULT)
            .first()
        )
        if package_file is None:
            not_found("Package file")
        services.mark_file_for_destruction(package_file)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PackageFileDownloadView(PackageMixin, ManagementView):
    """GET /projects/:id/packages/:package_id/package_files/:package_file_id/download: the file
    (GitLab 18.4), as the package's own format serves it, counted as a download."""

    def get(self, request, ref, package_id, file_id):
        project = self.get_project(ref, roles.READ_PACKAGE)
        version = self.version(project, package_id)
        package_file = (
            PackageFile.objects.select_related("blob", "version")
            .filter(version=version, pk=file_id, status=PackageFile.FileStatus.DEFAULT)
            .first()
        )
        if package_file is None:
            not_found("Package file")
        return services.serve(package_file, request)


# --- package settings (REST extension) -------------------------------------------------------


def _regex(value):
    try:
        validate_regex(value)
    except Exception as exc:
        raise serializers.ValidationError("is not a valid regular expression") from exc
    return value


def duplicate_setting_fields(format_name):
    """{field name: DuplicateSetting attribute} of one format's duplicate setting, as GitLab names
    them (`<format>_duplicates_allowed`, `<format>_duplicate_exception_regex`); the settings page
    uses the same names."""
    return {
        f"{format_name}_duplicates_allowed": "allowed",
        f"{format_name}_duplicate_exception_regex": "exception_regex",
    }


class PackageSettingsInput(GitLabSerializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for fmt in formats.with_duplicate_setting():
            allowed, regex = duplicate_setting_fields(fmt.name)
            self.fields[allowed] = BooleanField(required=False)
            self.fields[regex] = serializers.CharField(
                required=False, allow_blank=True, max_length=255, validators=[_regex]
            )
        for fmt in formats.with_own_settings():
            for field in fmt.setting_labels:
                self.fields[field] = BooleanField(required=False)

    def changes(self):
        """The validated input as {format name: {DuplicateSetting attribute: value}}."""
        changes = {}
        for fmt in formats.with_duplicate_setting():
            for field, attribute in duplicate_setting_fields(fmt.name).items():
                if field in self.validated_data:
                    changes.setdefault(fmt.name, {})[attribute] = self.validated_data[field]
        return changes

    def own_changes(self):
        """The validated input of the formats' own settings: {field: bool}."""
        own = {field for fmt in formats.with_own_settings() for field in fmt.setting_labels}
        return {field: value for field, value in self.validated_data.items() if field in own}


def package_settings_json(settings_by_format, own_settings):
    """The flat GitLab shape from services.duplicate_settings() and services.own_settings()."""
    data = {}
    for format_name, row in settings_by_format.items():
        for field, attribute in duplicate_setting_fields(format_name).items():
            data[field] = getattr(row, attribute)
    data.update(own_settings)
    return data


class PackageSettingsView(ManagementView):
    """GET/PUT /projects/:id/packages/settings: Maintainer+ (ADMIN_PACKAGE_SETTINGS)."""

    def get(self, request, ref):
        project = self.get_project(ref, roles.ADMIN_PACKAGE_SETTINGS)
        return Response(package_settings_json(services.duplicate_settings(project), services.own_settings(project)))

    def put(self, request, ref):
        project = self.get_project(ref, roles.ADMIN_PACKAGE_SETTINGS)
        data = PackageSettingsInput(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            duplicates = services.save_duplicate_settings(project, data.changes())
            own = services.save_own_settings(project, data.own_changes())
        return Response(package_settings_json(duplicates, own))

    patch = put
