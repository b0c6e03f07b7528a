"""Packhouse settings: one file, driven by PACKHOUSE_* environment variables.

Without any variable set, the embedded default runs: SQLite and disk storage under ./var,
local-memory cache, Celery tasks executed in-process.
"""

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import dj_database_url
from botocore.config import Config as BotoConfig

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=None):
    return os.environ.get(f"PACKHOUSE_{name}", default)


def env_int(name, default):
    return int(env(name, default))


def env_bool(name, default):
    return env(name, str(default)).lower() in ("1", "true", "yes", "on")


VAR_DIR = Path(env("VAR_DIR", BASE_DIR / "var"))

SECRET_KEY = env("SECRET_KEY", "packhouse-embedded-insecure-key-change-me")

# /-/metrics (registry.metrics): prometheus_client in multiprocess mode. Every process of this
# machine (gunicorn workers, a Celery worker sharing the var directory) writes its counts to
# files here, read and summed at each scrape. Set before prometheus_client is first imported.
METRICS_DIR = Path(env("METRICS_DIR", VAR_DIR / "metrics"))
METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
# Who may scrape /-/metrics without a token: these addresses and networks (GitLab's monitoring
# allowlist defaults); an instance admin's token is accepted from anywhere.
METRICS_ALLOWED_IPS = [
    part.strip() for part in env("METRICS_ALLOWED_IPS", "127.0.0.0/8,::1/128").split(",") if part.strip()
]
DEBUG = env_bool("DEBUG", False)
REVISION = env("REVISION", "")  # answered by GET /api/v4/version; empty: the checkout's git commit
EXTERNAL_URL = env("EXTERNAL_URL", "")  # e.g. https://packages.example.com; empty: from request
# Hosts a request may name. URLs in metadata documents are built from EXTERNAL_URL or from the
# request's Host, which must then be one of these (any other is 400): never from a Host header an
# attacker chose. Default: EXTERNAL_URL's host, or this machine's loopback names.
ALLOWED_HOSTS = env(
    "ALLOWED_HOSTS", urlsplit(EXTERNAL_URL).hostname if EXTERNAL_URL else "localhost,127.0.0.1,[::1]"
).split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "accounts",
    "registry",
    "api",
    "web",
    "packages_generic.apps.GenericConfig",
    "packages_maven.apps.MavenConfig",
    "packages_pypi.apps.PypiConfig",
    "packages_npm.apps.NpmConfig",
    "packages_nuget.apps.NugetConfig",
    "packages_cargo.apps.CargoConfig",
    "packages_conan.apps.ConanConfig",
    "packages_rubygems.apps.RubygemsConfig",
    "packages_golang.apps.GolangConfig",
]

MIDDLEWARE = [
    "registry.observe.FactsMiddleware",
    "registry.response_cache.ResponseReuseMiddleware",
    "registry.middleware.SecurityHeadersMiddleware",
    "registry.middleware.RegistryErrorMiddleware",
    "registry.middleware.ActingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "packhouse.urls"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

WSGI_APPLICATION = "packhouse.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'packhouse.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,  # a connection the database dropped (a restart) is replaced
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

REDIS_URL = env("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "accounts.redis_client.RedisCache",  # Django's, keeping its redis.Redis
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_PREFIX", "packhouse"),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    CACHES["counters"] = CACHES["default"]  # rate-limit counters (accounts.throttling)
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = env_bool("TASKS_EAGER", False)
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        # Shared by every process of the machine: a per-process count multiplies a limit.
        "counters": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": VAR_DIR / "counters",
        },
        # The packages' change epochs (registry.epochs), which every worker's cached documents
        # are keyed on: shared for the same reason.
        "epochs": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": VAR_DIR / "epochs",
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        },
    }
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULE = {
    "purge-pending-destruction": {"task": "registry.tasks.purge_pending_destruction", "schedule": 300.0},
    "collect-orphan-objects": {"task": "registry.tasks.collect_orphan_objects", "schedule": 3600.0},
    "expire-stale-jobs": {"task": "registry.tasks.expire_stale_jobs", "schedule": 600.0},
    "announce-pending-epoch-changes": {"task": "registry.tasks.announce_pending_epoch_changes", "schedule": 30.0},
    "flush-download-counts": {
        "task": "registry.tasks.flush_download_counts",
        "schedule": float(env_int("DOWNLOAD_COUNT_FLUSH_SECONDS", 10)),
    },
    "flush-token-last-use": {
        "task": "registry.tasks.flush_token_last_use",
        "schedule": float(env_int("TOKEN_LAST_USED_FLUSH_SECONDS", 10)),
    },
    "purge-old-audit-events": {"task": "registry.tasks.purge_old_audit_events", "schedule": 3600.0},
    "run-due-virtual-cleanup-policies": {
        "task": "registry.tasks.run_due_virtual_cleanup_policies",
        "schedule": 3600.0,
    },
    "run-due-cleanup-policies": {
        "task": "registry.tasks.run_due_cleanup_policies",
        "schedule": float(env_int("CLEANUP_SCHEDULE_SECONDS", 600)),
    },
}
# Webhooks may reach loopback, private and link-local addresses (tests, closed networks).
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", False)
# The Celery queue webhook deliveries go to (empty: the default queue), so that slow receivers
# can be given workers of their own.
WEBHOOK_QUEUE = env("WEBHOOK_QUEUE", "")
# Audit events older than this many days are removed by a beat task (0: kept for ever).
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365)
# Unreferenced blobs and orphan objects are removed only after this many seconds.
BLOB_GRACE_SECONDS = env_int("BLOB_GRACE_SECONDS", 3600)
# A CI job still running after this many seconds is failed and its token dies.
JOB_TIMEOUT_SECONDS = env_int("JOB_TIMEOUT_SECONDS", 3 * 3600)
CELERY_TASK_IGNORE_RESULT = True
# Cleanup policies: a policy runs again this many seconds after its last run; each run marks
# at most this many rows per transaction; one beat tick starts at most this many policies.
CLEANUP_INTERVAL_SECONDS = env_int("CLEANUP_INTERVAL_SECONDS", 12 * 3600)
CLEANUP_BATCH_SIZE = env_int("CLEANUP_BATCH_SIZE", 200)
CLEANUP_POLICIES_PER_RUN = env_int("CLEANUP_POLICIES_PER_RUN", 20)

