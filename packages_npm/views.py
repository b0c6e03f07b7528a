"""Thin npm views: parse -> registry.services / packages_npm.writes -> render.

Project level: publish, packument, tarball, dist-tags, deprecate, unpublish, audit stubs.
Group and instance level: packument (its tarballs linked below the endpoint asked), tarball,
dist-tags (writes decided on the package's project), search and the audit stubs.
"""

import json
from urllib.parse import quote

from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from accounts import roles
from packages_npm import audit, parsers, queries, renderers, search, writes
from packages_npm.format import NpmFormat
from packages_npm.publish_body import read_publish_body
from packages_npm.virtual import CORGI, filter_versions, load_document
from registry import services
from registry.documents import cached_document
from registry.errors import BadGateway, Forbidden, Invalid, NotFound
from registry.models import INSTALLABLE, Package, PackageVersion, Status
from registry.spool import spool_request
from registry.views import GROUP, INSTANCE, PROJECT, READ, READS_PACKAGE, AnyAccept, PackageAPIView, base_url
from registry.virtual import events, forward
from registry.virtual.views import VirtualRegistryView, memoized_answer, provenance_headers

FORMAT = NpmFormat()
# Room for the JSON around the base64 attachment (readme, manifest) in a publish body.
METADATA_ALLOWANCE = 16 * 1024 * 1024
JSON = "application/json"


class NpmView(PackageAPIView):
    package_format = FORMAT
    # npm asks for `application/vnd.npm.install-v1+json` (the abbreviated packument).
    content_negotiation_class = AnyAccept

    def readable_packages(self, name):
        """The npm packages of that name the caller may pull, at this view's level."""
        projects = self.pullable_projects()
        if self.scope == INSTANCE:
            # Only `@<top-level group path>/...` resolves on the instance endpoint.
            scope = parsers.scope_of(name)
            if scope is None:
                raise NotFound("404 Packages Not Found")
            projects = projects.filter(group__isnull=False, full_path__istartswith=f"{scope}/")
        return Package.objects.filter(
            format=FORMAT.name, normalized_name=FORMAT.normalize_name(name), project__in=projects
        )

    def endpoint(self, root):
        """The group or instance endpoint this request came through (None at project level):
        tarballs are linked below it (renderers.tarball_url)."""
        if self.scope == GROUP:
            return f"{root}/api/v4/groups/{quote(self.kwargs['group_ref'], safe='')}/-/packages/npm"
        if self.scope == INSTANCE:
            return f"{root}/api/v4/packages/npm"
        return None

    def require_live(self, packages):
        """404 unless a version can be installed. Called where a document is built (render): a
        cached document was built from the same packages under the same epochs, and every change
        of a version's status gives its package a new epoch, so a cached one needs no check."""
        if not PackageVersion.objects.filter(package__in=packages, status__in=INSTALLABLE).exists():
            raise NotFound("404 Packages Not Found")

    def project_package(self, name):
        package = Package.objects.filter(
            project=self.project, format=FORMAT.name, normalized_name=FORMAT.normalize_name(name)
        ).first()
        if package is None:
            raise NotFound("404 Package Not Found")
        return package

    def read_body(self, request):
        """The JSON body (a PublishBody, to use as a context manager): spooled to disk under a cap
        derived from the npm size limit, then scanned with every attachment decoded to a spool
        of its own, so memory does not grow with the tarball."""
        max_size = FORMAT.max_file_size
        cap = max_size * 4 // 3 + 4 + METADATA_ALLOWANCE if max_size else 0
        with spool_request(request, cap) as spool:
            return read_publish_body(spool.path, max_size, METADATA_ALLOWANCE)

    def require(self, action):
        """Re-check for a stronger action than the one the method mapped to."""
        if self.action_for(self.request) != action and not self.access.allowed(action):
            raise Forbidden()


