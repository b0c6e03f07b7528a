"""Headers that keep a browser from running anything Packhouse serves on its own origin.

Everything under `/api/` (package files, metadata built from what users uploaded, JSON of the
management API) is data for clients, never a page: it is answered with a sandboxing
Content-Security-Policy that lets nothing load or run, whatever its type, and `nosniff` so that
no browser guesses a type the response does not declare. Pages (the web UI, the admin) get a
policy that runs only scripts served by Packhouse itself. A view that sets its own policy keeps it.
"""

from django.http import HttpResponse, JsonResponse

from registry.errors import RegistryError

API_PREFIX = "/api/"
API_POLICY = "default-src 'none'; sandbox"
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = API_POLICY if request.path.startswith(API_PREFIX) else PAGE_POLICY
        response.setdefault("Content-Security-Policy", policy)
        response.setdefault("X-Content-Type-Options", "nosniff")
        return response


class RegistryErrorMiddleware:
    """A RegistryError escaping a page (not an API view, which answers in its client's shape)
    becomes its status with its message, instead of a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, RegistryError):
            return None
        if request.path.startswith(API_PREFIX):
            return JsonResponse({"message": exception.message}, status=exception.status)
        return HttpResponse(exception.message, status=exception.status, content_type="text/plain; charset=utf-8")
