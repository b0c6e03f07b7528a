"""Virtual registries' management API, in the shape of GitLab's first virtual registry, for every format
with virtual support (spec/virtual-registries.md §1): `<format>` in the paths is any format
registered with `virtual` support (registry.formats), anything else 404.

- Credentials: access tokens (`api`; `read_api`/`read_virtual_registry` for reads,
  `write_virtual_registry` for writes), the top-level group's deploy tokens with
  `read_virtual_registry`/`write_virtual_registry`, job tokens (their user's memberships).
- Who: registry.policy.authorize_virtual_registry (read: members of the top-level group or of
  anything inside it; writes Maintainer+; anonymous 401; non-members and subgroups 404).
- Errors: validation 400 `{"message": {"<field>": ["<text>"]}}`, parameters 400 `{"error": ...}`.
- Secrets are never rendered; `has_credentials` says whether one is set.
"""

import base64
import binascii
import logging

from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import roles
from accounts.authentication import principal_of
from api.base import ManagementView
from registry import formats, policy
from registry.errors import Forbidden, NotFound, RegistryError, Unauthenticated
from registry.virtual import changes, claims, cleanup, health, http, resolver, rules, services
from registry.virtual.models import (
    CacheEntry,
    NameClaim,
    RegistryUpstream,
    Upstream,
    UpstreamRule,
    VirtualCleanupPolicy,
    VirtualRegistry,
)

READ = roles.READ_VIRTUAL_REGISTRY
WRITE = roles.ADMIN_VIRTUAL_REGISTRY
CLAIMS = roles.ADMIN_VIRTUAL_REGISTRY_CLAIMS
logger = logging.getLogger(__name__)


