"""Thin NuGet views: parse (packages_nuget.parsers) -> registry.services, or read
(packages_nuget.queries) -> render (packages_nuget.renderers).

Project level: v3 service index, push (PUT /, /v2, /symbolpackage), flat container,
registration, search, delete; the v2 (OData/Atom) feed; symbol files. Group level: service
index, registration, search and symbol files over every project the caller may pull from; the
content URLs in those documents point at project-level downloads.
"""

import os
import zipfile
from urllib.parse import urlsplit

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

from accounts import roles
from packages_nuget import parsers, queries, renderers, symbols, virtual_search
from packages_nuget import virtual as nuget_virtual
from packages_nuget.format import NugetFormat
from registry import services
from registry.documents import cached_document
from registry.errors import BadGateway, Forbidden, Invalid, NotFound
from registry.formats import FileDraft
from registry.models import Package, PackageVersion
from registry.spool import request_body, spool_multipart, spool_stream
from registry.views import GROUP, READ, READS_PACKAGE, READS_WHOLE_FORMAT, AnyAccept, PackageAPIView, base_url
from registry.virtual import resolver
from registry.virtual.views import VirtualRegistryView, allow_replay, provenance_headers

FORMAT = NugetFormat()
JSON = "application/json; charset=utf-8"
# Room for the multipart framing around the package in a push body.
MULTIPART_ALLOWANCE = 1024 * 1024
DEFAULT_TAKE = 20
CHUNK = 1024 * 1024


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
                symbol_files=parsers.read_symbol_files(spool.path, max_size) if self.symbols else [],
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
        return services.serve(package_file, request)


# --- registration and search ---------------------------------------------------------------------


class MetadataIndexView(NugetView):
    reads = READS_PACKAGE

    def get(self, request, package_name, **kwargs):
        packages = self.packages(package_name)
        root, prefix = base_url(request), self.prefix()

        def render():
            entries = queries.entries(queries.versions(packages), with_files=True)
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
            versions = queries.versions(packages, package_version)
            entries = renderers.sort_entries(queries.entries(versions, with_files=True))
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
            # unlisted versions are not searched
            entries = queries.entries(queries.listed(queries.versions(packages.filter(normalized_name__in=names))))
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
        versions = queries.listed(queries.versions(packages))  # unlisted versions are not searched
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
        return services.serve(package_file, request)


# --- symbol server --------------------------------------------------------------------------


class SymbolFileView(NugetView):
    """GET symbolfiles/<file>/<signature>/<file> with `SymbolChecksum: SHA256:<hex>`: a portable
    PDB of a pushed symbol package, for Visual Studio's debugger (packages_nuget.symbols).
    Pulling needs what downloading packages needs; the project's `nuget_symbol_server_enabled`
    must be on (403); at group level, the symbols of the projects below it that have it on."""

    def get(self, request, file_name, signature, same_file_name, **kwargs):
        serving = queries.serving_symbols(self.pullable_projects())
        if not serving.exists():
            raise Forbidden("403 Forbidden - the symbol server is not enabled")
        checksums = symbols.requested_checksums(request.headers.get("Symbolchecksum"))
        if not checksums:
            raise Invalid("400 Bad request - Symbolchecksum header is missing or invalid")
        found = None
        if file_name.lower() == same_file_name.lower():
            found = queries.symbol(serving, file_name, signature, checksums)
        if found is None:
            raise NotFound("404 Symbol file Not Found")
        headers = {
            "Content-Disposition": content_disposition_header(True, file_name),
            "Content-Length": str(found.size),
        }
        if request.method == "HEAD":
            return HttpResponse(content_type="application/octet-stream", headers=headers)
        handle = services.open_stored_file(found.package_file)
        try:
            archive = zipfile.ZipFile(handle)
            member = archive.open(found.entry)
        except (zipfile.BadZipFile, KeyError, OSError):
            handle.close()
            raise
        response = StreamingHttpResponse(
            iter(lambda: member.read(CHUNK), b""), content_type="application/octet-stream", headers=headers
        )
        response._resource_closers.extend([member.close, archive.close, handle.close])
        return response


