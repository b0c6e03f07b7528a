"""Allow and deny rules of remote upstreams (spec §1.9).

A rule matches one target of a request (the format's VirtualSupport.rule_targets, such as a
name, a scope, a group or artifact id, a version) against a wildcard pattern (`*` is any run of
characters, the whole value must match) or an anchored regular expression. Regular expressions
are evaluated only by a linear-time engine (google-re2); without it regex rules are refused
(400). A target the request has no value for (the version of a metadata document) matches no
rule. Evaluation: any matching deny rule skips the upstream; an upstream with allow rules is used
only when one matches.
"""

import re

from registry.virtual.models import UpstreamRule

try:  # pragma: no cover - optional
    import re2
except ImportError:  # pragma: no cover - the default install
    re2 = None


class RuleInvalid(Exception):
    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


def _wildcard(pattern, value, fold):
    expression = "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern))
    return re.fullmatch(expression, value, re.IGNORECASE if fold else 0) is not None


def matches(rule, values, support):
    value = values.get(rule.target)
    if value is None:
        return False
    fold = rule.target in support.case_insensitive_targets
    if rule.pattern_type == UpstreamRule.PatternType.WILDCARD:
        return _wildcard(rule.pattern, value, fold)
    if re2 is None:
        return False
    options = re2.Options()
    options.case_sensitive = not fold
    return re2.fullmatch(rule.pattern, value, options=options) is not None


def allowed(upstream_rules, values, support):
    if any(r.rule_type == UpstreamRule.RuleType.DENY and matches(r, values, support) for r in upstream_rules):
        return False
    allows = [r for r in upstream_rules if r.rule_type == UpstreamRule.RuleType.ALLOW]
    return not allows or any(matches(r, values, support) for r in allows)


def check(data, support, existing):
    """The fields of a new rule, or RuleInvalid({"field": ["text"]})."""
    fields = {}
    for name, choices in (
        ("rule_type", UpstreamRule.RuleType.values),
        ("pattern_type", UpstreamRule.PatternType.values),
        ("target", list(support.rule_targets)),
    ):
        value = data.get(name)
        if value not in choices:
            raise RuleInvalid({name: [f"must be one of {', '.join(choices)}"]})
        fields[name] = value
    pattern = data.get("pattern")
    if not isinstance(pattern, str) or not pattern or len(pattern) > 255 or not pattern.isprintable():
        raise RuleInvalid({"pattern": ["must be 1 to 255 printable characters"]})
    if fields["pattern_type"] == UpstreamRule.PatternType.REGEX:
        if re2 is None:
            raise RuleInvalid({"pattern_type": ["regex rules need a linear-time engine (google-re2), not installed"]})
        try:
            re2.compile(pattern)
        except re2.error as exc:
            raise RuleInvalid({"pattern": ["is not a valid regular expression"]}) from exc
    fields["pattern"] = pattern
    if existing >= UpstreamRule.MAX_PER_UPSTREAM:
        raise RuleInvalid({"rules": [f"must be at most {UpstreamRule.MAX_PER_UPSTREAM} per upstream"]})
    return fields
