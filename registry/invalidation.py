"""Who changes which epoch (registry.epochs) when identity rows change.

Saves and deletes arrive as signals; the few bulk `.update()` calls on these tables bump
epochs themselves (accounts.jobs.finish_job, registry.tasks.expire_stale_jobs, bot deactivation).
"""

from django.db.models.signals import post_delete, post_save

from accounts.models import AccessToken, CiJob, DeployToken, Group, JobTokenScopeLink, Membership, Project, User
from registry import epochs

# Rare, instance-wide changes: any of them may change any caller's view of any project.
IDENTITY_MODELS = (User, Group, Project, Membership, JobTokenScopeLink, AccessToken, DeployToken)


def _identity_changed(sender, instance, created=False, **kwargs):
    if created and sender in (AccessToken, DeployToken):
        return  # a new token was never remembered by anyone
    epochs.bump([epochs.IDENTITY])


def _job_changed(sender, instance, created=False, **kwargs):
    if not created and instance.token_digest:
        epochs.bump([epochs.credential(instance.token_digest)])


def connect():
    for model in IDENTITY_MODELS:
        post_save.connect(_identity_changed, sender=model, dispatch_uid=f"epochs-save-{model.__name__}")
        post_delete.connect(_identity_changed, sender=model, dispatch_uid=f"epochs-delete-{model.__name__}")
    post_save.connect(_job_changed, sender=CiJob, dispatch_uid="epochs-save-CiJob")
    post_delete.connect(_job_changed, sender=CiJob, dispatch_uid="epochs-delete-CiJob")
