"""Thin RubyGems views at project level: `gem push` and `gem yank` (`api/v1/gems`), the legacy
index `gem` reads, the compact index Bundler and `gem` prefer, and the `.gem` files.

Credentials as the clients send them: `gem push`/`gem yank` send the API key (a Packhouse token,
from GEM_HOST_API_KEY or ~/.gem/credentials) as the whole `Authorization` value; `gem install
--source http://user:token@…` and Bundler send Basic credentials.
"""

import gzip
import hashlib
from urllib.parse import parse_qs

from django.db.models import Max
from django.http import HttpResponse, HttpResponseNotModified

from accounts import roles
from packages_rubygems import parsers, queries, renderers
from packages_rubygems.format import RubygemsFormat
from registry import services
from registry.documents import cached_document
from registry.errors import Invalid, NotFound
from registry.formats import FileDraft
from registry.models import INSTALLABLE, Package, PackageVersion
from registry.spool import spool_request
from registry.views import READ, READS_PACKAGE, READS_WHOLE_FORMAT, AnyAccept, PackageAPIView

FORMAT = RubygemsFormat()
TEXT = "text/plain; charset=utf-8"
BINARY = "application/octet-stream"
MAX_FORM_BYTES = 64 * 1024


def _text(body, status=200):
    return HttpResponse(body, status=status, content_type=TEXT)


class GemsView(PackageAPIView):
    package_format = FORMAT
    content_negotiation_class = AnyAccept
    actions = READ

    def project_packages(self):
        return Package.objects.filter(project=self.project, format=FORMAT.name)


class RootView(GemsView):
    """The source's root: `gem` asks it (HEAD) to choose the compact index."""

    def get(self, request, **kwargs):
        return _text("RubyGems source: specs.4.8.gz, quick/Marshal.4.8/, gems/, versions, info/, names\n")


# --- the legacy index --------------------------------------------------------------------------


class SpecsView(GemsView):
    """`specs.4.8.gz`, `latest_specs.4.8.gz`, `prerelease_specs.4.8.gz`."""

    reads = READS_WHOLE_FORMAT

    def get(self, request, which, **kwargs):
        packages = self.project_packages()

        def render():
            return renderers.specs_file(renderers.specs_rows(queries.spec_rows(packages), which))

        return cached_document(request, packages, render, BINARY, variant=which)


class QuickSpecView(GemsView):
    """`quick/Marshal.4.8/<name>-<version>.gemspec.rz`: one version's Gem::Specification."""

    def get(self, request, stem, **kwargs):
        package_file = queries.gem_file(self.project, FORMAT.name, f"{stem}.gem")
        version = package_file.version if package_file is not None else None
        if version is None or "withdrawn" in (version.metadata or {}):  # yanked
            raise NotFound("404 Gem Not Found")
        body = renderers.quick_spec(version.package.name, version.version, version.metadata)
        return HttpResponse(body, content_type=BINARY)


class GemFileView(GemsView):
    """`gems/<name>-<version>.gem` (yanked ones too: lockfiles name them)."""

    def get(self, request, file_name, **kwargs):
        package_file = queries.gem_file(self.project, FORMAT.name, file_name)
        if package_file is None:
            raise NotFound("404 Gem Not Found")
        return services.serve(package_file, request)


# --- the compact index -------------------------------------------------------------------------


def compact_index_response(request, packages, render):
    """A compact index file, cached under the packages' epochs like every document, but
    with the ETag Bundler checks: the quoted MD5 of the (uncompressed) body. A matching
    If-None-Match is a 304; ranges are not served (Bundler then takes the whole file)."""
    response = cached_document(request, packages, render, TEXT)
    body = response.content
    if response.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    etag = f'"{hashlib.md5(body).hexdigest()}"'  # noqa: S324 - the protocol's checksum
    if etag in [tag.strip().removeprefix("W/") for tag in request.META.get("HTTP_IF_NONE_MATCH", "").split(",")]:
        response = HttpResponseNotModified()
    response["ETag"] = etag
    return response


def _by_name(rows):
    gems = {}
    for name, version, metadata, sha256 in rows:
        gems.setdefault(name, []).append((version, metadata, sha256))
    return gems


class VersionsView(GemsView):
    reads = READS_WHOLE_FORMAT

    def get(self, request, **kwargs):
        packages = self.project_packages()

        def render():
            newest = packages.aggregate(newest=Max("updated_at"))["newest"]
            created_at = newest.strftime("%Y-%m-%dT%H:%M:%SZ") if newest else "1970-01-01T00:00:00Z"
            return renderers.versions_file(_by_name(queries.gem_rows(packages)), created_at)

        return compact_index_response(request, packages, render)


class InfoView(GemsView):
    reads = READS_PACKAGE

    def get(self, request, package_name, **kwargs):
        packages = self.project_packages().filter(name=package_name)
        if not parsers.valid_name(package_name) or not queries.has_indexed(packages):
            raise NotFound(f"404 Gem {package_name} Not Found")

        def render():
            rows = queries.gem_rows(packages)
            return renderers.info_file([(version, metadata, sha256) for _, version, metadata, sha256 in rows])

        return compact_index_response(request, packages, render)


class NamesView(GemsView):
    reads = READS_WHOLE_FORMAT

    def get(self, request, **kwargs):
        packages = self.project_packages()

        def render():
            return renderers.names_file({name for name, _, _, _ in queries.gem_rows(packages)})

        return compact_index_response(request, packages, render)


# --- push and yank -------------------------------------------------------------------------------


class PushView(GemsView):
    """`gem push`: `POST api/v1/gems` with the `.gem` as the body."""

    actions = {"POST": roles.CREATE_PACKAGE}

    def post(self, request, **kwargs):
        with spool_request(request, FORMAT.max_file_size) as spool:
            draft = parsers.read_gem(spool.path, FORMAT.max_file_size)
            draft.files = [FileDraft(file_name=parsers.gem_file_name(draft.name, draft.version), spool=spool)]
            services.publish(self.project, self.principal, FORMAT, draft)
        return _text(f"Successfully registered gem: {draft.name} ({draft.version})")


class YankView(GemsView):
    """`gem yank`: `DELETE api/v1/gems/yank` with a form of `gem_name`, `version`, `platform`
    (Maintainer, as deleting is)."""

    actions = {"DELETE": roles.DESTROY_PACKAGE}

    def delete(self, request, **kwargs):
        raw = request.body[: MAX_FORM_BYTES + 1]
        if len(raw) > MAX_FORM_BYTES:
            raise Invalid("400 Bad request - the form is too large")
        form = {**parse_qs(request.META.get("QUERY_STRING", "")), **parse_qs(raw.decode("utf-8", "replace"))}
        name = (form.get("gem_name") or [""])[0]
        version = (form.get("version") or [""])[0]
        platform = (form.get("platform") or ["ruby"])[0] or "ruby"
        stored = version if platform == "ruby" else f"{version}-{platform}"
        row = None
        if parsers.valid_name(name) and parsers.valid_version(stored):
            row = (
                PackageVersion.objects.select_related("package")
                .filter(
                    package__project=self.project,
                    package__format=FORMAT.name,
                    package__normalized_name=name,
                    normalized_version=stored,
                    status__in=INSTALLABLE,
                )
                .first()
            )
        if row is None:
            raise NotFound(f"The version {version} ({platform}) of {name} does not exist.")
        if "withdrawn" in (row.metadata or {}) or not services.set_withdrawn(row, self.principal, True):
            raise Invalid(f"The version {version} ({platform}) of {name} has already been yanked.")
        return _text(f"Successfully yanked gem: {name} ({stored})")
