"""npm audit through a virtual registry (spec §2.2): the request body read, its package names
listed, and the names that must not leave the instance removed (registry.virtual.forward decides
which).

- The body: JSON, `Content-Encoding: gzip` (what npm sends), `deflate` or none; at most
  MAX_BODY bytes once decoded (and on the wire), else 413; unreadable, truncated or not a JSON
  object 400.
- `advisories/bulk` (npm 7+): `{name: [versions]}`; a name not kept is dropped.
- `audits/quick` (npm 6's legacy shape): the root's `name`, `requires` ({name: spec}), the
  `dependencies` tree ({name: {version, requires, dependencies, …}} at any depth) and the
  `install`/`remove` lists (`name@spec`). A dependency not kept is dropped with its subtree, a
  `requires` or list entry naming it too, and a root `name` not kept is removed. An alias
  (`npm:<real name>@<spec>` as a version or spec) is judged by both names. `resolved` and
  `from` (URLs of this instance, specs) are removed from every node: advisories are matched on
  name and version.
- A name npm could not address is not kept.
"""

import gzip
import json
import zlib

from packages_npm import parsers
from registry.errors import Invalid, TooLarge

MAX_BODY = 10 * 1024 * 1024
ANSWER_CAP = 32 * 1024 * 1024
READ_CHUNK = 64 * 1024
BULK = "bulk"
QUICK = "quick"


def read_body(request):
    """The decoded body of `request` (read as a stream: never `request.body`, which Django caps
    at DATA_UPLOAD_MAX_MEMORY_SIZE), or Invalid / TooLarge."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise Invalid(f"400 Bad request - Content-Encoding {encoding[:40]} is not supported")
    too_large = TooLarge(f"413 Payload Too Large - the audit body is over {MAX_BODY} bytes")
    length = request.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise too_large
    # gzip or zlib (deflate) framing, told apart by the header.
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding not in ("", "identity") else None
    parts, wire, size = [], 0, 0
    while True:
        chunk = request.read(READ_CHUNK)
        if not chunk:
            break
        wire += len(chunk)
        if wire > MAX_BODY:
            raise too_large
        if inflater is not None:
            try:
                chunk = inflater.decompress(chunk, MAX_BODY + 1 - size)
            except zlib.error as exc:
                raise Invalid(f"400 Bad request - the body is not valid {encoding}") from exc
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large
        parts.append(chunk)
    if inflater is not None and (not inflater.eof or inflater.unused_data):
        raise Invalid(f"400 Bad request - the body is not valid {encoding}")
    if not size:
        raise Invalid("400 Bad request - the audit body is empty")
    return b"".join(parts)


def load(body):
    """The body as a JSON object, or Invalid."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Invalid("400 Bad request - the audit body is not JSON") from exc
    if not isinstance(document, dict):
        raise Invalid("400 Bad request - the audit body is not a JSON object")
    return document


def encode(document):
    """The body forwarded: compact JSON, gzipped as npm sends it."""
    return gzip.compress(json.dumps(document, separators=(",", ":")).encode(), compresslevel=6, mtime=0)


def _spec_name(spec):
    """`@a/b` of `@a/b@^1.0.0`, `b` of `b`."""
    at = spec.find("@", 1)
    return spec[:at] if at > 0 else spec


def _alias(spec):
    """The real name of an alias spec `npm:<name>@<spec>`, else None."""
    if isinstance(spec, str) and spec.startswith("npm:"):
        return _spec_name(spec[4:])
    return None


def _nodes(document):
    """Every dependency node of a quick-audit tree (the root included), without recursion."""
    stack = [document]
    while stack:
        node = stack.pop()
        yield node
        dependencies = node.get("dependencies")
        if isinstance(dependencies, dict):
            stack.extend(child for child in dependencies.values() if isinstance(child, dict))


def names(kind, document):
    """Every package name the body carries (valid npm names only)."""
    found = set()
    if kind == BULK:
        found.update(document)
    else:
        if isinstance(document.get("name"), str):
            found.add(document["name"])
        for key in ("install", "remove"):
            entries = document.get(key)
            if isinstance(entries, list):
                found.update(_spec_name(entry) for entry in entries if isinstance(entry, str))
        for node in _nodes(document):
            found.add(_alias(node.get("version")))
            for field in ("requires", "dependencies"):
                entries = node.get(field)
                if isinstance(entries, dict):
                    found.update(entries)
                    if field == "requires":
                        found.update(_alias(spec) for spec in entries.values())
    return {name for name in found if parsers.valid_name(name)}


def strip(kind, document, kept):
    """`document` without every name not in `kept` (in place; returned)."""
    if kind == BULK:
        for name in [name for name in document if name not in kept]:
            del document[name]
        return document
    if "name" in document and document["name"] not in kept:
        del document["name"]
    for key in ("install", "remove"):
        entries = document.get(key)
        if isinstance(entries, list):
            document[key] = [entry for entry in entries if isinstance(entry, str) and _spec_name(entry) in kept]
    for node in _nodes(document):
        if node is not document:
            node.pop("resolved", None)
            node.pop("from", None)
        requires = node.get("requires")
        if isinstance(requires, dict):
            for name in [name for name, spec in requires.items() if not _keeps(kept, name, spec)]:
                del requires[name]
        dependencies = node.get("dependencies")
        if isinstance(dependencies, dict):
            for name in [name for name, child in dependencies.items() if not _keeps_node(kept, name, child)]:
                del dependencies[name]
    return document


def _keeps(kept, name, spec):
    alias = _alias(spec)
    return name in kept and (alias is None or alias in kept)


def _keeps_node(kept, name, child):
    return isinstance(child, dict) and _keeps(kept, name, child.get("version"))
