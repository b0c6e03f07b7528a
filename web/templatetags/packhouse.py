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