class PackumentView(NpmView):
    """GET <name>: packument. PUT <name>: publish, or deprecate (npm-command: deprecate)."""

    actions = {**READ, "PUT": roles.CREATE_PACKAGE}
    reads = READS_PACKAGE

    def action_for(self, request):
        action = super().action_for(request)
        if action == roles.CREATE_PACKAGE and request.headers.get("Npm-Command") in ("deprecate", "unpublish"):
            return roles.DESTROY_PACKAGE
        return action

    def get(self, request, package_name, **kwargs):
        packages = self.readable_packages(package_name)
        root = base_url(request)
        endpoint = self.endpoint(root)

        def render():
            self.require_live(packages)
            rows, tags = queries.file_rows(packages), queries.tag_rows(packages)
            document = renderers.packument(package_name, rows, tags, root, endpoint)
            return json.dumps(document, separators=(",", ":"))

        return cached_document(request, packages, render, JSON)

    def put(self, request, package_name, **kwargs):
        FORMAT.validate_name(package_name)  # before the body is read; deprecations too
        with self.read_body(request) as body:
            document = body.document
            if not isinstance(document, dict):
                raise Invalid("Invalid publish document.")
            if self._is_deprecation(request, document):
                return self.deprecate(package_name, document)
            self.refuse_name_held_elsewhere(package_name)
            draft, spool = parsers.parse_publish(body, package_name, FORMAT.max_file_size)
        with spool:
            services.publish(self.project, self.principal, FORMAT, draft)
        return JsonResponse({"ok": True, "id": package_name}, status=200)

    def refuse_name_held_elsewhere(self, package_name):
        """GitLab's rule: one project of a top-level group owns an npm name, since the instance
        and group endpoints resolve `@<group>/name` across all of them. (GitLab lets the group's
        package settings allow duplicates; there is no such setting here.)"""
        if self.project.group_id is None:
            return
        root = self.project.root_namespace_path
        held = (
            Package.objects.filter(format=FORMAT.name, normalized_name=FORMAT.normalize_name(package_name))
            .filter(project__full_path__startswith=f"{root}/")
            .exclude(project=self.project)
            .filter(versions__in=PackageVersion.objects.exclude(status=Status.PENDING_DESTRUCTION))
        )
        if held.exists():
            raise Forbidden(
                f"Package already exists: {package_name} is published by another project of the {root} group."
            )

    @staticmethod
    def _deprecations(document):
        versions = document.get("versions")
        if not isinstance(versions, dict):
            return {}
        return {
            version: manifest["deprecated"]
            for version, manifest in versions.items()
            if isinstance(manifest, dict) and isinstance(manifest.get("deprecated"), str)
        }

    def _is_deprecation(self, request, document):
        if request.headers.get("Npm-Command") == "deprecate":
            return True
        return not document.get("_attachments") and bool(self._deprecations(document))

    def deprecate(self, package_name, document):
        self.require(roles.DESTROY_PACKAGE)
        messages = self._deprecations(document)
        if not messages:
            raise Invalid('"package versions to deprecate" not given')
        writes.deprecate(self.project_package(package_name), messages)
        return JsonResponse({"ok": True, "id": package_name})


class RevisionView(NpmView):
    """npm unpublish: DELETE <name>/-rev/<rev> (whole package), PUT <name>/-rev/<rev> (the
    packument minus the versions to remove)."""

    actions = {"PUT": roles.DESTROY_PACKAGE, "DELETE": roles.DESTROY_PACKAGE}

    def live_versions(self, package_name):
        package = self.project_package(package_name)
        versions = list(PackageVersion.objects.filter(package=package, status__in=INSTALLABLE))
        if not versions:
            raise NotFound("404 Package Not Found")
        return versions

    def put(self, request, package_name, **kwargs):
        with self.read_body(request) as body:
            document = body.document
        remaining = document.get("versions") if isinstance(document, dict) else None
        if not isinstance(remaining, dict):
            raise Invalid('"versions" not given')
        removed = [v for v in self.live_versions(package_name) if v.version not in remaining]
        for version in removed:
            services.mark_version_for_destruction(version)
        return JsonResponse({"ok": True, "id": package_name, "removed": [v.version for v in removed]})

    def delete(self, request, package_name, **kwargs):
        for version in self.live_versions(package_name):
            services.mark_version_for_destruction(version)
        return JsonResponse({"ok": True, "id": package_name})


class TarballView(NpmView):
    actions = READ
    reads = READS_PACKAGE

    def get(self, request, package_name, file_name, **kwargs):
        version = parsers.tarball_version(package_name, file_name)
        package_file = None
        if version is not None and parsers.valid_name(package_name):
            tarball = parsers.tarball_name(package_name, version)
            if self.scope == PROJECT:
                package_file = self.find_file(package_name, version, tarball)
            else:  # the newest such tarball among the packages readable through this endpoint
                package_file = (
                    services.installable_files(self.pullable_projects(), FORMAT, name=package_name, version=version)
                    .filter(file_name=tarball, version__package__in=self.readable_packages(package_name))
                    .order_by("-created_at", "-id")
                    .first()
                )
        if package_file is None:
            raise NotFound("404 Package Not Found")
        return services.serve(package_file, request)


