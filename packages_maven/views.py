"""PUT/GET/HEAD of files in the Maven repository layout, at project, group and instance level.

- PUT (project only): the raw body is the file. `.pom` and `maven-metadata.xml` must be
  well-formed XML (defusedxml, no DTD). Checksum files (`.md5`, `.sha1`, `.sha256`,
  `.sha512`) are compared with the stored bytes of the file they describe (204 when equal,
  400 when not, 404 when that file is missing) and never stored.
- GET/HEAD: the newest stored file of that name, with `X-Checksum-*` headers; on S3 a GET is
  a 302 to a presigned link, which mvn follows, then fetching the `.sha1` beside the file
  (tests/clients/maven: GitLab streams Maven files, for headers mvn does without). A checksum
  file is the digest of the stored bytes of its base file.
- Artifact-level `maven-metadata.xml` follows the live versions, so deleted versions
  disappear from it: at project level the newest uploaded document while it lists exactly the
  project's live versions, else one generated from them; at group and instance level one
  generated from the versions of every pullable project (merged). When the path has no live
  versions (plugin-group metadata) the newest uploaded document is served, unless it lists
  versions (they were all deleted: 404).
- Group and instance level: the newest matching file across the projects the caller may pull
  from. An anonymous miss there is a 401 with the Basic challenge (the file
  may be in a private project, and mvn only sends a password after a challenge).
"""

import gzip
import hashlib
import hmac

from django.http import HttpResponse

from accounts import roles
from packages_maven import parsers, renderers
from packages_maven.format import METADATA, VERSIONLESS, MavenFormat
from registry import services
from registry.documents import cached_document
from registry.errors import Invalid, NotFound, Unauthenticated
from registry.formats import FileDraft, FileKind, PackageDraft
from registry.models import INSTALLABLE, Package, PackageVersion
from registry.spool import spool_request
from registry.views import PROJECT, READ, PackageAPIView, ReadsPackage
from registry.virtual.views import VirtualRegistryView, check_path

MAX_CHECKSUM_BODY = 4096
XML_TYPES = {".pom": ("project", "pom"), METADATA: ("metadata", "maven-metadata.xml")}


def _artifact_name(maven_path):
    try:
        return parsers.parse_path(maven_path).name
    except Invalid:
        return None


def content_type_for(file_name):
    """Uploaded XML is served as text: Maven does not read the type, and a browser then never
    treats a user's file as a document of Packhouse's origin (see registry.middleware)."""
    if file_name.endswith((".pom", ".xml")):
        return "text/plain; charset=utf-8"
    if file_name.endswith((".jar", ".war", ".ear")):
        return "application/java-archive"
    return "application/octet-stream"


def checksum_response(digest):
    return HttpResponse(digest, content_type="text/plain")


