"""Name claims (spec §4.2): a name a local upstream's target holds hides every remote version of
that name in the registries using the upstream, also after the local package is deleted (the
dependency-confusion rule: a deleted private name must not resolve from a public registry).

Claims are written by the write service on every publish into a project a local upstream covers
(`record_publish`), and backfilled from the target's packages when the local upstream is created.
"""

from django.db.models import Q

from registry.models import Package
from registry.virtual.models import NameClaim, Upstream


def claiming(local_upstreams, keys):
    """Those of `local_upstreams` that hold a claim in `keys` (VirtualSupport.claim_keys), in the
    given order."""
    if not local_upstreams:
        return []
    claims = NameClaim.objects.filter(upstream__in=local_upstreams, name__in=keys)
    ids = set(claims.values_list("upstream_id", flat=True))
    return [upstream for upstream in local_upstreams if upstream.pk in ids]


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


def record_publish(project, format_name, normalized_name):
    """Claim `normalized_name` for every local upstream whose target covers `project`."""
    covering = Upstream.objects.filter(kind=Upstream.Kind.LOCAL, format=format_name).filter(
        Q(local_project_id=project.pk) | Q(local_group_id__in=project.group_ids)
    )
    NameClaim.objects.bulk_create(
        [NameClaim(upstream=upstream, format=format_name, name=normalized_name) for upstream in covering],
        ignore_conflicts=True,
    )


MAX_PATTERNS = 20


def patterns(upstream, support):
    """The claims of `upstream` an owner set by pattern (VirtualSupport.claim_patterns_field)."""
    names = NameClaim.objects.filter(upstream=upstream).values_list("name", flat=True)
    return sorted(name for name in names if support.is_pattern_claim(name))


def set_patterns(upstream, claims, support):
    """Make `claims` (patterns already checked) the pattern claims of `upstream`."""
    current = set(patterns(upstream, support))
    wanted = set(claims)
    NameClaim.objects.filter(upstream=upstream, name__in=current - wanted).delete()
    NameClaim.objects.bulk_create(
        [NameClaim(upstream=upstream, format=upstream.format, name=name) for name in wanted - current],
        ignore_conflicts=True,
    )
