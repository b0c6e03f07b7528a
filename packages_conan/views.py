"""Thin Conan views: GitLab's Conan v2 API at project level, as the `conan` 2.x client speaks it
(`<remote>/v1/ping`, then everything under `<remote>/v2/`).

Conan sends nothing until a request is refused with 401; it then calls `users/authenticate`
with Basic credentials (a user name and a Packhouse token as the password) and sends the token
it gets back as `Authorization: Bearer` from then on. Packhouse answers with the very token the
client authenticated with, so the token's own rules (scopes, expiry, revocation) go on applying.
"""

import base64
import binascii
import json

from django.http import HttpResponse

from accounts import roles
from packages_conan import parsers, queries, renderers, writes
from packages_conan.format import ConanFormat
from registry import services
from registry.documents import cached_document
from registry.errors import Invalid, NotFound, Unauthenticated
from registry.formats import FileDraft
from registry.models import INSTALLABLE, Package, PackageVersion
from registry.spool import spool_request
from registry.views import READ, READS_WHOLE_FORMAT, AnyAccept, PackageAPIView, ReadsPackage

FORMAT = ConanFormat()
CAPABILITIES = "revisions"
JSON = "application/json"
READS_RECIPE = ReadsPackage("recipe", parsers.package_name_of)


class ConanView(PackageAPIView):
    package_format = FORMAT
    content_negotiation_class = AnyAccept
    actions = READ
    reads = READS_RECIPE

    recipe = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authorization first: 401/403/404 before 400
        if "recipe" in kwargs:
            self.recipe = parsers.parse_recipe(kwargs["recipe"])
        for key in ("rrev", "prev"):
            if key in kwargs:
                parsers.check_revision(kwargs[key])
        if "package_id" in kwargs:
            parsers.check_package_id(kwargs["package_id"])

    def rows(self):
        return queries.file_rows(self.project, FORMAT, self.recipe)

    def document(self, request, render, missing, **present):
        """A JSON document built by `render(rows)` (rows: queries.file_rows), cached under the
        recipe's package epochs; 404 (`missing`) unless a file matching `present` (lookups on
        the stored file name) is there."""
        recipe = self.recipe
        files = services.installable_files(self.project, FORMAT, name=recipe.package_name, version=recipe.version)

        def build():
            # Checked where the document is built: a cached one was built under the same epochs,
            # which every upload or deletion of a file gives the recipe.
            if not files.filter(**present).exists():
                raise NotFound(missing)
            return json.dumps(render(self.rows()))

        packages = Package.objects.filter(project=self.project, format=FORMAT.name, normalized_name=recipe.package_name)
        return cached_document(request, packages, build, JSON)

    def recipe_document(self, request, render):
        """A document about the recipe's revisions: 404 until one has its manifest."""
        manifest = f"/export/{parsers.MANIFEST}"
        return self.document(request, render, f"404 Recipe {self.recipe} Not Found", file_name__endswith=manifest)

    def version(self):
        row = (
            PackageVersion.objects.select_related("package")
            .filter(
                package__project=self.project,
                package__format=FORMAT.name,
                package__normalized_name=self.recipe.package_name,
                normalized_version=self.recipe.version,
                status__in=INSTALLABLE,
            )
            .first()
        )
        if row is None:
            raise NotFound(f"404 Recipe {self.recipe} Not Found")
        return row

    def serve_file(self, request, file_name):
        package_file = self.find_file(self.recipe.package_name, self.recipe.version, file_name)
        if package_file is None:
            raise NotFound("404 File Not Found")
        return services.serve(package_file, request)

    def upload(self, request, file_name, path, conaninfo_key=None):
        """One file of a revision. An identical file already there is accepted again (Conan
        retries uploads); other content for it is a 409, except under `metadata/`."""
        with spool_request(request, FORMAT.max_file_size) as spool:
            sha1 = request.headers.get("X-Checksum-Sha1")
            if sha1:
                spool.verify("sha1", sha1, "X-Checksum-Sha1")
            recipe = self.recipe
            existing = services.find_file(self.project, FORMAT, recipe.package_name, recipe.version, file_name)
            if existing is not None and existing.blob.sha256 == spool.sha256:
                return HttpResponse(status=201)
            conaninfo = parsers.read_conaninfo(spool) if conaninfo_key and path == parsers.CONANINFO else None
            draft = parsers.ConanDraft(
                name=recipe.package_name,
                version=recipe.version,
                files=[FileDraft(file_name=file_name, spool=spool)],
                path=path,
                conaninfo_key=conaninfo_key if conaninfo is not None else None,
                conaninfo=conaninfo,
            )
            services.publish(self.project, self.principal, FORMAT, draft)
        return HttpResponse(status=201)


