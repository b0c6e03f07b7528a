"""Thin Cargo views: the sparse index (`config.json` and one file per crate), publish, download,
yank and unyank at project level; the index and downloads at group level (read-only).

Cargo sends the registry token as it was given, as the whole `Authorization` value (which
accounts.authentication accepts); `Bearer <token>` works as well.
"""

from django.http import HttpResponse, JsonResponse

from accounts import roles
from packages_cargo import parsers, queries, renderers
from packages_cargo.format import CargoFormat
from registry import services
from registry.documents import cached_document
from registry.errors import Invalid, NotFound
from registry.formats import FileDraft
from registry.models import INSTALLABLE, Package, PackageVersion
from registry.spool import request_body, spool_stream
from registry.views import GROUP, READ, READS_PACKAGE, AnyAccept, PackageAPIView, base_url

FORMAT = CargoFormat()
JSON = "application/json"
# What crates.io answers a publish with; Cargo prints any warning listed.
PUBLISHED = {"warnings": {"invalid_categories": [], "invalid_badges": [], "other": []}}


class CargoView(PackageAPIView):
    package_format = FORMAT
    content_negotiation_class = AnyAccept

    def live_version(self, name, version):
        """The installable version of a crate in this project, or a 404."""
        row = None
        if parsers.valid_name(name) and parsers.valid_version(version):
            row = (
                PackageVersion.objects.select_related("package")
                .filter(
                    package__project=self.project,
                    package__format=FORMAT.name,
                    package__normalized_name=FORMAT.normalize_name(name),
                    normalized_version=FORMAT.normalize_version(version),
                    status__in=INSTALLABLE,
                )
                .first()
            )
        if row is None:
            raise NotFound(f"crate `{name}` does not have a version `{version}`")
        return row


class ConfigView(CargoView):
    """`index/config.json`: where Cargo downloads crates and publishes, and whether it must send
    its token on every request (`auth-required`: anonymous callers may not pull here)."""

    actions = READ

    def get(self, request, **kwargs):
        root = base_url(request)
        auth_required = not self.anonymous_may_pull()
        if self.scope == GROUP:
            group_url = f"{root}/api/v4/groups/{self.group.pk}/-/packages/{FORMAT.name}"
            dl = f"{group_url}/dl/{{crate}}/{{version}}/{{sha256-checksum}}"
            document = renderers.config(dl, auth_required=auth_required)
        else:
            packages_url = FORMAT.packages_url(root, self.project)
            document = renderers.config(f"{packages_url}/api/v1/crates", packages_url, auth_required)
        return HttpResponse(document, content_type=JSON)


class IndexFileView(CargoView):
    """A crate's sparse index file (`3/s/syn`, `se/rd/serde`): one JSON line per version."""

    actions = READ
    reads = READS_PACKAGE

    def get(self, request, prefix, package_name, **kwargs):
        if (
            not parsers.valid_name(package_name)
            or package_name != package_name.lower()
            or f"{prefix}/{package_name}" != parsers.index_path(package_name)
        ):
            raise NotFound("404 Not Found")
        packages = Package.objects.filter(
            format=FORMAT.name,
            normalized_name=FORMAT.normalize_name(package_name),
            name__iexact=package_name,
            project__in=self.pullable_projects(),
        )

        def render():
            # Checked where the file is built: a cached one was built under the same epochs,
            # which every status change bumps (as npm's packument, packages_npm.views).
            if not PackageVersion.objects.filter(package__in=packages, status__in=INSTALLABLE).exists():
                raise NotFound(f"crate `{package_name}` not found")
            return renderers.index_file(queries.index_rows(packages), package_name)

        return cached_document(request, packages, render, "text/plain; charset=utf-8")


class PublishView(CargoView):
    """`PUT api/v1/crates/new`: the binary publish body (parsers.read_metadata)."""

    actions = {"PUT": roles.CREATE_PACKAGE}

    def put(self, request, **kwargs):
        stream, length = request_body(request)
        document, crate_length, total = parsers.read_metadata(stream)
        parsers.check_crate_length(crate_length, FORMAT.max_file_size)
        if length is not None and length != total:
            raise Invalid("invalid upload request: the body's length is not the lengths it announces")
        draft = parsers.parse_metadata(document)
        with spool_stream(stream, FORMAT.max_file_size, length=crate_length) as spool:
            if length is None and stream.read(1):
                raise Invalid("invalid upload request: bytes after the crate")
            parsers.check_crate(spool.path, draft.name, draft.version, FORMAT.max_file_size)
            draft.files = [FileDraft(file_name=parsers.crate_file_name(draft.name, draft.version), spool=spool)]
            services.publish(self.project, self.principal, FORMAT, draft)
        return JsonResponse(PUBLISHED)


class DownloadView(CargoView):
    """`GET api/v1/crates/<name>/<version>/download` (config.json's `dl`)."""

    actions = READ
    reads = READS_PACKAGE

    def get(self, request, package_name, version, **kwargs):
        package_file = None
        if parsers.valid_name(package_name) and parsers.valid_version(version):
            package_file = self.find_file(package_name, version, parsers.crate_file_name(package_name, version))
        if package_file is None:
            raise NotFound(f"crate `{package_name}` does not have a version `{version}`")
        return services.serve(package_file, request)


class GroupDownloadView(CargoView):
    """`GET dl/<name>/<version>/<sha256>` at group level: the crate the group's index listed
    (its checksum says which project's, when several hold the version)."""

    scope = GROUP
    actions = READ
    reads = READS_PACKAGE

    def get(self, request, package_name, version, sha256, **kwargs):
        package_file = None
        if parsers.valid_name(package_name) and parsers.valid_version(version):
            package_file = (
                services.installable_files(
                    self.pullable_projects(), FORMAT, name=package_name, version=version, blob__sha256=sha256
                )
                .order_by("-id")
                .first()
            )
        if package_file is None:
            raise NotFound(f"crate `{package_name}` does not have a version `{version}`")
        return services.serve(package_file, request)


class YankView(CargoView):
    """`DELETE …/yank` (Maintainer, as deleting: it changes what others resolve)."""

    actions = {"DELETE": roles.DESTROY_PACKAGE}
    yanked = True

    def delete(self, request, package_name, version, **kwargs):
        return self.set_yanked(package_name, version)

    def set_yanked(self, package_name, version):
        """The format's withdrawal (as the REST API's and the page's); yanking a yanked version
        (or unyanking a live one) is a success that changes nothing, its reason kept."""
        row = self.live_version(package_name, version)
        if ("withdrawn" in (row.metadata or {})) != self.yanked:
            services.set_withdrawn(row, self.principal, self.yanked)
        return JsonResponse({"ok": True})


class UnyankView(YankView):
    """`PUT …/unyank`."""

    actions = {"PUT": roles.DESTROY_PACKAGE}
    yanked = False

    def put(self, request, package_name, version, **kwargs):
        return self.set_yanked(package_name, version)


def _at_group(view):
    return type(f"Group{view.__name__}", (view,), {"scope": GROUP})


GroupConfigView = _at_group(ConfigView)
GroupIndexFileView = _at_group(IndexFileView)
