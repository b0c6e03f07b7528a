"""Headers that keep a browser from running anything Packhouse serves on its own origin.

Everything under `/api/` (package files, metadata built from what users uploaded, JSON of the
management API) is data for clients, never a page: it is answered with a sandboxing
Content-Security-Policy that lets nothing load or run, whatever its type, and `nosniff` so that
no browser guesses a type the response does not declare. Pages (the web UI, the admin) get a
policy that runs only scripts served by Packhouse itself. A view that sets its own policy keeps it.

No shared cache keeps what one caller was given: an answer to a write (a created token is shown
once, in the answer to a POST) is `no-store`; an answer to a request that carried a credential or
a session is `private`, unless the view chose its own Cache-Control.
"""

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from accounts import acting
from accounts.authentication import carries_credential
from accounts.throttling import client_address
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
        if "Cache-Control" not in response:
            if request.method not in ("GET", "HEAD"):
                response["Cache-Control"] = "no-store"
            elif settings.SESSION_COOKIE_NAME in request.COOKIES or carries_credential(request.META):
                response["Cache-Control"] = "private"
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


class ActingMiddleware:
    """Each request gets its own record (accounts.acting): who acts, from where, and what the
    policy allowed them; nothing of it outlives the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with acting.request_scope(client_address(request), f"{request.method} {request.path}"[:500]):
            return self.get_response(request)
