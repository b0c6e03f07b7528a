"""Merging `maven-metadata.xml` documents of several repositories into one (spec §4.3), and
Maven's version order. Pure: bytes in, bytes out.

- Artifact level: `<versions>` is the union in upstream order (each version once, only those the
  upstream's rules keep); `<latest>` and `<release>` are those of the document with the newest
  `<lastUpdated>` (the first document when none has one) while they are among the merged versions,
  else the highest merged version in Maven's order (non-SNAPSHOT for `<release>`); `<lastUpdated>`
  is the newest of them.
- Plugin-group level: `<plugins>` is the union by `<prefix>`, the first upstream's entry winning.

The output depends only on the input documents, so a checksum file asked for later matches it.
Documents are parsed with DTDs and entities forbidden; one that is not metadata is an error.
"""

import re
import xml.etree.ElementTree as ET

from packages_maven import parsers
from registry.errors import BadGateway, Invalid

# Maven's ComparableVersion, reduced to a sort key: numbers compare as numbers; qualifiers in
# this order, "release" (none, ga, final) between snapshot and sp, unknown ones after sp.
QUALIFIERS = {"alpha": 0, "beta": 1, "milestone": 2, "rc": 3, "snapshot": 4, "": 5, "sp": 6}
ALIASES = {"a": "alpha", "b": "beta", "m": "milestone", "cr": "rc", "ga": "", "final": "", "release": ""}
KEY_LENGTH = 24
RELEASE = (0, 5, "")
NULLS = ((1, 0, ""), RELEASE)


def version_key(version):
    """A key that sorts versions as Maven does (close enough for latest/release)."""
    tokens = re.findall(r"\d+|[a-z]+", version.lower())
    items = []
    for index, token in enumerate(tokens):
        if token.isdigit():
            items.append((1, int(token), ""))
            continue
        followed_by_number = index + 1 < len(tokens) and tokens[index + 1].isdigit()
        name = ALIASES.get(token, token) if len(token) > 1 or followed_by_number else token
        rank = QUALIFIERS.get(name)
        while items and items[-1] in NULLS:  # 1.0-alpha is 1-alpha, as in Maven
            items.pop()
        items.append((0, rank, "") if rank is not None else (0, 7, name))
    while items and items[-1] in NULLS:
        items.pop()
    items = items[:KEY_LENGTH]
    return tuple(items + [RELEASE] * (KEY_LENGTH - len(items)))


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def _child(element, name):
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _text(element, *names):
    for name in names:
        element = _child(element, name) if element is not None else None
    return (element.text or "").strip() if element is not None else ""


def _parse(data):
    try:
        return parsers.check_xml(data, "metadata", "maven-metadata.xml")
    except Invalid as exc:
        raise BadGateway("502 Bad Gateway - an upstream's maven-metadata.xml is not valid metadata") from exc


def merge_metadata(documents):
    """`documents`: [(bytes, keeps_version or None)] in upstream order -> the merged bytes."""
    parsed = [(_parse(data), keeps) for data, keeps in documents]
    group_id = next((_text(root, "groupId") for root, _ in parsed if _text(root, "groupId")), "")
    artifact_id = next((_text(root, "artifactId") for root, _ in parsed if _text(root, "artifactId")), "")
    versions, plugins = [], {}
    for root, keeps in parsed:
        listed = _child(_child(root, "versioning"), "versions") if _child(root, "versioning") is not None else None
        for element in listed if listed is not None else ():
            version = (element.text or "").strip()
            if _local(element.tag) == "version" and version and version not in versions:
                if keeps is None or keeps(version):
                    versions.append(version)
        for plugin in _child(root, "plugins") if _child(root, "plugins") is not None else ():
            prefix = _text(plugin, "prefix")
            if _local(plugin.tag) == "plugin" and prefix and prefix not in plugins:
                plugins[prefix] = (_text(plugin, "name"), _text(plugin, "artifactId"))
    stamps = [_text(root, "versioning", "lastUpdated") for root, _ in parsed]
    newest = max(range(len(parsed)), key=lambda index: (stamps[index], -index))
    newest_root = parsed[newest][0]

    def pick(name, candidates):
        value = _text(newest_root, "versioning", name)
        if value in candidates:
            return value
        return max(candidates, key=version_key) if candidates else ""

    root = ET.Element("metadata")
    if group_id:
        ET.SubElement(root, "groupId").text = group_id
    if artifact_id:
        ET.SubElement(root, "artifactId").text = artifact_id
    if versions or any(stamps):
        versioning = ET.SubElement(root, "versioning")
        latest = pick("latest", versions)
        release = pick("release", [v for v in versions if not v.endswith("-SNAPSHOT")])
        if latest:
            ET.SubElement(versioning, "latest").text = latest
        if release:
            ET.SubElement(versioning, "release").text = release
        if versions:
            listed = ET.SubElement(versioning, "versions")
            for version in versions:
                ET.SubElement(listed, "version").text = version
        if max(stamps):
            ET.SubElement(versioning, "lastUpdated").text = max(stamps)
    if plugins:
        listed = ET.SubElement(root, "plugins")
        for prefix, (name, plugin_artifact) in plugins.items():
            plugin = ET.SubElement(listed, "plugin")
            ET.SubElement(plugin, "name").text = name
            ET.SubElement(plugin, "prefix").text = prefix
            ET.SubElement(plugin, "artifactId").text = plugin_artifact
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"
