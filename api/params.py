"""Parameters as GitLab's API reads them (Grape's coercion and `values:`), for every
management endpoint.

Booleans: `true`/`false`, `t`/`f`, `1`/`0`, `yes`/`no`, `y`/`n`, `on`/`off` in any case
(python-gitlab sends `True`/`False`), or a JSON boolean. Anything else is
`400 {"error": "<param> is invalid"}`: a filter is never silently dropped.
"""

from rest_framework import serializers

TRUE_SPELLINGS = frozenset({"true", "t", "1", "yes", "y", "on"})
FALSE_SPELLINGS = frozenset({"false", "f", "0", "no", "n", "off"})


def parse_boolean(value):
    """True or False for a spelling GitLab accepts; None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_SPELLINGS:
            return True
        if word in FALSE_SPELLINGS:
            return False
    return None


def boolean_param(params, name, default=None):
    """The boolean query parameter `name` of `params` (a QueryDict or dict): `default` when it is
    absent or empty, 400 `{"error": "<name> is invalid"}` when it is no boolean."""
    value = params.get(name)
    if value is None or value == "":
        return default
    parsed = parse_boolean(value)
    if parsed is None:
        raise serializers.ValidationError({name: "is invalid"})
    return parsed


def choice_param(params, name, values):
    """The query parameter `name`, one of `values` (None when absent or empty), else 400
    `{"error": "<name> does not have a valid value"}` (Grape's words)."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if value not in values:
        raise serializers.ValidationError({name: "does not have a valid value"})
    return value


class BooleanField(serializers.BooleanField):
    """A boolean body field read with `parse_boolean` (the same spellings as the query)."""

    default_error_messages = {"invalid": "is invalid"}
    default_empty_html = serializers.empty  # a form without the field has not given it (DRF: False)

    def to_internal_value(self, data):
        parsed = parse_boolean(data)
        if parsed is None:
            self.fail("invalid")
        return parsed
