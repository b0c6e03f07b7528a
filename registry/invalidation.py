"""Who changes which epoch (registry.epochs) when identity rows change.

Saves and deletes arrive as signals; the few bulk `.update()` calls on these tables bump
epochs themselves (accounts.jobs.finish_job, registry.tasks.expire_stale_jobs, bot deactivation).
"""

from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from accounts.models import AccessToken, CiJob, DeployToken, Group, JobTokenScopeLink, Membership, Project, User
from registry import epochs

# Rare, instance-wide changes: any of them may change any caller's view of any project.
IDENTITY_MODELS = (User, Group, Project, Membership, JobTokenScopeLink, AccessToken, DeployToken)
# Bookkeeping that changes nobody's access: saving only these fields invalidates nothing.
BOOKKEEPING_FIELDS = frozenset({"last_login", "last_used_at"})


def _is_new(instance, kwargs):
    """Whether the row is being (pre_save) or was just (post_save) created."""
    return kwargs.get("created", instance._state.adding)


def _identity_keys(sender, instance, update_fields=None, **kwargs):
    if update_fields is not None and set(update_fields) <= BOOKKEEPING_FIELDS:
        return []
    if sender in (AccessToken, DeployToken) and _is_new(instance, kwargs):
        return []  # a new token was never remembered by anyone
    return [epochs.IDENTITY]


def _job_keys(sender, instance, **kwargs):
    if _is_new(instance, kwargs) or not instance.token_digest:
        return []
    return [epochs.credential(instance.token_digest)]


def _before(keys_of):
    """Before the row is written: a change nobody can be told of is refused (ChangeNotPublished)."""

    def receiver(sender, instance, **kwargs):
        epochs.bump_now(keys_of(sender, instance, **kwargs))

    return receiver


def _after(keys_of):
    def receiver(sender, instance, **kwargs):
        epochs.bump_after_commit(keys_of(sender, instance, **kwargs))

    return receiver


def connect():
    for model, keys_of in [*((model, _identity_keys) for model in IDENTITY_MODELS), (CiJob, _job_keys)]:
        name = model.__name__
        pre_save.connect(_before(keys_of), sender=model, weak=False, dispatch_uid=f"epochs-pre-save-{name}")
        pre_delete.connect(_before(keys_of), sender=model, weak=False, dispatch_uid=f"epochs-pre-delete-{name}")
        post_save.connect(_after(keys_of), sender=model, weak=False, dispatch_uid=f"epochs-save-{name}")
        post_delete.connect(_after(keys_of), sender=model, weak=False, dispatch_uid=f"epochs-delete-{name}")
