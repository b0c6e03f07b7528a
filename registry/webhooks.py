"""Package webhooks: project and group hooks hear `published` (a new version appears) and
`deleted` (a version is deleted) events of the packages under them.

- The write service calls `package_event()` in its transaction: one WebhookDelivery row per
  hook (the exact payload), queued for a Celery worker once the transaction commits (never sent
  from the request; in the embedded mode tasks run in-process after the commit).
- `deliver()` POSTs the payload with `X-Gitlab-Event: Package Hook` and the hook's token as
  `X-Gitlab-Token`, waits at most TIMEOUT seconds, follows no redirect, and records status,
  duration and the start of the answer. A 5xx, a timeout or a connection error is tried again
  with backoff (up to MAX_ATTEMPTS, each attempt its own row); a hook that failed
  DISABLE_AFTER times in a row is disabled until someone saves it again.
- A hook URL must resolve to public addresses only (not loopback, private, link-local,
  multicast or reserved ones) unless PACKHOUSE_WEBHOOK_ALLOW_PRIVATE: checked when the hook is
  saved and again before each delivery, which connects to the address that was checked (a DNS
  answer that changes in between cannot redirect it).
"""

import ipaddress
import json
import logging
import socket
import time
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import audit
from registry import outbound, secrets
from registry.models import Webhook, WebhookDelivery

logger = logging.getLogger(__name__)

TIMEOUT = 10.0
MAX_ATTEMPTS = 4
BACKOFF_SECONDS = 10
DISABLE_AFTER = 40
EXCERPT = 1000
USER_AGENT = "Packhouse-Hookshot"


class HookError(ValueError):
    """A hook that cannot be saved or sent to; the message says why."""


# --- URLs ---------------------------------------------------------------------------------


