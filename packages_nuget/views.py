"""Thin NuGet views: parse -> registry.services -> render.

Project level: v3 service index, push (PUT /, /v2, /symbolpackage), flat container,
registration, search, delete; the v2 (OData/Atom) feed. Group level: service index,
registration and search over every project the caller may pull from; the content URLs in
those documents point at project-level downloads.
"""

import hashlib
import os
import re
import tempfile

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.db.models import Q
from django.http import HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.utils.http import content_disposition_header
from rest_framework.negotiation import BaseContentNegotiation

from accounts import roles
from packages_nuget import parsers, renderers
from packages_nuget.format import NugetFormat
from packages_nuget.renderers import Entry
from registry import epochs, services
from registry.documents import cached_document
from registry.errors import Invalid, NotFound, TooLarge
from registry.formats import FileDraft, PackageDraft
from registry.models import INSTALLABLE, Package, PackageFile, PackageVersion
from registry.spool import DIGESTS, Spool, request_body, spool_stream
from registry.views import GROUP, PackageAPIView

FORMAT = NugetFormat()
READ = {"GET": roles.READ_PACKAGE, "HEAD": roles.READ_PACKAGE}
JSON = "application/json; charset=utf-8"
# Room for the multipart framing around the package in a push body.
MULTIPART_ALLOWANCE = 1024 * 1024
DEFAULT_TAKE = 20


class AnyAccept(BaseContentNegotiation):
    """NuGet clients send assorted Accept headers; the one document answers them all."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _name_epochs(cls, url_kwargs):
    return [epochs.package(FORMAT.name, FORMAT.normalize_name(url_kwargs["package_name"]))]


def _format_epochs(cls, url_kwargs):
    return [epochs.format_wide(FORMAT.name)]


class NugetView(PackageAPIView):
    package_format = FORMAT
    content_negotiation_class = AnyAccept
    actions = READ

    def base_url(self):
        if settings.EXTERNAL_URL:
            return settings.EXTERNAL_URL.rstrip("/")
        return self.request.build_absolute_uri("/").rstrip("/")

    def prefix(self):
        if self.scope == GROUP:
            return f"{self.base_url()}/api/v4/groups/{self.group.pk}/-/packages/nuget"
        return renderers.project_prefix(self.base_url(), self.project.pk)

    def packages(self, name=None):
        """The NuGet packages (of that name) the caller may pull at this view's level."""
        packages = Package.objects.filter(format=FORMAT.name, project__in=self.pullable_projects())
        if name is not None:
            packages = packages.filter(normalized_name=FORMAT.normalize_name(name))
        return packages

    def versions(self, packages, version=None):
        rows = PackageVersion.objects.filter(package__in=packages, status__in=INSTALLABLE)
        if version is not None:
            rows = rows.filter(Q(normalized_version=FORMAT.normalize_version(version)) | Q(version__iexact=version))
        return rows

    def entries(self, versions, with_files=False):
        """Entry tuples for the versions, in two queries at most (one more with files)."""
        rows = list(versions.select_related("package", "nuget_metadatum").order_by("pk"))
        sizes = {}
        if with_files and rows:
            files = (
                PackageFile.objects.filter(
                    version__in=[r.pk for r in rows],
                    status=PackageFile.FileStatus.DEFAULT,
                    file_name__endswith=".nupkg",
                )
                .select_related("blob")
                .order_by("pk")
            )
            sizes = {f.version_id: (f.blob.size, f.blob.sha512) for f in files}
        entries = []
        for row in rows:
            size, sha512 = sizes.get(row.pk, (0, ""))
            entries.append(
                Entry(
                    project_id=row.package.project_id,
                    name=row.package.name,
                    version=row.version,
                    normalized=row.normalized_version,
                    meta=getattr(row, "nuget_metadatum", None),
                    downloads=row.download_count,
                    published=row.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    size=size,
                    sha512=sha512,
                )
            )
        return entries


class ServiceIndexView(NugetView):
    def get(self, request, **kwargs):
        document = renderers.service_index(self.prefix(), self.scope != GROUP)
        return HttpResponse(document, content_type=JSON)


# --- push ------------------------------------------------------------------------------------


