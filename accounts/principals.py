"""The Principal: who is calling, with what credential, reaching what. Every view sees one."""

from dataclasses import dataclass, field

ANONYMOUS = "anonymous"
SESSION = "session"  # signed in to the web UI with a password
ACCESS_TOKEN = "access_token"  # personal, project or group access token
DEPLOY_TOKEN = "deploy_token"
JOB_TOKEN = "job_token"


@dataclass(frozen=True)
class Principal:
    kind: str = ANONYMOUS
    user: object = None  # accounts.User, or None for anonymous and deploy tokens
    scopes: frozenset = field(default_factory=frozenset)
    access_token: object = None
    deploy_token: object = None
    job: object = None

    @property
    def is_anonymous(self):
        return self.kind == ANONYMOUS

    @property
    def is_authenticated(self):
        return self.kind != ANONYMOUS

    @property
    def is_admin(self):
        """Instance-admin powers: an active admin's own credentials only. A CI job token acts with
        its user's memberships, never as an administrator (GitLab's rule)."""
        return self.kind != JOB_TOKEN and self.user is not None and self.user.is_superuser and self.user.is_active

    @property
    def token_kind(self):
        """How a package was published, for the record: 'personal', 'project', 'group',
        'deploy', 'job', 'session' or 'anonymous'."""
        if self.kind == ACCESS_TOKEN:
            return self.access_token.kind
        return {DEPLOY_TOKEN: "deploy", JOB_TOKEN: "job"}.get(self.kind, self.kind)

    def __str__(self):
        if self.kind == DEPLOY_TOKEN:
            return f"deploy token {self.deploy_token.pk}"
        if self.kind == JOB_TOKEN:
            return f"job {self.job.pk} of {self.user.username}"
        if self.user is not None:
            return f"{self.kind} {self.user.username}"
        return ANONYMOUS


ANONYMOUS_PRINCIPAL = Principal()
