"""The audit events of virtual registries' client traffic (spec §5.4, §5.5; GitLab records the
denial as `…_upstream_artifact_denied`), written through accounts.audit about the registry's
top-level group, with the caller as actor (accounts.acting):

- `virtual_registry_integrity_failure`: an upstream's bytes did not match the digest its
  metadata or checksum promised (upstream, path, algorithm, expected and actual digests);
- `virtual_registry_upstream_artifact_denied`: upstream rules left no upstream for a request,
  or no version of the document it asked for. At most one per registry, path and caller a
  minute, so a client retrying in a loop does not flood the trail.

and of management changes that weaken the dependency-confusion rule (spec §4.2), written by
registry.virtual.services with the caller of the page or API as actor:

- `virtual_registry_local_upstream_unlinked`: a local upstream left a registry (its names no
  longer hide remote ones there);
- `virtual_registry_local_upstream_deleted`: a local upstream was deleted, with the number of
  claims that went with it.

The details name the registry, the upstream and its target (a project or group path); a local
upstream holds no secret. Claim releases are recorded where claims are released
(registry.virtual.claims).
"""

import hashlib

from django.core.cache import caches

from accounts import acting, audit

DENIAL_INTERVAL = 60


def integrity_failed(upstream, path, algorithm, expected, actual):
    audit.record(
        "virtual_registry_integrity_failure",
        upstream.group,
        target_type="Upstream",
        target_id=upstream.pk,
        target_details=path.relative_path,
        details={
            "upstream_id": upstream.pk,
            "upstream_name": upstream.name,
            "path": path.relative_path[:1024],
            "algorithm": algorithm,
            "expected": expected,
            "actual": actual,
        },
    )


def rule_denied(registry, path, upstream_ids):
    record = acting.current()
    who = getattr(getattr(record, "principal", None), "user", None)
    key = f"{registry.pk}:{path.cache_key}:{getattr(who, 'pk', '')}"
    if not caches["default"].add(f"virtual-denied:{hashlib.sha256(key.encode()).hexdigest()}", 1, DENIAL_INTERVAL):
        return
    audit.record(
        "virtual_registry_upstream_artifact_denied",
        registry.group,
        target_type="VirtualRegistry",
        target_id=registry.pk,
        target_details=path.relative_path,
        details={"registry_id": registry.pk, "path": path.relative_path[:1024], "upstream_ids": list(upstream_ids)},
    )


def _local_target(upstream):
    if upstream.local_project_id:
        return {"local_project_id": upstream.local_project_id, "local_project": upstream.local_project.full_path}
    return {"local_group_id": upstream.local_group_id, "local_group": upstream.local_group.full_path}


def local_upstream_unlinked(registry, upstream, reason):
    audit.record(
        "virtual_registry_local_upstream_unlinked",
        registry.group,
        target_type="Upstream",
        target_id=upstream.pk,
        target_details=upstream.name,
        details={
            "registry_id": registry.pk,
            "registry_name": registry.name,
            "upstream_id": upstream.pk,
            "upstream_name": upstream.name,
            **_local_target(upstream),
            "reason": reason,
        },
    )


def local_upstream_deleted(upstream, claims_count):
    audit.record(
        "virtual_registry_local_upstream_deleted",
        upstream.group,
        target_type="Upstream",
        target_id=upstream.pk,
        target_details=upstream.name,
        details={
            "upstream_id": upstream.pk,
            "upstream_name": upstream.name,
            **_local_target(upstream),
            "claims_count": claims_count,
        },
    )
