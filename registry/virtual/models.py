"""Virtual registries: one URL per top-level group and format that serves, in order, the
group's own packages (local upstreams) and cached copies of other registries (remote upstreams).

- VirtualRegistry: a group's endpoint for one format (at most MAX_REGISTRIES per group and format).
- Upstream: remote (a URL, optional credentials, encrypted at rest by registry.secrets) or
  local (a project or group of this instance). Belongs to the group; several registries may use it.
- RegistryUpstream: an upstream's position (1..MAX_UPSTREAMS) in one registry; order is priority.
- CacheEntry: one upstream document or file stored as a Blob, keyed (upstream, relative path).
- NegativeEntry: "the upstream said 404 for this path", until `expires_at`.
- NameClaim: a name a local upstream holds (or held): remote versions of it are never served.
- OriginPin: the upstream a registry served one unit of files from (one version of a package,
  VirtualSupport.pin_unit): later files of the unit come from that upstream only (spec §4.3).

Spec: ../shared/spec/virtual-registries.md §0. Nothing here names a format: `format` is a
registered format's name (registry.formats) whose `virtual` support is set.
"""

import hashlib

from django.db import models
from django.db.models import Q

from accounts.models import Group, Project
from registry.models import Blob

MAX_REGISTRIES = 20
MAX_UPSTREAMS = 20


def path_digest(relative_path):
    """The indexed key of a relative path (paths may be up to 5000 characters)."""
    return hashlib.sha256(relative_path.encode()).hexdigest()


class VirtualRegistry(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="virtual_registries")
    format = models.CharField(max_length=16)
    name = models.CharField(max_length=255)
    description = models.CharField(max_length=1024, blank=True)
    # Serve cached files of versions their upstream's metadata no longer lists (spec §3.2.3):
    # off, such a file is 404 (a version pulled upstream, say for malware, is not served).
    retain_removed_versions = models.BooleanField(default=False)
    # The format's own registry settings (VirtualSupport.registry_options), by name.
    options = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "format", "name"], name="virtual_registry_unique_name"),
        ]

    def __str__(self):
        return f"{self.format} virtual registry {self.name!r}"


class Upstream(models.Model):
    class Kind(models.TextChoices):
        REMOTE = "remote"
        LOCAL = "local"

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="virtual_upstreams")
    format = models.CharField(max_length=16)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=255)
    description = models.CharField(max_length=1024, blank=True)
    # Remote: the repository root, and credentials (secrets encrypted, registry.secrets).
    url = models.CharField(max_length=255, blank=True)
    username = models.CharField(max_length=510, blank=True)
    password_encrypted = models.TextField(blank=True)
    auth_token_encrypted = models.TextField(blank=True)
    # Other hosts (`host` or `host:port`) the upstream's metadata may place files on (spec §5.1,
    # a public index's separate file host, say); never sent the upstream's credentials.
    file_hosts = models.JSONField(default=list, blank=True)
    # Local: exactly one of them.
    local_project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    local_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    cache_validity_hours = models.PositiveIntegerField(default=24)
    metadata_cache_validity_hours = models.PositiveIntegerField(default=24)
    negative_cache_minutes = models.PositiveIntegerField(default=10)
    # Health breaker (registry.virtual.health).
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=255, blank=True)
    health_checked_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="remote", local_project__isnull=True, local_group__isnull=True)
                | Q(kind="local", local_project__isnull=False, local_group__isnull=True)
                | Q(kind="local", local_project__isnull=True, local_group__isnull=False),
                name="upstream_remote_or_one_local_target",
            ),
        ]

    def __str__(self):
        return f"{self.kind} upstream {self.name!r}"

    @property
    def is_local(self):
        return self.kind == self.Kind.LOCAL

    @property
    def has_credentials(self):
        return bool(self.password_encrypted or self.auth_token_encrypted)