def resolve(url):
    """(scheme, host, port, [allowed addresses]) of a hook URL, or HookError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HookError("url is blocked: Only allowed schemes are http, https")
    if parts.username or parts.password:
        raise HookError("url is blocked: credentials in the URL are not allowed; use the token")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise HookError("url is invalid") from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise HookError("url is blocked: Host cannot be resolved or invalid") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if outbound.refused_range(address) and not settings.WEBHOOK_ALLOW_PRIVATE:
            raise HookError("url is blocked: Requests to the local network are not allowed")
        addresses.append(str(address))
    return parts.scheme, parts.hostname, port, addresses


def check_url(url):
    if not isinstance(url, str) or not url or len(url) > 2048 or not url.isascii() or not url.isprintable():
        raise HookError("url is invalid")
    resolve(url)
    return url


# --- events -------------------------------------------------------------------------------


def hooks_hearing(project):
    """The enabled hooks with package events of the project and of every group above it."""
    return Webhook.objects.filter(
        Q(project=project) | Q(group_id__in=project.group_ids),
        package_events=True,
        disabled_at__isnull=True,
    ).order_by("pk")


def _actor():
    fields = audit.actor_fields()
    actor = {"kind": fields["author_kind"], "name": fields.get("author_name", "")}
    if fields.get("token_id") is not None:
        actor.update(token_id=fields["token_id"], token_name=fields["token_name"])
    return actor


def payload(event_type, version, files):
    package = version.package
    project = package.project
    base = (settings.EXTERNAL_URL or "").rstrip("/")
    user = audit.actor_fields().get("author")
    return {
        "object_kind": "package",
        "event_type": event_type,
        "created_at": timezone.now().isoformat().replace("+00:00", "Z"),
        "package": {
            "id": version.pk,
            "name": package.name,
            "version": version.version,
            "package_type": package.format,
            "status": version.status,
            "files": [{"file_name": f.file_name, "sha256": f.blob.sha256, "size": f.blob.size} for f in files],
        },
        "project": {
            "id": project.pk,
            "name": project.name,
            "path_with_namespace": project.full_path,
            "web_url": f"{base}/{project.full_path}",
        },
        "user": {"id": user.pk, "username": user.username, "name": user.name} if user is not None else None,
        "actor": _actor(),
    }


def package_event(event_type, version, files):
    """Queue `event_type` about `version` for every hook that hears it, once the current
    transaction commits."""
    hooks = list(hooks_hearing(version.package.project))
    if not hooks:
        return
    body = payload(event_type, version, files)
    for hook in hooks:
        queue(WebhookDelivery.objects.create(hook=hook, event=event_type, payload=body))


def queue(delivery, countdown=0):
    from registry import tasks

    options = {"queue": settings.WEBHOOK_QUEUE} if settings.WEBHOOK_QUEUE else {}
    transaction.on_commit(lambda: tasks.deliver_webhook.apply_async((delivery.pk,), countdown=countdown, **options))


def test_event(hook):
    """A `test` delivery of a sample payload (the hook page's and API's test button)."""
    owner = hook.project or hook.group
    body = {
        "object_kind": "package",
        "event_type": "test",
        "created_at": timezone.now().isoformat().replace("+00:00", "Z"),
        "package": None,
        "project": {"id": owner.pk, "path_with_namespace": owner.full_path} if hook.project_id else None,
        "group": {"id": owner.pk, "full_path": owner.full_path} if hook.group_id else None,
        "actor": _actor(),
    }
    delivery = WebhookDelivery.objects.create(hook=hook, event="test", payload=body)
    queue(delivery)
    return delivery


def resend(delivery):
    again = WebhookDelivery.objects.create(hook=delivery.hook, event=delivery.event, payload=delivery.payload)
    queue(again)
    return again


# --- delivery -----------------------------------------------------------------------------


def _send(hook, body):
    """POST `body` to the hook; (status, excerpt). Raises HookError or urllib3 errors."""
    scheme, host, port, addresses = resolve(hook.url)
    parts = urlsplit(hook.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Gitlab-Event": "Package Hook",
        "Host": parts.netloc.rsplit("@", 1)[-1],
    }
    token = secrets.decrypt(hook.encrypted_token)
    if token:
        headers["X-Gitlab-Token"] = token
    timeout = urllib3.Timeout(total=TIMEOUT)
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            addresses[0],
            port,
            timeout=timeout,
            retries=False,
            server_hostname=host,
            assert_hostname=host if hook.enable_ssl_verification else False,
            cert_reqs="CERT_REQUIRED" if hook.enable_ssl_verification else "CERT_NONE",
        )
    else:
        pool = urllib3.HTTPConnectionPool(addresses[0], port, timeout=timeout, retries=False)
    with pool:
        response = pool.urlopen(
            "POST",
            path,
            body=json.dumps(body).encode(),
            headers=headers,
            redirect=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            excerpt = response.read(EXCERPT, decode_content=True).decode("utf-8", "replace")
        finally:
            response.release_conn()
    return response.status, excerpt


def deliver(delivery_id):
    """Send one delivery; record what happened; queue the next attempt when it may succeed."""
    delivery = WebhookDelivery.objects.select_related("hook").filter(pk=delivery_id).first()
    if delivery is None or delivery.delivered_at is not None:
        return None
    hook = delivery.hook
    if hook.disabled_at is not None and delivery.event != "test":
        delivery.error = "hook disabled"
        delivery.delivered_at = timezone.now()
        delivery.save(update_fields=["error", "delivered_at"])
        return delivery
    started = time.monotonic()
    retry = False
    try:
        delivery.status_code, delivery.response_excerpt = _send(hook, delivery.payload)
        retry = delivery.status_code >= 500
    except HookError as exc:
        delivery.error = str(exc)
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        delivery.error = f"{type(exc).__name__}: {exc}"[:500]
        retry = True
    delivery.duration_ms = int((time.monotonic() - started) * 1000)
    delivery.delivered_at = timezone.now()
    delivery.save(update_fields=["status_code", "response_excerpt", "error", "duration_ms", "delivered_at"])
    _count(hook, delivery.succeeded)
    if retry and delivery.attempt < MAX_ATTEMPTS:
        again = WebhookDelivery.objects.create(
            hook=hook, event=delivery.event, payload=delivery.payload, attempt=delivery.attempt + 1
        )
        with transaction.atomic():
            queue(again, countdown=BACKOFF_SECONDS * 2 ** (delivery.attempt - 1))
    logger.info(
        "webhook %s %s attempt %d: %s",
        hook.pk,
        delivery.event,
        delivery.attempt,
        delivery.status_code or delivery.error,
    )
    return delivery


def _count(hook, succeeded):
    if succeeded:
        Webhook.objects.filter(pk=hook.pk).update(consecutive_failures=0)
        return
    with transaction.atomic():
        row = Webhook.objects.select_for_update().get(pk=hook.pk)
        row.consecutive_failures += 1
        if row.consecutive_failures >= DISABLE_AFTER and row.disabled_at is None:
            row.disabled_at = timezone.now()
            logger.warning("webhook %s disabled after %d failures in a row", hook.pk, row.consecutive_failures)
        row.save(update_fields=["consecutive_failures", "disabled_at"])


# --- saving hooks -------------------------------------------------------------------------


FIELDS = ("url", "name", "description", "token", "enable_ssl_verification", "package_events")


def _bool(name, value):
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise HookError(f"{name} is invalid")


def clean(data, *, partial=False):
    """GitLab's hook fields in `data` -> model fields, or HookError (400)."""
    cleaned = {}
    if "url" in data or not partial:
        if not data.get("url"):
            raise HookError("url is missing")
        cleaned["url"] = check_url(data["url"])
    for name in ("name", "description"):
        if name in data:
            value = data[name] or ""
            if not isinstance(value, str) or len(value) > (255 if name == "name" else 2048):
                raise HookError(f"{name} is invalid")
            cleaned[name] = value
    if "token" in data:
        token = data["token"] or ""
        if not isinstance(token, str) or len(token) > 1024 or not token.isprintable():
            raise HookError("token is invalid")
        cleaned["encrypted_token"] = secrets.encrypt(token)
    for name in ("enable_ssl_verification", "package_events"):
        if name in data:
            cleaned[name] = _bool(name, data[name])
    return cleaned


def save(hook, cleaned):
    """Create or change a hook; saving it enables it again (its failure count starts over)."""
    for name, value in cleaned.items():
        setattr(hook, name, value)
    hook.consecutive_failures = 0
    hook.disabled_at = None
    hook.save()
    return hook