class TarballRevisionView(NpmView):
    """The last request of a single-version `npm unpublish`: DELETE <tarball path>/-rev/<rev>,
    often with the project prefix doubled. The version is normally gone already: then 404,
    which npm ignores."""

    actions = {"DELETE": roles.DESTROY_PACKAGE}

    def delete(self, request, package_name, file_name, inner_ref=None, **kwargs):
        version = parsers.tarball_version(package_name, file_name)
        if inner_ref is not None and inner_ref not in (str(self.project.pk), self.project.full_path):
            version = None
        row = None
        if version is not None:
            row = PackageVersion.objects.filter(
                package__project=self.project,
                package__format=FORMAT.name,
                package__normalized_name=FORMAT.normalize_name(package_name),
                version=version,
                status__in=INSTALLABLE,
            ).first()
        if row is None:
            raise NotFound("404 Package Not Found")
        services.mark_version_for_destruction(row)
        return JsonResponse({"ok": True})


class DistTagsView(NpmView):
    actions = READ
    reads = READS_PACKAGE

    def get(self, request, package_name, **kwargs):
        packages = self.readable_packages(package_name)

        def render():
            self.require_live(packages)
            live = queries.live_versions(packages)
            return json.dumps(renderers.dist_tags(queries.tag_rows(packages), live))

        return cached_document(request, packages, render, JSON)


class DistTagView(NpmView):
    actions = {"PUT": roles.CREATE_PACKAGE, "DELETE": roles.DESTROY_PACKAGE}

    def put(self, request, package_name, tag, **kwargs):
        if not parsers.valid_tag(tag):
            raise Invalid(parsers.TAG_INVALID.format(tag=tag))
        try:
            version = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError):
            version = None
        if not isinstance(version, str) or not version:
            raise Invalid('"Version" not given')
        package = self.project_package(package_name)
        row = PackageVersion.objects.filter(package=package, version=version, status__in=INSTALLABLE).first()
        if row is None:
            raise NotFound("404 Package Not Found")
        writes.set_dist_tag(package, row, tag)
        return HttpResponse(status=204)

    def delete(self, request, package_name, tag, **kwargs):
        package = self.project_package(package_name)
        if not writes.remove_dist_tag(package, tag):
            raise NotFound("404 Package tag Not Found")
        return HttpResponse(status=204)


class ScopedDistTagView(DistTagView):
    """PUT/DELETE dist-tags at group and instance level (GitLab's `project_or_nil`): the
    package of that name the caller may pull there names the project, whose own rule decides
    (create_package to tag, destroy_package to untag). The group or instance is only read."""

    actions = {"PUT": roles.READ_PACKAGE, "DELETE": roles.READ_PACKAGE}
    found = None

    def project_package(self, name):
        if self.found is None:
            package = self.readable_packages(name).select_related("project").order_by("-id").first()
            if package is None:
                raise NotFound("404 Package Not Found")
            write = roles.CREATE_PACKAGE if self.request.method == "PUT" else roles.DESTROY_PACKAGE
            self.act_in_project(package.project, write)
            self.found = package
        return self.found

    def put(self, request, package_name, tag, **kwargs):
        self.project_package(package_name)  # who may, before the tag and body are read
        return super().put(request, package_name, tag, **kwargs)


class SearchView(NpmView):
    """`npm search`: GET /-/v1/search?text=&size=&from= over what the caller may pull here."""

    actions = READ

    def get(self, request, **kwargs):
        projects = self.pullable_projects()
        answer = search.search(projects, request.query_params, base_url(request), timezone.now())
        return JsonResponse(answer)


class AuditView(NpmView):
    """npm audit: no advisories here (forwarding to npmjs is off), so `npm install` goes on."""

    actions = {"POST": roles.READ_PACKAGE}

    def post(self, request, **kwargs):
        return JsonResponse({})


def _at(scope, view):
    """The read-only variant of a view for the group or instance endpoint. Instance views keep
    their write methods so the base view answers them 404 (GitLab: no publish there)."""
    actions = view.actions
    if scope == GROUP:
        actions = {key: value for key, value in actions.items() if value == roles.READ_PACKAGE}
    return type(f"{scope.title()}{view.__name__}", (view,), {"scope": scope, "actions": actions})


GroupPackumentView = _at(GROUP, PackumentView)
GroupDistTagsView = _at(GROUP, DistTagsView)
GroupAuditView = _at(GROUP, AuditView)
GroupTarballView = _at(GROUP, TarballView)
InstanceTarballView = _at(INSTANCE, TarballView)
GroupSearchView = _at(GROUP, SearchView)
InstanceSearchView = _at(INSTANCE, SearchView)
InstancePackumentView = _at(INSTANCE, PackumentView)
InstanceDistTagsView = _at(INSTANCE, DistTagsView)
InstanceAuditView = _at(INSTANCE, AuditView)
GroupDistTagView = type("GroupDistTagView", (ScopedDistTagView,), {"scope": GROUP})
InstanceDistTagView = type("InstanceDistTagView", (ScopedDistTagView,), {"scope": INSTANCE})


# --- virtual registries (registry.virtual; packages_npm.virtual) ----------------------------------


