"""`make bench`'s scale row: 1,000 projects in 50 groups holding 100,000 package versions, seeded
straight into PostgreSQL, then the group-level npm packument and PyPI simple page (cold: epochs
changed first; cached) and the group's REST package list (pages 1 and 500) timed against the live
server, with the database queries each costs (counted in this process with Django's test client,
the same code the workers run).

Every project holds the shared npm name `@scale/common` and PyPI name `scale-common` with ten
versions each (so the group documents aggregate 10,000 versions from 1,000 projects), plus four
more names of each format with ten versions: 100 versions per project. Used by scripts/bench.py
(`--scale-only` runs just this row).
"""

import hashlib
import statistics
import time

GROUPS = 50
PROJECTS = 1000
NAMES_PER_FORMAT = 5
VERSIONS_PER_NAME = 10


def seed():
    """The groups, projects, packages, versions and files; returns the top-level group."""
    from accounts.models import Group, Project
    from registry.models import Blob, Package, PackageFile, PackageVersion

    top = Group.objects.create(name="scale", path="scale", visibility="private")
    groups = [top] + [
        Group.objects.create(name=f"team{i}", path=f"team{i}", parent=top, visibility="private")
        for i in range(1, GROUPS)
    ]
    projects = [
        Project.objects.create(name=f"p{i}", path=f"p{i}", group=groups[i % GROUPS], visibility="private")
        for i in range(PROJECTS)
    ]
    content = b"scale"
    blob = Blob.objects.create(
        sha256=hashlib.sha256(content).hexdigest(),
        sha1=hashlib.sha1(content).hexdigest(),  # noqa: S324 - a checksum clients compare, as npm does
        md5=hashlib.md5(content).hexdigest(),  # noqa: S324
        sha512=hashlib.sha512(content).hexdigest(),
        size=len(content),
    )
    packages = []
    for index, project in enumerate(projects):
        for n in range(NAMES_PER_FORMAT):
            npm_name = "@scale/common" if n == 0 else f"@scale/lib{n}-{index}"
            pypi_name = "scale-common" if n == 0 else f"scale-lib{n}-{index}"
            packages.append(Package(project=project, format="npm", name=npm_name, normalized_name=npm_name))
            packages.append(Package(project=project, format="pypi", name=pypi_name, normalized_name=pypi_name))
    packages = Package.objects.bulk_create(packages, batch_size=5000)
    versions = []
    for package in packages:
        project_index = int(package.project.path[1:])
        for v in range(VERSIONS_PER_NAME):
            number = f"{project_index}.{v}.0"
            metadata = {"name": package.name, "version": number} if package.format == "npm" else {}
            versions.append(
                PackageVersion(package=package, version=number, normalized_version=number, metadata=metadata)
            )
    versions = PackageVersion.objects.bulk_create(versions, batch_size=10000)
    files = []
    for version in versions:
        package = version.package
        if package.format == "npm":
            file_name = f"{package.name.rsplit('/', 1)[-1]}-{version.version}.tgz"
        else:
            file_name = f"{package.name.replace('-', '_')}-{version.version}-py3-none-any.whl"
        files.append(PackageFile(version=version, file_name=file_name, blob=blob))
    PackageFile.objects.bulk_create(files, batch_size=10000)
    return top, len(versions)


def measure(server_url, token, top, http, changed):
    """Timings (ms) and query counts of the four requests; `changed(name, format)` gives a name
    new epochs (a write), `http(method, url, token, headers=...)` one request to the server."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    base = f"/api/v4/groups/{top.pk}"
    requests = {
        # gzip, as npm and pip ask for documents
        "npm_group_packument": (
            f"{base}/-/packages/npm/@scale%2fcommon",
            {"Accept-Encoding": "gzip"},
            ("@scale/common", "npm"),
        ),
        "pypi_group_simple_page": (
            f"{base}/-/packages/pypi/simple/scale-common/",
            {"Accept": "text/html", "Accept-Encoding": "gzip"},
            ("scale-common", "pypi"),
        ),
        "rest_package_list_page_1": (f"{base}/packages?per_page=20&page=1", {}, None),
        "rest_package_list_page_500": (f"{base}/packages?per_page=20&page=500", {}, None),
    }
    client = Client()
    results = {}
    for label, (path, headers, name) in requests.items():
        if name is not None:
            changed(*name)
        meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        with CaptureQueriesContext(connection) as queries:
            answer = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1", **meta)
        assert answer.status_code == 200, (label, answer.status_code)
        cold = []
        for _ in range(3):
            if name is not None:
                changed(*name)
            start = time.perf_counter()
            http("GET", server_url + path, token, headers=headers)
            cold.append((time.perf_counter() - start) * 1000)
        cached = []
        for _ in range(5):
            start = time.perf_counter()
            http("GET", server_url + path, token, headers=headers)
            cached.append((time.perf_counter() - start) * 1000)
        results[label] = {
            "queries": len(queries.captured_queries),
            "cold_ms": round(statistics.median(cold), 1),
            "cached_ms": round(statistics.median(cached), 1),
        }
    return results
