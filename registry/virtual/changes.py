"""The epoch of each virtual registry (registry.epochs.virtual_registry), changed by every write
that can change one of its answers, so that replayed metadata answers (registry.response_cache)
never outlive what they were built from.

What a registry's metadata answer depends on, and who changes its epoch:

- the registry row (options, retain_removed_versions, deletion): registry.virtual.services;
- its upstreams and their order (link, move, unlink), an upstream's settings or deletion, its
  rules (api.virtual_registries) and name claims (registry.virtual.claims): every registry that
  uses the upstream;
- the remote cache: an entry stored, replaced, revalidated (304) or gone (upstream 404, purge,
  deletion through the API, cleanup policy): every registry that uses the upstream;
- the packages of local upstreams: not here. An answer also keys on the epoch of the package
  name it answers for (registry.epochs.package), which every package write changes, whichever
  project or group it is in.

Answers that depend on something that changes with time alone are never replayed, or only until
that time (registry.virtual.views.memoized_answer): a cached upstream document until its
metadata validity ends, nothing served stale, nothing that a negative cache entry decided.

Changed like package epochs: now and after commit, never refusing the write when the epochs
cannot be changed (they are recorded and changed later, registry.epochs.bump).
"""

from registry import epochs
from registry.virtual.models import RegistryUpstream


def registries_changed(registry_ids):
    """New epochs for these virtual registries (ids)."""
    keys = sorted({epochs.virtual_registry(pk) for pk in registry_ids})
    if keys:
        epochs.bump(keys, required=False)


def registry_changed(registry):
    registries_changed([registry.pk])


def upstreams_changed(upstream_ids):
    """New epochs for every virtual registry that uses one of these upstreams (ids). Call it
    before the links go (an upstream's deletion)."""
    upstream_ids = list(upstream_ids)
    if not upstream_ids:
        return
    registries_changed(
        RegistryUpstream.objects.filter(upstream_id__in=upstream_ids).values_list("registry_id", flat=True)
    )


def upstream_changed(upstream):
    upstreams_changed([upstream.pk if hasattr(upstream, "pk") else upstream])
