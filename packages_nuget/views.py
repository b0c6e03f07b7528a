"""Thin NuGet views: parse (packages_nuget.parsers) -> registry.services, or read
(packages_nuget.queries) -> render (packages_nuget.renderers).

Project level: v3 service index, push (PUT /, /v2, /symbolpackage), flat container,
registration, search, delete; the v2 (OData/Atom) feed. Group level: service index,
registration and search over every project the caller may pull from; the content URLs in
those documents point at project-level downloads.
"""

import os

from django.http import HttpResponse, JsonResponse
from django.utils.http import content_disposition_header

from accounts import roles
from packages_nuget import parsers, queries, renderers
from packages_nuget.format import NugetFormat
from registry import services
from registry.documents import cached_document
from registry.errors import Invalid, NotFound
from registry.formats import FileDraft
from registry.models import Package, PackageVersion
from registry.spool import request_body, spool_multipart, spool_stream
from registry.views import GROUP, READ, READS_PACKAGE, READS_WHOLE_FORMAT, AnyAccept, PackageAPIView, base_url

FORMAT = NugetFormat()
JSON = "application/json; charset=utf-8"
# Room for the multipart framing around the package in a push body.
MULTIPART_ALLOWANCE = 1024 * 1024
DEFAULT_TAKE = 20


class NugetView(PackageAPIView):
    package_format = FORMAT
    # NuGet clients send assorted Accept headers; the one document answers them all.
    content_negotiation_class = AnyAccept
    actions = READ

    def prefix(self):
        if self.scope == GROUP:
            return f"{base_url(self.request)}/api/v4/groups/{self.group.pk}/-/packages/nuget"
        return renderers.project_prefix(base_url(self.request), self.project.pk)

    def packages(self, name=None):
        """The NuGet packages (of that name) the caller may pull at this view's level."""
        return queries.packages(self.pullable_projects(), name)


class ServiceIndexView(NugetView):
    def get(self, request, **kwargs):
        document = renderers.service_index(self.prefix(), self.scope != GROUP)
        return HttpResponse(document, content_type=JSON)


# --- push ------------------------------------------------------------------------------------


def _package_part(body, content_type, max_size):
    """Spool the `package` part (else the first file part) of a multipart body (a Spool):
    (its Spool, its file name)."""
    uploads = spool_multipart(body, content_type, max_size)
    named = [part for part in uploads.parts if part.field_name == "package"]
    part = uploads.keep((named or uploads.parts or [None])[0])
    if part is None:
        raise Invalid("400 Bad request - package is missing")
    return part.spool, os.path.basename(part.file_name)


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
            parsers.check_file_name(file_name, spec)
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
            draft = parsers.NugetDraft(
                name=spec.id,
                version=spec.version,
                files=[FileDraft(file_name=f"{spec.id.lower()}.{normalized}.{extension}", spool=spool)],
                nuspec=spec,
                symbols=self.symbols,
                readme="" if self.symbols else parsers.read_readme(spool.path, spec.readme, max_size),
            )
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
        rows = list(queries.versions(self.packages(package_name).filter(project=self.project), package_version))
        if not rows:
            raise NotFound("404 Package Not Found")
        for row in rows:
            services.mark_version_for_destruction(row)
        return HttpResponse(status=204)


# --- flat container ----------------------------------------------------------------------------


class DownloadIndexView(NugetView):
    def get(self, request, package_name, **kwargs):
        entries = queries.entries(queries.versions(self.packages(package_name)))
        if not entries:
            raise NotFound("404 Package Not Found")
        return HttpResponse(renderers.flat_versions(entries), content_type=JSON)


class DownloadFileView(NugetView):
    reads = READS_PACKAGE

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
            versions = queries.versions(self.packages(package_name).filter(project=self.project), package_version)
            meta = queries.newest_metadatum(versions)
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
    reads = READS_PACKAGE

    def get(self, request, package_name, **kwargs):
        packages = self.packages(package_name)
        root, prefix = base_url(request), self.prefix()

        def render():
            entries = queries.entries(queries.versions(packages))
            if not entries:
                raise NotFound("404 Package Not Found")
            return renderers.registration_index(package_name, entries, root, f"{prefix}/metadata")

        return cached_document(request, packages, render, JSON)