class RegistryUpstream(models.Model):
    registry = models.ForeignKey(VirtualRegistry, on_delete=models.CASCADE, related_name="registry_upstreams")
    upstream = models.ForeignKey(Upstream, on_delete=models.CASCADE, related_name="registry_upstreams")
    position = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["registry", "upstream"], name="registry_upstream_once"),
            models.UniqueConstraint(
                fields=["registry", "position"],
                name="registry_upstream_unique_position",
                deferrable=models.Deferrable.DEFERRED,
            ),
        ]
        ordering = ["position"]

    def __str__(self):
        return f"{self.upstream} at {self.position} in {self.registry}"


class CacheEntry(models.Model):
    class Status(models.TextChoices):
        DEFAULT = "default"
        PENDING_DESTRUCTION = "pending_destruction"

    upstream = models.ForeignKey(Upstream, on_delete=models.CASCADE, related_name="cache_entries")
    relative_path = models.TextField()
    path_digest = models.CharField(max_length=64)
    kind = models.CharField(max_length=16)  # registry.formats.VirtualPath kinds
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="cache_entries")
    content_type = models.CharField(max_length=255, blank=True)
    upstream_etag = models.CharField(max_length=255, blank=True)
    upstream_last_modified = models.CharField(max_length=64, blank=True)
    upstream_checked_at = models.DateTimeField()
    origin_url = models.TextField(blank=True)
    verified = models.BooleanField(default=False)
    downloads_count = models.PositiveBigIntegerField(default=0)
    downloaded_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.DEFAULT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["upstream", "path_digest"],
                condition=Q(status="default"),
                name="cache_entry_unique_live_path",
            ),
        ]

    def __str__(self):
        return f"cache entry {self.relative_path} of {self.upstream}"


class NegativeEntry(models.Model):
    upstream = models.ForeignKey(Upstream, on_delete=models.CASCADE, related_name="negative_entries")
    path_digest = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["upstream", "path_digest"], name="negative_entry_unique_path"),
        ]


class NameClaim(models.Model):
    """A normalized name a local upstream's target holds or held: it hides the name's remote
    versions in every registry using that upstream, also after the local package is deleted."""

    upstream = models.ForeignKey(Upstream, on_delete=models.CASCADE, related_name="claims")
    format = models.CharField(max_length=16)
    name = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["upstream", "name"], name="name_claim_once")]


class OriginPin(models.Model):
    """The upstream a registry served a unit of files from first (VirtualSupport.pin_unit): the
    unit's other files come only from it, so one version never mixes files of two origins."""

    registry = models.ForeignKey(VirtualRegistry, on_delete=models.CASCADE, related_name="pins")
    unit_digest = models.CharField(max_length=64)
    unit = models.TextField()
    upstream = models.ForeignKey(Upstream, on_delete=models.CASCADE, related_name="pins")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registry", "unit_digest"], name="origin_pin_once")]


class VirtualCleanupPolicy(models.Model):
    """One per top-level group, every format (spec §1.8): cache entries not downloaded (else not
    created) for `keep_n_days_after_download` days are deleted every `cadence` days."""

    CADENCES = (1, 7, 14, 30, 90)

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="virtual_cleanup_policy")
    enabled = models.BooleanField(default=False)
    keep_n_days_after_download = models.PositiveSmallIntegerField(default=30)
    cadence = models.PositiveSmallIntegerField(default=7)
    status = models.CharField(max_length=16, default="scheduled")
    failure_message = models.CharField(max_length=255, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_deleted_size = models.BigIntegerField(default=0)
    last_run_deleted_entries_count = models.PositiveIntegerField(default=0)
    last_run_detailed_metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)


class UpstreamRule(models.Model):
    """An allow or deny rule of a remote upstream (spec §1.9): any matching deny skips the
    upstream for a request; when it has allow rules, one of them must match."""

    MAX_PER_UPSTREAM = 20

    class RuleType(models.TextChoices):
        ALLOW = "allow"
        DENY = "deny"

    class PatternType(models.TextChoices):
        WILDCARD = "wildcard"
        REGEX = "regex"

    upstream = models.ForeignKey(Upstream, on_delete=models.CASCADE, related_name="rules")
    rule_type = models.CharField(max_length=8, choices=RuleType.choices)
    pattern_type = models.CharField(max_length=8, choices=PatternType.choices)
    target = models.CharField(max_length=32)
    pattern = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
