"""The audit trail: who did what, to what, from where, when (GitLab's audit events).

`record()` writes one AuditEvent in the caller's transaction, so an event exists exactly when
its change does. The actor and address come from the current request or system actor
(accounts.acting): a user, or a token as its kind, name and id (never its secret), or the system
("cleanup policy"). Where a setting changed, `details` holds `change`, `from` and `to`.

What records here (`connect()`): tokens created, revoked, deleted (access tokens of every kind,
deploy tokens), memberships added, changed and removed, project and group visibility, the
package registry's access level (GitLab's "allow anyone to pull"), the job-token allowlist and
its switch, web sign-ins and failed ones, a deploy or access token used from an address it was
not used from before that day. The registry records its own (publish, delete, package changes,
protection rules, package and cleanup settings) through `record()`; accounts.services and
accounts.jobs record rotations and job ends.
"""

from datetime import timedelta

from django.conf import settings
from django.core.cache import caches
from django.db.models.signals import post_delete, post_save, pre_save
from django.utils import timezone

from accounts import acting
from accounts.principals import ACCESS_TOKEN, DEPLOY_TOKEN, JOB_TOKEN, SESSION

INSTANCE = "Instance"


def entity_of(thing):
    """(entity_type, entity_id, entity_path) of a Project, Group or User; the instance for None."""
    from accounts.models import Group, Project, User

    if isinstance(thing, Project):
        return "Project", thing.pk, thing.full_path
    if isinstance(thing, Group):
        return "Group", thing.pk, thing.full_path
    if isinstance(thing, User):
        return "User", thing.pk, thing.username
    return INSTANCE, None, ""


def actor_fields(principal=None):
    """The AuditEvent fields that say who acts: `principal`, else the current record's."""
    record = acting.current()
    if principal is None and record is not None:
        principal = record.principal
    fields = {"ip_address": (record.address or None) if record is not None else None}
    if record is not None and record.system:
        return {**fields, "author_kind": "system", "author_name": record.system}
    if principal is None or principal.is_anonymous:
        kind = "anonymous" if record is not None else "system"
        return {**fields, "author_kind": kind, "author_name": "" if record is not None else "system"}
    user = principal.user
    fields.update(author=user, author_name=user.username if user is not None else "")
    if principal.kind == ACCESS_TOKEN:
        token = principal.access_token
        fields.update(author_kind=token.kind, token_id=token.pk, token_name=token.name)
    elif principal.kind == DEPLOY_TOKEN:
        token = principal.deploy_token
        fields.update(author_kind="deploy", author_name=token.username, token_id=token.pk, token_name=token.name)
    elif principal.kind == JOB_TOKEN:
        fields.update(author_kind="job", token_id=principal.job.pk, token_name=principal.job.name)
    else:
        fields["author_kind"] = SESSION
    return fields


def record(action, entity, *, target_type="", target_id="", target_details="", details=None, principal=None):
    """Write one event about `entity` (a Project, Group, User, or None for the instance)."""
    from accounts.models import AuditEvent

    entity_type, entity_id, entity_path = entity_of(entity)
    return AuditEvent.objects.create(
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        entity_path=entity_path,
        target_type=target_type,
        target_id=str(target_id),
        target_details=str(target_details)[:2048],
        details=details or {},
        **actor_fields(principal),
    )


def changes(before, after):
    """[{"change", "from", "to"}] for the fields whose values differ."""
    return [
        {"change": name, "from": before.get(name), "to": after.get(name)}
        for name in after
        if before.get(name) != after.get(name)
    ]