class MavenFileView(PackageAPIView):
    package_format = MavenFormat()
    actions = {**READ, "PUT": roles.CREATE_PACKAGE}

    # --- reading -------------------------------------------------------------------------

    # The artifact's: its generated maven-metadata.xml is reused, its files remembered.
    reads = ReadsPackage("maven_path", name_of=_artifact_name)

    def _find(self, path):
        """The newest installable file `path.base_name` of that package version."""
        if self.scope == PROJECT:
            return self.find_file(path.name, path.version, path.base_name)
        projects = self.pullable_projects()
        files = services.installable_files(
            projects, self.package_format, name=path.name, version=path.version, file_name=path.base_name
        )
        return files.order_by("-created_at", "-id").first()

    def get(self, request, maven_path, **kwargs):
        path = parsers.parse_path(maven_path)
        if path.versionless and path.is_metadata:
            response = self._artifact_metadata(request, path)
            if response is not None:
                return response
        package_file = self._find(path)
        if package_file is None:
            self._not_found()
        if path.checksum:
            return checksum_response(getattr(package_file.blob, path.checksum))
        return services.serve(
            package_file,
            request,
            content_type=content_type_for(path.base_name),
            count_download=not path.is_metadata,
        )

    def _not_found(self):
        """Group/instance level: an anonymous miss may be a private project's file, and mvn
        sends its <username>/<password> only after a Basic challenge, so challenge."""
        if self.scope != PROJECT and self.principal.is_anonymous:
            raise Unauthenticated()
        raise NotFound("404 Package Not Found")

    def _artifact_metadata(self, request, path):
        """Artifact-level metadata that follows the live versions, or None when the path has
        none (plugin-group metadata: then the newest uploaded document is served).

        Group/instance level: generated from the versions of every pullable project (merged).
        Project level: the newest uploaded document while it lists exactly the live versions
        (mvn's own bytes), else one generated from them, so a deleted version disappears.
        Cached under the artifact's epoch (changed by every upload and deletion); a checksum file
        is the digest of exactly the bytes the document route serves.
        """
        fmt = self.package_format
        if self.scope == PROJECT:
            projects = [self.project]
        else:
            projects = self.pullable_projects()
        packages = Package.objects.filter(
            project__in=projects,
            format=fmt.name,
            normalized_name=fmt.normalize_name(path.name),
        )
        live = PackageVersion.objects.filter(package__in=packages, status__in=INSTALLABLE).exclude(version=VERSIONLESS)
        if not live.exists():
            self._refuse_stale_metadata(path)
            return None

        def document():
            rows = live.order_by("created_at", "id").values_list("version", "created_at")
            published = {}
            for version, created_at in rows:  # one version in several projects: newest publish
                published.pop(version, None)
                published[version] = created_at
            if self.scope == PROJECT:
                uploaded = self._uploaded_metadata(path, set(published))
                if uploaded is not None:
                    return uploaded
            return renderers.artifact_metadata(path.name, list(published.items())).encode()

        if path.checksum:

            def digest():
                return hashlib.new(path.checksum, document()).hexdigest()

            return cached_document(request, packages, digest, "text/plain", variant=f"maven-metadata.{path.checksum}")
        response = cached_document(request, packages, document, "application/xml", variant="maven-metadata")
        if response.status_code == 200:
            body = response.content
            if response.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            for algorithm in ("sha1", "md5", "sha256"):  # Maven's checksums, not security
                response[f"X-Checksum-{algorithm.upper()}"] = hashlib.new(algorithm, body).hexdigest()
        return response

    def _read_uploaded_metadata(self, path):
        """The bytes of the newest uploaded document at that path, or None."""
        package_file = self._find(path)
        if package_file is None or package_file.blob.size > parsers.MAX_XML_SIZE:
            return None
        return services.read_small_file(package_file, parsers.MAX_XML_SIZE)

    def _refuse_stale_metadata(self, path):
        """No live version under the path: an uploaded document that lists versions lists
        only deleted ones (every version of the artifact was deleted), so it is not served."""
        data = self._read_uploaded_metadata(path)
        listed = parsers.listed_versions(data) if data is not None else None
        if listed is not None and listed[0]:
            self._not_found()

    def _uploaded_metadata(self, path, versions):
        """The bytes of the newest uploaded artifact metadata when it lists exactly `versions`
        (and its latest/release are among them), else None."""
        data = self._read_uploaded_metadata(path)
        if data is None:
            return None
        listed = parsers.listed_versions(data)
        if listed is None:
            return None
        listed_versions, latest, release = listed
        if listed_versions != versions or not {latest, release} <= versions | {None}:
            return None
        return data

    # --- writing -------------------------------------------------------------------------

    def put(self, request, maven_path, **kwargs):
        path = parsers.parse_path(maven_path)
        if path.checksum:
            return self._verify_checksum(request, path)
        fmt = self.package_format
        with spool_request(request, fmt.max_file_size) as spool:
            for suffix, (root_tag, what) in XML_TYPES.items():
                if path.file_name.endswith(suffix):
                    parsers.check_xml(spool.read(), root_tag, what)
            draft = PackageDraft(
                name=path.name,
                version=path.version,
                files=[FileDraft(file_name=path.file_name, spool=spool)],
                status="hidden" if path.versionless else "default",
            )
            services.publish(self.project, self.principal, fmt, draft)
        return HttpResponse(status=200)

    def _verify_checksum(self, request, path):
        with spool_request(request, MAX_CHECKSUM_BODY) as spool:
            expected = parsers.parse_checksum(spool.read(), path.checksum)
        package_file = self._find(path)
        if package_file is None:
            raise NotFound("404 Package Not Found")
        actual = getattr(package_file.blob, path.checksum)
        if not hmac.compare_digest(actual, expected):
            raise Invalid(f"400 Bad request - {path.checksum} checksum mismatch for {path.base_name}")
        return HttpResponse(status=204)


class MavenReadView(MavenFileView):
    actions = READ


class MavenVirtualView(VirtualRegistryView):
    """Any repository path through a virtual registry (registry.virtual; packages_maven.virtual)."""

    package_format = MavenFormat()

    @classmethod
    def document_path(cls, url_kwargs):
        """maven-metadata.xml (and its checksums) at any level; released files: `file_raw_path`."""
        path = cls.package_format.virtual.parse(check_path(url_kwargs["maven_path"]))
        base = path.base or path
        return base if base.kind == FileKind.METADATA else None

    @classmethod
    def file_raw_path(cls, url_kwargs):
        """Any path: released files (FileKind.IMMUTABLE) are replayed (VirtualRegistryView.file_path)."""
        return url_kwargs["maven_path"]

    def get(self, request, registry_id, maven_path):
        return self.serve_path(request, maven_path)

    head = get
