"""The epoch of each virtual registry (registry.epochs.virtual_registry), changed by every write
that can change one of its answers, so that replayed metadata answers (registry.response_cache)
never outlive what they were built from.

What a registry's metadata answer depends on, and who changes its epoch:

- rows saved or deleted (`connect`: model signals, whoever writes them: the services, the API,
  the pages, a cascade): the registry itself (options, retain_removed_versions), its links to
  upstreams, an upstream's settings, an upstream's rules: that registry, or every registry that
  uses the upstream;
- writes that send no signal (queryset updates, bulk creates), changed where they are made: the
  upstreams' order (registry.virtual.services._renumber), name claims (registry.virtual.claims),
  and the remote cache: an entry stored, replaced, revalidated (304) or gone (upstream 404 in
  registry.virtual.resolver, purge, deletion through the API, cleanup policy): every registry
  that uses the upstream;
- the packages of local upstreams: not here. An answer also keys on the epoch of the package
  name it answers for (registry.epochs.package), which every package write changes, whichever
  project or group it is in.

Answers that depend on something that changes with time alone are never replayed, or only until
that time (registry.virtual.views.memoized_answer): a cached upstream document until its
metadata validity ends, nothing served stale, nothing that a negative cache entry decided.

Changed like package epochs: now and after commit, never refusing the write when the epochs
cannot be changed (they are recorded and changed later, registry.epochs.bump).
"""

from django.db.models.signals import post_delete, post_save

from registry import epochs
from registry.virtual.models import RegistryUpstream, Upstream, UpstreamRule, VirtualRegistry


def registries_changed(registry_ids):
    """New epochs for these virtual registries (ids)."""
    keys = sorted({epochs.virtual_registry(pk) for pk in registry_ids})
    if keys:
        epochs.bump(keys, required=False)


def upstreams_changed(upstream_ids):
    """New epochs for every virtual registry that uses one of these upstreams (ids). (A deleted
    upstream's registries change with its links, which go first.)"""
    upstream_ids = list(upstream_ids)
    if not upstream_ids:
        return
    registries_changed(
        RegistryUpstream.objects.filter(upstream_id__in=upstream_ids).values_list("registry_id", flat=True)
    )


def upstream_changed(upstream):
    upstreams_changed([upstream.pk if hasattr(upstream, "pk") else upstream])


def _registry_written(sender, instance, raw=False, **kwargs):
    if not raw:
        registries_changed([instance.pk])


def _link_written(sender, instance, raw=False, **kwargs):
    if not raw:
        registries_changed([instance.registry_id])


def _upstream_written(sender, instance, raw=False, **kwargs):
    # A deleted upstream's links go first (a cascade), each changing its registry.
    if not raw:
        upstreams_changed([instance.pk])


def _rule_written(sender, instance, raw=False, **kwargs):
    if not raw:
        upstreams_changed([instance.upstream_id])


def connect():
    for model, receiver in (
        (VirtualRegistry, _registry_written),
        (RegistryUpstream, _link_written),
        (Upstream, _upstream_written),
        (UpstreamRule, _rule_written),
    ):
        post_save.connect(receiver, sender=model, dispatch_uid=f"virtual-changes-saved-{model.__name__}")
        post_delete.connect(receiver, sender=model, dispatch_uid=f"virtual-changes-deleted-{model.__name__}")
