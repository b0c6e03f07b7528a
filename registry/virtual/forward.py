"""Requests a virtual registry forwards instead of resolving (spec §2.2: a security audit): sent to
the registry's first remote upstream, answered as it answers, never cached.

- `plan`: which remote upstream is asked, and which of the names the request carries may go to
  it. A name a local upstream of the registry claims (registry.virtual.claims: the rule the
  resolver uses to hide remote versions, spec §4.2) never leaves the instance; nor does a name
  the chosen upstream's rules refuse (spec §1.9: the resolver would never ask it for that name).
  The format removes the others from the body it forwards.
- Only the first remote upstream in position order is asked. It being unhealthy (its breaker
  open, spec §3.4; `Retry-After` says when it is tried again) or unreachable is a 503, an error
  answer (any status but 200; a 401/403 is Packhouse's credential failing) a 502: never a
  fall-through to the next remote, which may be a public registry that must not receive the
  names meant for a private one (spec §4.1).
- `post`: the upstream's credentials (registry.virtual.http.credentials_header), never the
  client's; the answer read under a cap. Neither the body nor a credential is logged.
"""

import logging
import math
from dataclasses import dataclass, field

from django.utils import timezone

from registry.errors import BadGateway, UpstreamUnavailable
from registry.virtual import claims, health, http, resolver, rules
from registry.virtual.models import UpstreamRule

logger = logging.getLogger(__name__)


@dataclass
class Plan:
    upstream: object  # the remote Upstream asked, or None: the registry has no remote upstream
    allowed: set = field(default_factory=set)  # the names that may be sent to it


def plan(registry, fmt, names, path_of):
    """The Plan for a request naming `names` (valid names of the format); `path_of(name)` is the
    name's metadata VirtualPath (what the upstream's rules are checked against)."""
    upstreams = [link.upstream for link in resolver.links_of(registry)]
    remote = next((upstream for upstream in upstreams if not upstream.is_local), None)
    if remote is None:
        return Plan(None)
    local = [upstream for upstream in upstreams if upstream.is_local]
    normalized = {name: fmt.normalize_name(name) for name in names}
    keys = {name: fmt.virtual.claim_keys(normalized[name]) for name in names}
    private = claims.claimed(local, keys)
    upstream_rules = list(UpstreamRule.objects.filter(upstream=remote).order_by("id"))
    allowed = set()
    for name in names:
        if name in private:
            continue
        if upstream_rules and not rules.allowed(upstream_rules, fmt.virtual.rule_values(path_of(name)), fmt.virtual):
            continue
        allowed.add(name)
    return Plan(remote, allowed)


def post(upstream, url_path, body, *, headers, cap):
    """The body of `upstream`'s 200 answer to a POST of `body` (bytes) at `url_path`, at most
    `cap` bytes, or UpstreamUnavailable (503) / BadGateway (502) as the module says."""
    now = timezone.now()
    if health.is_unhealthy(upstream, now):
        error = UpstreamUnavailable(f"503 Service Unavailable - upstream {upstream.name} is unhealthy")
        error.retry_after = max(1, math.ceil((upstream.retry_at - now).total_seconds()))  # its next probe
        raise error
    url = upstream.url.rstrip("/") + url_path
    try:
        response = http.request(
            "POST",
            url,
            auth=http.credentials_header(upstream),
            headers=headers,
            auth_origin=upstream.url,
            body=body,
        )
    except http.UpstreamUnavailable as exc:
        if not isinstance(exc, http.UpstreamBusy):
            health.failed(upstream, str(exc))
        logger.warning("forward to upstream %s failed: %s", upstream.pk, exc)
        raise UpstreamUnavailable(f"503 Service Unavailable - upstream {upstream.name} is unavailable") from exc
    if response.status != 200:
        response.discard()  # an error body of any size is not read
        if response.status >= 500:
            health.failed(upstream, f"HTTP {response.status}")
        logger.warning("forward to upstream %s answered %s", upstream.pk, response.status)
        raise BadGateway(f"502 Bad Gateway - upstream {upstream.name} answered {response.status}")
    try:
        answer = http.read_small(response, cap)
    except http.UpstreamTooLarge as exc:
        raise BadGateway(f"502 Bad Gateway - upstream {upstream.name}'s answer is over {cap} bytes") from exc
    except http.UpstreamUnavailable as exc:
        health.failed(upstream, str(exc))
        raise UpstreamUnavailable(f"503 Service Unavailable - upstream {upstream.name} is unavailable") from exc
    health.succeeded(upstream)
    return answer