# Blob storage: a directory (default ./var/storage) or s3://bucket?endpoint_url=...&region_name=...
STORAGE_URL = env("STORAGE_URL", str(VAR_DIR / "storage"))
SPOOL_DIR = Path(env("SPOOL_DIR", VAR_DIR / "spool"))
X_ACCEL_REDIRECT_PREFIX = env("X_ACCEL_REDIRECT_PREFIX", "")  # e.g. /_storage/ behind nginx
# How long a presigned S3 download link (the redirect a download answers with) stays valid.
DOWNLOAD_URL_SECONDS = env_int("DOWNLOAD_URL_SECONDS", 300)


def _blob_storage(url):
    parts = urlsplit(url)
    if parts.scheme == "s3":
        options = {
            "bucket_name": parts.netloc,
            "querystring_auth": True,
            "querystring_expire": DOWNLOAD_URL_SECONDS,
            "file_overwrite": True,
        }
        options.update(dict(parse_qsl(parts.query)))
        options["client_config"] = BotoConfig(
            # Signature V4: V2 links are refused by stores that check what they sign (SeaweedFS
            # refuses a V2 link carrying response-content-disposition) and retired by AWS.
            signature_version=options.pop("signature_version", "s3v4"),
            s3={"addressing_style": options.pop("addressing_style", None)},
            # A store that does not answer is a 503 within seconds, not a worker held for minutes.
            connect_timeout=float(options.pop("connect_timeout", 5)),
            read_timeout=float(options.pop("read_timeout", 60)),
            retries={"max_attempts": int(options.pop("max_attempts", 3)), "mode": "standard"},
        )
        return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
    location = parts.path if parts.scheme == "file" else url
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": location, "file_permissions_mode": 0o640},
    }


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "packages": _blob_storage(STORAGE_URL),
}

# Largest file per format, in bytes: each format declares its default (default_max_file_size in
# its format.py); PACKHOUSE_<FORMAT>_MAX_FILE_SIZE overrides it. {format name: bytes}.
PACKAGE_MAX_FILE_SIZE = {
    name.removeprefix("PACKHOUSE_").removesuffix("_MAX_FILE_SIZE").lower(): int(value)
    for name, value in os.environ.items()
    if name.startswith("PACKHOUSE_") and name.endswith("_MAX_FILE_SIZE")
}

# Access level needed to pull from a private project (GitLab: Reporter; 10 lowers it to Guest).
MIN_PULL_ACCESS_LEVEL = env_int("MIN_PULL_ACCESS_LEVEL", 20)
# Instance switch for the per-project "allow anyone to pull" setting.
ALLOW_ANYONE_TO_PULL_OPTION = env_bool("ALLOW_ANYONE_TO_PULL_OPTION", True)

