"""Thin views: twine upload, simple index (project and group), downloads and core metadata."""

import re

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpResponse, JsonResponse
from packaging.utils import canonicalize_name

from accounts import roles
from packages_pypi import parsers, renderers
from packages_pypi.format import DistributionDraft, PypiFormat
from registry import epochs, services
from registry.documents import cached_document
from registry.errors import Invalid, NotFound, TooLarge
from registry.formats import PackageDraft
from registry.models import INSTALLABLE, Package, PackageFile
from registry.spool import spool_stream
from registry.views import PackageAPIView

FORMAT = PypiFormat()
READ = {"GET": roles.READ_PACKAGE, "HEAD": roles.READ_PACKAGE}
# Form fields and multipart framing around the file: allowed on top of the file size cap.
FORM_OVERHEAD = 8 * 1024 * 1024
SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class CappedDiskUploadHandler(TemporaryFileUploadHandler):
    """Every uploaded file goes to a temporary file on disk, never memory, and stops at the cap."""

    def __init__(self, request, max_size):
        super().__init__(request)
        self.max_size = max_size

    def receive_data_chunk(self, raw_data, start):
        if self.max_size and start + len(raw_data) > self.max_size:
            raise TooLarge()
        return super().receive_data_chunk(raw_data, start)


def _api_base(request):
    return (settings.EXTERNAL_URL or request.build_absolute_uri("/")).rstrip("/") + "/api/v4"


class PypiView(PackageAPIView):
    package_format = FORMAT

    def perform_content_negotiation(self, request, force=False):
        # The simple API negotiates its own media types (PEP 691); never a DRF 406.
        return super().perform_content_negotiation(request, force=True)


class UploadView(PypiView):
    """twine's legacy upload: POST multipart/form-data to `.../packages/pypi`."""

    actions = {"POST": roles.CREATE_PACKAGE}

    def initialize_request(self, request, *args, **kwargs):
        request.upload_handlers = [CappedDiskUploadHandler(request, FORMAT.max_file_size)]
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
        uploads = [f for _, files in request.FILES.lists() for f in files]
        try:
            return self._upload(request)
        finally:
            for upload in uploads:  # removes the temporary files
                upload.close()

    def _upload(self, request):
        form = parsers.parse_form(request.data)
        content = request.FILES.get("content")
        if content is None:
            raise Invalid("400 Bad request - content is missing")
        file_name = content.name or ""
        kind = parsers.check_file_name(form, file_name)
        content.seek(0)
        with spool_stream(content, FORMAT.max_file_size, length=content.size) as spool:
            if form.sha256_digest:
                spool.verify("sha256", form.sha256_digest, "sha256_digest")
            if form.md5_digest:
                spool.verify("md5", form.md5_digest, "md5_digest")
            core = parsers.parse_core_metadata(parsers.read_core_metadata(spool.path, kind, file_name))
            parsers.check_core_metadata(form, core)
            requires_python = form.requires_python or core.requires_python
            draft = PackageDraft(
                name=form.name,
                version=form.version,
                files=[
                    DistributionDraft(
                        file_name=file_name,
                        spool=spool,
                        core_metadata=core.text,
                        core_metadata_sha256=core.sha256,
                        requires_python=requires_python,
                    )
                ],
                metadata={
                    **form.metadata,
                    "requires_python": requires_python,
                    "summary": form.metadata.get("summary", core.summary[:255]),
                },
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
    @classmethod
    def package_epochs(cls, url_kwargs):
        return [epochs.format_wide(FORMAT.name)]

    def get(self, request, **kwargs):
        packages = self.packages().filter(versions__status__in=INSTALLABLE).distinct()
        base = request.build_absolute_uri(request.path).rstrip("/")

        def names():
            seen = {}
            for name, normalized in packages.order_by("pk").values_list("name", "normalized_name"):
                seen.setdefault(normalized, name)
            return sorted(((name, normalized) for normalized, name in seen.items()), key=lambda item: item[1])

        return self.respond(
            request,
            Package.objects.filter(pk__in=packages.values("pk")),
            lambda: renderers.index_html(self.title(), base, names()),
            lambda: renderers.index_json(names()),
        )


class SimpleProjectView(SimpleMixin, PypiView):
    @classmethod
    def package_epochs(cls, url_kwargs):
        return [epochs.package(FORMAT.name, canonicalize_name(url_kwargs["package_name"]))]

    def get(self, request, package_name, **kwargs):
        normalized = canonicalize_name(package_name)
        packages = self.packages().filter(normalized_name=normalized)
        live = packages.filter(
            versions__status__in=INSTALLABLE,
            versions__files__status=PackageFile.FileStatus.DEFAULT,
        )
        first = live.order_by("pk").values_list("name", flat=True).first()
        if first is None:
            raise NotFound("404 Package Not Found")
        api_base = _api_base(request)
        return self.respond(
            request,
            packages,
            lambda: renderers.project_html(first, renderers.distribution_links(packages, api_base)),
            lambda: renderers.project_json(normalized, renderers.distribution_links(packages, api_base)),
        )


class FileView(PypiView):
    """`files/<sha256>/<file name>`: the distribution, or `<file name>.metadata` (PEP 658)."""

    actions = READ

    def _find(self, sha256, file_name):
        return (
            PackageFile.objects.select_related("blob", "version")
            .filter(
                version__package__project=self.project,
                version__package__format=FORMAT.name,
                version__status__in=INSTALLABLE,
                status=PackageFile.FileStatus.DEFAULT,
                file_name=file_name,
                blob__sha256=sha256,
            )
            .order_by("-id")
            .first()
        )

    def get(self, request, sha256, file_name, **kwargs):
        if not SHA256.match(sha256):
            raise NotFound("404 Package Not Found")
        sha256 = sha256.lower()
        package_file = self._find(sha256, file_name)
        if package_file is not None:
            return services.serve(package_file, request)
        if file_name.endswith(".metadata"):
            package_file = self._find(sha256, file_name.removesuffix(".metadata"))
            distribution = getattr(package_file, "pypi_distribution", None) if package_file else None
            if distribution is not None:
                body = distribution.core_metadata.encode("utf-8")
                response = HttpResponse(body if request.method == "GET" else b"", content_type="text/plain")
                response["Content-Length"] = str(len(body))
                response["ETag"] = f'"{distribution.core_metadata_sha256}"'
                return response
        raise NotFound("404 Package Not Found")
