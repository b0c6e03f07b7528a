"""Every credential spelling -> one Principal. A present but bad credential is a 401.

Accepted: `PRIVATE-TOKEN`, `JOB-TOKEN`, `DEPLOY-TOKEN` headers, any header added with
`accept_token_header()` (a format's own API-key header), `Authorization: Bearer <token>`,
`Authorization: Basic` with the token as password: username `gitlab-ci-token` for job
tokens, the deploy token's own username for deploy tokens, any username for access tokens;
and `Authorization: <token>`, a Packhouse token (by its prefix) as the whole value, as
clients send a registry token they were given verbatim.
Tokens in query strings are not accepted. The token's prefix says which table to look in;
the row is found by digest.
"""

import base64
import binascii

from rest_framework import authentication, exceptions

from accounts import acting, audit, last_use, metrics, services, throttling, tokens
from accounts.models import AccessToken, CiJob, DeployToken
from accounts.principals import (
    ACCESS_TOKEN,
    ANONYMOUS_PRINCIPAL,
    DEPLOY_TOKEN,
    JOB_TOKEN,
    SESSION,
    Principal,
)

JOB_TOKEN_USERNAME = "gitlab-ci-token"
CHALLENGE = 'Basic realm="Packhouse Package Registry"'

# Header carriers, in the order they are looked at; the value is the token itself. Lists, grown
# in place by accept_token_header() while apps load (modules that imported them see the additions).
HEADER_CARRIERS = [
    ("HTTP_PRIVATE_TOKEN", tokens.PERSONAL_PREFIX),
    ("HTTP_JOB_TOKEN", tokens.JOB_PREFIX),
    ("HTTP_DEPLOY_TOKEN", tokens.DEPLOY_PREFIX),
]


CREDENTIAL_HEADERS = [*(header for header, _ in HEADER_CARRIERS), "HTTP_AUTHORIZATION"]


def accept_token_header(header):
    """Accept any kind of token, as it is, in one more request header (a META key such as
    `HTTP_X_API_KEY`), looked at after the built-in ones. Called once per header at startup."""
    if any(known == header for known, _ in HEADER_CARRIERS):
        return
    HEADER_CARRIERS.append((header, None))
    CREDENTIAL_HEADERS.insert(CREDENTIAL_HEADERS.index("HTTP_AUTHORIZATION"), header)


class InvalidCredential(exceptions.AuthenticationFailed):
    """A credential was presented and is unknown, expired, revoked, or a finished job's.
    `reason` names which, for the authentication-failure counter (never the token)."""

    default_detail = "401 Unauthorized"

    def __init__(self, detail=None, reason="unknown"):
        super().__init__(detail)
        self.reason = reason


def carries_credential(meta):
    """Whether a request (its META) presents any credential at all, valid or not."""
    return any(meta.get(header) for header in CREDENTIAL_HEADERS)


def authenticate_request(request):
    """The Principal for a Django/DRF request (anonymous when no credential is present).

    Failed credentials count against the caller's address (accounts.throttling)."""
    if not carries_credential(request.META):
        return ANONYMOUS_PRINCIPAL
    throttling.check(request)
    try:
        principal = _resolve(request)
    except InvalidCredential as exc:
        throttling.record_failure(request)
        metrics.AUTHENTICATION_FAILURES.labels(reason=exc.reason).inc()
        raise
    acting.note_principal(principal)
    audit.token_used(principal)
    return principal


def _resolve(request):
    credential = presented_credential(request.META)
    if credential is None:
        return ANONYMOUS_PRINCIPAL
    token, expected_prefix, username = credential
    return principal_for_token(token, expected_prefix=expected_prefix, username=username)


def presented_credential(meta):
    """(token, expected prefix, Basic username) for the credential a request presents, or None.

    Raises InvalidCredential for an unsupported scheme or malformed Basic credentials, and when
    the request presents two different tokens (which one would act is no guess to make; the same
    token in two places, as a format's API-key header and Basic password, is one credential)."""
    presented = [(value.strip(), prefix, None) for header, prefix in HEADER_CARRIERS if (value := meta.get(header))]
    auth = meta.get("HTTP_AUTHORIZATION", "")
    if auth:
        presented.append(_authorization_credential(auth))
    if not presented:
        return None
    if len({token for token, _, _ in presented}) > 1:
        raise InvalidCredential(
            "401 Unauthorized - more than one credential presented; send only one", reason="two_credentials"
        )
    return presented[0]


