"""Thin Go module views: `PUT upload` (the module zip, as Gitea takes it) at project level, and
the GOPROXY protocol at project and group level: `<module>/@v/list`, `@v/<version>.info`,
`.mod`, `.zip` and `<module>/@latest`, module paths and versions case-encoded (`!a` for `A`).

The go command reads credentials for the proxy's host from `.netrc` and sends them as Basic.
"""

import json

from django.http import HttpResponse

from accounts import roles
from packages_golang import parsers, queries
from packages_golang.format import GolangFormat
from registry import services
from registry.documents import cached_document
from registry.errors import NotFound
from registry.formats import FileDraft, PackageDraft
from registry.models import Package
from registry.spool import spool_bytes, spool_request
from registry.views import GROUP, READ, AnyAccept, PackageAPIView, ReadsPackage

FORMAT = GolangFormat()
TEXT = "text/plain; charset=utf-8"
READS_MODULE = ReadsPackage("module", parsers.module_of)


def _iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class GoView(PackageAPIView):
    package_format = FORMAT
    content_negotiation_class = AnyAccept
    actions = READ
    reads = READS_MODULE

    def module(self, escaped):
        module = parsers.module_of(escaped)
        if module is None:
            raise NotFound("404 Not Found - not a module path")
        return module

    def packages(self, module):
        return Package.objects.filter(format=FORMAT.name, normalized_name=module, project__in=self.pullable_projects())

    def versions(self, module):
        rows = queries.version_rows(self.packages(module))
        if not rows:
            raise NotFound(f"404 Not Found - no versions of {module}")
        return dict(rows)


class UploadView(GoView):
    """`PUT upload`: the module zip; its `go.mod` is stored beside it for `.mod`."""

    actions = {"PUT": roles.CREATE_PACKAGE}
    reads = None

    def put(self, request, **kwargs):
        with spool_request(request, FORMAT.max_file_size) as spool:
            module, version, go_mod = parsers.read_module_zip(spool.path, FORMAT.max_file_size)
            with spool_bytes(go_mod) as mod_spool:
                draft = PackageDraft(
                    name=module,
                    version=version,
                    files=[FileDraft(f"{version}.zip", spool), FileDraft(f"{version}.mod", mod_spool)],
                )
                services.publish(self.project, self.principal, FORMAT, draft)
        return HttpResponse(f"201 Created - {module}@{version}\n", status=201, content_type=TEXT)


class ListView(GoView):
    """`<module>/@v/list`: every version, one a line."""

    def get(self, request, module, **kwargs):
        path = self.module(module)
        packages = self.packages(path)

        def render():
            # 404 without any version, checked where the list is built: a cached list was built
            # under the same epochs, which every upload or deletion gives the module.
            versions = sorted(self.versions(path), key=parsers.version_key)
            return "".join(f"{version}\n" for version in versions)

        return cached_document(request, packages, render, TEXT)


class LatestView(GoView):
    def get(self, request, module, **kwargs):
        versions = self.versions(self.module(module))
        version = parsers.latest(versions)
        return HttpResponse(
            json.dumps({"Version": version, "Time": _iso(versions[version])}), content_type="application/json"
        )


class VersionFileView(GoView):
    """`<module>/@v/<version>.info`, `.mod` and `.zip`."""

    def get(self, request, module, version, ext, **kwargs):
        path = self.module(module)
        version = parsers.unescape(version)
        if not parsers.valid_version(version):
            raise NotFound(f"404 Not Found - no version {version} of {path}")
        if ext == "info":
            versions = self.versions(path)
            if version not in versions:
                raise NotFound(f"404 Not Found - no version {version} of {path}")
            body = json.dumps({"Version": version, "Time": _iso(versions[version])})
            return HttpResponse(body, content_type="application/json")
        file_name = f"{version}.{ext}"
        if self.scope == GROUP:
            package_file = (
                services.installable_files(
                    self.pullable_projects(), FORMAT, name=path, version=version, file_name=file_name
                )
                .order_by("-id")
                .first()
            )
        else:
            package_file = self.find_file(path, version, file_name)
        if package_file is None:
            raise NotFound(f"404 Not Found - no version {version} of {path}")
        content_type = "application/zip" if ext == "zip" else TEXT
        return services.serve(package_file, request, content_type=content_type)


def _at_group(view):
    return type(f"Group{view.__name__}", (view,), {"scope": GROUP})


GroupListView = _at_group(ListView)
GroupLatestView = _at_group(LatestView)
GroupVersionFileView = _at_group(VersionFileView)