def timestamp(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


def render_registry(registry):
    return {
        "id": registry.pk,
        "group_id": registry.group_id,
        "name": registry.name,
        "description": registry.description,
        "retain_removed_versions": registry.retain_removed_versions,
        # The format's own settings (VirtualSupport.registry_options).
        **resolver.registry_options(registry, formats.get(registry.format)),
        "created_at": timestamp(registry.created_at),
        "updated_at": timestamp(registry.updated_at),
    }


def render_link(link):
    return {
        "id": link.pk,
        "registry_id": link.registry_id,
        "upstream_id": link.upstream_id,
        "position": link.position,
    }


def render_upstream(upstream):
    body = {
        "id": upstream.pk,
        "group_id": upstream.group_id,
        "name": upstream.name,
        "description": upstream.description,
        "cache_validity_hours": upstream.cache_validity_hours,
        "metadata_cache_validity_hours": upstream.metadata_cache_validity_hours,
        "negative_cache_minutes": upstream.negative_cache_minutes,
        "upstream_type": upstream.kind,
        "created_at": timestamp(upstream.created_at),
        "updated_at": timestamp(upstream.updated_at),
    }
    if upstream.is_local:
        if upstream.local_project_id:
            body["local_project_id"] = upstream.local_project_id
        else:
            body["local_group_id"] = upstream.local_group_id
        support = formats.get(upstream.format).virtual
        if support.scope_claims:
            body[support.scope_claims] = claims.scope_claims(upstream, support)
    else:
        body.update({"url": upstream.url, "username": upstream.username or None})
        body["has_credentials"] = upstream.has_credentials
        body["file_hosts"] = list(upstream.file_hosts)
    health_state = health.describe(upstream)
    health_state["checked_at"] = timestamp(health_state["checked_at"])
    health_state["retry_at"] = timestamp(health_state["retry_at"])
    body["health"] = health_state
    return body


def render_upstream_in(link):
    body = render_upstream(link.upstream)
    body["registry_upstream"] = {
        "id": link.pk,
        "registry_id": link.registry_id,
        "position": link.position,
        **({"local_upstream_id": link.upstream_id} if link.upstream.is_local else {}),
    }
    return body


def render_upstream_with_links(upstream):
    body = render_upstream(upstream)
    body["registry_upstreams"] = [
        {"id": link.pk, "registry_id": link.registry_id, "position": link.position}
        for link in upstream.registry_upstreams.order_by("registry_id")
    ]
    return body


def cache_entry_id(entry):
    return base64.urlsafe_b64encode(f"{entry.upstream_id} {entry.relative_path}".encode()).decode()


def render_cache_entry(entry):
    blob = entry.blob
    return {
        "id": cache_entry_id(entry),
        "group_id": entry.upstream.group_id,
        "upstream_id": entry.upstream_id,
        "upstream_checked_at": timestamp(entry.upstream_checked_at),
        "file_md5": blob.md5,
        "file_sha1": blob.sha1,
        "file_sha256": blob.sha256,
        "size": blob.size,
        "relative_path": entry.relative_path,
        "content_type": entry.content_type,
        "upstream_etag": entry.upstream_etag or None,
        "verified": entry.verified,
        "created_at": timestamp(entry.created_at),
        "updated_at": timestamp(entry.updated_at),
        "downloads_count": entry.downloads_count,
        "downloaded_at": timestamp(entry.downloaded_at),
    }


def cache_entries(upstream, search=None):
    """The live cache entries of a remote upstream, by path; `search`: a substring of the path."""
    entries = (
        CacheEntry.objects.filter(upstream=upstream, status=CacheEntry.Status.DEFAULT)
        .select_related("blob", "upstream")
        .order_by("relative_path", "id")
    )
    if search:
        entries = entries.filter(relative_path__contains=search)
    return entries


def parse_cache_entry_id(entry_id):
    """(upstream id, relative path) of a cache entry id (Base64 of "<upstream_id> <relative_path>",
    URL-safe or not, padded or not); NotFound when it is none."""
    try:
        padded = entry_id + "=" * (-len(entry_id) % 4)
        decoded = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_")).decode()
        upstream_ref, relative_path = decoded.split(" ", 1)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise NotFound("404 Not Found") from exc
    if not (upstream_ref.isascii() and upstream_ref.isdigit()):
        raise NotFound("404 Not Found")
    return int(upstream_ref), relative_path


def delete_cache_entry(upstream, relative_path):
    """Mark the entry for destruction (the orphan sweep releases its blob); NotFound if there is none."""
    entries = CacheEntry.objects.filter(
        upstream=upstream, relative_path=relative_path, status=CacheEntry.Status.DEFAULT
    )
    if not entries.update(status=CacheEntry.Status.PENDING_DESTRUCTION):
        raise NotFound("404 Not Found")
    changes.upstream_changed(upstream)


def probe_saved_upstream(fmt, upstream):
    """{"success": ...} for an upstream's saved settings (a local upstream always succeeds)."""
    if upstream.is_local:
        return {"success": True}
    result = services.test_connection(fmt, upstream.url, http.credentials_header(upstream))
    if result["success"]:
        health.succeeded(upstream)  # a test after fixing the upstream ends its back-off at once
    return result


class VirtualRegistryAPIView(ManagementView):
    """Base of every endpoint here: the format from the URL, the group's decision from the policy
    (deploy and job tokens are let through to it, unlike the rest of the management API)."""

    def initial(self, request, *args, **kwargs):
        APIView.initial(self, request, *args, **kwargs)
        self.principal = principal_of(request)
        if self.principal.is_anonymous:
            raise Unauthenticated()
        self.fmt = formats.find(kwargs.get("format_name", ""))
        if self.fmt is None or self.fmt.virtual is None:
            raise NotFound("404 Not Found")

    def authorize(self, group, action=None):
        if action is None:
            action = READ if self.request.method in ("GET", "HEAD") else WRITE
        policy.authorize_virtual_registry(self.principal, group, action)

    def top_group(self, ref, action=None):
        group = policy.resolve_group(str(ref))
        if group is None:
            policy.deny_unknown(self.principal, "Group")
        self.authorize(group, action)
        return group

    def load(self, queryset, pk, action=None):
        """A row of this format by id, after the policy allowed `action` on its group."""
        row = queryset.select_related("group").filter(pk=pk, format=self.fmt.name).first()
        if row is None:
            raise NotFound("404 Not Found")
        self.authorize(row.group, action)
        return row

    def data(self):
        data = self.request.data
        if not hasattr(data, "get"):
            raise services.ParameterInvalid("the body must be an object")
        return data

    def handle_exception(self, exc):
        if isinstance(exc, services.ValidationFailed):
            return Response({"message": exc.errors}, status=400)
        if isinstance(exc, services.ParameterInvalid):
            return Response({"error": exc.message}, status=400)
        return super().handle_exception(exc)


# --- registries --------------------------------------------------------------------------------


class GroupRegistriesView(VirtualRegistryAPIView):
    def get(self, request, ref, format_name):
        group = self.top_group(ref)
        registries = VirtualRegistry.objects.filter(group=group, format=self.fmt.name).order_by("id")
        return Response([render_registry(registry) for registry in registries])

    def post(self, request, ref, format_name):
        group = self.top_group(ref)
        registry = services.create_registry(group, self.fmt.name, self.data())
        return Response(render_registry(registry), status=201)


class RegistryView(VirtualRegistryAPIView):
    def get(self, request, format_name, registry_id):
        return Response(render_registry(self.load(VirtualRegistry.objects, registry_id)))

    def patch(self, request, format_name, registry_id):
        registry = self.load(VirtualRegistry.objects, registry_id)
        return Response(render_registry(services.update_registry(registry, self.data())))

    def delete(self, request, format_name, registry_id):
        services.delete_registry(self.load(VirtualRegistry.objects, registry_id))
        return Response(status=204)


class RegistryCacheView(VirtualRegistryAPIView):
    def delete(self, request, format_name, registry_id):
        services.purge_registry_cache(self.load(VirtualRegistry.objects, registry_id))
        return Response(status=204)


# --- upstreams ---------------------------------------------------------------------------------


class GroupUpstreamsView(VirtualRegistryAPIView):
    def get(self, request, ref, format_name):
        group = self.top_group(ref)
        upstreams = Upstream.objects.filter(group=group, format=self.fmt.name).order_by("-updated_at", "-id")
        name = request.query_params.get("upstream_name")
        if name:
            upstreams = upstreams.filter(name__icontains=name)
        return self.paginate(upstreams, render_upstream)

    def post(self, request, ref, format_name):
        group = self.top_group(ref)
        upstream, _ = services.create_remote_upstream(group, self.fmt, self.data())
        return Response(render_upstream(upstream), status=201)


class GroupUpstreamTestView(VirtualRegistryAPIView):
    def post(self, request, ref, format_name):
        self.top_group(ref)
        data = self.data()
        url = services.text_param(data, "url", 1000, required=True)
        username = services.text_param(data, "username", 510) or ""
        password = services.text_param(data, "password", 510) or ""
        auth = http.basic_header(username, password) if username and password else {}
        return Response(services.test_connection(self.fmt, url, auth))


class RegistryUpstreamsView(VirtualRegistryAPIView):
    def get(self, request, format_name, registry_id):
        registry = self.load(VirtualRegistry.objects, registry_id)
        links = RegistryUpstream.objects.filter(registry=registry).select_related("upstream").order_by("position")
        return Response([render_upstream_in(link) for link in links])

    def post(self, request, format_name, registry_id):
        registry = self.load(VirtualRegistry.objects, registry_id)
        upstream, link = services.create_remote_upstream(registry.group, self.fmt, self.data(), registry=registry)
        link.upstream = upstream
        return Response(render_upstream_in(link), status=201)


class UpstreamView(VirtualRegistryAPIView):
    kind = Upstream.Kind.REMOTE

    def upstream(self, upstream_id, action=None):
        return self.load(Upstream.objects.filter(kind=self.kind), upstream_id, action)

    def get(self, request, format_name, upstream_id):
        return Response(render_upstream_with_links(self.upstream(upstream_id)))

    def patch(self, request, format_name, upstream_id):
        upstream = self.upstream(upstream_id)
        if upstream.is_local:
            # Dropping a claimed scope releases its claim: Owners only, as on the claims API.
            may_release = lambda: self.authorize(upstream.group, CLAIMS)  # noqa: E731
            upstream = services.update_local_upstream(upstream, self.fmt, self.data(), may_release)
        else:
            upstream = services.update_remote_upstream(upstream, self.fmt, self.data())
        return Response(render_upstream(upstream))

    def delete(self, request, format_name, upstream_id):
        services.delete_upstream(self.upstream(upstream_id))
        return Response(status=204)


class LocalUpstreamView(UpstreamView):
    kind = Upstream.Kind.LOCAL


class UpstreamTestView(VirtualRegistryAPIView):
    """GET tests the saved settings; POST tests edits (the stored password is reused only for
    the stored URL and username)."""

    def upstream(self, upstream_id):
        return self.load(Upstream.objects, upstream_id, WRITE)

    def get(self, request, format_name, upstream_id):
        return Response(probe_saved_upstream(self.fmt, self.upstream(upstream_id)))

    def post(self, request, format_name, upstream_id):
        upstream = self.upstream(upstream_id)
        if upstream.is_local:
            return Response({"success": True})
        data = self.data()
        url = services.text_param(data, "url", 1000) or upstream.url
        username = services.text_param(data, "username", 510)
        password = services.text_param(data, "password", 510)
        same_target = services.normalize_url(url) == upstream.url and username in (None, upstream.username)
        if password is not None:
            auth = http.basic_header(username or upstream.username, password)
        elif same_target:
            auth = http.credentials_header(upstream)
        else:
            auth = {}
        return Response(services.test_connection(self.fmt, url, auth))


class UpstreamCacheEntriesView(VirtualRegistryAPIView):
    def get(self, request, format_name, upstream_id):
        upstream = self.load(Upstream.objects.filter(kind=Upstream.Kind.REMOTE), upstream_id)
        return self.paginate(cache_entries(upstream, request.query_params.get("search")), render_cache_entry)


class UpstreamCacheView(VirtualRegistryAPIView):
    def delete(self, request, format_name, upstream_id):
        upstream = self.load(Upstream.objects.filter(kind=Upstream.Kind.REMOTE), upstream_id)
        services.purge_upstream_cache(upstream)
        return Response(status=204)


class CacheEntryView(VirtualRegistryAPIView):
    def delete(self, request, format_name, entry_id):
        upstream_id, relative_path = parse_cache_entry_id(entry_id)
        upstream = self.load(Upstream.objects.filter(kind=Upstream.Kind.REMOTE), upstream_id)
        delete_cache_entry(upstream, relative_path)
        return Response(status=204)


# --- rules ---------------------------------------------------------------------------------------


def render_rule(rule):
    return {
        "id": rule.pk,
        "upstream_id": rule.upstream_id,
        "rule_type": rule.rule_type,
        "pattern_type": rule.pattern_type,
        "target": rule.target,
        "pattern": rule.pattern,
        "created_at": timestamp(rule.created_at),
    }


class RulesView(VirtualRegistryAPIView):
    """Allow/deny rules of a remote upstream (Maintainer+)."""

    def upstream(self, upstream_id):
        return self.load(Upstream.objects.filter(kind=Upstream.Kind.REMOTE), upstream_id, WRITE)

    def get(self, request, format_name, upstream_id):
        upstream = self.upstream(upstream_id)
        return Response([render_rule(rule) for rule in upstream.rules.order_by("id")])

    def post(self, request, format_name, upstream_id):
        upstream = self.upstream(upstream_id)
        try:
            fields = rules.check(self.data(), self.fmt.virtual, upstream.rules.count())
        except rules.RuleInvalid as exc:
            raise services.ValidationFailed(exc.errors) from exc
        rule = UpstreamRule.objects.create(upstream=upstream, **fields)
        logger.info("virtual registry rule %s added to upstream %s by %s", rule.pk, upstream.pk, self.principal)
        return Response(render_rule(rule), status=201)


class RuleView(VirtualRegistryAPIView):
    def delete(self, request, format_name, upstream_id, rule_id):
        upstream = self.load(Upstream.objects.filter(kind=Upstream.Kind.REMOTE), upstream_id, WRITE)
        if not UpstreamRule.objects.filter(upstream=upstream, pk=rule_id).delete()[0]:
            raise NotFound("404 Not Found")
        return Response(status=204)


# --- claims ------------------------------------------------------------------------------------


def render_claim(claim):
    return {
        "id": claim.pk,
        "upstream_id": claim.upstream_id,
        "name": claim.name,
        "created_at": timestamp(claim.created_at),
    }


class ClaimsView(VirtualRegistryAPIView):
    """The names a local upstream holds against remote upstreams (Owner)."""

    def get(self, request, format_name, upstream_id):
        upstream = self.load(Upstream.objects.filter(kind=Upstream.Kind.LOCAL), upstream_id, CLAIMS)
        return self.paginate(NameClaim.objects.filter(upstream=upstream).order_by("name", "id"), render_claim)


class ClaimView(VirtualRegistryAPIView):
    def delete(self, request, format_name, upstream_id, claim_id):
        upstream = self.load(Upstream.objects.filter(kind=Upstream.Kind.LOCAL), upstream_id, CLAIMS)
        claim = NameClaim.objects.filter(upstream=upstream, pk=claim_id).first()
        if claim is None:
            raise NotFound("404 Not Found")
        claims.release(upstream, [claim], "released through the claims API")
        return Response(status=204)


# --- local upstreams and order -----------------------------------------------------------------


class RegistryLocalUpstreamsView(VirtualRegistryAPIView):
    def post(self, request, format_name, registry_id):
        registry = self.load(VirtualRegistry.objects, registry_id)
        upstream, link = services.create_local_upstream(registry, self.data(), local_target_check(self.principal))
        link.upstream = upstream
        return Response(render_upstream_in(link), status=201)


def local_target_check(principal):
    """The check a new local upstream's target passes (services.create_local_upstream): the caller
    may pull from the project or group, else 403 (GitLab's answer here), whatever the reason."""

    def check(target):
        try:
            if hasattr(target, "traversal_ids"):
                policy.authorize_group(principal, target, roles.READ_PACKAGE)
            else:
                policy.authorize(principal, target, roles.READ_PACKAGE)
        except RegistryError as exc:
            raise Forbidden() from exc

    return check


class RegistryUpstreamsLinkView(VirtualRegistryAPIView):
    def post(self, request, format_name):
        data = self.data()
        registry_id = services.integer_param(data, "registry_id", 1)
        upstream_id = services.integer_param(data, "upstream_id", 1)
        upstream_id = upstream_id or services.integer_param(data, "local_upstream_id", 1)
        if registry_id is None or upstream_id is None:
            raise services.ParameterInvalid("registry_id, upstream_id are missing")
        registry = self.load(VirtualRegistry.objects, registry_id)
        upstream = Upstream.objects.filter(pk=upstream_id, group=registry.group, format=self.fmt.name).first()
        if upstream is None:
            raise NotFound("404 Not Found")
        link = services.link_upstream(registry, upstream)
        return Response(render_link(link), status=201)


class RegistryUpstreamLinkView(VirtualRegistryAPIView):
    def link(self, link_id):
        link = (
            RegistryUpstream.objects.select_related("registry__group")
            .filter(pk=link_id, registry__format=self.fmt.name)
            .first()
        )
        if link is None:
            raise NotFound("404 Not Found")
        self.authorize(link.registry.group)
        return link

    def patch(self, request, format_name, link_id):
        link = self.link(link_id)
        position = services.integer_param(self.data(), "position", 1)
        if position is None:
            raise services.ParameterInvalid("position is missing")
        return Response(render_link(services.move(link, position)))

    def delete(self, request, format_name, link_id):
        services.unlink(self.link(link_id))
        return Response(status=204)


# --- cleanup policy ----------------------------------------------------------------------------------


def render_policy(policy):
    return {
        "group_id": policy.group_id,
        "next_run_at": timestamp(policy.next_run_at),
        "last_run_at": timestamp(policy.last_run_at),
        "last_run_deleted_size": policy.last_run_deleted_size,
        "last_run_deleted_entries_count": policy.last_run_deleted_entries_count,
        "keep_n_days_after_download": policy.keep_n_days_after_download,
        "status": policy.status,
        "cadence": policy.cadence,
        "enabled": policy.enabled,
        "failure_message": policy.failure_message or None,
        "last_run_detailed_metrics": policy.last_run_detailed_metrics,
        "created_at": timestamp(policy.created_at),
        "updated_at": timestamp(policy.updated_at),
    }


class CleanupPolicyView(VirtualRegistryAPIView):
    """`/groups/:id/-/virtual_registries/cleanup/policy`: one per top-level group (Owner)."""

    def initial(self, request, *args, **kwargs):
        APIView.initial(self, request, *args, **kwargs)
        self.principal = principal_of(request)
        if self.principal.is_anonymous:
            raise Unauthenticated()
        self.group = self.top_group(kwargs["ref"], roles.ADMIN_VIRTUAL_REGISTRY_CLEANUP)

    def existing(self):
        policy = VirtualCleanupPolicy.objects.filter(group=self.group).first()
        if policy is None:
            raise NotFound("404 Not Found")
        return policy

    def clean(self, partial):
        try:
            return cleanup.clean(self.data(), partial)
        except cleanup.PolicyInvalid as exc:
            raise services.ParameterInvalid(str(exc)) from exc

    def get(self, request, ref):
        return Response(render_policy(self.existing()))

    def post(self, request, ref):
        values = self.clean(partial=False)
        if VirtualCleanupPolicy.objects.filter(group=self.group).exists():
            raise services.ValidationFailed({"group": ["has already been taken"]})
        policy = cleanup.save(VirtualCleanupPolicy(group=self.group), values)
        return Response(render_policy(policy), status=201)

    def patch(self, request, ref):
        policy = self.existing()
        return Response(render_policy(cleanup.save(policy, self.clean(partial=True))))

    def delete(self, request, ref):
        self.existing().delete()
        return Response(status=204)
