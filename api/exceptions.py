"""GitLab's error bodies for the management API: `{"message": "<status> <text>"}`."""

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from accounts.authentication import CHALLENGE
from api.unknown_routes import NOT_ALLOWED, NOT_FOUND


class UnknownRoute(exceptions.NotFound):
    """No route has this path (though a project or group in it exists): GitLab's route 404."""


class ApiError(exceptions.APIException):
    """`{"message": "<status> <message>"}`; `verbatim`: the message as given (GitLab's
    `conflict!("Email has already been taken")` carries no status)."""

    def __init__(self, status_code, message, *, verbatim=False):
        self.status_code = status_code
        self.verbatim = verbatim
        super().__init__(message)


def gitlab_exception_handler(exc, context):
    from registry.errors import RegistryError

    if isinstance(exc, RegistryError):
        response = Response({"message": exc.message}, status=exc.status)
    elif isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            first_field, errors = next(iter(detail.items()))
            message = errors[0] if isinstance(errors, list) and errors else errors
            body = {"error": f"{first_field} {message}" if first_field != "non_field_errors" else str(message)}
        else:
            body = {"error": str(detail[0] if isinstance(detail, list) else detail)}
        response = Response(body, status=400)
    elif isinstance(exc, UnknownRoute):
        response = Response(NOT_FOUND, status=404)
    elif isinstance(exc, exceptions.MethodNotAllowed):
        response = Response(NOT_ALLOWED, status=405)
    elif isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
        response = Response({"message": str(exc.detail) if exc.detail else "401 Unauthorized"}, status=401)
    elif isinstance(exc, exceptions.APIException):
        response = exception_handler(exc, context)
        if response is not None:
            text = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
            if not text[:3].isdigit() and not getattr(exc, "verbatim", False):
                text = f"{exc.status_code} {text}"
            response.data = {"message": text}
    else:
        return None
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        response["WWW-Authenticate"] = CHALLENGE
    return response
