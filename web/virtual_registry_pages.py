"""The "Virtual registries" pages of a top-level group (spec/virtual-registries.md; issue 16, "Web UI").

- `/groups/<group>/-/virtual_registries`: the group's registries per format and its upstreams, a
  form to create a registry (Maintainer+) and the cleanup policy of the group's caches (Owner).
- `…/virtual_registries/<format>/registries/new`: a new registry of that format with its own
  options too (VirtualSupport.registry_options with registry_option_labels), Maintainer+.
- `…/virtual_registries/<format>/registries/<id>`: one registry: edit (name, description,
  `retain_removed_versions` and the format's own options, VirtualSupport.registry_options), delete,
  purge its cache; its upstreams in order with up/down buttons, each one's health and a "Test
  connection" button; forms to add a remote upstream, a local upstream (a project or group of the
  group, with the format's namespace claims, VirtualSupport.scope_claims) or one the group already
  has; the format's client configuration with a copy button.
- `…/virtual_registries/<format>/upstreams/<id>`: one upstream: edit (secrets are written, never
  shown back: `has_credentials` only; a remote one's `file_hosts` as the API takes them), test,
  delete; a remote upstream's cache entries with search and delete, and its allow/deny rules
  (Maintainers, as the API's rules); a local upstream's namespace claims (edited with it) and the
  names it claims, released one by one (Owners).

Who: registry.policy.authorize_virtual_registry, as for the REST API: members of the top-level group
(or of anything inside it) read, Maintainers write, Owners the cleanup policy; signed-out callers
go to the sign-in page, non-members and subgroups get 404, members without the role 403. Rules
are listed and changed by Maintainers only (the API answers others 403); claims listed and released
by Owners, and dropping a namespace claim while editing a local upstream is also for Owners.
Every change goes through registry.virtual.services, registry.virtual.claims,
registry.virtual.cleanup and the API's own helpers (api.virtual_registries), so a page accepts and
refuses exactly what the API does, in its words.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts import roles
from accounts.models import Group, Project
from api import virtual_registries as api
from api.serializers import base_url
from registry import formats, policy
from registry.errors import Forbidden, NotFound, Unauthenticated
from registry.virtual import claims, cleanup, health, resolver, services
from registry.virtual.models import (
    CacheEntry,
    NameClaim,
    RegistryUpstream,
    Upstream,
    UpstreamRule,
    VirtualCleanupPolicy,
    VirtualRegistry,
)
from web.pages import group_nav, page, principal_of

READ = roles.READ_VIRTUAL_REGISTRY
WRITE = roles.ADMIN_VIRTUAL_REGISTRY
CLEANUP = roles.ADMIN_VIRTUAL_REGISTRY_CLEANUP
CLAIMS = roles.ADMIN_VIRTUAL_REGISTRY_CLAIMS
ENTRIES_PER_PAGE = 50
VALIDITY_FIELDS = ("cache_validity_hours", "metadata_cache_validity_hours", "negative_cache_minutes")
# How the services' error keys read at the start of a sentence.
ERROR_SUBJECTS = {"registry_upstreams.position": "Position", "group": "The group", "upstream": "This upstream"}


# --- who and what --------------------------------------------------------------------------------


def load_group(request, ref, action):
    """The top-level group `ref` names, once the policy allows `action` on its virtual registries."""
    principal = principal_of(request)
    group = policy.resolve_group(ref)
    if group is None:
        policy.deny_unknown(principal, "Group")
    policy.authorize_virtual_registry(principal, group, action)
    return group


def may(request, group, action):
    """Whether the policy lets the caller do `action` on the group's virtual registries."""
    try:
        policy.authorize_virtual_registry(principal_of(request), group, action)
    except (Unauthenticated, NotFound, Forbidden):
        return False
    return True


def virtual_format(name):
    fmt = formats.find(name)
    if fmt is None or fmt.virtual is None:
        raise NotFound()
    return fmt


def load_registry(group, fmt, registry_id):
    registry = VirtualRegistry.objects.filter(pk=registry_id, group=group, format=fmt.name).first()
    if registry is None:
        raise NotFound()
    return registry


def load_upstream(group, fmt, upstream_id):
    upstream = Upstream.objects.filter(pk=upstream_id, group=group, format=fmt.name).first()
    if upstream is None:
        raise NotFound()
    return upstream


def base_path(group):
    return f"/groups/{group.full_path}/-/virtual_registries"


