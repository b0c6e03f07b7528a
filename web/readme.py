"""A package's README or description as HTML a page can show: Markdown through markdown-it-py
(CommonMark with tables and strikethrough), reStructuredText through docutils (raw directives and
file inclusion off), plain text escaped, and whatever comes out cleaned by nh3 (ammonia's
allowlist: no script, style, iframe, form or event attribute survives; links get
`rel="noopener noreferrer nofollow"` and only safe URL schemes)."""

import html
import io

import nh3
from django.utils.safestring import mark_safe
from docutils.core import publish_parts
from markdown_it import MarkdownIt

MAX_CHARS = 512 * 1024  # longer text is cut (renderers are not linear on every input)

_markdown = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

RST_SETTINGS = {
    "raw_enabled": False,
    "file_insertion_enabled": False,
    "_disable_config": True,
    "report_level": 5,
    "halt_level": 5,
    "syntax_highlight": "none",
    "math_output": "HTML",
    "embed_stylesheet": False,
    "doctitle_xform": False,
    "initial_header_level": 2,
    "input_encoding": "unicode",
}

URL_SCHEMES = {"http", "https", "mailto"}


def _rst(text):
    try:
        parts = publish_parts(
            text, writer="html5", settings_overrides={**RST_SETTINGS, "warning_stream": io.StringIO()}
        )
    except Exception:  # noqa: BLE001 - docutils raises many kinds on malformed input: show it as text
        return _plain(text)
    return parts["body"]


def _plain(text):
    return f"<pre>{html.escape(text)}</pre>"


def render(text, markup="markdown"):
    """Sanitized HTML (a SafeString) for `text` written in `markup` ("markdown", "rst" or "text")."""
    text = (text or "")[:MAX_CHARS]
    if not text.strip():
        return mark_safe("")  # noqa: S308 - empty
    if markup == "rst":
        raw = _rst(text)
    elif markup == "markdown":
        raw = _markdown.render(text)
    else:
        raw = _plain(text)
    cleaned = nh3.clean(raw, url_schemes=URL_SCHEMES, link_rel="noopener noreferrer nofollow")
    return mark_safe(cleaned)  # noqa: S308 - sanitized by nh3 just above


def safe_url(url):
    """`url` when it is an absolute http(s) URL a page may link to, else None."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if url.lower().startswith(("https://", "http://")) and url.isprintable() and " " not in url:
        return url
    return None