def virtual_packument(served, path, request, registry, package_name):
    """The served packument without the versions its upstream's rules deny (spec §1.9, §2.2),
    with every `dist.tarball` pointing at this virtual registry."""
    document = load_document(served.read(FORMAT.virtual.metadata_cap))
    if document is None:
        raise BadGateway("502 Bad Gateway - the upstream packument is not a JSON object")
    if not filter_versions(document, lambda version: served.allows(FORMAT, path, version)):
        events.rule_denied(registry, path, [int(served.upstream)])
        raise NotFound("404 Not Found - denied by the upstreams' rules")
    base = f"{base_url(request)}/api/v4/virtual_registries/packages/{FORMAT.name}/{registry.pk}/{package_name}/-/"
    versions = document.get("versions")
    for entry in (versions if isinstance(versions, dict) else {}).values():
        dist = entry.get("dist") if isinstance(entry, dict) else None
        if isinstance(dist, dict) and isinstance(dist.get("tarball"), str):
            dist["tarball"] = base + dist["tarball"].rsplit("/", 1)[-1]
    return document


class NpmVirtualView(VirtualRegistryView):
    package_format = FORMAT

    def packument(self, request, registry_id, package_name, abbreviated):
        path = FORMAT.virtual.packument_path(package_name, abbreviated)
        served = self.resolve(path)
        return served, virtual_packument(served, path, request, self.registry, package_name)

    def json(self, served, document):
        response = JsonResponse(document, json_dumps_params={"separators": (",", ":")})
        for name, value in provenance_headers(served).items():
            response[name] = value
        response["Vary"] = "Accept"
        return response


class VirtualPackumentView(NpmVirtualView):
    @classmethod
    def document_path(cls, url_kwargs):
        return FORMAT.virtual.packument_path(url_kwargs["package_name"], abbreviated=False)

    def get(self, request, registry_id, package_name):
        abbreviated = CORGI in request.headers.get("Accept", "")
        path = FORMAT.virtual.packument_path(package_name, abbreviated)
        served = self.resolve(path)

        def render():
            document = virtual_packument(served, path, request, self.registry, package_name)
            return json.dumps(document, separators=(",", ":")).encode()

        return memoized_answer(request, self.registry, served, render, JSON, variant=path.variant)

    head = get


class VirtualDistTagsView(NpmVirtualView):
    def get(self, request, registry_id, package_name):
        served, document = self.packument(request, registry_id, package_name, abbreviated=True)
        tags = document.get("dist-tags")
        return self.json(served, tags if isinstance(tags, dict) else {})


class VirtualTarballView(NpmVirtualView):
    @classmethod
    def file_raw_path(cls, url_kwargs):
        return f"{url_kwargs['package_name']}/-/{url_kwargs['file_name']}"

    def get(self, request, registry_id, package_name, file_name):
        return self.serve_path(request, self.file_raw_path(self.kwargs))

    head = get


class VirtualPingView(NpmVirtualView):
    def get(self, request, registry_id):
        return JsonResponse({})


class VirtualAuditView(NpmVirtualView):
    """npm audit (`advisories/bulk`, `audits/quick`), forwarded to the registry's first remote
    upstream without the names that must not leave the instance (packages_npm.audit,
    registry.virtual.forward); its answer passed on, never cached. No remote upstream: `{}`."""

    http_method_names = ["post"]

    def post(self, request, registry_id):
        kind = audit.BULK if request.path.endswith("/advisories/bulk") else audit.QUICK
        document = audit.load(audit.read_body(request))
        names = audit.names(kind, document)
        plan = forward.plan(
            self.registry, FORMAT, names, lambda name: FORMAT.virtual.packument_path(name, abbreviated=False)
        )
        if plan.upstream is None:
            return self.no_store(JsonResponse({}))
        audit.strip(kind, document, plan.allowed)
        if kind == audit.BULK and not document:
            return self.no_store(JsonResponse({}))  # nothing left to ask about
        endpoint = "advisories/bulk" if kind == audit.BULK else "audits/quick"
        answer = forward.post(
            plan.upstream,
            f"/-/npm/v1/security/{endpoint}",
            audit.encode(document),
            headers={"Content-Type": JSON, "Content-Encoding": "gzip", "Accept": JSON},
            cap=audit.ANSWER_CAP,
        )
        if load_document(answer) is None:
            raise BadGateway(f"502 Bad Gateway - upstream {plan.upstream.name} answered no JSON object")
        response = self.no_store(HttpResponse(answer, content_type=JSON))
        response["X-Packhouse-Upstream"] = str(plan.upstream.pk)
        return response

    @staticmethod
    def no_store(response):
        response["Cache-Control"] = "no-store"
        return response