# Virtual registries (registry.virtual): keys that encrypt upstream secrets (Fernet, comma-separated,
# newest first), and the outbound address policy's overrides (instance settings only).
ENCRYPTION_KEYS = [key for key in env("ENCRYPTION_KEYS", "").split(",") if key.strip()]
VR_ALLOW_HTTP = env_bool("VR_ALLOW_HTTP", False)
VR_ALLOW_LOCAL_NETWORK = env_bool("VR_ALLOW_LOCAL_NETWORK", False)
VR_ALLOWED_HOSTS = [host.strip() for host in env("VR_ALLOWED_HOSTS", "").split(",") if host.strip()]
VR_CROSS_GROUP_LOCAL = env_bool("VR_CROSS_GROUP_LOCAL", False)
# An HTTP proxy every upstream request goes through (`http://[user:password@]host:port`); unset:
# direct connections. Environment proxies (HTTPS_PROXY...) are never used.
VR_OUTBOUND_PROXY = env("VR_OUTBOUND_PROXY", "")
# Connections this process opens at once to one upstream host (spec §5.5); more wait for one.
VR_MAX_OUTBOUND_PER_UPSTREAM = env_int("VR_MAX_OUTBOUND_PER_UPSTREAM", 16)
# Seconds a request waits for another one's fetch of the same path before 503 (spec §3.4).
VR_FETCH_WAIT_SECONDS = env_int("VR_FETCH_WAIT_SECONDS", 30)
# Failed authentications per client address and window before 429 (0: no limit).
AUTH_FAILURE_LIMIT = env_int("AUTH_FAILURE_LIMIT", 60)
AUTH_FAILURE_WINDOW = env_int("AUTH_FAILURE_WINDOW", 60)
# Package API requests per credential, and per address for requests without one, in each window
# of PACKAGE_REQUEST_WINDOW seconds (GitLab's package registry rate limits); 0: no limit.
PACKAGE_REQUEST_LIMIT = env_int("PACKAGE_REQUEST_LIMIT", 0)
PACKAGE_REQUEST_LIMIT_ANONYMOUS = env_int("PACKAGE_REQUEST_LIMIT_ANONYMOUS", 0)
PACKAGE_REQUEST_WINDOW = env_int("PACKAGE_REQUEST_WINDOW", 60)
# Reverse proxies in front of Packhouse whose X-Forwarded-For is trusted (0: use REMOTE_ADDR).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# Longest lifetime of an access token, in days (GitLab's maximum allowable lifetime); a token asked
# for without an expiry date gets this one. 0: no limit.
ACCESS_TOKEN_MAX_LIFETIME_DAYS = env_int("ACCESS_TOKEN_MAX_LIFETIME_DAYS", 365)
# Each process adds its downloads up and sends them to Redis this often (registry.download_counts);
# 0: each download in its own Redis call. Fractions allowed.
DOWNLOAD_COUNT_BATCH_SECONDS = float(env("DOWNLOAD_COUNT_BATCH_SECONDS", 1))
# Seconds between two records of a token's use (accounts.last_use); a use a replayed answer noted in
# Redis reaches last_used_at within TOKEN_LAST_USED_FLUSH_SECONDS (the flush-token-last-use beat task).
TOKEN_LAST_USED_INTERVAL = env_int("TOKEN_LAST_USED_INTERVAL", 60)
# Per-process memory checked against change epochs in Redis (registry.epochs): credentials, access
# levels (registry.access_cache) and whole metadata answers (registry.response_cache). It needs a
# store shared by every process, so it is on with Redis only.
EPOCH_CACHES = env_bool("EPOCH_CACHES", bool(REDIS_URL))
# Epoch checks answered from memory kept current by Redis invalidation pushes (registry.epoch_mirror).
EPOCH_PUSH = env_bool("EPOCH_PUSH", True)
ACCESS_CACHE_ENTRIES = env_int("ACCESS_CACHE_ENTRIES", 4096)
# Longest any process trusts a remembered credential, access decision or replayed answer, whatever
# the epochs say: the second line behind registry.epochs should an invalidation be lost.
AUTHORIZATION_MAX_AGE = env_int("AUTHORIZATION_MAX_AGE", 60)
RESPONSE_REUSE_SECONDS = env_int("RESPONSE_REUSE_SECONDS", 60)
RESPONSE_REUSE_MAX_BYTES = env_int("RESPONSE_REUSE_MAX_BYTES", 32 * 1024 * 1024)
# Remembered answers are shared by the workers of every node through Redis (registry.response_cache).
RESPONSE_REUSE_SHARED = env_bool("RESPONSE_REUSE_SHARED", True)
# Cached released files of virtual registries sent again before Django (registry.virtual.views.
# allow_file_replay); off: each runs Django (what the bench compares against).
VIRTUAL_FILE_REPLAY = env_bool("VIRTUAL_FILE_REPLAY", True)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "accounts.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "registry.json_bodies.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "api.exceptions.gitlab_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# The pages' scripts are served from the apps' static folders too, so a server started without
# `collectstatic` (the tests' live server) still runs them.
WHITENOISE_USE_FINDERS = True
LOGIN_URL = "/users/sign_in"

