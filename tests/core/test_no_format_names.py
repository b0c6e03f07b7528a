"""The core knows no format by name: adding a format touches only its own app and one
INSTALLED_APPS line. Every registered format's name and its app's label are looked for, as a
word (an underscore separates words, so `<name>_setting` counts), in the core's code,
comments and templates; migrations (history) are the only exception."""

import re
from pathlib import Path

from django.apps import apps

from registry import formats

ROOT = Path(__file__).resolve().parents[2]
CORE_PACKAGES = ("registry", "api", "accounts", "web")
TEXT_SUFFIXES = {".py", ".html", ".txt", ".js", ".css", ".md", ".json", ".xml"}


def format_words():
    words = set()
    for package_format in formats.all_formats():
        words.add(package_format.name)
        app = apps.get_containing_app_config(type(package_format).__module__)
        assert app is not None, f"format {package_format.name!r} is not defined inside an installed app"
        words.add(app.label)
        words.add(app.name)
    return words


def core_files():
    format_apps = {apps.get_containing_app_config(type(f).__module__).label for f in formats.all_formats()}
    roots = [ROOT / package for package in CORE_PACKAGES]
    # Core templates: every template directory that does not belong to a format app.
    roots += [path for path in (ROOT / "templates").iterdir() if path.is_dir() and path.name not in format_apps]
    roots += [path for path in (ROOT / "templates").iterdir() if path.is_file()]
    for root in roots:
        candidates = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in candidates:
            if not path.is_file() or path.suffix not in TEXT_SUFFIXES:
                continue
            if "migrations" in path.relative_to(ROOT).parts or "__pycache__" in path.parts:
                continue
            yield path


def test_the_registry_knows_formats():
    # Guards the test itself: with no format registered it would prove nothing.
    assert len(formats.all_formats()) >= 2


def test_core_contains_no_format_name():
    words = sorted(format_words(), key=len, reverse=True)
    pattern = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, words)) + r")(?![A-Za-z0-9])", re.IGNORECASE)
    found = []
    for path in core_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for match in pattern.finditer(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)!r}: {line.strip()[:100]}")
    assert not found, "the core names formats:\n" + "\n".join(found)
