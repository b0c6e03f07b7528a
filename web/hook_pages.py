"""Webhook pages for projects (Maintainers) and groups (Owners): the hooks with their state, a
form to add one, and each hook's page: edit, test, the delivery log (status, duration, the start
of the answer) with a resend button per delivery, delete. Tokens are written, never shown; the
rules are registry.webhooks', as for the REST API."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import roles
from registry import webhooks
from registry.errors import NotFound
from registry.models import Webhook
from web.pages import group_can_admin, load_group, load_project, page, project_nav

LOG_LENGTH = 50


class HookForm(forms.Form):
    url = forms.CharField(max_length=2048, label="URL")
    name = forms.CharField(max_length=255, required=False)
    token = forms.CharField(
        max_length=1024,
        required=False,
        label="Secret token",
        widget=forms.PasswordInput(render_value=False),
        help_text="Sent as X-Gitlab-Token; never shown again",
    )
    package_events = forms.BooleanField(required=False, initial=True, label="Package events")
    enable_ssl_verification = forms.BooleanField(required=False, initial=True, label="Enable SSL verification")

    def fields_to_save(self, keep_token):
        data = dict(self.cleaned_data)
        if keep_token and not data["token"]:
            data.pop("token")
        return data


def _owner(request, kind, ref):
    if kind == "project":
        project, _ = load_project(request, ref, roles.ADMIN_PROJECT)
        return project, {**project_nav(request, project), "base": f"/{project.full_path}/-/hooks"}
    group = load_group(request, ref, roles.ADMIN_GROUP)
    context = {
        "group": group,
        "group_admin": group_can_admin(request, group),
        "base": f"/groups/{group.full_path}/-/hooks",
    }
    return group, context


def _save(form, hook, keep_token=False):
    if not form.is_valid():
        return False
    try:
        webhooks.save(hook, webhooks.clean(form.fields_to_save(keep_token), partial=keep_token))
    except webhooks.HookError as exc:
        form.add_error("url" if str(exc).startswith("url") else None, str(exc))
        return False
    return True


def _hooks_page(kind):
    @require_http_methods(["GET", "POST"])
    @login_required
    @page
    def view(request, ref):
        owner, context = _owner(request, kind, ref)
        form = HookForm()
        status = 200
        if request.method == "POST":
            form = HookForm(request.POST)
            if _save(form, Webhook(**{kind: owner})):
                messages.success(request, "Webhook added.")
                return redirect(context["base"])
            status = 400
        hooks = Webhook.objects.filter(**{kind: owner}).order_by("id")
        return render(request, "web/hooks.html", {**context, "hooks": hooks, "form": form}, status=status)

    return view


def _hook(owner, kind, hook_id):
    hook = Webhook.objects.filter(**{kind: owner}, pk=hook_id).first()
    if hook is None:
        raise NotFound()
    return hook


def _hook_page(kind):
    @require_http_methods(["GET", "POST"])
    @login_required
    @page
    def view(request, ref, hook_id):
        owner, context = _owner(request, kind, ref)
        hook = _hook(owner, kind, hook_id)
        status = 200
        if request.method == "POST":
            form = HookForm(request.POST)
            if _save(form, hook, keep_token=True):
                messages.success(request, "Webhook saved.")
                return redirect(f"{context['base']}/{hook.pk}")
            status = 400
        else:
            form = HookForm(
                initial={
                    "url": hook.url,
                    "name": hook.name,
                    "package_events": hook.package_events,
                    "enable_ssl_verification": hook.enable_ssl_verification,
                }
            )
        deliveries = hook.deliveries.order_by("-id")[:LOG_LENGTH]
        context = {**context, "hook": hook, "form": form, "deliveries": deliveries}
        return render(request, "web/hook.html", context, status=status)

    return view


def _hook_action(kind, action):
    @require_POST
    @login_required
    @page
    def view(request, ref, hook_id, delivery_id=None):
        owner, context = _owner(request, kind, ref)
        hook = _hook(owner, kind, hook_id)
        if action == "delete":
            hook.delete()
            messages.success(request, "Webhook deleted.")
            return redirect(context["base"])
        if action == "test":
            webhooks.test_event(hook)
            messages.success(request, "Test event queued.")
        else:
            delivery = hook.deliveries.filter(pk=delivery_id).first()
            if delivery is None:
                raise NotFound()
            webhooks.resend(delivery)
            messages.success(request, "Delivery queued again.")
        return redirect(f"{context['base']}/{hook.pk}")

    return view


project_hooks = _hooks_page("project")
group_hooks = _hooks_page("group")
project_hook = _hook_page("project")
group_hook = _hook_page("group")
project_hook_test = _hook_action("project", "test")
group_hook_test = _hook_action("group", "test")
project_hook_resend = _hook_action("project", "resend")
group_hook_resend = _hook_action("group", "resend")
project_hook_delete = _hook_action("project", "delete")
group_hook_delete = _hook_action("group", "delete")
