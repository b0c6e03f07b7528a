from django.http import JsonResponse
from rest_framework.request import Request

from packages_generic.format import GenericFormat
from registry import services
from registry.errors import Invalid, NotFound
from registry.formats import FileDraft, PackageDraft
from registry.spool import spool_request
from registry.views import READS_PACKAGE, PackageAPIView

STATUSES = ("default", "hidden")


def package_file_json(package_file, request: Request):
    blob = package_file.blob
    return {
        "id": package_file.pk,
        "package_id": package_file.version_id,  # the REST API's package id (a name and version)
        "created_at": package_file.created_at.isoformat(),
        "updated_at": package_file.created_at.isoformat(),
        "size": blob.size,
        "file_store": 1,
        "file_md5": blob.md5,
        "file_sha1": blob.sha1,
        "file_sha256": blob.sha256,
        "file_name": package_file.file_name,
        "file": {"url": request.build_absolute_uri(request.path)},
    }


class GenericFileView(PackageAPIView):
    package_format = GenericFormat()

    reads = READS_PACKAGE

    def _validate(self, package_name, package_version, file_name):
        fmt = self.package_format
        fmt.validate_name(package_name)
        fmt.validate_version(package_version)
        fmt.validate_file_path(file_name)

    def put(self, request, package_name, package_version, file_name, **kwargs):
        self._validate(package_name, package_version, file_name)
        status = request.query_params.get("status", "default")
        if status not in STATUSES:
            raise Invalid("400 Bad request - status does not have a valid value")
        select = request.query_params.get("select")
        if select not in (None, "package_file"):
            raise Invalid("400 Bad request - select does not have a valid value")
        with spool_request(request, self.package_format.max_file_size) as spool:
            draft = PackageDraft(
                name=package_name,
                version=package_version,
                files=[FileDraft(file_name=file_name, spool=spool)],
                status=status,
            )
            _, files = services.publish(self.project, self.principal, self.package_format, draft)
        if select == "package_file":
            return JsonResponse(package_file_json(files[0], request), status=201)
        return JsonResponse({"message": "201 Created"}, status=201)

    def get(self, request, package_name, package_version, file_name, **kwargs):
        self._validate(package_name, package_version, file_name)
        package_file = self.find_file(package_name, package_version, file_name)
        if package_file is None:
            raise NotFound("404 Package Not Found")
        return services.serve(package_file, request)