# --- the server, credentials, search ------------------------------------------------------------


class PingView(ConanView):
    """`v1/ping`: what Conan reads first; it needs the `revisions` capability."""

    reads = None

    def get(self, request, **kwargs):
        response = HttpResponse(status=200)
        response["X-Conan-Server-Capabilities"] = CAPABILITIES
        return response


def _presented_token(meta):
    """The token of a request's Authorization header (Basic password, Bearer, or as it is)."""
    scheme, _, value = meta.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2] or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    if scheme.lower() == "bearer":
        return value.strip() or None
    return scheme or None


class AuthenticateView(ConanView):
    """`v2/users/authenticate` (Basic): the token the client authenticated with, as text."""

    reads = None

    def get(self, request, **kwargs):
        token = None if self.principal.is_anonymous else _presented_token(request.META)
        if token is None:
            raise Unauthenticated()
        return HttpResponse(token, content_type="text/plain")


class CheckCredentialsView(ConanView):
    reads = None

    def get(self, request, **kwargs):
        if self.principal.is_anonymous:
            raise Unauthenticated()
        return HttpResponse("ok", content_type="text/plain")


class SearchView(ConanView):
    """`v2/conans/search?q=<pattern>`: the project's recipes."""

    reads = READS_WHOLE_FORMAT

    def get(self, request, **kwargs):
        pattern = request.query_params.get("q")
        ignorecase = request.query_params.get("ignorecase", "True") != "False"

        def render():
            rows = queries.recipe_rows(self.project, FORMAT)
            references = [str(parsers.recipe_of(name, version)) for name, version in rows]
            return json.dumps(renderers.recipe_search(references, pattern, ignorecase))

        packages = Package.objects.filter(project=self.project, format=FORMAT.name)
        return cached_document(request, packages, render, JSON, variant=f"{pattern}\0{ignorecase}")


# --- recipes and recipe revisions ----------------------------------------------------------------


class RecipeView(ConanView):
    """`DELETE v2/conans/<recipe>`: every revision of the recipe."""

    actions = {"DELETE": roles.DESTROY_PACKAGE}

    def delete(self, request, **kwargs):
        services.mark_version_for_destruction(self.version())
        return HttpResponse(status=200)


class RecipeLatestView(ConanView):
    def get(self, request, **kwargs):
        return self.recipe_document(request, lambda rows: renderers.latest(*renderers.recipe_revisions(rows)[0]))


class RecipeRevisionsView(ConanView):
    def get(self, request, **kwargs):
        reference = str(self.recipe)
        return self.recipe_document(
            request, lambda rows: renderers.revision_list(reference, renderers.recipe_revisions(rows))
        )


class RecipeRevisionView(ConanView):
    """`DELETE …/revisions/<rrev>`: the recipe revision and its packages."""

    actions = {"DELETE": roles.DESTROY_PACKAGE}

    def delete(self, request, rrev, **kwargs):
        if not writes.remove_files(self.version(), [f"{rrev}/"]):
            raise NotFound(f"404 Recipe {self.recipe}#{rrev} Not Found")
        return HttpResponse(status=200)


class RecipeFilesView(ConanView):
    def get(self, request, rrev, **kwargs):
        prefix = parsers.recipe_prefix(rrev)
        missing = f"404 Recipe {self.recipe}#{rrev} Not Found"
        return self.document(
            request, lambda rows: renderers.file_list(rows, prefix), missing, file_name__startswith=prefix
        )


class RecipeFileView(ConanView):
    actions = {**READ, "PUT": roles.CREATE_PACKAGE}

    def get(self, request, rrev, path, **kwargs):
        parsers.check_file_path(path, parsers.RECIPE_FILES)
        return self.serve_file(request, parsers.recipe_file_name(rrev, path))

    def put(self, request, rrev, path, **kwargs):
        parsers.check_file_path(path, parsers.RECIPE_FILES)
        return self.upload(request, parsers.recipe_file_name(rrev, path), path)


