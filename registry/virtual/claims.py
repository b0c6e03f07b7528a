"""Name claims (spec §4.2): a name a local upstream's target holds hides every remote version of
that name in the registries using the upstream, also after the local package is deleted (the
dependency-confusion rule: a deleted private name must not resolve from a public registry).

Claims are written by the write service on every publish into a project a local upstream covers
(`record_publish`), and backfilled from the target's packages when the local upstream is created.
Namespace claims (a scope, an id prefix, a group: the format's VirtualSupport.scope_claims
field) are set on the local upstream: each one added records the audit event
`virtual_registry_claim_added` (`add_scope_claims`). A claim leaves only through `release`,
which records the audit event `virtual_registry_claim_released`.
"""

from django.db import transaction
from django.db.models import Q

from registry.models import Package
from registry.virtual import changes, events
from registry.virtual.models import NameClaim, Upstream


def claiming(local_upstreams, keys):
    """Those of `local_upstreams` that hold a claim in `keys` (VirtualSupport.claim_keys), in the
    given order."""
    if not local_upstreams:
        return []
    claims = NameClaim.objects.filter(upstream__in=local_upstreams, name__in=keys)
    ids = set(claims.values_list("upstream_id", flat=True))
    return [upstream for upstream in local_upstreams if upstream.pk in ids]


CLAIM_QUERY_CHUNK = 5000


def claimed(local_upstreams, keys_by_name):
    """The names of `keys_by_name` ({name: its claim keys, VirtualSupport.claim_keys}) that one of
    `local_upstreams` claims: for each name, what `claiming` decides for it, for many names in a
    few queries."""
    if not local_upstreams or not keys_by_name:
        return set()
    keys = sorted({key for name_keys in keys_by_name.values() for key in name_keys})
    held = set()
    for start in range(0, len(keys), CLAIM_QUERY_CHUNK):
        chunk = keys[start : start + CLAIM_QUERY_CHUNK]
        held.update(
            NameClaim.objects.filter(upstream__in=local_upstreams, name__in=chunk).values_list("name", flat=True)
        )
    return {name for name, name_keys in keys_by_name.items() if held.intersection(name_keys)}


def _target_packages(upstream):
    packages = Package.objects.filter(format=upstream.format)
    if upstream.local_project_id:
        return packages.filter(project_id=upstream.local_project_id)
    path = upstream.local_group.full_path
    return packages.filter(Q(project__group_id=upstream.local_group_id) | Q(project__full_path__startswith=f"{path}/"))


def backfill(upstream, implicit=()):
    """Claims for every name the new local upstream's target holds, and the format's implicit
    ones (VirtualSupport.implicit_claims)."""
    names = set(_target_packages(upstream).values_list("normalized_name", flat=True)) | set(implicit)
    NameClaim.objects.bulk_create(
        [NameClaim(upstream=upstream, format=upstream.format, name=name) for name in names],
        ignore_conflicts=True,
    )
    changes.upstream_changed(upstream)


def record_publish(project, format_name, normalized_name):
    """Claim `normalized_name` for every local upstream whose target covers `project`. (The
    virtual registries' replayed answers for that name key on its package epoch, which the
    publish changes: registry.virtual.changes.)"""
    covering = Upstream.objects.filter(kind=Upstream.Kind.LOCAL, format=format_name).filter(
        Q(local_project_id=project.pk) | Q(local_group_id__in=project.group_ids)
    )
    NameClaim.objects.bulk_create(
        [NameClaim(upstream=upstream, format=format_name, name=normalized_name) for upstream in covering],
        ignore_conflicts=True,
    )


def release(upstream, claims, reason):
    """Delete `claims` (NameClaims of `upstream`), one audit event each, in one transaction."""
    with transaction.atomic():
        for claim in claims:
            claim.delete()
            events.claim_released(upstream, claim, reason)
        changes.upstream_changed(upstream)


def add_scope_claims(upstream, scopes, reason):
    """Claim the namespaces `scopes` for `upstream`; one audit event for each it did not hold."""
    if not scopes:
        return
    with transaction.atomic():
        held = set(NameClaim.objects.filter(upstream=upstream, name__in=scopes).values_list("name", flat=True))
        new = [scope for scope in scopes if scope not in held]
        NameClaim.objects.bulk_create(
            [NameClaim(upstream=upstream, format=upstream.format, name=scope) for scope in new],
            ignore_conflicts=True,
        )
        changes.upstream_changed(upstream)  # bulk_create sends no signal
        for claim in NameClaim.objects.filter(upstream=upstream, name__in=new).order_by("name"):
            events.claim_added(upstream, claim, reason)


def scope_claims(upstream, support):
    """The scope claims `upstream` holds, sorted."""
    names = NameClaim.objects.filter(upstream=upstream).values_list("name", flat=True)
    return sorted(name for name in names if support.is_scope_claim(name))


def set_scope_claims(upstream, support, scopes):
    """Make `scopes` exactly the scope claims of `upstream`: the new ones claimed, the dropped
    ones released."""
    with transaction.atomic():
        held = [claim for claim in NameClaim.objects.filter(upstream=upstream) if support.is_scope_claim(claim.name)]
        dropped = [claim for claim in held if claim.name not in scopes]
        release(upstream, dropped, f"removed from {support.scope_claims}")
        add_scope_claims(upstream, scopes, f"added to {support.scope_claims}")
