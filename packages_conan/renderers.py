"""Conan's documents (revision lists, the latest revision, a revision's files, searches). Pure:
built from packages_conan.queries' rows."""

import fnmatch

from packages_conan.parsers import MANIFEST, split_file_name


def _iso(moment):
    return moment.isoformat()


def recipe_revisions(rows):
    """[(rrev, time)] of the recipe revisions whose manifest is there, newest first."""
    found = {}
    for file_name, created_at, row_id in rows:
        parsed = split_file_name(file_name)
        if parsed and parsed[1] is None and parsed[3] == MANIFEST:
            found[parsed[0]] = max(found.get(parsed[0], (created_at, row_id)), (created_at, row_id))
    return [(rrev, when) for rrev, (when, _) in sorted(found.items(), key=lambda item: item[1], reverse=True)]


def package_revisions(rows, rrev, package_id=None):
    """[(package_id, prev, time)] of the package revisions of `rrev` (of one package id, when
    given) whose manifest is there, newest first."""
    found = {}
    for file_name, created_at, row_id in rows:
        parsed = split_file_name(file_name)
        if not parsed or parsed[0] != rrev or parsed[1] is None or parsed[3] != MANIFEST:
            continue
        if package_id is not None and parsed[1] != package_id:
            continue
        key = (parsed[1], parsed[2])
        found[key] = max(found.get(key, (created_at, row_id)), (created_at, row_id))
    ordered = sorted(found.items(), key=lambda item: item[1], reverse=True)
    return [(pid, prev, when) for (pid, prev), (when, _) in ordered]


def revision_list(reference, revisions):
    """`GET …/revisions`: {"reference", "revisions": [{"revision", "time"}]}, newest first."""
    return {
        "reference": reference,
        "revisions": [{"revision": revision, "time": _iso(when)} for revision, when in revisions],
    }


def latest(revision, when):
    return {"revision": revision, "time": _iso(when)}


def file_list(rows, prefix):
    """`GET …/files`: {"files": {path: {}}} for the stored files under `prefix`."""
    return {"files": {name[len(prefix) :]: {} for name, _, _ in rows if name.startswith(prefix)}}


def package_search(rows, rrev, conaninfos):
    """`GET …/search`: {package_id: {"content": conaninfo.txt}} of the newest revision of each
    package of `rrev` (Conan reads the file itself)."""
    result = {}
    for package_id, prev, _ in package_revisions(rows, rrev):
        if package_id not in result:
            result[package_id] = {"content": conaninfos.get(f"{rrev}:{package_id}:{prev}", "")}
    return result


def recipe_search(references, pattern, ignorecase=True):
    """`GET conans/search?q=`: {"results": [references matching the pattern]}, in order. A
    pattern matches `name/version` or `name/version@user/channel`; without one, all match."""
    results = []
    for reference in references:
        if not pattern:
            results.append(reference)
            continue
        subject, wanted = (reference.lower(), pattern.lower()) if ignorecase else (reference, pattern)
        short = subject.split("@", 1)[0]
        if fnmatch.fnmatchcase(subject, wanted) or fnmatch.fnmatchcase(short, wanted):
            results.append(reference)
    return {"results": results}
