"""Cleanup policies: what a project's policy removes, computed over querysets.

A policy has five rules. `plan(policy)` turns them into a `Plan` (version ids and file ids);
`registry.tasks.apply_cleanup_policy` marks those pending destruction in bounded batches and
the purge task removes rows and unreferenced blobs. A dry run is the same plan, described.

Semantics (deliberately simple):

* Only *live* rows are considered: versions not `pending_destruction` and not `processing`
  (something still being processed is never cleaned up); files in `default` status.
* A package that a protection rule covers (registry.protection) is never touched: none of its
  versions or files is removed, whatever the rules below say; a dry run lists what the policy
  would otherwise have removed from it under `protected`.
* `name_regex_keep` always protects: a version whose package name or version string it
  fully matches is never removed, and neither are its duplicate files.
* Version rules. Each of these that is set is one filter; a version is removed when it
  passes **all** filters that are set (an "and"), and nothing is removed by them when none
  is set:
    - `keep_n_versions = N` (N >= 1): the version is not among the N newest live versions of
      its package (by created_at, then id). Protected versions still count among the N.
    - `older_than_days = D` (D >= 1): the version was created more than D days ago.
    - `name_regex_delete`: the package name fully matches it.
  So `name_regex_delete` alone removes every version of the matching packages, and with
  `keep_n_versions` it limits that rule to the matching packages.
* `keep_n_duplicated_package_files = N` ("all" disables it): in every live version that the
  version rules do not already remove, for each file name with more than N live files, all
  but the N newest (by id) are removed. Unique file names are never duplicates.

Regular expressions are Python's `re`, anchored (fullmatch), at most 255 characters.
"""

import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from accounts import audit
from registry import protection
from registry.models import CleanupPolicy, Package, PackageFile, PackageVersion, Status

MAX_KEEP_N_VERSIONS = 10_000
MAX_OLDER_THAN_DAYS = 36_500
FIELDS = (
    "keep_n_duplicated_package_files",
    "keep_n_versions",
    "older_than_days",
    "name_regex_keep",
    "name_regex_delete",
)


class PolicyError(ValueError):
    """An invalid policy field; the message is shown to the user as is."""


@dataclass
class Plan:
    version_ids: list = field(default_factory=list)
    file_ids: list = field(default_factory=list)
    # Versions the policy would have removed (or removed files of) but a protection rule keeps.
    protected_version_ids: list = field(default_factory=list)

    def __bool__(self):
        return bool(self.version_ids or self.file_ids)


# --- validation ---------------------------------------------------------------------------


def _int_or_none(name, value, maximum):
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise PolicyError(f"{name} must be an integer")
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise PolicyError(f"{name} must be an integer")
        value = int(value.strip())
    if not isinstance(value, int):
        raise PolicyError(f"{name} must be an integer")
    if value < 1 or value > maximum:
        raise PolicyError(f"{name} must be between 1 and {maximum}")
    return value


def _regex(name, value):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PolicyError(f"{name} must be a string")
    if len(value) > 255:
        raise PolicyError(f"{name} is too long (maximum is 255 characters)")
    try:
        re.compile(value)
    except re.error as exc:
        raise PolicyError(f"{name} is an invalid regular expression: {exc}") from None
    return value


def clean(data):
    """Validate the policy fields present in `data`; returns them cleaned, or PolicyError."""
    cleaned = {}
    if "keep_n_duplicated_package_files" in data:
        value = data["keep_n_duplicated_package_files"]
        value = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if value not in CleanupPolicy.KEEP_N_DUPLICATED_CHOICES:
            choices = ", ".join(CleanupPolicy.KEEP_N_DUPLICATED_CHOICES)
            raise PolicyError(f"keep_n_duplicated_package_files must be one of {choices}")
        cleaned["keep_n_duplicated_package_files"] = value
    if "keep_n_versions" in data:
        cleaned["keep_n_versions"] = _int_or_none("keep_n_versions", data["keep_n_versions"], MAX_KEEP_N_VERSIONS)
    if "older_than_days" in data:
        cleaned["older_than_days"] = _int_or_none("older_than_days", data["older_than_days"], MAX_OLDER_THAN_DAYS)
    for name in ("name_regex_keep", "name_regex_delete"):
        if name in data:
            cleaned[name] = _regex(name, data[name])
    return cleaned


def is_active(policy):
    """Whether any rule is set; a policy with none does nothing and is never scheduled."""
    return bool(
        policy.keep_n_duplicated_package_files != "all"
        or policy.keep_n_versions
        or policy.older_than_days
        or policy.name_regex_delete
    )