# "plain", or "json": one JSON object a line, and one line per request on the packhouse.request
# logger (registry.observe: request id, user, credential kind and id, project, format, status,
# bytes, duration).
LOG_FORMAT = env("LOG_FORMAT", "plain")

# Sign-in: local passwords always (the first admin has one); OpenID Connect when an issuer is set
# (accounts/oidc.py: endpoints from the issuer's discovery document).
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
OIDC_ISSUER = env("OIDC_ISSUER", "").rstrip("/")
if OIDC_ISSUER:
    AUTHENTICATION_BACKENDS.append("accounts.oidc.Backend")
    OIDC_PROVIDER_NAME = env("OIDC_NAME", "OpenID Connect")
    OIDC_RP_CLIENT_ID = env("OIDC_CLIENT_ID", "")
    OIDC_RP_CLIENT_SECRET = env("OIDC_CLIENT_SECRET", "")
    OIDC_RP_SIGN_ALGO = env("OIDC_SIGN_ALGO", "RS256")
    OIDC_RP_SCOPES = env("OIDC_SCOPES", "openid email profile")
    OIDC_AUTHENTICATE_CLASS = "accounts.oidc.AuthenticationRequestView"
    OIDC_TIMEOUT = 10
    LOGIN_REDIRECT_URL = "/"
    LOGIN_REDIRECT_URL_FAILURE = "/users/sign_in?sign_in_failed=oidc"

# LDAP (accounts/directory.py, django-auth-ldap): users found under LDAP_USER_BASE by
# LDAP_USER_FILTER, bound with their own password; groups (groupOfNames) under LDAP_GROUP_BASE.
LDAP_URI = env("LDAP_URI", "")
if LDAP_URI:
    import ldap
    from django_auth_ldap.config import GroupOfNamesType, LDAPSearch

    from accounts.directory_map import parse_group_map

    AUTHENTICATION_BACKENDS.append("accounts.directory.Backend")
    AUTH_LDAP_SERVER_URI = LDAP_URI
    AUTH_LDAP_BIND_DN = env("LDAP_BIND_DN", "")
    AUTH_LDAP_BIND_PASSWORD = env("LDAP_BIND_PASSWORD", "")
    AUTH_LDAP_START_TLS = env_bool("LDAP_START_TLS", False)
    AUTH_LDAP_USER_SEARCH = LDAPSearch(
        env("LDAP_USER_BASE", ""), ldap.SCOPE_SUBTREE, env("LDAP_USER_FILTER", "(uid=%(user)s)")
    )
    AUTH_LDAP_USER_ATTR_MAP = {"name": env("LDAP_NAME_ATTR", "cn"), "email": env("LDAP_EMAIL_ATTR", "mail")}
    AUTH_LDAP_ALWAYS_UPDATE_USER = True
    if env("LDAP_GROUP_BASE"):
        AUTH_LDAP_GROUP_SEARCH = LDAPSearch(env("LDAP_GROUP_BASE"), ldap.SCOPE_SUBTREE, "(objectClass=groupOfNames)")
        AUTH_LDAP_GROUP_TYPE = GroupOfNamesType()
    LDAP_GROUP_MAP = parse_group_map(env("LDAP_GROUP_MAP", ""))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "line": {"format": "%(message)s"},
        "json": {"()": "packhouse.json_logging.JsonFormatter"},
    },
    "filters": {"redact_secrets": {"()": "accounts.redaction.RedactSecretsFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["redact_secrets"],
        },
        "access": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "line"},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.server": {"level": "WARNING"},
        # One combined access line per request (registry.observe), redacted as it is written, on
        # stdout as gunicorn's --access-logfile - wrote it; PACKHOUSE_ACCESS_LOG=false turns it off.
        "packhouse.access": {
            "handlers": ["access"],
            "level": "INFO" if env_bool("ACCESS_LOG", True) else "WARNING",
            "propagate": False,
        },
    },
}