def _at_group(view):
    return type(f"Group{view.__name__}", (view,), {"scope": GROUP, "actions": READ})


GroupServiceIndexView = _at_group(ServiceIndexView)
GroupMetadataIndexView = _at_group(MetadataIndexView)
GroupMetadataLeafView = _at_group(MetadataLeafView)
GroupQueryView = _at_group(QueryView)
GroupSymbolFileView = _at_group(SymbolFileView)


# --- virtual registries (registry.virtual; packages_nuget.virtual) --------------------------------


class NugetVirtualView(VirtualRegistryView):
    package_format = FORMAT

    def base(self, request, registry_id):
        return f"{base_url(request)}/api/v4/virtual_registries/packages/{FORMAT.name}/{registry_id}"

    def json(self, document, served=None):
        response = HttpResponse(renderers.dumps(document), content_type=JSON)
        for name, value in (provenance_headers(served) if served else {}).items():
            response[name] = value
        return response

    def registration(self, request, registry_id, package_name):
        """The served registration index, every page inlined, every URL pointing here
        (`self.read`: every Served it was built from)."""
        path = FORMAT.virtual.registration_path(package_name)
        served = self.resolve(path)
        self.read = [served]
        document = nuget_virtual.load(served.read(FORMAT.virtual.metadata_cap))
        pages = document.get("items") if document else None
        if not isinstance(pages, list):
            raise BadGateway("502 Bad Gateway - the upstream registration is not a registration index")
        base, lower = self.base(request, registry_id), path.name
        index_url = f"{base}/metadata/{lower}/index.json"
        document["@id"] = index_url
        self.inline_pages(served, lower, pages)
        for number, page in enumerate(pages):
            page["@id"] = f"{index_url}#page/{number}"
            for leaf in page["items"]:
                entry = leaf.get("catalogEntry") if isinstance(leaf, dict) else None
                if not isinstance(entry, dict) or not isinstance(entry.get("version"), str):
                    continue
                version = parsers.normalize_version(entry["version"])
                content = f"{base}/download/{lower}/{version}/{lower}.{version}.nupkg"
                leaf["@id"] = f"{base}/metadata/{lower}/{version}.json"
                leaf["packageContent"] = entry["packageContent"] = content
                if not urlsplit(str(entry.get("@id", ""))).scheme:
                    # A local upstream's entry (rendered without a base) names its leaf, as the
                    # project endpoint's does; a remote one's catalog leaf URL is kept.
                    entry["@id"] = leaf["@id"]
                leaf["registration"] = index_url
        return served, document

    def inline_pages(self, served, lower, pages):
        """Put the items of the pages the upstream did not inline into `pages`, fetched from the
        upstream that answered the index (packages_nuget.virtual): at most MAX_PAGES pages and
        metadata_cap bytes in all, else 502."""
        support = FORMAT.virtual
        total = len(pages)
        if total > nuget_virtual.MAX_PAGES:
            raise BadGateway("502 Bad Gateway - the upstream registration has too many pages")
        size = 0
        for page in pages:
            if not isinstance(page, dict):
                raise BadGateway("502 Bad Gateway - the upstream registration is malformed")
            if isinstance(page.get("items"), list):
                continue
            url = page.get("@id")
            if not isinstance(url, str) or served.source is None or served.source.is_local:
                raise BadGateway("502 Bad Gateway - the upstream registration has a page without items or @id")
            found = resolver.fetch_from(served.source, FORMAT, support.registration_page_path(lower, url))
            if found is None:
                raise BadGateway("502 Bad Gateway - a page of the upstream registration is missing")
            self.read.append(found)
            data = found.read(support.metadata_cap)
            size += len(data)
            if size > support.metadata_cap:
                raise BadGateway("502 Bad Gateway - the upstream registration is too large")
            items = (nuget_virtual.load(data) or {}).get("items")
            if not isinstance(items, list):
                raise BadGateway("502 Bad Gateway - a page of the upstream registration is malformed")
            page["items"] = items