def active_policies():
    return CleanupPolicy.objects.filter(
        ~Q(keep_n_duplicated_package_files="all")
        | Q(keep_n_versions__isnull=False)
        | Q(older_than_days__isnull=False)
        | ~Q(name_regex_delete="")
    )


def policy_for(project):
    """The project's policy, or an unsaved default one (every rule off)."""
    return CleanupPolicy.objects.filter(project=project).first() or CleanupPolicy(project=project)


def save(project, cleaned):
    """Store validated fields; a policy whose rules changed is due at the next beat tick."""
    with transaction.atomic():
        policy, _ = CleanupPolicy.objects.select_for_update().get_or_create(project=project)
        changed = [name for name, value in cleaned.items() if getattr(policy, name) != value]
        for name in changed:
            audit.record(
                "cleanup_policy_changed",
                project,
                details={"change": name, "from": getattr(policy, name), "to": cleaned[name]},
            )
            setattr(policy, name, cleaned[name])
        if changed:
            policy.next_run_at = None
            policy.save()
    return policy


# --- evaluation ---------------------------------------------------------------------------


def live_versions(project):
    return PackageVersion.objects.filter(package__project=project).exclude(
        status__in=(Status.PENDING_DESTRUCTION, Status.PROCESSING)
    )


def _matches(regex, *values):
    return regex is not None and any(regex.fullmatch(value) for value in values)


def plan(policy, now=None):
    """What applying `policy` now would remove (ids in ascending order)."""
    now = now or timezone.now()
    keep = re.compile(policy.name_regex_keep) if policy.name_regex_keep else None
    delete = re.compile(policy.name_regex_delete) if policy.name_regex_delete else None
    versions = live_versions(policy.project_id)
    rows = versions.values_list("pk", "package__name", "version")
    protected = {pk for pk, name, version in rows if _matches(keep, name, version)} if keep else set()
    covered_packages = protection.protected_package_ids(Package.objects.filter(project_id=policy.project_id))
    covered = set(versions.filter(package_id__in=covered_packages).values_list("pk", flat=True))

    removed = set()
    if policy.keep_n_versions or policy.older_than_days or delete is not None:
        candidates = versions
        if policy.older_than_days:
            candidates = candidates.filter(created_at__lt=now - timedelta(days=policy.older_than_days))
        if policy.keep_n_versions:
            newest_first = [F("created_at").desc(), F("pk").desc()]
            ranked = versions.annotate(
                rank=Window(RowNumber(), partition_by=[F("package_id")], order_by=newest_first)
            ).filter(rank__gt=policy.keep_n_versions)
            candidates = candidates.filter(pk__in=list(ranked.values_list("pk", flat=True)))
        for pk, name, _version in candidates.values_list("pk", "package__name", "version"):
            if pk in protected or (delete is not None and not delete.fullmatch(name)):
                continue
            removed.add(pk)

    duplicates = []  # (file id, version id) of every duplicate file the policy removes
    if policy.keep_n_duplicated_package_files != "all":
        keep_files = int(policy.keep_n_duplicated_package_files)
        ranked_files = (
            PackageFile.objects.filter(version__in=versions, status=PackageFile.FileStatus.DEFAULT)
            .annotate(
                rank=Window(RowNumber(), partition_by=[F("version_id"), F("file_name")], order_by=[F("pk").desc()])
            )
            .filter(rank__gt=keep_files)
            .values_list("pk", "version_id")
        )
        skipped = removed | protected
        duplicates = [(pk, version_id) for pk, version_id in ranked_files if version_id not in skipped]
    return Plan(
        version_ids=sorted(removed - covered),
        file_ids=sorted(pk for pk, version_id in duplicates if version_id not in covered),
        protected_version_ids=sorted((removed | {version_id for _, version_id in duplicates}) & covered),
    )


def describe(plan_):
    """A plan as the dry run lists it."""
    versions = (
        PackageVersion.objects.filter(pk__in=plan_.version_ids)
        .select_related("package")
        .order_by("package__name", "created_at", "pk")
    )
    files = (
        PackageFile.objects.filter(pk__in=plan_.file_ids)
        .select_related("version__package")
        .order_by("version__package__name", "version__pk", "file_name", "pk")
    )
    kept = (
        PackageVersion.objects.filter(pk__in=plan_.protected_version_ids)
        .select_related("package")
        .order_by("package__name", "created_at", "pk")
    )
    return {
        "protected": [
            {"id": v.pk, "name": v.package.name, "version": v.version, "package_type": v.package.format} for v in kept
        ],
        "versions": [{"id": v.pk, "name": v.package.name, "version": v.version} for v in versions],
        "files": [
            {"id": f.pk, "package_name": f.version.package.name, "version": f.version.version, "file_name": f.file_name}
            for f in files
        ],
    }
