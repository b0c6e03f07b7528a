from django import template

from accounts.roles import AccessLevel

register = template.Library()


@register.filter
def role_name(level):
    try:
        return AccessLevel(int(level)).label
    except (TypeError, ValueError):
        return ""


@register.simple_tag(takes_context=True)
def query_with(context, **changes):
    """The current query string with some parameters replaced (pagination, sorting links)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        params[key] = value
    return "?" + params.urlencode()


@register.simple_tag(takes_context=True)
def may_read_virtual_registries(context, group):
    """Whether the group has virtual registries (a top-level group) the caller may see."""
    from accounts.roles import READ_VIRTUAL_REGISTRY
    from web.virtual_registry_pages import may

    request = context.get("request")
    if request is None or group is None or group.parent_id is not None:
        return False
    return may(request, group, READ_VIRTUAL_REGISTRY)
