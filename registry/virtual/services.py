"""Every change to virtual registries, upstreams and their order, with GitLab's validation
messages (spec §1.2-§1.7). Callers (the REST API, the pages) have already been authorized.

Errors: ValidationFailed (400 `{"message": {"<field>": ["<text>"]}}`) and ParameterInvalid
(400 `{"error": "<text>"}`). Secrets are encrypted before they reach a row (registry.secrets) and never
leave this module in clear except through the outbound client.

Every change here is an audit event (registry.virtual.events, spec §5.5), written in the change's
transaction after its validation: a refused change records nothing, and a credential change
names the fields, never their values.
"""

from http import HTTPStatus
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F

from accounts import audit
from accounts.models import Group, Project
from registry import secrets
from registry.virtual import addresses, changes, claims, events, health, http, rules
from registry.virtual.models import (
    MAX_REGISTRIES,
    MAX_UPSTREAMS,
    CacheEntry,
    NameClaim,
    NegativeEntry,
    RegistryUpstream,
    Upstream,
    UpstreamRule,
    VirtualRegistry,
)


class ValidationFailed(Exception):
    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


class ParameterInvalid(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


def text_param(data, name, max_length, *, required=False):
    value = data.get(name)
    if value is None:
        if required:
            raise ParameterInvalid(f"{name} is missing")
        return None
    if not isinstance(value, str):
        raise ParameterInvalid(f"{name} is invalid")
    if required and not value.strip():
        raise ParameterInvalid(f"{name} is empty")
    if len(value) > max_length:
        raise ValidationFailed({name: [f"is too long (maximum is {max_length} characters)"]})
    if not value.isprintable():
        raise ValidationFailed({name: ["is invalid"]})
    return value


def integer_param(data, name, minimum):
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise ParameterInvalid(f"{name} is invalid")
    if isinstance(value, str):
        if not (value.isascii() and value.lstrip("-").isdigit()):
            raise ParameterInvalid(f"{name} is invalid")
        value = int(value)
    if not isinstance(value, int) or value > 2**31 - 1:
        raise ParameterInvalid(f"{name} is invalid")
    if value < minimum:
        comparison = "greater than 0" if minimum == 1 else f"greater than or equal to {minimum}"
        raise ValidationFailed({name: [f"must be {comparison}"]})
    return value


TRUE = ("true", "t", "1", "yes")
FALSE = ("false", "f", "0", "no")


def boolean_param(data, name):
    value = data.get(name)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in TRUE + FALSE:
        return value.lower() in TRUE
    raise ParameterInvalid(f"{name} is invalid")


# --- registries --------------------------------------------------------------------------------


def formats_support(format_name):
    from registry import formats

    return formats.get(format_name).virtual


def _options(data, format_name, current):
    """The registry's options after `data` sets some of the format's (VirtualSupport.registry_options)."""
    options = dict(current or {})
    for name in formats_support(format_name).registry_options:
        value = boolean_param(data, name)
        if value is not None:
            options[name] = value
    return options


def _registry_settings(registry):
    """The registry's settings an audit event shows: none is secret."""
    stored = registry.options if isinstance(registry.options, dict) else {}
    options = formats_support(registry.format).registry_options
    return {
        "name": registry.name,
        "description": registry.description,
        "retain_removed_versions": registry.retain_removed_versions,
        **{name: stored.get(name, default) for name, default in options.items()},
    }


def create_registry(group, format_name, data):
    name = text_param(data, "name", 255, required=True)
    description = text_param(data, "description", 1024) or ""
    options = _options(data, format_name, {})
    retain = boolean_param(data, "retain_removed_versions") or False
    with transaction.atomic():
        existing = VirtualRegistry.objects.select_for_update().filter(group=group, format=format_name)
        if len(existing) >= MAX_REGISTRIES:
            raise ValidationFailed({"group": [f"already has the maximum number of registries ({MAX_REGISTRIES})"]})
        if any(registry.name == name for registry in existing):
            raise ValidationFailed({"name": ["has already been taken"]})
        registry = VirtualRegistry.objects.create(
            group=group,
            format=format_name,
            name=name,
            description=description,
            retain_removed_versions=retain,
            options=options,
        )
        settings_ = _registry_settings(registry)
        events.registry_created(registry, {k: v for k, v in settings_.items() if k != "name"})
        return registry


def update_registry(registry, data):
    name = text_param(data, "name", 255)
    description = text_param(data, "description", 1024)
    retain = boolean_param(data, "retain_removed_versions")
    options = _options(data, registry.format, registry.options)
    own = [option for option in formats_support(registry.format).registry_options if data.get(option) is not None]
    if name is None and description is None and retain is None and not own:
        raise ParameterInvalid("name, description are missing, at least one parameter must be provided")
    if name is not None:
        if not name.strip():
            raise ValidationFailed({"name": ["can't be blank"]})
        taken = VirtualRegistry.objects.filter(group=registry.group, format=registry.format, name=name)
        if taken.exclude(pk=registry.pk).exists():
            raise ValidationFailed({"name": ["has already been taken"]})
    before = _registry_settings(registry)
    if retain is not None:
        registry.retain_removed_versions = retain
    registry.options = options
    if name is not None:
        registry.name = name
    if description is not None:
        registry.description = description
    with transaction.atomic():
        registry.save()
        events.registry_updated(registry, audit.changes(before, _registry_settings(registry)))
    return registry


def _exclusive_upstreams(registry):
    """Upstreams of the registry that no other registry uses."""
    used = RegistryUpstream.objects.filter(registry=registry).values("upstream_id")
    shared = RegistryUpstream.objects.exclude(registry=registry).values("upstream_id")
    return Upstream.objects.filter(pk__in=used).exclude(pk__in=shared)


def delete_registry(registry):
    """Deletes the registry and the upstreams no other registry uses, with their cache."""
    with transaction.atomic():
        exclusive = list(_exclusive_upstreams(registry))
        events.registry_deleted(registry, [upstream.pk for upstream in exclusive])
        registry.delete()
        for upstream in exclusive:
            delete_upstream(upstream)


def purge_registry_cache(registry):
    """Empties the cache of the registry's own remote upstreams (those no other registry uses);
    the number of entries it marked for destruction."""
    with transaction.atomic():
        remote = list(_exclusive_upstreams(registry).filter(kind=Upstream.Kind.REMOTE).order_by("pk"))
        count = sum(_purge(upstream) for upstream in remote)
        events.registry_cache_purged(registry, [upstream.pk for upstream in remote], count)
    return count


def _purge(upstream):
    count = CacheEntry.objects.filter(upstream=upstream, status=CacheEntry.Status.DEFAULT).update(
        status=CacheEntry.Status.PENDING_DESTRUCTION
    )
    NegativeEntry.objects.filter(upstream=upstream).delete()
    changes.upstream_changed(upstream)
    return count


def purge_upstream_cache(upstream):
    """The number of entries marked for destruction (the orphan sweep releases their blobs)."""
    with transaction.atomic():
        count = _purge(upstream)
        events.upstream_cache_purged(upstream, count)
    return count


def delete_cache_entry(upstream, relative_path):
    """Mark one live entry for destruction; whether there was one."""
    with transaction.atomic():
        entries = CacheEntry.objects.filter(
            upstream=upstream, relative_path=relative_path, status=CacheEntry.Status.DEFAULT
        )
        if not entries.update(status=CacheEntry.Status.PENDING_DESTRUCTION):
            return False
        events.cache_entry_deleted(upstream, relative_path)
        changes.upstream_changed(upstream)
    return True


# --- remote upstreams --------------------------------------------------------------------------


def normalize_url(url):
    """Lowercase scheme and host, no default port, no trailing `/` or `.git`."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, 443 if scheme == "https" else 80) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")].rstrip("/")
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def check_url(url):
    """The normalized URL after the address policy (§5.1), or ValidationFailed on `url`."""
    if len(url) > 255:
        raise ValidationFailed({"url": ["is too long (maximum is 255 characters)"]})
    try:
        addresses.vet(url)
    except addresses.AddressRefused as exc:
        raise ValidationFailed({"url": [f"is blocked: {exc}"]}) from exc
    return normalize_url(url)


def _twin(url):
    return url.split("://", 1)[-1]


def _same_credentials(upstream, username, password, token):
    if (upstream.username or "") != (username or ""):
        return False
    try:
        return secrets.decrypt(upstream.password_encrypted) == (password or "") and secrets.decrypt(
            upstream.auth_token_encrypted
        ) == (token or "")
    except secrets.SecretUnreadable:
        return False


def _check_unique(group, format_name, url, username, password, token, exclude=None):
    others = Upstream.objects.filter(group=group, format=format_name, kind=Upstream.Kind.REMOTE)
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    for other in others:
        if _twin(other.url) == _twin(url) and _same_credentials(other, username, password, token):
            raise ValidationFailed({"group": ["already has a remote upstream with the same url and credentials"]})


def _validity(data, support, creating):
    values = {}
    cache_hours = integer_param(data, "cache_validity_hours", 0)
    metadata_hours = integer_param(data, "metadata_cache_validity_hours", 1)
    negative_minutes = integer_param(data, "negative_cache_minutes", 0)
    if cache_hours is not None:
        values["cache_validity_hours"] = cache_hours
    if metadata_hours is not None:
        values["metadata_cache_validity_hours"] = metadata_hours
    elif creating:
        values["metadata_cache_validity_hours"] = support.default_metadata_cache_validity_hours
    if negative_minutes is not None:
        values["negative_cache_minutes"] = negative_minutes
    elif creating:
        values["negative_cache_minutes"] = support.default_negative_cache_minutes
    return values


def _credentials(data, support):
    username = text_param(data, "username", 510)
    password = text_param(data, "password", 510)
    token = text_param(data, "auth_token", 2048) if support.accepts_auth_token else None
    if token and (username or password):
        raise ValidationFailed({"auth_token": ["can't be used with username and password"]})
    return username, password, token


MAX_FILE_HOSTS = 20


def file_hosts_param(data):
    """`file_hosts`: a list of `host` or `host:port` (a JSON array, repeated form fields, or
    one comma- or space-separated string), normalized; None when absent."""
    value = data.get("file_hosts")
    if value is None:
        return None
    if hasattr(data, "getlist"):  # a form: `file_hosts=a&file_hosts=b` or `file_hosts=a,b`
        value = data.getlist("file_hosts")
        value = value[0] if len(value) == 1 else value
    if isinstance(value, str):
        value = [part for part in value.replace(" ", ",").split(",") if part]
    if not isinstance(value, list):
        raise ParameterInvalid("file_hosts is invalid")
    if len(value) > MAX_FILE_HOSTS:
        raise ValidationFailed({"file_hosts": [f"must be at most {MAX_FILE_HOSTS} hosts"]})
    hosts = []
    for entry in value:
        try:
            host = addresses.host_entry(entry)
        except addresses.AddressRefused as exc:
            raise ValidationFailed({"file_hosts": [f"{str(entry)[:255]!r} {exc}"]}) from exc
        if host not in hosts:
            hosts.append(host)
    return hosts


def _preset_file_hosts(support, url):
    for prefix, hosts in support.file_host_presets.items():
        if url == prefix or url.startswith(prefix.rstrip("/") + "/"):
            return list(hosts)
    return []


def create_remote_upstream(group, fmt, data, registry=None):
    """A remote upstream of `group`; appended to `registry` when given."""
    support = fmt.virtual
    url = text_param(data, "url", 1000, required=True)
    url = check_url(url)
    username, password, token = _credentials(data, support)
    if bool(username) != bool(password):
        raise ValidationFailed({("password" if username else "username"): ["can't be blank"]})
    name = text_param(data, "name", 255) or urlsplit(url).hostname
    description = text_param(data, "description", 1024) or ""
    values = _validity(data, support, creating=True)
    file_hosts = file_hosts_param(data)
    values["file_hosts"] = _preset_file_hosts(support, url) if file_hosts is None else file_hosts
    if support.public_roots and url.startswith(support.public_roots):
        values["cache_validity_hours"] = 0
    with transaction.atomic():
        _check_unique(group, fmt.name, url, username, password, token)
        if registry is not None:
            _check_room(registry)
        upstream = Upstream.objects.create(
            group=group,
            format=fmt.name,
            kind=Upstream.Kind.REMOTE,
            name=name,
            description=description,
            url=url,
            username=username or "",
            password_encrypted=secrets.encrypt(password),
            auth_token_encrypted=secrets.encrypt(token),
            **values,
        )
        link = link_upstream(registry, upstream, audited=False) if registry is not None else None
        set_ = {"username": username, "password": password, "auth_token": token}
        events.upstream_created(upstream, registry, credentials=[k for k, v in set_.items() if v])
    return upstream, link


VALIDITY = ("cache_validity_hours", "metadata_cache_validity_hours", "negative_cache_minutes")
UPSTREAM_SETTINGS = ("url", "name", "description", *VALIDITY, "file_hosts")


def _upstream_settings(upstream):
    """An upstream's settings an audit event shows (no credential: those are only named)."""
    fields = UPSTREAM_SETTINGS if not upstream.is_local else UPSTREAM_SETTINGS[1:-1]
    return {name: getattr(upstream, name) for name in fields}


def _credentials_state(upstream):
    """{field: stored form} of the upstream's credentials (compared here, never recorded)."""
    return {
        "username": upstream.username or "",
        "password": upstream.password_encrypted or "",
        "auth_token": upstream.auth_token_encrypted or "",
    }


def _credential_changes(before, after):
    """{field: "set" | "changed" | "cleared"} between two _credentials_state: names and what
    happened, never a value. A secret stored again with the same value is no change."""

    def clear(name, stored):
        if name == "username":
            return stored
        try:
            return secrets.decrypt(stored)
        except secrets.SecretUnreadable:
            return None  # unknown: a new stored form counts as a change

    what = {}
    for name in events.CREDENTIAL_FIELDS:
        old, new = before[name], after[name]
        if old == new:
            continue
        if not new:
            what[name] = "cleared"
        elif not old:
            what[name] = "set"
        else:
            old_clear, new_clear = clear(name, old), clear(name, new)
            if old_clear is None or old_clear != new_clear:
                what[name] = "changed"
    return what


def update_remote_upstream(upstream, fmt, data):
    support = fmt.virtual
    fields = ("url", "username", "password", "auth_token", "name", "description")
    fields += ("cache_validity_hours", "metadata_cache_validity_hours", "negative_cache_minutes", "file_hosts")
    if not any(data.get(name) is not None for name in fields):
        raise ParameterInvalid(f"{', '.join(fields)} are missing, at least one parameter must be provided")
    url = text_param(data, "url", 1000)
    username, password, token = _credentials(data, support)
    name = text_param(data, "name", 255)
    description = text_param(data, "description", 1024)
    values = _validity(data, support, creating=False)
    file_hosts = file_hosts_param(data)
    if file_hosts is not None:
        values["file_hosts"] = file_hosts
    reset = False
    before = _upstream_settings(upstream)
    credentials_before = _credentials_state(upstream)
    with transaction.atomic():
        if url is not None:
            url = check_url(url)
            if url != upstream.url:
                reset = True
                upstream.url = url
                if username is None or password is None:
                    # A new URL never receives the old URL's secret (GitLab's rule).
                    upstream.username = username or ""
                    upstream.password_encrypted = ""
                    upstream.auth_token_encrypted = secrets.encrypt(token)
        if username is not None:
            upstream.username = username
            reset = True
        if password is not None:
            upstream.password_encrypted = secrets.encrypt(password)
            reset = True
        if token is not None:
            upstream.auth_token_encrypted = secrets.encrypt(token)
            reset = True
        if bool(upstream.username) != bool(upstream.password_encrypted):
            raise ValidationFailed({("password" if upstream.username else "username"): ["can't be blank"]})
        _check_unique(
            upstream.group,
            upstream.format,
            upstream.url,
            upstream.username,
            secrets.decrypt(upstream.password_encrypted),
            secrets.decrypt(upstream.auth_token_encrypted),
            exclude=upstream,
        )
        if name is not None:
            upstream.name = name or urlsplit(upstream.url).hostname
        if description is not None:
            upstream.description = description
        for field, value in values.items():
            setattr(upstream, field, value)
        if reset:
            health.reset(upstream)
            NegativeEntry.objects.filter(upstream=upstream).delete()
        upstream.save()
        events.upstream_updated(upstream, audit.changes(before, _upstream_settings(upstream)))
        events.credentials_changed(upstream, _credential_changes(credentials_before, _credentials_state(upstream)))
    return upstream


def delete_upstream(upstream):
    """Positions after it move down in every registry; its cache goes with it (the blobs are
    collected by the orphan sweep)."""
    with transaction.atomic():
        for link in list(RegistryUpstream.objects.filter(upstream=upstream).select_related("registry__group")):
            unlink(link, reason="upstream deleted")
        if upstream.is_local:
            events.local_upstream_deleted(upstream, NameClaim.objects.filter(upstream=upstream).count())
        else:
            events.remote_upstream_deleted(upstream)
        upstream.delete()


# --- local upstreams ---------------------------------------------------------------------------


MAX_CLAIMED_SCOPES = 20


def _scope_fields():
    from registry import formats

    return {f.virtual.scope_claims for f in formats.all_formats() if f.virtual and f.virtual.scope_claims}


def claimed_scopes_param(data, support):
    """The format's namespace claims (its field VirtualSupport.scope_claims, `claimed_scopes` say;
    a list, or one comma- or space-separated string), normalized by the format; None when
    absent. Another format's field is refused."""
    for other in sorted(_scope_fields() - {support.scope_claims}):
        if data.get(other) is not None:
            raise ValidationFailed({other: ["is not supported for this package format"]})
    field = support.scope_claims
    value = data.get(field) if field else None
    if value is None:
        return None
    if hasattr(data, "getlist"):
        value = data.getlist(field)
        value = value[0] if len(value) == 1 else value
    if isinstance(value, str):
        value = [part for part in value.replace(" ", ",").split(",") if part]
    if not isinstance(value, list):
        raise ParameterInvalid(f"{field} is invalid")
    if len(value) > MAX_CLAIMED_SCOPES:
        raise ValidationFailed({field: [f"must be at most {MAX_CLAIMED_SCOPES} entries"]})
    scopes = []
    for entry in value:
        try:
            scope = support.scope_claim(entry)
        except ValueError as exc:
            raise ValidationFailed({field: [f"{str(entry)[:255]!r} is not valid"]}) from exc
        if scope not in scopes:
            scopes.append(scope)
    return scopes


def create_local_upstream(registry, data, can_read_target):
    """A local upstream of `registry`'s group serving a project or group of this instance.
    `can_read_target(target)` raises the policy's error when the caller may not read it."""
    project_id = data.get("local_project_id")
    group_id = data.get("local_group_id")
    if (project_id is None) == (group_id is None):
        raise ParameterInvalid("exactly one of local_project_id, local_group_id must be provided")
    name = text_param(data, "name", 255, required=True)
    description = text_param(data, "description", 1024) or ""
    support = registry_format_support(registry)
    values = _validity(data, support, creating=True)
    scopes = claimed_scopes_param(data, support) or []
    model, ref = (Project, project_id) if project_id is not None else (Group, group_id)
    key = "local_project_id" if project_id is not None else "local_group_id"
    if not str(ref).isascii() or not str(ref).isdigit():
        raise ParameterInvalid(f"{key} is invalid")
    target = model.objects.filter(pk=int(ref)).first()
    if target is None:
        raise ValidationFailed({key.removesuffix("_id"): ["must exist"]})
    can_read_target(target)
    root_id = registry.group_id
    ancestors = target.group_ids if model is Project else target.traversal_ids
    inside = bool(ancestors) and ancestors[0] == root_id
    if not inside and not settings.VR_CROSS_GROUP_LOCAL:
        raise ValidationFailed({key.removesuffix("_id"): ["must belong to the same top-level group"]})
    with transaction.atomic():
        taken = Upstream.objects.filter(group_id=root_id, format=registry.format, **{key: target.pk})
        if taken.exists():
            raise ValidationFailed({"group": ["already has a local upstream for this target"]})
        _check_room(registry)
        upstream = Upstream.objects.create(
            group_id=root_id,
            format=registry.format,
            kind=Upstream.Kind.LOCAL,
            name=name,
            description=description,
            **{key.removesuffix("_id"): target},
            **values,
        )
        claims.backfill(upstream, support.implicit_claims(registry.group))
        link = link_upstream(registry, upstream, audited=False)
        events.upstream_created(upstream, registry)
        claims.add_scope_claims(upstream, scopes, f"{support.scope_claims} of the new local upstream")
    return upstream, link


def update_local_upstream(upstream, fmt, data, may_release=lambda: None):
    """`may_release()` raises the policy's error when the caller may not release claims (a
    `claimed_scopes` that drops a scope releases its claim)."""
    name = text_param(data, "name", 255)
    description = text_param(data, "description", 1024)
    values = _validity(data, fmt.virtual, creating=False)
    scopes = claimed_scopes_param(data, fmt.virtual)
    if name is None and description is None and not values and scopes is None:
        raise ParameterInvalid("name, description are missing, at least one parameter must be provided")
    if name is not None and not name.strip():
        raise ValidationFailed({"name": ["can't be blank"]})
    if scopes is not None and set(claims.scope_claims(upstream, fmt.virtual)) - set(scopes):
        may_release()
    before = _upstream_settings(upstream)
    with transaction.atomic():
        if scopes is not None:
            claims.set_scope_claims(upstream, fmt.virtual, scopes)
        if name is not None:
            upstream.name = name
        if description is not None:
            upstream.description = description
        for field, value in values.items():
            setattr(upstream, field, value)
        upstream.save()
        events.upstream_updated(upstream, audit.changes(before, _upstream_settings(upstream)))
    return upstream


def registry_format_support(registry):
    from registry import formats

    return formats.get(registry.format).virtual


# --- rules -------------------------------------------------------------------------------------


def add_rule(upstream, support, data):
    """A new allow or deny rule of a remote upstream (spec §1.9), as registry.virtual.rules
    checks it (at most UpstreamRule.MAX_PER_UPSTREAM, regular expressions RE2 accepts)."""
    with transaction.atomic():
        Upstream.objects.select_for_update().filter(pk=upstream.pk).exists()  # one count at a time
        try:
            fields = rules.check(data, support, upstream.rules.count())
        except rules.RuleInvalid as exc:
            raise ValidationFailed(exc.errors) from exc
        rule = UpstreamRule.objects.create(upstream=upstream, **fields)
        events.rule_created(upstream, rule)
        return rule


def delete_rule(upstream, rule_id):
    """Whether `upstream` had the rule `rule_id` (now deleted)."""
    with transaction.atomic():
        rule = UpstreamRule.objects.select_for_update().filter(upstream=upstream, pk=rule_id).first()
        if rule is None:
            return False
        events.rule_deleted(upstream, rule)
        rule.delete()
    return True


# --- order -------------------------------------------------------------------------------------


def _check_room(registry):
    if RegistryUpstream.objects.filter(registry=registry).count() >= MAX_UPSTREAMS:
        raise ValidationFailed({"registry_upstreams.position": [f"must be less than or equal to {MAX_UPSTREAMS}"]})


def link_upstream(registry, upstream, audited=True):
    """Append `upstream` to `registry` (last position). `audited=False`: the caller records the
    change (a new upstream's created event names its registry)."""
    with transaction.atomic():
        links = RegistryUpstream.objects.select_for_update().filter(registry=registry)
        positions = [link.position for link in links]
        if any(link.upstream_id == upstream.pk for link in links):
            raise ValidationFailed({"upstream": ["has already been taken"]})
        if len(positions) >= MAX_UPSTREAMS:
            raise ValidationFailed({"registry_upstreams.position": [f"must be less than or equal to {MAX_UPSTREAMS}"]})
        position = max(positions, default=0) + 1
        link = RegistryUpstream.objects.create(registry=registry, upstream=upstream, position=position)
        if audited:
            events.upstream_linked(registry, upstream, position)
        return link


def move(link, position):
    """Put `link` at `position` (1..n); the others shift to keep 1..n contiguous."""
    with transaction.atomic():
        links = RegistryUpstream.objects.select_for_update().filter(registry_id=link.registry_id)
        links = list(links.order_by("position"))
        if not 1 <= position <= min(len(links), MAX_UPSTREAMS):
            raise ValidationFailed({"position": [f"must be between 1 and {len(links)}"]})
        before = next((other.position for other in links if other.pk == link.pk), link.position)
        order = [other for other in links if other.pk != link.pk]
        order.insert(position - 1, link)
        _renumber(order)
        events.position_changed(link, before, position)
    link.position = position
    return link


def _renumber(order):
    """Positions 1..n in `order`, in two steps so the unique (registry, position) never clashes
    on databases that check it per row."""
    if not order:
        return
    ids = [link.pk for link in order]
    RegistryUpstream.objects.filter(pk__in=ids).update(position=F("position") + 1000)
    for index, link in enumerate(order, start=1):
        RegistryUpstream.objects.filter(pk=link.pk).update(position=index)
    changes.registries_changed({link.registry_id for link in order})  # updates send no signal


def unlink(link, reason="removed from the registry"):
    """Take `link` out of its registry; the positions after it move down. An audit event: for a
    local upstream `virtual_registry_local_upstream_unlinked` (its names stop hiding remote ones
    in that registry), for a remote one `virtual_registry_upstream_unlinked`."""
    with transaction.atomic():
        rest = list(
            RegistryUpstream.objects.select_for_update()
            .filter(registry_id=link.registry_id)
            .exclude(pk=link.pk)
            .order_by("position")
        )
        link.delete()
        _renumber(rest)
        if link.upstream.is_local:
            events.local_upstream_unlinked(link.registry, link.upstream, reason)
        else:
            events.remote_upstream_unlinked(link.registry, link.upstream, reason)


# --- test connection ---------------------------------------------------------------------------


def test_connection(fmt, url, auth):
    """{"success": true} or {"success": false, "result": "Error: ..."} for a HEAD of the format's
    probe path: 2xx and 404 succeed. The result never holds a body or a credential."""
    try:
        check_url(url)
        response = http.request("HEAD", normalize_url(url) + fmt.virtual.test_path, auth=auth)
    except ValidationFailed as exc:
        return {"success": False, "result": f"Error: url {exc.errors['url'][0]}"}
    except http.UpstreamUnavailable as exc:
        return {"success": False, "result": f"Error: {exc}"}
    response.release()
    if 200 <= response.status < 300 or response.status == 404:
        return {"success": True}
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    return {"success": False, "result": f"Error: {response.status} - {reason}"}
