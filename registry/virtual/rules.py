"""Allow and deny rules of remote upstreams (spec §1.9).

A rule matches one target of a request (the format's VirtualSupport.rule_targets, such as a
name, a scope, a group or artifact id, a version) against a wildcard pattern (`*` is any run of
characters, the whole value must match) or an anchored regular expression. Regular expressions
are compiled and evaluated only by RE2 (google-re2, pinned): linear time in the value, whatever
the pattern, so no rule can stall a request (no backtracking). Patterns RE2 refuses
(backreferences, lookaround, repetition over 1000, syntax errors) are a 400 when the rule is
saved. A target the request has no value for (the version of a metadata document) matches no
rule. Evaluation: any matching deny rule skips the upstream; an upstream with allow rules is used
only when one matches.
"""

import functools
import re

import re2

from registry.virtual.models import UpstreamRule


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
    return _regex(rule.pattern, fold).fullmatch(value) is not None


@functools.lru_cache(maxsize=512)
def _regex(pattern, fold):
    options = re2.Options()
    options.case_sensitive = not fold
    options.log_errors = False  # a refused pattern is the caller's 400, not a line on stderr
    return re2.compile(pattern, options)


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
        try:
            _regex(pattern, False)
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else ""
            detail = f" ({reason[:200]})" if reason else ""
            raise RuleInvalid({"pattern": [f"is not a regular expression RE2 accepts{detail}"]}) from exc
    fields["pattern"] = pattern
    if existing >= UpstreamRule.MAX_PER_UPSTREAM:
        raise RuleInvalid({"rules": [f"must be at most {UpstreamRule.MAX_PER_UPSTREAM} per upstream"]})
    return fields
