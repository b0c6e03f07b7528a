"""Epochs (registry.epochs) follow what accounts announces (accounts.signals).

Before a change: new epochs at once, or ChangeNotPublished (503), which stops the change. After
it: new epochs again once the transaction commits, for whoever read the old rows in between.
"""

from accounts import signals
from registry import epochs


def _identity_changing(sender, **kwargs):
    epochs.bump_now([epochs.IDENTITY])


def _identity_changed(sender, **kwargs):
    epochs.bump_after_commit([epochs.IDENTITY])


def _credential_changing(sender, digests, **kwargs):
    epochs.bump_now([epochs.credential(digest) for digest in digests])


def _credential_changed(sender, digests, **kwargs):
    epochs.bump_after_commit([epochs.credential(digest) for digest in digests])


def connect():
    signals.identity_changing.connect(_identity_changing, dispatch_uid="epochs-identity-changing")
    signals.identity_changed.connect(_identity_changed, dispatch_uid="epochs-identity-changed")
    signals.credential_changing.connect(_credential_changing, dispatch_uid="epochs-credential-changing")
    signals.credential_changed.connect(_credential_changed, dispatch_uid="epochs-credential-changed")
