"""Cargo's documents: the index's `config.json` and a crate's sparse index file. Pure."""

import json

INDEX_KEYS = ("deps", "features", "links", "rust_version")


def config(dl, api=None, auth_required=False):
    """`config.json` at the index root: where crates are downloaded (`dl`), where the web API is
    (`api`; none: the index is read-only) and whether every request needs a token."""
    document = {"dl": dl}
    if api is not None:
        document["api"] = api
    if auth_required:
        document["auth-required"] = True
    return json.dumps(document)


def index_entry(name, version, metadata, sha256):
    """One line of an index file: the version as Cargo resolves it."""
    metadata = metadata or {}
    entry = {
        "name": name,
        "vers": version,
        "deps": metadata.get("deps", []),
        "cksum": sha256,
        "features": metadata.get("features", {}),
        "yanked": "withdrawn" in metadata,  # registry.services.set_withdrawn
        "links": metadata.get("links"),
    }
    if metadata.get("features2"):
        entry["features2"] = metadata["features2"]
        entry["v"] = 2
    if metadata.get("rust_version"):
        entry["rust_version"] = metadata["rust_version"]
    return json.dumps(entry, separators=(",", ":"))


def index_file(rows, lower_name):
    """The index file of the crate whose lower-case name is `lower_name`, from
    queries.index_rows (oldest first): one line per version, in publish order. Rows of another
    spelling (`foo_bar` for `foo-bar`: the same crate, another index file) are left out; a
    version found in several projects (a group's index) is listed once, as last published."""
    newest = {}
    for name, version, metadata, sha256 in rows:
        if name.lower() == lower_name:
            newest.pop(version, None)  # re-inserted: the later publish decides the place too
            newest[version] = (name, version, metadata, sha256)
    return "".join(index_entry(*row) + "\n" for row in newest.values())