def registry_path(group, registry):
    return f"{base_path(group)}/{registry.format}/registries/{registry.pk}"


def upstream_path(group, upstream):
    return f"{base_path(group)}/{upstream.format}/upstreams/{upstream.pk}"


def back(request, group, default):
    """Where an action returns to: the page it was posted from (`next`), when that is one of the
    group's virtual registry pages, else `default`."""
    target = request.POST.get("next", "")
    allowed = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    if allowed and target.startswith(base_path(group) + "/") and "//" not in target:
        return redirect(target)
    return redirect(default)


def health_of(upstream):
    """What the page says about an upstream's health (registry.virtual.health's view of it)."""
    state = health.describe(upstream)
    return {**state, "backing_off": state["retry_at"] is not None and health.is_unhealthy(upstream)}


# --- errors --------------------------------------------------------------------------------------


def error_sentences(exc):
    """(field, sentence) pairs of a service error, in GitLab's words."""
    if isinstance(exc, services.ParameterInvalid):
        return [(None, exc.message[:1].upper() + exc.message[1:])]
    pairs = []
    for field, texts in exc.errors.items():
        subject = ERROR_SUBJECTS.get(field, field.replace("_", " ").capitalize())
        pairs.extend((field, f"{subject} {text}") for text in texts)
    return pairs


def errors_into(form, exc):
    """A service error onto the form: under the field it names (with the field's label), else
    above the form."""
    if isinstance(exc, services.ValidationFailed):
        for field, texts in exc.errors.items():
            if field in form.fields:
                for text_ in texts:
                    form.add_error(field, f"{form.fields[field].label} {text_}")
        exc = services.ValidationFailed({f: t for f, t in exc.errors.items() if f not in form.fields})
    for _, sentence in error_sentences(exc):
        form.add_error(None, sentence)


def errors_as_messages(request, exc):
    for _, sentence in error_sentences(exc):
        messages.error(request, sentence)


SERVICE_ERRORS = (services.ValidationFailed, services.ParameterInvalid)


# --- forms (values only: the services validate them) ---------------------------------------------


def text(label, **kwargs):
    return forms.CharField(label=label, required=False, strip=False, **kwargs)


def filled(cleaned, names):
    """The fields of `names` the form filled in (an empty input is no value)."""
    return {name: cleaned[name] for name in names if cleaned.get(name, "") != ""}


RETAIN_LABEL = "Keep serving cached files of versions their upstream removed"
RETAIN_HELP = "Off: such a file is 404 (a version pulled upstream, say for malware, is not served)"


def flag(label, help_text=""):
    return forms.BooleanField(label=label, required=False, help_text=help_text)


class RegistryForm(forms.Form):
    format = forms.ChoiceField(label="Format", choices=())
    name = text("Name", widget=forms.TextInput(attrs={"required": True}))
    description = text("Description", widget=forms.Textarea(attrs={"rows": 2}))
    retain_removed_versions = flag(RETAIN_LABEL, RETAIN_HELP)

    def __init__(self, *args, fmt=None, creating=False, **kwargs):
        """`fmt`: the format of the registry (its own options too), being edited or, `creating`,
        a new one; None: a new one of the format chosen in the form (without the options)."""
        auto_id = "new-registry-%s" if fmt is None or creating else "registry-%s"
        super().__init__(*args, auto_id=auto_id, **kwargs)
        self.flags = ["retain_removed_versions"]
        if fmt is None:
            self.fields["format"].choices = [(f.name, f.label) for f in formats.with_virtual_support()]
            return
        del self.fields["format"]
        for option, default in fmt.virtual.registry_options.items():
            self.fields[option] = flag(fmt.virtual.registry_option_labels.get(option, option))
            self.flags.append(option)
            if creating:
                self.fields[option].initial = default

    def values(self):
        """The services' body: text as typed, each flag as "true"/"false"."""
        data = filled(self.cleaned_data, ("name", "description"))
        data.update({name: "true" if self.cleaned_data[name] else "false" for name in self.flags})
        return data


def registry_initial(fmt, registry):
    return {
        "name": registry.name,
        "description": registry.description,
        "retain_removed_versions": registry.retain_removed_versions,
        **resolver.registry_options(registry, fmt),
    }


