"""What accounts tells the rest of Packhouse when identities or credentials change.

Any process may remember who a credential is and what it reaches (registry.access_cache), so
every change to users, groups, projects, memberships, the job-token allowlist or tokens, and the
end of a CI job, is announced twice:

- `identity_changing` / `credential_changing` before the change is written (or inside its
  transaction): a receiver that cannot pass the news on raises, and the change does not happen;
- `identity_changed` / `credential_changed` after it, for whatever was read in between.

`credential_*` carry `digests`, the token digests of the CI jobs concerned. Saving only
bookkeeping (`last_login`, `last_used_at`) changes nobody's access and announces nothing.
"""

from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import Signal

identity_changing = Signal()
identity_changed = Signal()
credential_changing = Signal()  # digests=[...]
credential_changed = Signal()  # digests=[...]

BOOKKEEPING_FIELDS = frozenset({"last_login", "last_used_at"})


def _is_new(instance, kwargs):
    """Whether the row is being (pre_save) or was just (post_save) created."""
    return kwargs.get("created", instance._state.adding)


def _identity_receiver(signal):
    def receiver(sender, instance, update_fields=None, **kwargs):
        if update_fields is not None and set(update_fields) <= BOOKKEEPING_FIELDS:
            return
        if getattr(sender, "is_credential", False) and _is_new(instance, kwargs):
            return  # a new token was never remembered by anyone
        signal.send(sender=sender)

    return receiver


def _job_receiver(signal):
    def receiver(sender, instance, **kwargs):
        if not _is_new(instance, kwargs) and instance.token_digest:
            signal.send(sender=sender, digests=[instance.token_digest])

    return receiver


def connect():
    from accounts.models import AccessToken, CiJob, DeployToken, Group, JobTokenScopeLink, Membership, Project, User

    for model in (User, Group, Project, Membership, JobTokenScopeLink, AccessToken, DeployToken):
        name = model.__name__
        for model_signal, receiver in (
            (pre_save, _identity_receiver(identity_changing)),
            (pre_delete, _identity_receiver(identity_changing)),
            (post_save, _identity_receiver(identity_changed)),
            (post_delete, _identity_receiver(identity_changed)),
        ):
            model_signal.connect(receiver, sender=model, weak=False, dispatch_uid=f"{model_signal}-{name}")
    for model_signal, receiver in (
        (pre_save, _job_receiver(credential_changing)),
        (pre_delete, _job_receiver(credential_changing)),
        (post_save, _job_receiver(credential_changed)),
        (post_delete, _job_receiver(credential_changed)),
    ):
        model_signal.connect(receiver, sender=CiJob, weak=False, dispatch_uid=f"{model_signal}-CiJob")
