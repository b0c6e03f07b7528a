"""Thin views: twine upload, simple index (project and group), downloads and core metadata."""

import re

from django.core.files.uploadedfile import UploadedFile
from django.http import HttpResponse, JsonResponse
from packaging.utils import canonicalize_name

from accounts import roles
from packages_pypi import parsers, queries, renderers
from packages_pypi.format import PypiFormat
from packages_pypi.virtual import parse_page, render_html, render_json
from registry import services
from registry.documents import cached_document
from registry.errors import Invalid, NotFound, TooLarge
from registry.formats import FileDraft
from registry.models import INSTALLABLE, Package, PackageFile
from registry.spool import SpoolUploadHandler
from registry.views import READ, READS_PACKAGE, READS_WHOLE_FORMAT, PackageAPIView, ReadsPackage, base_url
from registry.virtual import resolver
from registry.virtual.views import VirtualRegistryView, memoized_answer, provenance_headers

FORMAT = PypiFormat()
# Form fields and multipart framing around the file: allowed on top of the file size cap.
FORM_OVERHEAD = 8 * 1024 * 1024
SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def _part_file_name(part):
    """The part's file name as twine's upload has always been read (Django's UploadedFile:
    no directories, at most 255 characters with the extension kept)."""
    return UploadedFile(name=part.file_name).name or ""


class PypiView(PackageAPIView):
    package_format = FORMAT

    def perform_content_negotiation(self, request, force=False):
        # The simple API negotiates its own media types (PEP 691); never a DRF 406.
        return super().perform_content_negotiation(request, force=True)


class UploadView(PypiView):
    """twine's legacy upload: POST multipart/form-data to `.../packages/pypi`."""

    actions = {"POST": roles.CREATE_PACKAGE}

    def initialize_request(self, request, *args, **kwargs):
        # File parts go straight to capped, hashed spools (never memory); the form fields to
        # request.data, as Django parses them.
        self.uploads = SpoolUploadHandler(FORMAT.max_file_size, request)
        request.upload_handlers = [self.uploads]
        return super().initialize_request(request, *args, **kwargs)

    def post(self, request, **kwargs):
        max_size = FORMAT.max_file_size
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if max_size and length > max_size + FORM_OVERHEAD:
            raise TooLarge()
        if not request.content_type.startswith("multipart/form-data"):
            raise Invalid("400 Bad request - expected multipart/form-data")
        try:
            request.data  # noqa: B018 - parses the body: fields to request.data, files to spools
            contents = [part for part in self.uploads.parts if part.field_name == "content"]
            return self._upload(request, self.uploads.keep(contents[-1] if contents else None))
        finally:
            self.uploads.discard()  # removes the spools

    def _upload(self, request, content):
        form = parsers.parse_form(request.data)
        if content is None:
            raise Invalid("400 Bad request - content is missing")
        file_name = _part_file_name(content)
        kind = parsers.check_file_name(form, file_name)
        with content.spool as spool:
            if form.sha256_digest:
                spool.verify("sha256", form.sha256_digest, "sha256_digest")
            if form.md5_digest:
                spool.verify("md5", form.md5_digest, "md5_digest")
            if form.blake2_256_digest:
                spool.verify("blake2b_256", form.blake2_256_digest, "blake2_256_digest")
            raw = parsers.read_core_metadata(spool.path, kind, file_name, FORMAT.max_file_size)
            core = parsers.parse_core_metadata(raw)
            parsers.check_core_metadata(form, core)
            # What pip reads is the file's own metadata: its Requires-Python wins over the form's.
            requires_python = core.requires_python or form.requires_python
            draft = parsers.PypiDraft(
                name=form.name,
                version=form.version,
                files=[FileDraft(file_name=file_name, spool=spool)],
                metadata={
                    **form.metadata,
                    "requires_python": requires_python,
                    "summary": form.metadata.get("summary", core.summary[:255]),
                },
                core_metadata=core.text,
                core_metadata_sha256=core.sha256,
                requires_python=requires_python,
            )
            services.publish(self.project, self.principal, FORMAT, draft)
        return JsonResponse({"message": "201 Created"}, status=201)