class _SpoolHandler(FileUploadHandler):
    """Writes the file parts of a multipart body straight into spools (hashed, size-capped)."""

    def __init__(self, max_size):
        super().__init__()
        self.max_size = max_size
        self.spools = []  # (field name, file name, Spool)
        self._handle = None

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, file_name, *args, **kwargs)
        os.makedirs(settings.SPOOL_DIR, exist_ok=True)
        self._handle = tempfile.NamedTemporaryFile(dir=settings.SPOOL_DIR, prefix="nupkg-", delete=False)  # noqa: SIM115
        self._hashers = {name: hashlib.new(name) for name in DIGESTS}
        self._size = 0

    def receive_data_chunk(self, raw_data, start):
        self._size += len(raw_data)
        if self.max_size and self._size > self.max_size:
            raise TooLarge()
        for hasher in self._hashers.values():
            hasher.update(raw_data)
        self._handle.write(raw_data)

    def file_complete(self, file_size):
        self._handle.close()
        digests = {name: hasher.hexdigest() for name, hasher in self._hashers.items()}
        self.spools.append((self.field_name, self.file_name, Spool(self._handle.name, self._size, digests)))
        self._handle = None
        return None  # nothing for request.FILES: the spools are kept here

    def discard(self, keep=None):
        if self._handle is not None:
            self._handle.close()
            os.unlink(self._handle.name)
            self._handle = None
        for _, _, spool in self.spools:
            if spool is not keep:
                spool.cleanup()


def _package_part(body, content_type, max_size):
    """Spool the `package` part (else the first file part) of a multipart body (a Spool)."""
    meta = {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(body.size)}
    handler = _SpoolHandler(max_size)
    try:
        with body.open() as handle:
            MultiPartParser(meta, handle, [handler], "utf-8").parse()
    except (MultiPartParserError, ValueError) as exc:
        handler.discard()
        raise Invalid("400 Bad request - the multipart body is malformed") from exc
    except BaseException:
        handler.discard()
        raise
    named = [entry for entry in handler.spools if entry[0] == "package"]
    chosen = (named or handler.spools or [None])[0]
    handler.discard(keep=chosen[2] if chosen else None)
    if chosen is None:
        raise Invalid("400 Bad request - package is missing")
    return chosen[2], os.path.basename(chosen[1] or "")


_NAMED_FILE = re.compile(r"^(?P<stem>.+?)\.(?P<version>\d+(?:\.\d+)+(?:-[0-9A-Za-z.-]+)?)\.s?nupkg$", re.IGNORECASE)


def _check_file_name(file_name, spec):
    """A part named like `<id>.<version>.nupkg` must agree with its nuspec."""
    match = _NAMED_FILE.match(file_name or "")
    if not match:
        return
    same_id = match["stem"].lower() == spec.id.lower()
    same_version = parsers.normalize_version(match["version"]) == parsers.normalize_version(spec.version)
    if not (same_id and same_version):
        raise Invalid("400 Bad request - the file name does not match the package id and version in the .nuspec")


class PublishView(NugetView):
    """PUT / (v3 PackagePublish), PUT /v2 (NuGet 2.x) and PUT /symbolpackage: multipart,
    usually chunked without Content-Length (NuGet.exe), so the body is read explicitly."""

    actions = {"PUT": roles.CREATE_PACKAGE}
    symbols = False

    def put(self, request, **kwargs):
        max_size = FORMAT.max_file_size
        stream, length = request_body(request)
        cap = max_size + MULTIPART_ALLOWANCE if max_size else 0
        content_type = request.META.get("CONTENT_TYPE", "")
        parsers.multipart_boundary(content_type)
        with spool_stream(stream, cap, length=length) as body:
            spool, file_name = _package_part(body, content_type, max_size)
        with spool:
            data = parsers.read_nuspec_bytes(spool.path, max_size)
            spec = parsers.parse_nuspec(data, symbols=self.symbols)
            _check_file_name(file_name, spec)
            extension = "snupkg" if self.symbols else "nupkg"
            normalized = parsers.normalize_version(spec.version)
            if (
                self.symbols
                and services.find_file(
                    self.project, FORMAT, spec.id, spec.version, f"{spec.id.lower()}.{normalized}.nupkg"
                )
                is None
            ):
                raise Invalid("400 Bad request - no package found for the symbol package")
            draft = PackageDraft(
                name=spec.id,
                version=spec.version,
                files=[FileDraft(file_name=f"{spec.id.lower()}.{normalized}.{extension}", spool=spool)],
            )
            draft.nuspec = spec
            draft.symbols = self.symbols
            services.publish(self.project, self.principal, FORMAT, draft)
        return JsonResponse({"message": "201 Created"}, status=201)


class SymbolPublishView(PublishView):
    symbols = True


class V2RootView(PublishView):
    """GET /v2: the OData service document; PUT /v2: NuGet 2.x push."""

    actions = {**READ, "PUT": roles.CREATE_PACKAGE}

    def get(self, request, **kwargs):
        return HttpResponse(renderers.v2_service(self.prefix()), content_type=renderers.XML)