def _authorization_credential(auth):
    scheme, _, credentials = auth.strip().partition(" ")
    if not credentials and tokens.kind_of(scheme) is not None:
        return scheme, None, None  # the token itself, no scheme
    scheme = scheme.lower()
    if scheme == "bearer":
        return credentials.strip(), None, None
    if scheme == "basic":
        username, password = decode_basic(credentials.strip())
        return password, None, username
    raise InvalidCredential("401 Unauthorized - unsupported authorization scheme", reason="malformed")


def decode_basic(credentials):
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCredential("401 Unauthorized - malformed Basic credentials", reason="malformed") from exc
    username, sep, password = decoded.partition(":")
    if not sep or not password:
        raise InvalidCredential("401 Unauthorized - Basic credentials need a token as password", reason="malformed")
    return username, password


def principal_for_token(token, *, expected_prefix=None, username=None):
    """Resolve one presented token. `username` is set for Basic credentials."""
    kind = tokens.kind_of(token)
    if kind is None or (expected_prefix is not None and kind != expected_prefix):
        raise InvalidCredential()
    if kind == tokens.JOB_PREFIX:
        if username is not None and username != JOB_TOKEN_USERNAME:
            raise InvalidCredential()
        return _job_principal(token)
    if kind == tokens.DEPLOY_PREFIX:
        return _deploy_principal(token, username)
    return _access_token_principal(token)


def _find(queryset, token):
    row = queryset.filter(digest=tokens.digest(token)).first()
    if row is None or not tokens.matches(token, row.digest):
        raise InvalidCredential()
    if row.revoked:
        if isinstance(row, AccessToken):
            services.revoke_token_family(row)
        raise InvalidCredential("401 Unauthorized - Token was revoked", reason="revoked")
    if row.expired:
        raise InvalidCredential("401 Unauthorized - Token is expired", reason="expired")
    last_use.touch(row)
    return row


def record_use(principal):
    """Record the principal's token as used (accounts.last_use), when it is reused without a lookup."""
    row = principal.access_token or principal.deploy_token
    if row is not None:
        last_use.touch(row)
    acting.note_principal(principal)
    audit.token_used(principal)


def _access_token_principal(token):
    row = _find(AccessToken.objects.select_related("user"), token)
    user = row.user
    if not user.is_active:
        raise InvalidCredential("401 Unauthorized - user is blocked", reason="user_blocked")
    return Principal(kind=ACCESS_TOKEN, user=user, scopes=frozenset(row.scopes), access_token=row)


def _deploy_principal(token, username):
    row = _find(DeployToken.objects.select_related("project", "group"), token)
    if username is not None and username != row.username:
        raise InvalidCredential()
    return Principal(kind=DEPLOY_TOKEN, scopes=frozenset(row.scopes), deploy_token=row)


def _job_principal(token):
    job = (
        CiJob.objects.select_related("user", "project", "project__group")
        .filter(token_digest=tokens.digest(token))
        .first()
    )
    if job is None or not tokens.matches(token, job.token_digest):
        raise InvalidCredential()
    if not job.running:
        raise InvalidCredential("401 Unauthorized - the job has finished", reason="job_finished")
    if not job.user.is_active:
        raise InvalidCredential("401 Unauthorized - user is blocked", reason="user_blocked")
    return Principal(kind=JOB_TOKEN, user=job.user, job=job)


def principal_of(request):
    """The Principal a DRF request was authenticated as."""
    principal = getattr(request, "auth", None)
    return principal if isinstance(principal, Principal) else ANONYMOUS_PRINCIPAL


class TokenAuthentication(authentication.BaseAuthentication):
    """DRF adapter: request.user is the acting User (or None), request.auth the Principal."""

    def authenticate(self, request):
        principal = authenticate_request(request)
        if principal.is_anonymous:
            return None
        return (principal.user, principal)

    def authenticate_header(self, request):
        return CHALLENGE


class SessionAuthentication(authentication.SessionAuthentication):
    """Browser sessions (the web UI calling the API), CSRF enforced by DRF."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        return (user, Principal(kind=SESSION, user=user, scopes=frozenset({"api"})))