class SimpleMixin:
    """The simple repository API over the packages this caller may pull here."""

    actions = READ

    def packages(self):
        return Package.objects.filter(project__in=self.pullable_projects(), format=FORMAT.name)

    def title(self):
        return (self.project or self.group).name

    def respond(self, request, packages, render_html, render_json):
        media_type = renderers.negotiate(request.META.get("HTTP_ACCEPT"))
        render = render_json if media_type == renderers.JSON_TYPE else render_html
        response = cached_document(request, packages, render, renderers.content_type_of(media_type), variant=media_type)
        response["Vary"] = "Accept"
        return response


class SimpleIndexView(SimpleMixin, PypiView):
    reads = READS_WHOLE_FORMAT

    def get(self, request, **kwargs):
        packages = self.packages().filter(versions__status__in=INSTALLABLE).distinct()
        base = f"{base_url(request)}{request.path_info}".rstrip("/")  # PACKHOUSE_EXTERNAL_URL when set
        return self.respond(
            request,
            Package.objects.filter(pk__in=packages.values("pk")),
            lambda: renderers.index_html(self.title(), base, queries.project_names(packages)),
            lambda: renderers.index_json(queries.project_names(packages)),
        )


class SimpleProjectView(SimpleMixin, PypiView):
    reads = READS_PACKAGE

    def get(self, request, package_name, **kwargs):
        normalized = canonicalize_name(package_name)
        packages = self.packages().filter(normalized_name=normalized)
        api_base = f"{base_url(request)}/api/v4"

        def live_name():
            """The name the page is titled with: the first package with an installable file; 404
            when there is none. Asked where the document is built: a cached document was built
            from the same packages under the same epochs, and every status change of a version
            or a file gives its package a new epoch, so a cached one needs no check."""
            live = packages.filter(
                versions__status__in=INSTALLABLE,
                versions__files__status=PackageFile.FileStatus.DEFAULT,
            )
            first = live.order_by("pk").values_list("name", flat=True).first()
            if first is None:
                raise NotFound("404 Package Not Found")
            return first

        def links():
            return renderers.distribution_links(queries.distribution_rows(packages), api_base)

        def render_json():
            live_name()
            return renderers.project_json(normalized, links())

        return self.respond(
            request,
            packages,
            lambda: renderers.project_html(live_name(), links()),
            render_json,
        )


def _file_package(file_name):
    """The canonical project name a distribution's file name (or its `.metadata`, PEP 658) gives;
    None when it names none. Every stored file's name names its own project (checked at upload:
    parsers.check_file_name), so a file's lookup can be keyed on that project's epochs."""
    try:
        return parsers.parse_file_name(file_name.removesuffix(".metadata"))[1]
    except Invalid:
        return None


class FileView(PypiView):
    """`files/<sha256>/<file name>`: the distribution, or `<file name>.metadata` (PEP 658); at
    group level, from any project below the group whose packages the caller may pull.

    The file is looked up among the files of the project its name names (`_file_package`), so the
    lookup is remembered under that project's epochs (one query per worker until it changes), and
    the core metadata, a small document, is answered again from memory (registry.response_cache)
    as the simple pages are."""

    actions = READ
    reads = ReadsPackage("file_name", name_of=_file_package)

    def _find(self, sha256, file_name):
        """The newest installable file of that name and digest, its core metadata joined: pip asks
        the `.metadata` and then the wheel, and the second finds the first's lookup remembered."""
        name = _file_package(file_name)
        if name is None:
            return None

        def lookup():  # group scope: the projects the caller may pull are read only here
            projects = self.project if self.project is not None else self.pullable_projects()
            files = services.installable_files(projects, FORMAT, name=name, file_name=file_name, blob__sha256=sha256)
            return files.select_related("pypi_distribution").order_by("-id").first()

        scope = ("project", self.project.pk) if self.project is not None else ("group", self.group.pk)
        return self.remember_lookup(("file", *scope, sha256, file_name), lookup)

    def get(self, request, sha256, file_name, **kwargs):
        if not SHA256.match(sha256):
            raise NotFound("404 Package Not Found")
        sha256 = sha256.lower()
        if file_name.endswith(".metadata"):  # no stored distribution's name ends so (parse_file_name)
            package_file = self._find(sha256, file_name.removesuffix(".metadata"))
            distribution = getattr(package_file, "pypi_distribution", None) if package_file else None
            if distribution is None:
                raise NotFound("404 Package Not Found")
            body = distribution.core_metadata.encode("utf-8")
            response = HttpResponse(body if request.method == "GET" else b"", content_type="text/plain")
            response["Content-Length"] = str(len(body))
            response["ETag"] = f'"{distribution.core_metadata_sha256}"'
            return self.reusable(response)  # a document: replayed while current
        package_file = self._find(sha256, file_name)
        if package_file is None:
            raise NotFound("404 Package Not Found")
        return services.serve(package_file, request)