def registry_settings(fmt, registry):
    """(label, on) of each of the registry's settings, as the API renders them."""
    options = resolver.registry_options(registry, fmt)
    labels = fmt.virtual.registry_option_labels
    return [(RETAIN_LABEL, registry.retain_removed_versions)] + [
        (labels.get(name, name), value) for name, value in options.items()
    ]


def scope_claims_field(form, fmt, initial=None):
    """The format's namespace claims field (VirtualSupport.scope_claims), when it has one."""
    support = fmt.virtual
    if not support.scope_claims:
        return None
    help_text = f"{support.scope_claims_help}. Several: separated by commas."
    if initial is not None:
        help_text += " Removing one releases its claim (Owners only)."
    form.fields[support.scope_claims] = text(support.scope_claims_label or support.scope_claims, help_text=help_text)
    if initial is not None:
        form.initial[support.scope_claims] = ", ".join(initial)
    return support.scope_claims


def validity_fields(form, upstream=None):
    defaults = " (empty: the format's default)" if upstream is None else ""
    form.fields["cache_validity_hours"] = text(
        "Cache validity (hours)", help_text=f"Re-check changeable files after this long; 0: never{defaults}"
    )
    form.fields["metadata_cache_validity_hours"] = text(
        "Metadata cache validity (hours)", help_text=f"Re-check metadata documents after this long{defaults}"
    )
    form.fields["negative_cache_minutes"] = text(
        "Negative cache (minutes)", help_text=f"Remember an upstream's 404 this long; 0: never{defaults}"
    )


class RemoteUpstreamForm(forms.Form):
    url = text("URL", widget=forms.URLInput(attrs={"required": True}))
    name = text("Name", help_text="Default: the URL's host")
    description = text("Description")
    username = text("Username")
    password = text(
        "Password",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Never shown again",
    )

    def __init__(self, *args, fmt, upstream=None, **kwargs):
        super().__init__(*args, auto_id="remote-%s" if upstream is None else "upstream-%s", **kwargs)
        self.fields["url"].help_text = fmt.virtual_upstream_url_help
        if fmt.virtual.accepts_auth_token:
            self.fields["auth_token"] = text(
                "Auth token",
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text="Sent as a Bearer token instead of a username and password; never shown again",
            )
        # The API's `file_hosts`, as one comma-separated text (services.file_hosts_param checks it).
        hosts_help = "Other hosts its metadata may place files on: host or host:port, separated by commas."
        if upstream is None:
            hosts_help += " Empty: the format's default for well-known registries."
        else:
            hosts_help += " Empty: none."
        self.fields["file_hosts"] = text("File hosts", help_text=hosts_help)
        if upstream is not None:
            self.fields["password"].help_text = "Leave empty to keep the stored one"
            if "auth_token" in self.fields:
                self.fields["auth_token"].help_text = "Leave empty to keep the stored one"
            self.fields["url"].help_text = "A new URL clears the stored credentials unless you enter them again"
            self.fields["clear_credentials"] = forms.BooleanField(label="Remove the stored credentials", required=False)
        validity_fields(self, upstream)

    def create_data(self):
        return filled(self.cleaned_data, self.fields)

    def changes(self, upstream):
        """What differs from the saved upstream, as the API's PATCH body; secrets only when typed."""
        cleaned = self.cleaned_data
        data = {}
        for name in ("url", "name", "description"):
            if cleaned[name] != getattr(upstream, name):
                data[name] = cleaned[name]
        if cleaned["file_hosts"] != ", ".join(upstream.file_hosts):
            data["file_hosts"] = cleaned["file_hosts"]
        for name in VALIDITY_FIELDS:
            if cleaned[name] != "" and cleaned[name] != str(getattr(upstream, name)):
                data[name] = cleaned[name]
        if cleaned.get("clear_credentials"):
            data.update(username="", password="")
            if "auth_token" in self.fields:
                data["auth_token"] = ""
            return data
        if cleaned["username"] != upstream.username:
            data["username"] = cleaned["username"]
        if cleaned["password"]:
            data["password"] = cleaned["password"]
            data["username"] = cleaned["username"]
        if cleaned.get("auth_token"):
            data["auth_token"] = cleaned["auth_token"]
        return data