class PackageSearchView(ConanView):
    """`…/search` and `…/revisions/<rrev>/search`: {package_id: {"content": conaninfo.txt}} of
    the (latest) recipe revision's packages."""

    def get(self, request, rrev=None, **kwargs):
        recipe = self.recipe

        def render(rows):
            revisions = renderers.recipe_revisions(rows)
            revision = revisions[0][0] if rrev is None else rrev
            return renderers.package_search(rows, revision, queries.conaninfos(self.project, FORMAT, recipe))

        if rrev is None:
            return self.recipe_document(request, render)
        manifest = parsers.recipe_file_name(rrev, parsers.MANIFEST)
        return self.document(request, render, f"404 Recipe {recipe}#{rrev} Not Found", file_name=manifest)


# --- packages and package revisions --------------------------------------------------------------


class PackagesView(ConanView):
    """`DELETE …/revisions/<rrev>/packages`: every package of the recipe revision."""

    actions = {"DELETE": roles.DESTROY_PACKAGE}

    def delete(self, request, rrev, **kwargs):
        if not writes.remove_files(self.version(), [f"{rrev}/package/"]):
            raise NotFound(f"404 Recipe {self.recipe}#{rrev} has no packages")
        return HttpResponse(status=200)


class PackageDocumentMixin:
    def package_document(self, request, rrev, package_id, render):
        """A document about a package's revisions: 404 until one has its manifest."""
        missing = f"404 Package {self.recipe}#{rrev}:{package_id} Not Found"
        return self.document(
            request,
            lambda rows: render(renderers.package_revisions(rows, rrev, package_id)),
            missing,
            file_name__startswith=f"{rrev}/package/{package_id}/",
            file_name__endswith=f"/{parsers.MANIFEST}",
        )


class PackageLatestView(PackageDocumentMixin, ConanView):
    def get(self, request, rrev, package_id, **kwargs):
        return self.package_document(request, rrev, package_id, lambda revisions: renderers.latest(*revisions[0][1:]))


class PackageRevisionsView(PackageDocumentMixin, ConanView):
    def get(self, request, rrev, package_id, **kwargs):
        reference = f"{self.recipe}#{rrev}:{package_id}"

        def render(revisions):
            return renderers.revision_list(reference, [(prev, when) for _, prev, when in revisions])

        return self.package_document(request, rrev, package_id, render)


class PackageRevisionView(ConanView):
    actions = {"DELETE": roles.DESTROY_PACKAGE}

    def delete(self, request, rrev, package_id, prev, **kwargs):
        if not writes.remove_files(self.version(), [parsers.package_prefix(rrev, package_id, prev)]):
            raise NotFound(f"404 Package {self.recipe}#{rrev}:{package_id}#{prev} Not Found")
        return HttpResponse(status=200)


class PackageFilesView(ConanView):
    def get(self, request, rrev, package_id, prev, **kwargs):
        prefix = parsers.package_prefix(rrev, package_id, prev)
        missing = f"404 Package {self.recipe}#{rrev}:{package_id}#{prev} Not Found"
        return self.document(
            request, lambda rows: renderers.file_list(rows, prefix), missing, file_name__startswith=prefix
        )


class PackageFileView(ConanView):
    actions = {**READ, "PUT": roles.CREATE_PACKAGE}

    def get(self, request, rrev, package_id, prev, path, **kwargs):
        parsers.check_file_path(path, parsers.PACKAGE_FILES)
        return self.serve_file(request, parsers.package_file_name(rrev, package_id, prev, path))

    def put(self, request, rrev, package_id, prev, path, **kwargs):
        parsers.check_file_path(path, parsers.PACKAGE_FILES)
        recipe = self.recipe
        manifest = parsers.recipe_file_name(rrev, parsers.MANIFEST)
        if services.find_file(self.project, FORMAT, recipe.package_name, recipe.version, manifest) is None:
            raise Invalid(f"400 Bad request - upload the recipe revision {recipe}#{rrev} before its packages")
        file_name = parsers.package_file_name(rrev, package_id, prev, path)
        return self.upload(request, file_name, path, conaninfo_key=f"{rrev}:{package_id}:{prev}")
