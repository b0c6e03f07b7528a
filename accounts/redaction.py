"""Secrets never reach a log line: every token of ours, and the value of any parameter whose name
says it holds a secret, are replaced by `[REDACTED]` in logged URLs, headers and messages.

Used by the access line (registry.observe) and, as a logging filter, by every handler
of the application's log (packhouse.settings LOGGING).
"""

import logging
import re

from accounts.tokens import PREFIXES

REDACTED = "[REDACTED]"
# Our tokens wherever they stand: a prefix and the URL-safe secret after it.
_TOKEN = re.compile("(?:" + "|".join(re.escape(prefix) for prefix in PREFIXES) + r")[A-Za-z0-9_\-%.~]+")
# `name=value` in a query string or form where the name says secret (token, password, key, ...).
_SECRET_PARAMETER = re.compile(
    r"(?i)((?:^|[?&;\s\"'])[\w.\-]*(?:token|password|passwd|secret|api[_-]?key|apikey|auth)[\w.\-]*=)([^&;\s\"']*)"
)

# What every match of either pattern contains: an `=` or a token prefix.
_MAY_HOLD_SECRET = re.compile("=|" + "|".join(re.escape(prefix) for prefix in PREFIXES))


def redact(text):
    """`text` with every secret in it replaced."""
    if not text or not _MAY_HOLD_SECRET.search(text):
        return text  # neither pattern can match (most logged paths): spare the access log two scans
    text = _TOKEN.sub(REDACTED, text)
    return _SECRET_PARAMETER.sub(lambda match: match.group(1) + REDACTED, text)


class RedactSecretsFilter(logging.Filter):
    """Formats a record's message once, redacted (its arguments are folded into it)."""

    def filter(self, record):
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
