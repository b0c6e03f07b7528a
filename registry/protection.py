"""Package protection rules: which packages a rule covers, who may push or delete them, and the
rules' validation. The decision for a write is `registry.policy.authorize_package_change`, which
the write service asks on every write (publish, tags, deprecation, deletion); cleanup policies
leave covered packages alone (registry.cleanup).

GitLab's spellings: `minimum_access_level_for_push` is null (Developer), `maintainer`, `owner`
or `admin`; `minimum_access_level_for_delete` is null (Maintainer), `owner` or `admin`. `admin`
is an instance administrator. A pattern matches a package's name case-insensitively, `*` standing
for any run of characters, as it is spelled and as the format normalizes it (so a rule for
`my_pkg` covers `My.Pkg`).
"""

import re

from django.db import IntegrityError, transaction

from accounts import audit
from accounts.roles import AccessLevel
from registry import formats
from registry.models import ProtectionRule

ADMIN = 60  # above Owner: instance administrators only
PUSH_LEVELS = {"maintainer": AccessLevel.MAINTAINER, "owner": AccessLevel.OWNER, "admin": ADMIN}
DELETE_LEVELS = {"owner": AccessLevel.OWNER, "admin": ADMIN}
DEFAULT_PUSH_LEVEL = AccessLevel.DEVELOPER
DEFAULT_DELETE_LEVEL = AccessLevel.MAINTAINER
LEVEL_NAMES = {AccessLevel.DEVELOPER: "developer", AccessLevel.MAINTAINER: "maintainer", AccessLevel.OWNER: "owner"}
LEVEL_NAMES[ADMIN] = "admin"
MESSAGE = "403 Forbidden - Package protected."
MAX_PATTERN = 255

PUSH = "push"
DELETE = "delete"


class RuleError(ValueError):
    """An invalid rule: `status` 400 (a bad value) or 422 (a rule that cannot exist)."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def level_name(level):
    return LEVEL_NAMES.get(level) if level is not None else None


def _regex(pattern):
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.IGNORECASE)


def _normalized(fmt, name):
    try:
        return fmt.normalize_name(name)
    except Exception:  # a pattern need not be a valid name: compare it as it is spelled
        return name


def covers(rule, package):
    """Whether `rule` covers `package` (same project and type, name matching the pattern)."""
    if rule.project_id != package.project_id or rule.package_type != package.format:
        return False
    names = (package.name, package.normalized_name)
    if any(_regex(rule.package_name_pattern).fullmatch(name) for name in names):
        return True
    fmt = formats.find(package.format)
    if fmt is None:
        return False
    return bool(_regex(_normalized(fmt, rule.package_name_pattern)).fullmatch(package.normalized_name))


def rules_covering(package):
    rules = ProtectionRule.objects.filter(project_id=package.project_id, package_type=package.format)
    return [rule for rule in rules if covers(rule, package)]


def required_level(rules, operation):
    """The least level `operation` needs on a package the `rules` cover (the strictest wins);
    None when no rule covers it."""
    if not rules:
        return None
    if operation == PUSH:
        return max(rule.minimum_access_level_for_push or DEFAULT_PUSH_LEVEL for rule in rules)
    return max(rule.minimum_access_level_for_delete or DEFAULT_DELETE_LEVEL for rule in rules)


def protected_package_ids(packages):
    """Ids of the `packages` (Package rows, or a queryset of them) that some rule covers, in
    one query for the rules whatever the number of projects."""
    packages = list(packages)
    rules = list(ProtectionRule.objects.filter(project_id__in={package.project_id for package in packages}))
    if not rules:
        return set()
    return {package.pk for package in packages if any(covers(rule, package) for rule in rules)}


# --- the rules themselves (API and pages) --------------------------------------------------


def _level(field, value, choices):
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value not in choices:
        raise RuleError(f"{field} does not have a valid value")
    return choices[value]


def clean(data, *, partial=False):
    """Validate GitLab's fields in `data` (missing ones are left out when `partial`); returns
    {model field: value} or raises RuleError (400)."""
    cleaned = {}
    if "package_name_pattern" in data or not partial:
        pattern = data.get("package_name_pattern")
        if pattern is None or pattern == "":
            raise RuleError("package_name_pattern is missing" if not partial else "package_name_pattern is empty")
        plain = isinstance(pattern, str) and pattern.isascii() and pattern.isprintable()
        if not plain or pattern != pattern.strip():
            raise RuleError("package_name_pattern is invalid")
        if len(pattern) > MAX_PATTERN:
            raise RuleError(f"package_name_pattern is too long (maximum is {MAX_PATTERN} characters)")
        cleaned["package_name_pattern"] = pattern
    if "package_type" in data or not partial:
        package_type = data.get("package_type")
        if package_type is None or package_type == "":
            raise RuleError("package_type is missing")
        if not isinstance(package_type, str) or formats.find(package_type) is None:
            raise RuleError("package_type does not have a valid value")
        cleaned["package_type"] = package_type
    if "minimum_access_level_for_push" in data:
        cleaned["minimum_access_level_for_push"] = _level(
            "minimum_access_level_for_push", data["minimum_access_level_for_push"], PUSH_LEVELS
        )
    if "minimum_access_level_for_delete" in data:
        cleaned["minimum_access_level_for_delete"] = _level(
            "minimum_access_level_for_delete", data["minimum_access_level_for_delete"], DELETE_LEVELS
        )
    return cleaned


def as_fields(rule):
    """A rule in GitLab's spellings (the REST API's and the audit trail's)."""
    return {
        "package_name_pattern": rule.package_name_pattern,
        "package_type": rule.package_type,
        "minimum_access_level_for_push": level_name(rule.minimum_access_level_for_push),
        "minimum_access_level_for_delete": level_name(rule.minimum_access_level_for_delete),
    }


def _audit(action, rule, details):
    audit.record(
        action,
        rule.project,
        target_type="PackageProtectionRule",
        target_id=rule.pk,
        target_details=f"{rule.package_type} {rule.package_name_pattern}",
        details=details,
    )


def _save(rule, before=None):
    if rule.minimum_access_level_for_push is None and rule.minimum_access_level_for_delete is None:
        raise RuleError("A rule must have at least a minimum access role for push or delete.", status=422)
    taken = ProtectionRule.objects.filter(
        project_id=rule.project_id, package_type=rule.package_type, package_name_pattern=rule.package_name_pattern
    ).exclude(pk=rule.pk)
    if taken.exists():
        raise RuleError("Package name pattern has already been taken", status=422)
    try:
        with transaction.atomic():
            rule.save()
            if before is None:
                _audit("package_protection_rule_created", rule, as_fields(rule))
            else:
                for change in audit.changes(before, as_fields(rule)):
                    _audit("package_protection_rule_updated", rule, change)
    except IntegrityError:  # taken concurrently
        raise RuleError("Package name pattern has already been taken", status=422) from None
    return rule


def create(project, cleaned):
    return _save(ProtectionRule(project=project, **cleaned))


def update(rule, cleaned):
    before = as_fields(rule)
    for name, value in cleaned.items():
        setattr(rule, name, value)
    return _save(rule, before)


def delete(rule):
    with transaction.atomic():
        _audit("package_protection_rule_deleted", rule, as_fields(rule))
        rule.delete()


def rules_of(project):
    return ProtectionRule.objects.filter(project=project).order_by("id")
