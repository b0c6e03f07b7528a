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
upstream holds no secret. Claim releases and additions (`virtual_registry_claim_released`,
`virtual_registry_claim_added`) are recorded here too, called where claims change
(registry.virtual.claims).

Every other management change (spec §5.5), also written by registry.virtual.services in the
change's transaction, so the page and the API record alike and a refused change records nothing:

- `virtual_registry_created`, `virtual_registry_updated` (each changed field: `change`, `from`,
  `to`), `virtual_registry_deleted`;
- `virtual_registry_upstream_created`, `_updated`, `_deleted` for remote upstreams and
  `virtual_registry_local_upstream_created`, `_updated` (and `_deleted` above) for local ones;
  an update lists its changed fields with their values (none of them is secret);
- `virtual_registry_upstream_credentials_changed`: a remote upstream's `username`, `password`
  or `auth_token` was set, changed or cleared. The event names the fields and what happened to
  each, never a value (not a prefix, not a digest), the username included. A new upstream's
  credentials are named (never shown) in its created event;
- `virtual_registry_upstream_rule_created`, `virtual_registry_upstream_rule_deleted`;
- `virtual_registry_upstream_position_changed`: an upstream moved in a registry's order;
  `virtual_registry_upstream_linked` (`virtual_registry_local_upstream_linked`): an existing
  upstream added to a registry; `virtual_registry_upstream_unlinked`: a remote upstream left one;
- `virtual_registry_cache_purged`: a registry's or an upstream's cache emptied, with the number
  of entries; `virtual_registry_cache_entry_deleted`: one entry.
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


# --- management changes (spec §5.5) ---------------------------------------------------------------

CREDENTIAL_FIELDS = ("username", "password", "auth_token")


def _registry(registry):
    return {"registry_id": registry.pk, "registry_name": registry.name}


def _upstream(upstream):
    details = {"upstream_id": upstream.pk, "upstream_name": upstream.name, "upstream_type": upstream.kind}
    if upstream.is_local:
        details.update(_local_target(upstream))
    else:
        details["url"] = upstream.url  # never holds credentials (registry.virtual.addresses)
    return details


def _record_registry(action, registry, **details):
    audit.record(
        action,
        registry.group,
        target_type="VirtualRegistry",
        target_id=registry.pk,
        target_details=registry.name,
        details={**_registry(registry), **details},
    )


def _record_upstream(action, upstream, **details):
    audit.record(
        action,
        upstream.group,
        target_type="Upstream",
        target_id=upstream.pk,
        target_details=upstream.name,
        details={**_upstream(upstream), **details},
    )


def registry_created(registry, settings):
    _record_registry("virtual_registry_created", registry, format=registry.format, settings=settings)


def registry_updated(registry, changes):
    """`changes`: [{"change", "from", "to"}] (accounts.audit.changes); nothing when empty."""
    if changes:
        _record_registry("virtual_registry_updated", registry, changes=changes)


def registry_deleted(registry, upstream_ids):
    """`upstream_ids`: the upstreams deleted with it (no other registry used them)."""
    _record_registry("virtual_registry_deleted", registry, format=registry.format, deleted_upstream_ids=upstream_ids)


def _upstream_action(upstream, verb):
    return f"virtual_registry_{'local_' if upstream.is_local else ''}upstream_{verb}"


def upstream_created(upstream, registry=None, credentials=()):
    details = {"registry_id": registry.pk if registry is not None else None}
    if not upstream.is_local:
        details["credentials_set"] = [name for name in CREDENTIAL_FIELDS if name in credentials]
        details["file_hosts"] = list(upstream.file_hosts)
    _record_upstream(_upstream_action(upstream, "created"), upstream, **details)


def upstream_updated(upstream, changes):
    """`changes`: [{"change", "from", "to"}] of fields that hold no secret; nothing when empty."""
    if changes:
        _record_upstream(_upstream_action(upstream, "updated"), upstream, changes=changes)


def remote_upstream_deleted(upstream):
    _record_upstream("virtual_registry_upstream_deleted", upstream)


def credentials_changed(upstream, what):
    """`what`: {field: "set" | "changed" | "cleared"} for the fields of CREDENTIAL_FIELDS that
    changed. Never a value."""
    if what:
        credentials = [{"change": name, "action": what[name]} for name in CREDENTIAL_FIELDS if name in what]
        _record_upstream("virtual_registry_upstream_credentials_changed", upstream, credentials=credentials)


def _rule(rule):
    return {
        "rule_id": rule.pk,
        "rule_type": rule.rule_type,
        "pattern_type": rule.pattern_type,
        "target": rule.target,
        "pattern": rule.pattern,
    }


def upstream_linked(registry, upstream, position):
    _record_upstream(_upstream_action(upstream, "linked"), upstream, **_registry(registry), position=position)


def remote_upstream_unlinked(registry, upstream, reason):
    _record_upstream("virtual_registry_upstream_unlinked", upstream, **_registry(registry), reason=reason)


def rule_created(upstream, rule):
    _record_upstream("virtual_registry_upstream_rule_created", upstream, **_rule(rule))


def rule_deleted(upstream, rule):
    _record_upstream("virtual_registry_upstream_rule_deleted", upstream, **_rule(rule))


def position_changed(link, before, after):
    if before != after:
        _record_upstream(
            "virtual_registry_upstream_position_changed",
            link.upstream,
            **_registry(link.registry),
            **{"change": "position", "from": before, "to": after},
        )


def registry_cache_purged(registry, upstream_ids, entries_count):
    _record_registry("virtual_registry_cache_purged", registry, upstream_ids=upstream_ids, entries_count=entries_count)


def upstream_cache_purged(upstream, entries_count):
    _record_upstream("virtual_registry_cache_purged", upstream, entries_count=entries_count)


def cache_entry_deleted(upstream, relative_path):
    audit.record(
        "virtual_registry_cache_entry_deleted",
        upstream.group,
        target_type="Upstream",
        target_id=upstream.pk,
        target_details=relative_path[:1024],
        details={**_upstream(upstream), "path": relative_path[:1024]},
    )


def claim_added(upstream, claim, reason):
    _claim_event("virtual_registry_claim_added", upstream, claim, reason)


def claim_released(upstream, claim, reason):
    _claim_event("virtual_registry_claim_released", upstream, claim, reason)


def _claim_event(action, upstream, claim, reason):
    audit.record(
        action,
        upstream.group,
        target_type="NameClaim",
        target_id=claim.pk,
        target_details=claim.name,
        details={"upstream_id": upstream.pk, "upstream_name": upstream.name, "claim": claim.name, "reason": reason},
    )