class VirtualServiceIndexView(NugetVirtualView):
    def get(self, request, registry_id):
        base = self.base(request, registry_id)

        def resources(at, types, comment):
            return [{"@id": at, "@type": kind, "comment": comment} for kind in types]

        items = resources(f"{base}/download", ["PackageBaseAddress/3.0.0"], "Get package content (.nupkg).")
        items += resources(
            f"{base}/metadata",
            ["RegistrationsBaseUrl", "RegistrationsBaseUrl/3.0.0-beta", "RegistrationsBaseUrl/3.0.0-rc"]
            + ["RegistrationsBaseUrl/3.4.0", "RegistrationsBaseUrl/3.6.0"],
            "Get package metadata.",
        )
        items += resources(
            f"{base}/query",
            ["SearchQueryService", "SearchQueryService/3.0.0-beta", "SearchQueryService/3.0.0-rc"],
            "Search: local upstreams first, then the first remote upstream that offers search.",
        )
        return self.json({"version": "3.0.0", "resources": items})


class VirtualRegistrationIndexView(NugetVirtualView):
    @classmethod
    def document_path(cls, url_kwargs):
        return FORMAT.virtual.registration_path(url_kwargs["package_name"])

    def get(self, request, registry_id, package_name):
        served, document = self.registration(request, registry_id, package_name)
        allow_replay(request, *self.read)
        return self.json(document, served)


class VirtualRegistrationLeafView(NugetVirtualView):
    @classmethod
    def document_path(cls, url_kwargs):
        return FORMAT.virtual.registration_path(url_kwargs["package_name"])

    def get(self, request, registry_id, package_name, package_version):
        served, document = self.registration(request, registry_id, package_name)
        wanted = parsers.normalize_version(package_version)
        for page in document["items"]:
            for leaf in page["items"]:
                entry = leaf.get("catalogEntry") if isinstance(leaf, dict) else None
                if isinstance(entry, dict) and parsers.normalize_version(str(entry.get("version"))) == wanted:
                    leaf.update({"@type": ["Package"], "listed": entry.get("listed", True)})
                    allow_replay(request, *self.read)
                    return self.json(leaf, served)
        raise NotFound("404 Package Not Found")


class VirtualVersionsView(NugetVirtualView):
    @classmethod
    def document_path(cls, url_kwargs):
        return FORMAT.virtual.versions_path(url_kwargs["package_name"])

    def get(self, request, registry_id, package_name):
        path = FORMAT.virtual.versions_path(package_name)
        served = self.resolve(path)
        document = nuget_virtual.load(served.read(FORMAT.virtual.metadata_cap))
        versions = document.get("versions") if document else None
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise BadGateway("502 Bad Gateway - the upstream version list is malformed")
        allow_replay(request, served)
        return self.json({"versions": [v.lower() for v in versions]}, served)


class VirtualDownloadView(NugetVirtualView):
    @classmethod
    def file_raw_path(cls, url_kwargs):
        return f"download/{url_kwargs['package_name']}/{url_kwargs['package_version']}/{url_kwargs['file_name']}"

    def get(self, request, registry_id, package_name, package_version, file_name):
        return self.serve_path(request, self.file_raw_path(self.kwargs))


class VirtualQueryView(NugetVirtualView):
    def get(self, request, registry_id):
        base = self.base(request, registry_id)
        document, incomplete = virtual_search.search(self.registry, self.principal, FORMAT, request.query_params, base)
        response = self.json(document)
        response["Cache-Control"] = "private, max-age=0, must-revalidate"
        if incomplete:
            response["X-Packhouse-Search-Incomplete"] = incomplete
        return response