# --- virtual registries (registry.virtual; packages_pypi.virtual) ---------------------------------


class PypiVirtualView(VirtualRegistryView):
    package_format = FORMAT

    def files_base(self, request, registry_id):
        return f"{base_url(request)}/api/v4/virtual_registries/packages/{FORMAT.name}/{registry_id}/files"

    def page(self, request, served, render_html, render_json):
        media_type = renderers.negotiate(request.META.get("HTTP_ACCEPT"))
        body = render_json() if media_type == renderers.JSON_TYPE else render_html()
        response = HttpResponse(body, content_type=renderers.content_type_of(media_type))
        for name, value in (provenance_headers(served) if served else {}).items():
            response[name] = value
        response["Vary"] = "Accept"
        return response


class VirtualSimpleIndexView(PypiVirtualView):
    """The names of the local upstreams' projects and the names already cached (an upstream's
    root index, hundreds of thousands of names, is never proxied)."""

    def get(self, request, registry_id):
        names = {}
        for upstream in (link.upstream for link in resolver.links_of(self.registry)):
            if upstream.is_local:
                packages = Package.objects.filter(
                    format=FORMAT.name, project__in=resolver.local_projects(upstream, self.principal)
                )
                for name, normalized in queries.project_names(packages):
                    names.setdefault(normalized, name)
            else:
                for key in resolver.cached_metadata_keys(upstream):
                    normalized = key.strip("/")
                    names.setdefault(normalized, normalized)
        projects = sorted(((name, normalized) for normalized, name in names.items()), key=lambda item: item[1])
        base = f"{base_url(request)}/api/v4/virtual_registries/packages/{FORMAT.name}/{registry_id}/simple"
        return self.page(
            request,
            None,
            lambda: renderers.index_html(self.registry.name, base, projects),
            lambda: renderers.index_json(projects),
        )


class VirtualSimpleProjectView(PypiVirtualView):
    @classmethod
    def document_path(cls, url_kwargs):
        return FORMAT.virtual.project_path(url_kwargs["package_name"])

    def get(self, request, registry_id, package_name):
        path = FORMAT.virtual.project_path(package_name)
        served = self.resolve(path)
        media_type = renderers.negotiate(request.META.get("HTTP_ACCEPT"))
        base = self.files_base(request, registry_id)

        def render():
            files = parse_page(served.read(FORMAT.virtual.metadata_cap))
            # Files of versions the serving upstream's rules deny are left out (spec §1.9).
            files = [file for file in files if served.allows(FORMAT, path, FORMAT.virtual.version_of(file.filename))]
            renderer = render_json if media_type == renderers.JSON_TYPE else render_html
            return renderer(path.name, files, base)

        content_type = renderers.content_type_of(media_type)
        return memoized_answer(request, self.registry, served, render, content_type, variant=content_type)


class VirtualFileView(PypiVirtualView):
    @classmethod
    def file_raw_path(cls, url_kwargs):
        return f"files/{url_kwargs['project']}/{url_kwargs['key']}/{url_kwargs['file_name']}"

    def get(self, request, registry_id, project, key, file_name):
        return self.serve_path(request, self.file_raw_path(self.kwargs))
