"""npm's search (`GET /-/v1/search?text=&size=&from=`, what `npm search` asks), over the npm
packages the caller may pull at the endpoint's level, answered in the registry's shape:
`{"objects": [{"package": {...}, "score": {...}, "searchScore": ...}], "total": n, "time": ...}`.

Every word of `text` must appear in the package's name, its latest version's description or
its keywords (case-insensitive); `keywords:a,b` asks for packages with one of those keywords
and `author:`/`maintainer:`/`scope:` qualifiers narrow by publisher and scope, as npm's
registry reads them. Exact name matches come first, then names, then the newest.
"""

from datetime import UTC

from django.db.models import Q

from packages_npm.models import NpmDistTag
from registry.models import INSTALLABLE, Package, PackageVersion

DEFAULT_SIZE = 20
MAX_SIZE = 250
MAX_FROM = 10_000
FORMAT_NAME = "npm"


def _int(value, default, low, high):
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return min(max(number, low), high)


def parse_query(text):
    """(words, keywords, qualifiers) of npm's search text."""
    words, keywords, qualifiers = [], [], {}
    for part in (text or "").split():
        key, sep, value = part.partition(":")
        if sep and key.lower() in ("keywords", "author", "maintainer", "scope") and value:
            if key.lower() == "keywords":
                keywords.extend(word.lower() for word in value.split(",") if word)
            else:
                qualifiers[key.lower()] = value.lower().lstrip("@")
        else:
            words.append(part.lower())
    return words, keywords, qualifiers


def _latest(packages):
    """{package id: its latest installable PackageVersion}: the `latest` dist-tag, else the newest."""
    tagged = dict(
        NpmDistTag.objects.filter(package__in=packages, tag="latest", version__status__in=INSTALLABLE).values_list(
            "package_id", "version_id"
        )
    )
    versions = (
        PackageVersion.objects.filter(package__in=packages, status__in=INSTALLABLE)
        .select_related("creator", "package__project")
        .order_by("package_id", "-created_at", "-id")
    )
    latest = {}
    for version in versions:  # newest first within each package
        if version.package_id not in latest or tagged.get(version.package_id) == version.pk:
            latest[version.package_id] = version
    return latest


def _matches(package, version, words, keywords, qualifiers):
    metadata = version.metadata or {}
    description = metadata.get("description") if isinstance(metadata.get("description"), str) else ""
    raw_keywords = metadata.get("keywords") if isinstance(metadata.get("keywords"), list) else []
    package_keywords = [k.lower() for k in raw_keywords if isinstance(k, str)]
    haystack = " ".join([package.name.lower(), description.lower(), *package_keywords])
    if not all(word in haystack for word in words):
        return False
    if keywords and not set(keywords) & set(package_keywords):
        return False
    publisher = (version.creator.username if version.creator else "").lower()
    if "author" in qualifiers and qualifiers["author"] != publisher:
        return False
    if "maintainer" in qualifiers and qualifiers["maintainer"] != publisher:
        return False
    scope = package.name[1:].split("/", 1)[0].lower() if package.name.startswith("@") else "unscoped"
    return not ("scope" in qualifiers and qualifiers["scope"] != scope)


def _iso(moment):
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _object(package, version, base_url, score):
    metadata = version.metadata or {}
    scope = package.name[1:].split("/", 1)[0] if package.name.startswith("@") else "unscoped"
    publisher = {"username": version.creator.username, "email": ""} if version.creator else {"username": ""}
    description = metadata.get("description")
    keywords = metadata.get("keywords")
    links = {"npm": f"{base_url}/{package.project.full_path}/-/packages/{version.pk}"}
    for key, field in (("homepage", "homepage"), ("repository", "repository"), ("bugs", "bugs")):
        value = metadata.get(field)
        value = value.get("url") if isinstance(value, dict) else value
        if isinstance(value, str) and value:
            links[key] = value
    return {
        "package": {
            "name": package.name,
            "scope": scope,
            "version": version.version,
            "description": description if isinstance(description, str) else "",
            "keywords": [k for k in keywords if isinstance(k, str)] if isinstance(keywords, list) else [],
            "date": _iso(version.created_at),
            "links": links,
            "publisher": publisher,
            "maintainers": [publisher] if version.creator else [],
        },
        "score": {"final": score, "detail": {"quality": score, "popularity": score, "maintenance": score}},
        "searchScore": score,
    }


def search(projects, params, base_url, now):
    """The search answer over the npm packages of `projects` (a queryset the caller may pull)."""
    words, keywords, qualifiers = parse_query(params.get("text", ""))
    size = _int(params.get("size"), DEFAULT_SIZE, 0, MAX_SIZE)
    start = _int(params.get("from"), 0, 0, MAX_FROM)
    packages = Package.objects.filter(format=FORMAT_NAME, project__in=projects)
    for word in words:  # narrowed in the database; the latest version decides below
        packages = packages.filter(
            Q(normalized_name__icontains=word)
            | Q(versions__metadata__description__icontains=word)
            | Q(versions__metadata__keywords__icontains=word)
        )
    packages = list(packages.distinct().select_related("project"))
    latest = _latest(packages)
    hits = []
    for package in packages:
        version = latest.get(package.pk)
        if version is not None and _matches(package, version, words, keywords, qualifiers):
            name = package.name.lower()
            bare = name.split("/", 1)[-1]
            exact = bool(words) and " ".join(words) in (name, bare)
            in_name = bool(words) and all(word in name for word in words)
            hits.append((not exact, not in_name, -version.created_at.timestamp(), name, package, version))
    hits.sort(key=lambda hit: hit[:4])
    page = hits[start : start + size]
    objects = []
    for index, (_, _, _, _, package, version) in enumerate(page):
        score = round(1.0 - (start + index) / max(len(hits), 1) / 2, 4)
        objects.append(_object(package, version, base_url, score))
    return {"objects": objects, "total": len(hits), "time": _iso(now)}