class DeleteView(NugetView):
    actions = {"DELETE": roles.DESTROY_PACKAGE}

    def delete(self, request, package_name, package_version, **kwargs):
        rows = list(self.versions(self.packages(package_name).filter(project=self.project), package_version))
        if not rows:
            raise NotFound("404 Package Not Found")
        for row in rows:
            services.mark_version_for_destruction(row)
        return HttpResponse(status=204)


# --- flat container ----------------------------------------------------------------------------


class DownloadIndexView(NugetView):
    def get(self, request, package_name, **kwargs):
        packages = self.packages(package_name)
        entries = self.entries(self.versions(packages))
        if not entries:
            raise NotFound("404 Package Not Found")
        return HttpResponse(renderers.flat_versions(entries), content_type=JSON)


class DownloadFileView(NugetView):
    package_epochs = classmethod(_name_epochs)

    def get(self, request, package_name, package_version, file_name, **kwargs):
        lower = file_name.lower()
        name = package_name.lower()
        candidates = {
            f"{name}.{package_version.lower()}",
            f"{name}.{parsers.normalize_version(package_version)}",
        }
        stem, dot, extension = lower.rpartition(".")
        if not dot or stem not in candidates or extension not in ("nupkg", "snupkg", "nuspec"):
            raise NotFound("404 Package Not Found")
        normalized = parsers.normalize_version(package_version)
        if extension == "nuspec":
            row = (
                self.versions(self.packages(package_name).filter(project=self.project), package_version)
                .select_related("nuget_metadatum")
                .order_by("-pk")
                .first()
            )
            meta = getattr(row, "nuget_metadatum", None) if row else None
            if meta is None or not meta.nuspec:
                raise NotFound("404 Package Not Found")
            # The pushed package's own XML, served as a text download (registry.middleware).
            return HttpResponse(
                meta.nuspec.encode(),
                content_type="text/plain; charset=utf-8",
                headers={"Content-Disposition": content_disposition_header(True, f"{name}.{normalized}.nuspec")},
            )
        package_file = self.find_file(package_name, package_version, f"{name}.{normalized}.{extension}")
        if package_file is None:
            raise NotFound("404 Package Not Found")
        return services.serve(package_file, request, allow_redirect=False)


# --- registration and search ---------------------------------------------------------------------


class MetadataIndexView(NugetView):
    package_epochs = classmethod(_name_epochs)

    def get(self, request, package_name, **kwargs):
        packages = self.packages(package_name)
        base_url, prefix = self.base_url(), self.prefix()

        def render():
            entries = self.entries(self.versions(packages))
            if not entries:
                raise NotFound("404 Package Not Found")
            return renderers.registration_index(package_name, entries, base_url, f"{prefix}/metadata")

        return cached_document(request, packages, render, JSON)


class MetadataLeafView(NugetView):
    package_epochs = classmethod(_name_epochs)

    def get(self, request, package_name, package_version, **kwargs):
        packages = self.packages(package_name)
        base_url, prefix = self.base_url(), self.prefix()

        def render():
            entries = renderers.sort_entries(self.entries(self.versions(packages, package_version)))
            if not entries:
                raise NotFound("404 Package Not Found")
            return renderers.registration_leaf(entries[-1], base_url, f"{prefix}/metadata")

        return cached_document(request, packages, render, JSON)


def _int_param(request, name, default, minimum):
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise Invalid(f"400 Bad request - {name} is invalid") from exc
    if value < minimum:
        raise Invalid(f"400 Bad request - {name} is invalid")
    return value


class QueryView(NugetView):
    package_epochs = classmethod(_format_epochs)

    def get(self, request, **kwargs):
        term = (request.query_params.get("q") or "").strip()
        skip = _int_param(request, "skip", 0, 0)
        take = min(_int_param(request, "take", DEFAULT_TAKE, 1), 1000)
        prerelease = (request.query_params.get("prerelease") or "true").lower() != "false"
        packages = self.packages()
        if term:
            packages = packages.filter(normalized_name__icontains=term.lower())
        packages = packages.filter(versions__status__in=INSTALLABLE).distinct()
        base_url, prefix = self.base_url(), self.prefix()

        def render():
            names = list(packages.order_by("normalized_name").values_list("normalized_name", flat=True).distinct())
            entries = self.entries(self.versions(packages.filter(normalized_name__in=names)))
            if not prerelease:
                entries = [e for e in entries if not parsers.is_prerelease(e.normalized)]
            grouped = {}
            for entry in entries:
                grouped.setdefault(entry.name.lower(), []).append(entry)
            ordered = sorted(grouped)
            page = [(name, grouped[name]) for name in ordered[skip : skip + take]]
            return renderers.search(page, len(ordered), base_url, f"{prefix}/metadata")

        variant = f"{term.lower()}|{skip}|{take}|{prerelease}"
        return cached_document(request, Package.objects.filter(pk__in=packages.values("pk")), render, JSON, variant)