class MetadataLeafView(NugetView):
    reads = READS_PACKAGE

    def get(self, request, package_name, package_version, **kwargs):
        packages = self.packages(package_name)
        root, prefix = base_url(request), self.prefix()

        def render():
            entries = renderers.sort_entries(queries.entries(queries.versions(packages, package_version)))
            if not entries:
                raise NotFound("404 Package Not Found")
            return renderers.registration_leaf(entries[-1], root, f"{prefix}/metadata")

        return cached_document(request, packages, render, JSON)


class QueryView(NugetView):
    reads = READS_WHOLE_FORMAT

    def get(self, request, **kwargs):
        params = request.query_params
        term = (params.get("q") or "").strip()
        skip = parsers.int_param(params.get("skip"), "skip", 0, 0)
        take = min(parsers.int_param(params.get("take"), "take", DEFAULT_TAKE, 1), 1000)
        prerelease = (params.get("prerelease") or "true").lower() != "false"
        packages = queries.with_installable_versions(queries.matching(self.packages(), term))
        root, prefix = base_url(request), self.prefix()

        def render():
            names = queries.package_ids(packages)
            entries = queries.entries(queries.versions(packages.filter(normalized_name__in=names)))
            entries = [e for e in entries if e.listed]  # unlisted versions are not searched
            if not prerelease:
                entries = [e for e in entries if not parsers.is_prerelease(e.normalized)]
            grouped = {}
            for entry in entries:
                grouped.setdefault(entry.name.lower(), []).append(entry)
            ordered = sorted(grouped)
            page = [(name, grouped[name]) for name in ordered[skip : skip + take]]
            return renderers.search(page, len(ordered), root, f"{prefix}/metadata")

        variant = f"{term.lower()}|{skip}|{take}|{prerelease}"
        return cached_document(request, Package.objects.filter(pk__in=packages.values("pk")), render, JSON, variant)


# --- v2 feed -----------------------------------------------------------------------------------------


class V2View(NugetView):
    reads = READS_WHOLE_FORMAT

    def feed(self, request, packages, versions):
        root, prefix_v2 = base_url(request), f"{self.prefix()}/v2"

        def render():
            entries = queries.entries(versions, with_files=True)
            updated = max((e.published for e in entries), default="1970-01-01T00:00:00Z")
            return renderers.v2_feed(entries, root, prefix_v2, updated)

        return cached_document(request, packages, render, renderers.ATOM, request.GET.urlencode())


class V2MetadataView(NugetView):
    def get(self, request, **kwargs):
        return HttpResponse(renderers.v2_metadata(), content_type=renderers.XML)


class V2FindByIdView(V2View):
    def get(self, request, **kwargs):
        name = parsers.odata_string(request.query_params.get("id"))
        if name is None or not parsers.valid_name(name):
            return self.feed(request, Package.objects.none(), PackageVersion.objects.none())
        packages = self.packages(name)
        return self.feed(request, packages, queries.versions(packages))


class V2PackagesView(V2View):
    def get(self, request, **kwargs):
        named = parsers.odata_filter(request.query_params.get("$filter") or "")
        if named is None:
            packages = self.packages()
            return self.feed(request, packages, queries.versions(packages))
        name, version = named
        if not parsers.valid_name(name):
            return self.feed(request, Package.objects.none(), PackageVersion.objects.none())
        packages = self.packages(name)
        return self.feed(request, packages, queries.versions(packages, version))


class V2SearchView(V2View):
    def get(self, request, **kwargs):
        term = (parsers.odata_string(request.query_params.get("searchTerm")) or "").strip().lower()
        packages = queries.matching(self.packages(), term)
        versions = queries.versions(packages)
        if (request.query_params.get("includePrerelease") or "false").lower() != "true":
            versions = queries.stable(versions)
        return self.feed(request, packages, versions)


class V2PackageView(NugetView):
    reads = READS_PACKAGE

    def get(self, request, package_name, package_version, **kwargs):
        packages = self.packages(package_name)
        root, prefix = base_url(request), self.prefix()

        def render():
            entries = queries.entries(queries.versions(packages, package_version), with_files=True)
            if not entries:
                raise NotFound("404 Package Not Found")
            return renderers.v2_single(renderers.sort_entries(entries)[-1:], root, f"{prefix}/v2")

        return cached_document(request, packages, render, renderers.ATOM)


class V2DownloadView(NugetView):
    reads = READS_PACKAGE

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