def _jsonable(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def purge_expired(now=None):
    """Remove the events older than PACKHOUSE_AUDIT_RETENTION_DAYS (0: keep everything)."""
    from accounts.models import AuditEvent

    days = settings.AUDIT_RETENTION_DAYS
    if not days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = AuditEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# --- what accounts records on its own -------------------------------------------------------


def _token_entity(token):
    from accounts.models import AccessToken

    if isinstance(token, AccessToken):
        return token.resource_project or token.resource_group or token.user
    return token.project or token.group


def _token_action(token, verb):
    from accounts.models import AccessToken

    if isinstance(token, AccessToken):
        return f"{token.kind}_access_token_{verb}"
    return f"deploy_token_{verb}"


def _token_target(token):
    return {"target_type": type(token).__name__, "target_id": token.pk, "target_details": token.name}


# Fields whose changes are recorded, per model, and the action each change is recorded as.
WATCHED = {
    "Project": (
        ("visibility", "package_registry_access_level", "ci_job_token_scope_enabled"),
        "project_setting_changed",
    ),
    "Group": (("visibility",), "group_setting_changed"),
    "Membership": (("access_level", "expires_at"), "member_updated"),
    "AccessToken": (("revoked",), None),
    "DeployToken": (("revoked",), None),
}


def _remember_before(sender, instance, **kwargs):
    if instance._state.adding or instance.pk is None:
        return
    fields, _ = WATCHED[sender.__name__]
    row = sender._default_manager.filter(pk=instance.pk).values(*fields).first()
    instance._audit_before = {name: _jsonable(value) for name, value in (row or {}).items()}


def _membership_entity(membership):
    return membership.project if membership.project_id else membership.group


def _on_saved(sender, instance, created, update_fields=None, **kwargs):
    name = sender.__name__
    if name in ("AccessToken", "DeployToken"):
        if created:
            record(
                _token_action(instance, "created"),
                _token_entity(instance),
                details={"scopes": instance.scopes, "expires_at": _jsonable(instance.expires_at)},
                **_token_target(instance),
            )
        elif instance.revoked and getattr(instance, "_audit_before", {}).get("revoked") is False:
            record(_token_action(instance, "revoked"), _token_entity(instance), **_token_target(instance))
        return
    if name == "Membership":
        entity = _membership_entity(instance)
        target = {"target_type": "User", "target_id": instance.user_id, "target_details": instance.user.username}
        if created:
            record("member_added", entity, details={"access_level": instance.access_level}, **target)
            return
    if name == "JobTokenScopeLink":
        if created:
            _allowlist_event("job_token_allowlist_added", instance)
        return
    fields, action = WATCHED[name]
    before = getattr(instance, "_audit_before", None)
    if created or before is None:
        return
    after = {field: _jsonable(getattr(instance, field)) for field in fields}
    entity = _membership_entity(instance) if name == "Membership" else instance
    target = (
        {"target_type": "User", "target_id": instance.user_id, "target_details": instance.user.username}
        if name == "Membership"
        else {"target_type": name, "target_id": instance.pk, "target_details": entity_of(instance)[2]}
    )
    for change in changes(before, after):
        record(action, entity, details=change, **target)
    instance._audit_before = after


def _allowlist_event(action, link):
    target = link.target_project or link.target_group
    record(
        action,
        link.source_project,
        target_type=type(target).__name__,
        target_id=target.pk,
        target_details=target.full_path,
    )


def _on_deleted(sender, instance, **kwargs):
    name = sender.__name__
    if name == "Membership":
        entity = _membership_entity(instance)
        if entity is not None:
            record(
                "member_removed",
                entity,
                target_type="User",
                target_id=instance.user_id,
                target_details=instance.user.username,
                details={"access_level": instance.access_level},
            )
    elif name == "JobTokenScopeLink":
        _allowlist_event("job_token_allowlist_removed", instance)
    elif name == "DeployToken":
        record("deploy_token_deleted", _token_entity(instance), **_token_target(instance))


def job_finished(job):
    """A job's end kills its token: recorded against its project."""
    record(
        "job_token_expired",
        job.project,
        target_type="CiJob",
        target_id=job.pk,
        target_details=job.name,
        details={"status": job.status, "user": job.user.username},
    )


def token_rotated(old, new):
    record(
        _token_action(new, "rotated"),
        _token_entity(new),
        details={"from_token_id": old.pk, "to_token_id": new.pk},
        **_token_target(new),
    )


SEEN_TIMEOUT = 26 * 3600
# Token, address and day triples this process has already noted (in the cache, and so in the
# database): their later requests today skip even the cache's round trip (one per request
# through Django otherwise, a third of a 1 MiB download's time in a worker). Bounded: cleared
# when full; a cleared triple costs one `add` again, never a second event.
_SEEN_HERE = set()
_SEEN_HERE_MAX = 20_000


def token_used(principal):
    """A deploy or access token used from an address it was not used from before today: one
    event per token, address and day. A cache note keeps the check off the database on every
    request, and a note in the process keeps it off the cache; the database has the last word."""
    from accounts.models import AuditEvent

    if principal.kind not in (ACCESS_TOKEN, DEPLOY_TOKEN):
        return
    record_ = acting.current()
    if record_ is None or not record_.address:
        return
    token = principal.access_token or principal.deploy_token
    today = timezone.now().date()
    kind = "deploy" if principal.kind == DEPLOY_TOKEN else token.kind
    key = _seen_key(token.digest, record_.address, today)
    if key in _SEEN_HERE:
        return
    try:
        if not caches["counters"].add(key, 1, timeout=SEEN_TIMEOUT):
            _remember_seen(key)
            return
    except Exception:  # noqa: S110 - the cache is an accelerator; the database decides
        pass
    seen = AuditEvent.objects.filter(
        action="token_used_from_new_ip",
        author_kind=kind,
        token_id=token.pk,
        ip_address=record_.address,
        created_at__date=today,
    ).exists()
    if not seen:
        record(
            "token_used_from_new_ip",
            _token_entity(token),
            principal=principal,
            details={"ip_address": record_.address},
            **_token_target(token),
        )
    _remember_seen(key)  # as the cache note: never a second event for it today


def _seen_key(digest, address, day):
    # The digest (of the secret, not the secret) tells two tokens apart across database resets.
    return f"audit-seen:{digest[:16]}:{address}:{day.isoformat()}"


def token_use_noted(digest, address):
    """Whether this process has already noted today's use of the token (by its digest) from
    `address`, so that token_used would record nothing: a remembered answer may then be replayed
    without running Django (registry.response_cache)."""
    return _seen_key(digest, address, timezone.now().date()) in _SEEN_HERE


def audited_token_digest(principal):
    """The digest of the token whose use from a new address token_used records, or None."""
    if principal is None or principal.kind not in (ACCESS_TOKEN, DEPLOY_TOKEN):
        return None
    return (principal.access_token or principal.deploy_token).digest


def _remember_seen(key):
    if len(_SEEN_HERE) >= _SEEN_HERE_MAX:
        _SEEN_HERE.clear()
    _SEEN_HERE.add(key)


def _signed_in(sender, request, user, **kwargs):
    record(
        "user_signed_in",
        user,
        principal=_session(user),
        target_type="User",
        target_id=user.pk,
        target_details=user.username,
    )


def _sign_in_failed(sender, credentials, request=None, **kwargs):
    from accounts.models import User

    username = str(credentials.get("username", ""))[:255]
    user = User.objects.filter(username=username).first()
    record(
        "user_sign_in_failed",
        user,
        target_type="User",
        target_id=user.pk if user else "",
        target_details=username,
        details={"username": username},
    )


def _session(user):
    from accounts.principals import Principal

    return Principal(kind=SESSION, user=user, scopes=frozenset({"api"}))


def connect():
    from django.contrib.auth.signals import user_logged_in, user_login_failed

    from accounts.models import AccessToken, DeployToken, Group, JobTokenScopeLink, Membership, Project

    for model in (Project, Group, Membership, AccessToken, DeployToken):
        pre_save.connect(_remember_before, sender=model, weak=False, dispatch_uid=f"audit-before-{model.__name__}")
    for model in (Project, Group, Membership, AccessToken, DeployToken, JobTokenScopeLink):
        post_save.connect(_on_saved, sender=model, weak=False, dispatch_uid=f"audit-saved-{model.__name__}")
    for model in (Membership, DeployToken, JobTokenScopeLink):
        post_delete.connect(_on_deleted, sender=model, weak=False, dispatch_uid=f"audit-deleted-{model.__name__}")
    user_logged_in.connect(_signed_in, weak=False, dispatch_uid="audit-signed-in")
    user_login_failed.connect(_sign_in_failed, weak=False, dispatch_uid="audit-sign-in-failed")