class LocalUpstreamForm(forms.Form):
    target = forms.ChoiceField(label="Project or group", choices=())
    name = text("Name", widget=forms.TextInput(attrs={"required": True}))
    description = text("Description")

    def __init__(self, *args, group, fmt, **kwargs):
        super().__init__(*args, auto_id="local-%s", **kwargs)
        self.claims_field = scope_claims_field(self, fmt)
        below = Q(full_path__startswith=f"{group.full_path}/")
        groups = Group.objects.filter(Q(pk=group.pk) | below).order_by("full_path")
        projects = Project.objects.filter(below).order_by("full_path")
        self.fields["target"].choices = [
            ("Projects", [(f"project:{p.pk}", p.full_path) for p in projects]),
            ("Groups", [(f"group:{g.pk}", g.full_path) for g in groups]),
        ]
        validity_fields(self)

    def create_data(self):
        names = ("name", "description", *VALIDITY_FIELDS, *([self.claims_field] if self.claims_field else []))
        data = filled(self.cleaned_data, names)
        kind, _, pk = self.cleaned_data["target"].partition(":")
        data[f"local_{kind}_id"] = pk
        return data


class LocalUpstreamEditForm(forms.Form):
    name = text("Name", widget=forms.TextInput(attrs={"required": True}))
    description = text("Description")

    def __init__(self, *args, upstream, fmt, **kwargs):
        super().__init__(*args, auto_id="upstream-%s", **kwargs)
        self.held = claims.scope_claims(upstream, fmt.virtual) if fmt.virtual.scope_claims else []
        self.claims_field = scope_claims_field(self, fmt, self.held)
        validity_fields(self, upstream)

    def changes(self, upstream):
        cleaned = self.cleaned_data
        data = {name: cleaned[name] for name in ("name", "description") if cleaned[name] != getattr(upstream, name)}
        for name in VALIDITY_FIELDS:
            if cleaned[name] != "" and cleaned[name] != str(getattr(upstream, name)):
                data[name] = cleaned[name]
        if self.claims_field and cleaned[self.claims_field] != ", ".join(self.held):
            data[self.claims_field] = cleaned[self.claims_field]  # the services read and check it
        return data


class RuleForm(forms.Form):
    """A new allow/deny rule; the choices are the API's, registry.virtual.rules checks them."""

    rule_type = forms.ChoiceField(label="Rule", choices=[("deny", "Deny"), ("allow", "Allow")])
    target = forms.ChoiceField(label="Matched against", choices=())
    pattern_type = forms.ChoiceField(
        label="Pattern type", choices=[("wildcard", "Wildcard"), ("regex", "Regular expression (RE2)")]
    )
    pattern = text(
        "Pattern",
        widget=forms.TextInput(attrs={"required": True}),
        help_text="Wildcard: * is any run of characters, no * is an exact match. "
        "Regular expression: the whole value must match.",
    )

    def __init__(self, *args, fmt, **kwargs):
        super().__init__(*args, auto_id="rule-%s", **kwargs)
        self.fields["target"].choices = [(t, t.replace("_", " ")) for t in fmt.virtual.rule_targets]


class LinkForm(forms.Form):
    upstream = forms.ChoiceField(label="Upstream of the group", choices=())

    def __init__(self, *args, registry, **kwargs):
        super().__init__(*args, auto_id="link-%s", **kwargs)
        linked = RegistryUpstream.objects.filter(registry=registry).values("upstream_id")
        others = Upstream.objects.filter(group_id=registry.group_id, format=registry.format).exclude(pk__in=linked)
        self.fields["upstream"].choices = [(u.pk, f"{u.name} ({u.kind})") for u in others.order_by("name", "pk")]


class CleanupPolicyForm(forms.Form):
    enabled = forms.BooleanField(label="Delete cache entries nobody downloaded for a while", required=False)
    keep_n_days_after_download = text("Keep entries downloaded in the last (days)", help_text="1 to 365")
    cadence = forms.ChoiceField(
        label="Run every",
        choices=[(str(days), f"{days} day{'s' if days > 1 else ''}") for days in VirtualCleanupPolicy.CADENCES],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, auto_id="cleanup-%s", **kwargs)

    def values(self):
        data = {"enabled": "true" if self.cleaned_data["enabled"] else "false"}
        return {**data, **filled(self.cleaned_data, ("keep_n_days_after_download", "cadence"))}


# --- the group's overview -------------------------------------------------------------------------