# --- v2 feed -----------------------------------------------------------------------------------------

_QUOTED = re.compile(r"^'((?:[^']|'')*)'$")
_FILTER_ID = re.compile(r"tolower\(Id\)\s+eq\s+'((?:[^']|'')*)'", re.IGNORECASE)
_FILTER_ID_PLAIN = re.compile(r"\bId\s+eq\s+'((?:[^']|'')*)'", re.IGNORECASE)
_FILTER_VERSION = re.compile(r"\bVersion\s+eq\s+'((?:[^']|'')*)'", re.IGNORECASE)


def _quoted(value):
    match = _QUOTED.match((value or "").strip())
    return match[1].replace("''", "'") if match else None


class V2View(NugetView):
    package_epochs = classmethod(_format_epochs)

    def feed(self, request, packages, versions):
        base_url, prefix = self.base_url(), self.prefix()
        prefix_v2 = f"{prefix}/v2"

        def render():
            entries = self.entries(versions, with_files=True)
            updated = max((e.published for e in entries), default="1970-01-01T00:00:00Z")
            return renderers.v2_feed(entries, base_url, prefix_v2, updated)

        return cached_document(request, packages, render, renderers.ATOM, request.GET.urlencode())


class V2MetadataView(NugetView):
    def get(self, request, **kwargs):
        return HttpResponse(renderers.v2_metadata(), content_type=renderers.XML)


class V2FindByIdView(V2View):
    def get(self, request, **kwargs):
        name = _quoted(request.query_params.get("id"))
        if name is None or not parsers.valid_name(name):
            return self.feed(request, Package.objects.none(), PackageVersion.objects.none())
        packages = self.packages(name)
        return self.feed(request, packages, self.versions(packages))


class V2PackagesView(V2View):
    def get(self, request, **kwargs):
        expression = request.query_params.get("$filter") or ""
        match = _FILTER_ID.search(expression) or _FILTER_ID_PLAIN.search(expression)
        if not match:
            packages = self.packages()
            return self.feed(request, packages, self.versions(packages))
        name = match[1].replace("''", "'")
        if not parsers.valid_name(name):
            return self.feed(request, Package.objects.none(), PackageVersion.objects.none())
        packages = self.packages(name)
        version = _FILTER_VERSION.search(expression)
        versions = self.versions(packages, version[1].replace("''", "'") if version else None)
        return self.feed(request, packages, versions)


class V2SearchView(V2View):
    def get(self, request, **kwargs):
        term = (_quoted(request.query_params.get("searchTerm")) or "").strip().lower()
        packages = self.packages()
        if term:
            packages = packages.filter(normalized_name__icontains=term)
        versions = self.versions(packages)
        if (request.query_params.get("includePrerelease") or "false").lower() != "true":
            versions = versions.exclude(normalized_version__contains="-")
        return self.feed(request, packages, versions)


class V2PackageView(NugetView):
    package_epochs = classmethod(_name_epochs)

    def get(self, request, package_name, package_version, **kwargs):
        packages = self.packages(package_name)
        base_url, prefix = self.base_url(), self.prefix()

        def render():
            entries = self.entries(self.versions(packages, package_version), with_files=True)
            if not entries:
                raise NotFound("404 Package Not Found")
            return renderers.v2_single(renderers.sort_entries(entries)[-1:], base_url, f"{prefix}/v2")

        return cached_document(request, packages, render, renderers.ATOM)


class V2DownloadView(NugetView):
    package_epochs = classmethod(_name_epochs)

    def get(self, request, package_name, package_version, **kwargs):
        name = package_name.lower()
        normalized = parsers.normalize_version(package_version)
        file_name = f"{name}.{normalized}.nupkg"
        package_file = self.find_file(package_name, package_version, file_name)
        if package_file is None:
            raise NotFound("404 Package Not Found")
        return services.serve(package_file, request, allow_redirect=False)


def _at_group(view):
    return type(f"Group{view.__name__}", (view,), {"scope": GROUP, "actions": READ})


GroupServiceIndexView = _at_group(ServiceIndexView)
GroupMetadataIndexView = _at_group(MetadataIndexView)
GroupMetadataLeafView = _at_group(MetadataLeafView)
GroupQueryView = _at_group(QueryView)