def _overview(request, group, registry_form=None, cleanup_form=None, status=200):
    registries = (
        VirtualRegistry.objects.filter(group=group)
        .annotate(upstream_count=Count("registry_upstreams"))
        .order_by("name", "pk")
    )
    upstreams = (
        Upstream.objects.filter(group=group)
        .annotate(registry_count=Count("registry_upstreams"))
        .select_related("local_project", "local_group")
        .order_by("name", "pk")
    )
    sections = [
        {
            "format": fmt,
            "registries": [r for r in registries if r.format == fmt.name],
            "upstreams": [u for u in upstreams if u.format == fmt.name],
        }
        for fmt in formats.with_virtual_support()
    ]
    can_cleanup = may(request, group, CLEANUP)
    current_policy = VirtualCleanupPolicy.objects.filter(group=group).first() if can_cleanup else None
    if can_cleanup and cleanup_form is None:
        initial = {"keep_n_days_after_download": 30, "cadence": "7"}
        if current_policy is not None:
            initial = {
                "enabled": current_policy.enabled,
                "keep_n_days_after_download": current_policy.keep_n_days_after_download,
                "cadence": str(current_policy.cadence),
            }
        cleanup_form = CleanupPolicyForm(initial=initial)
    context = {
        **group_nav(request, group),
        "base": base_path(group),
        "sections": sections,
        "can_write": may(request, group, WRITE),
        "registry_form": registry_form or RegistryForm(),
        "can_cleanup": can_cleanup,
        "cleanup_policy": current_policy,
        "cleanup_form": cleanup_form,
    }
    return render(request, "web/virtual_registries.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@page
def group_virtual_registries(request, ref):
    """GET: the overview (members). POST: a new registry (Maintainer+)."""
    if request.method == "GET":
        return _overview(request, load_group(request, ref, READ))
    group = load_group(request, ref, WRITE)
    form = RegistryForm(request.POST)
    if form.is_valid():
        try:
            fmt = virtual_format(form.cleaned_data["format"])
            registry = services.create_registry(group, fmt.name, form.values())
        except SERVICE_ERRORS as exc:
            errors_into(form, exc)
        else:
            messages.success(request, f"Registry {registry.name} created.")
            return redirect(registry_path(group, registry))
    return _overview(request, group, registry_form=form, status=400)


@require_POST
@login_required
@page
def cleanup_policy(request, ref):
    """The group's cleanup policy for every format's cache (Owner), created on first save."""
    group = load_group(request, ref, CLEANUP)
    form = CleanupPolicyForm(request.POST)
    if form.is_valid():
        current = VirtualCleanupPolicy.objects.filter(group=group).first()
        try:
            values = cleanup.clean(form.values(), partial=current is not None)
        except cleanup.PolicyInvalid as exc:
            form.add_error(None, str(exc)[:1].upper() + str(exc)[1:])
        else:
            cleanup.save(current or VirtualCleanupPolicy(group=group), values)
            messages.success(request, "Cleanup policy saved.")
            return redirect(base_path(group))
    return _overview(request, group, cleanup_form=form, status=400)


@require_http_methods(["GET", "POST"])
@login_required
@page
def registry_new(request, ref, format_name):
    """A new registry of the format the URL names, with the format's own options (Maintainer+)."""
    group = load_group(request, ref, WRITE)
    fmt = virtual_format(format_name)
    form = RegistryForm(request.POST if request.method == "POST" else None, fmt=fmt, creating=True)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                registry = services.create_registry(group, fmt.name, form.values())
            except SERVICE_ERRORS as exc:
                errors_into(form, exc)
            else:
                messages.success(request, f"Registry {registry.name} created.")
                return redirect(registry_path(group, registry))
    context = {**group_nav(request, group), "base": base_path(group), "fmt": fmt, "form": form}
    return render(request, "web/virtual_registry_new.html", context, status=status)


# --- one registry ----------------------------------------------------------------------------------


def _registry_page(request, group, fmt, registry, status=200, **forms_):
    links = list(
        RegistryUpstream.objects.filter(registry=registry)
        .select_related("upstream__local_project", "upstream__local_group")
        .annotate(
            cached=Count("upstream__cache_entries", filter=Q(upstream__cache_entries__status=CacheEntry.Status.DEFAULT))
        )
        .order_by("position")
    )
    rows = [{"link": link, "upstream": link.upstream, "health": health_of(link.upstream)} for link in links]
    endpoint = f"{base_url(request)}/api/v4/virtual_registries/packages/{fmt.name}/{registry.pk}"
    can_write = may(request, group, WRITE)
    context = {
        **group_nav(request, group),
        "base": base_path(group),
        "fmt": fmt,
        "registry": registry,
        "rows": rows,
        "endpoint": endpoint,
        "snippets": fmt.virtual_registry_snippets(endpoint),
        "settings": registry_settings(fmt, registry),
        "can_write": can_write,
        "here": registry_path(group, registry),
        "cache_fields": VALIDITY_FIELDS,
    }
    if can_write:
        context.update(
            edit_form=forms_.get("edit_form") or RegistryForm(fmt=fmt, initial=registry_initial(fmt, registry)),
            remote_form=forms_.get("remote_form") or RemoteUpstreamForm(fmt=fmt),
            local_form=forms_.get("local_form") or LocalUpstreamForm(group=group, fmt=fmt),
            link_form=forms_.get("link_form") or LinkForm(registry=registry),
        )
    return render(request, "web/virtual_registry.html", context, status=status)


def _registry_view(action):
    """A registry's page (GET, members) or one of its forms (POST, Maintainer+)."""

    @require_http_methods(["GET", "POST"] if action == "edit" else ["POST"])
    @login_required
    @page
    def view(request, ref, format_name, registry_id):
        group = load_group(request, ref, READ if request.method == "GET" else WRITE)
        fmt = virtual_format(format_name)
        registry = load_registry(group, fmt, registry_id)
        if request.method == "GET":
            return _registry_page(request, group, fmt, registry)
        return action_handlers[action](request, group, fmt, registry)

    return view


def _edit_registry(request, group, fmt, registry):
    form = RegistryForm(request.POST, fmt=fmt)
    if form.is_valid():
        try:
            values = {**form.values(), "name": form.cleaned_data["name"]}
            services.update_registry(registry, {**values, "description": form.cleaned_data["description"]})
        except SERVICE_ERRORS as exc:
            errors_into(form, exc)
        else:
            messages.success(request, "Registry saved.")
            return redirect(registry_path(group, registry))
    registry.refresh_from_db()
    return _registry_page(request, group, fmt, registry, status=400, edit_form=form)


def _delete_registry(request, group, fmt, registry):
    services.delete_registry(registry)
    messages.success(request, f"Registry {registry.name} deleted.")
    return redirect(base_path(group))


def _purge_registry(request, group, fmt, registry):
    services.purge_registry_cache(registry)
    messages.success(request, "The cache of the registry's own remote upstreams was emptied.")
    return redirect(registry_path(group, registry))


def _add_remote(request, group, fmt, registry):
    form = RemoteUpstreamForm(request.POST, fmt=fmt)
    if form.is_valid():
        try:
            upstream, _ = services.create_remote_upstream(group, fmt, form.create_data(), registry=registry)
        except SERVICE_ERRORS as exc:
            errors_into(form, exc)
        else:
            messages.success(request, f"Upstream {upstream.name} added.")
            return redirect(registry_path(group, registry))
    return _registry_page(request, group, fmt, registry, status=400, remote_form=form)


def _add_local(request, group, fmt, registry):
    form = LocalUpstreamForm(request.POST, group=group, fmt=fmt)
    if form.is_valid():
        try:
            check = api.local_target_check(principal_of(request))
            upstream, _ = services.create_local_upstream(registry, form.create_data(), check)
        except SERVICE_ERRORS as exc:
            errors_into(form, exc)
        else:
            messages.success(request, f"Local upstream {upstream.name} added.")
            return redirect(registry_path(group, registry))
    return _registry_page(request, group, fmt, registry, status=400, local_form=form)


def _link(request, group, fmt, registry):
    form = LinkForm(request.POST, registry=registry)
    if form.is_valid():
        upstream = load_upstream(group, fmt, form.cleaned_data["upstream"])
        try:
            services.link_upstream(registry, upstream)
        except SERVICE_ERRORS as exc:
            errors_into(form, exc)
        else:
            messages.success(request, f"Upstream {upstream.name} added.")
            return redirect(registry_path(group, registry))
    return _registry_page(request, group, fmt, registry, status=400, link_form=form)


action_handlers = {
    "edit": _edit_registry,
    "delete": _delete_registry,
    "purge": _purge_registry,
    "remote": _add_remote,
    "local": _add_local,
    "link": _link,
}
registry_page = _registry_view("edit")
registry_delete = _registry_view("delete")
registry_purge = _registry_view("purge")
registry_add_remote = _registry_view("remote")
registry_add_local = _registry_view("local")
registry_link = _registry_view("link")


def _link_action(action):
    """Move an upstream up or down the registry's order, or take it out of the registry."""

    @require_POST
    @login_required
    @page
    def view(request, ref, format_name, registry_id, link_id):
        group = load_group(request, ref, WRITE)
        fmt = virtual_format(format_name)
        registry = load_registry(group, fmt, registry_id)
        link = RegistryUpstream.objects.select_related("upstream").filter(pk=link_id, registry=registry).first()
        if link is None:
            raise NotFound()
        try:
            if action == "unlink":
                services.unlink(link)
                messages.success(request, f"Upstream {link.upstream.name} removed from the registry.")
            else:
                services.move(link, link.position + (-1 if action == "up" else 1))
                messages.success(request, f"Upstream {link.upstream.name} moved {action}.")
        except SERVICE_ERRORS as exc:
            errors_as_messages(request, exc)
        return redirect(registry_path(group, registry))

    return view


link_up = _link_action("up")
link_down = _link_action("down")
link_remove = _link_action("unlink")


# --- one upstream ----------------------------------------------------------------------------------


def _edit_form(fmt, upstream, data=None):
    if upstream.is_local:
        initial = {name: getattr(upstream, name) for name in ("name", "description", *VALIDITY_FIELDS)}
        return LocalUpstreamEditForm(data, upstream=upstream, fmt=fmt, initial=initial)
    fields = ("url", "name", "description", "username", *VALIDITY_FIELDS)
    initial = {f: getattr(upstream, f) for f in fields}
    initial["file_hosts"] = ", ".join(upstream.file_hosts)
    return RemoteUpstreamForm(data, fmt=fmt, upstream=upstream, initial=initial)


def _upstream_page(request, group, fmt, upstream, form=None, status=200, rule_form=None):
    search = request.GET.get("search", "").strip()
    entries = None
    if not upstream.is_local:
        listed = Paginator(api.cache_entries(upstream, search), ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
        entries = {"page": listed, "rows": [(api.cache_entry_id(entry), entry) for entry in listed]}
    can_write = may(request, group, WRITE)
    support = fmt.virtual
    held = None
    if upstream.is_local and support.scope_claims:
        held = {
            "label": support.scope_claims_label or support.scope_claims,
            "names": claims.scope_claims(upstream, support),
        }
    name_claims = None
    if upstream.is_local and may(request, group, CLAIMS):  # the API's claims list: Owners
        listed = NameClaim.objects.filter(upstream=upstream).order_by("name", "id")
        name_claims = Paginator(listed, ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    rules = None
    if not upstream.is_local and can_write:  # the API's rules: Maintainers
        rules = {
            "rows": list(UpstreamRule.objects.filter(upstream=upstream).order_by("id")),
            "form": rule_form or RuleForm(fmt=fmt),
            "max": UpstreamRule.MAX_PER_UPSTREAM,
        }
    context = {
        **group_nav(request, group),
        "base": base_path(group),
        "fmt": fmt,
        "upstream": upstream,
        "health": health_of(upstream),
        "links": upstream.registry_upstreams.select_related("registry").order_by("registry__name"),
        "entries": entries,
        "search": search,
        "can_write": can_write,
        "form": (form or _edit_form(fmt, upstream)) if can_write else None,
        "held": held,
        "name_claims": name_claims,
        "rules": rules,
        "here": upstream_path(group, upstream),
        "cache_fields": VALIDITY_FIELDS,
    }
    return render(request, "web/virtual_upstream.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@page
def upstream_page(request, ref, format_name, upstream_id):
    """GET: the upstream, its health and cache entries (members). POST: its new settings (Maintainer+)."""
    group = load_group(request, ref, READ if request.method == "GET" else WRITE)
    fmt = virtual_format(format_name)
    upstream = load_upstream(group, fmt, upstream_id)
    if request.method == "GET":
        return _upstream_page(request, group, fmt, upstream)
    form = _edit_form(fmt, upstream, request.POST)
    if form.is_valid():
        changes = form.changes(upstream)
        if not changes:
            messages.success(request, "Nothing to change.")
            return redirect(upstream_path(group, upstream))
        status = 400
        try:
            if upstream.is_local:
                # Dropping a namespace claim releases it: Owners only, as through the API.
                may_release = lambda: policy.authorize_virtual_registry(principal_of(request), group, CLAIMS)  # noqa: E731
                services.update_local_upstream(upstream, fmt, changes, may_release)
            else:
                services.update_remote_upstream(upstream, fmt, changes)
        except SERVICE_ERRORS as exc:
            errors_into(form, exc)
        except Forbidden:
            form.add_error(form.claims_field, "Only Owners may remove a claimed namespace (it releases the claim).")
            status = 403
        else:
            messages.success(request, "Upstream saved.")
            return redirect(upstream_path(group, upstream))
    else:
        status = 400
    upstream.refresh_from_db()
    return _upstream_page(request, group, fmt, upstream, form=form, status=status)


def _writable_upstream(request, ref, format_name, upstream_id, action=WRITE, remote=False):
    """(group, format, upstream) of a form that changes an upstream: the policy lets the caller do
    `action` (Maintainer+ unless told) on the group's virtual registries, the upstream is the
    group's, of the format the URL names, and, `remote`, a remote one (a local upstream has no
    cache and takes no rules: 404)."""
    group = load_group(request, ref, action)
    fmt = virtual_format(format_name)
    upstream = load_upstream(group, fmt, upstream_id)
    if remote and upstream.is_local:
        raise NotFound()
    return group, fmt, upstream


def _upstream_action(action):
    @require_POST
    @login_required
    @page
    def view(request, ref, format_name, upstream_id):
        remote = action in ("purge", "delete_entry")  # a local upstream has no cache
        group, fmt, upstream = _writable_upstream(request, ref, format_name, upstream_id, remote=remote)
        here = upstream_path(group, upstream)
        if action == "test":
            result = api.probe_saved_upstream(fmt, upstream)
            if result["success"]:
                messages.success(request, f"Connection to {upstream.name} succeeded.")
            else:
                messages.error(request, f"Connection to {upstream.name} failed: {result['result']}")
            return back(request, group, here)
        if action == "delete":
            services.delete_upstream(upstream)
            messages.success(request, f"Upstream {upstream.name} deleted.")
            return back(request, group, base_path(group))
        if action == "purge":
            services.purge_upstream_cache(upstream)
            messages.success(request, f"The cache of {upstream.name} was emptied.")
            return redirect(here)
        upstream_ref, relative_path = api.parse_cache_entry_id(request.POST.get("entry", ""))
        if upstream_ref != upstream.pk:
            raise NotFound()
        api.delete_cache_entry(upstream, relative_path)
        messages.success(request, f"Cache entry {relative_path} deleted.")
        return back(request, group, here)

    return view


upstream_test = _upstream_action("test")
upstream_delete = _upstream_action("delete")
upstream_purge = _upstream_action("purge")
cache_entry_delete = _upstream_action("delete_entry")


# --- rules and claims --------------------------------------------------------------------------------


@require_POST
@login_required
@page
def rule_add(request, ref, format_name, upstream_id):
    """A new allow/deny rule of a remote upstream (Maintainer+), checked by the API's service."""
    group, fmt, upstream = _writable_upstream(request, ref, format_name, upstream_id, remote=True)
    form = RuleForm(request.POST, fmt=fmt)
    if form.is_valid():
        try:
            rule = services.add_rule(upstream, fmt.virtual, form.cleaned_data)
        except SERVICE_ERRORS as exc:
            errors_into(form, exc)
        else:
            messages.success(request, f"Rule added: {rule.rule_type} {rule.target} {rule.pattern}.")
            return redirect(upstream_path(group, upstream) + "#rules")
    return _upstream_page(request, group, fmt, upstream, status=400, rule_form=form)


@require_POST
@login_required
@page
def rule_delete(request, ref, format_name, upstream_id, rule_id):
    group, _, upstream = _writable_upstream(request, ref, format_name, upstream_id, remote=True)
    if not services.delete_rule(upstream, rule_id):
        raise NotFound()
    messages.success(request, "Rule deleted.")
    return redirect(upstream_path(group, upstream) + "#rules")


@require_POST
@login_required
@page
def claim_release(request, ref, format_name, upstream_id, claim_id):
    """Release one name a local upstream claims (Owners, as the API's claims), audited."""
    group, _, upstream = _writable_upstream(request, ref, format_name, upstream_id, action=CLAIMS)
    claim = NameClaim.objects.filter(upstream=upstream, pk=claim_id).first() if upstream.is_local else None
    if claim is None:
        raise NotFound()
    claims.release(upstream, [claim], "released on the upstream's page")
    messages.success(request, f"Claim {claim.name} released.")
    return back(request, group, upstream_path(group, upstream) + "#claims")
