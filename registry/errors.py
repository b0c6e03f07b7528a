"""RegistryError tree: what went wrong, as a status and a message. Formats pick the body shape."""


class RegistryError(Exception):
    status = 500
    default_message = "500 Internal Server Error"

    def __init__(self, message=None):
        self.message = message or self.default_message
        super().__init__(self.message)


class Invalid(RegistryError):
    status = 400
    default_message = "400 Bad request"


class Unauthenticated(RegistryError):
    """No credential and the action is not allowed anonymously: 401 with a Basic challenge."""

    status = 401
    default_message = "401 Unauthorized"


class Forbidden(RegistryError):
    status = 403
    default_message = "403 Forbidden"


class NotFound(RegistryError):
    status = 404
    default_message = "404 Not Found"


class Conflict(RegistryError):
    """A duplicate where the format or the project's settings refuse one."""

    status = 409
    default_message = "409 Conflict"


class TooLarge(RegistryError):
    status = 413
    default_message = "413 File is too large"


class TooManyRequests(RegistryError):
    status = 429
    default_message = "429 Too Many Requests"


class StorageUnavailable(RegistryError):
    """Never a 404: that would make package clients fall through to public indexes."""

    status = 503
    default_message = "503 Storage unavailable"


class ChangeNotPublished(RegistryError):
    """A change that every process must learn of at once (registry.epochs) could not be announced,
    so it was not made."""

    status = 503
    default_message = "503 Service Unavailable: the change could not be published to every worker; nothing was changed"


class InsufficientStorage(RegistryError):
    """The server's disk is full: nothing of the upload is kept; the client may try again later."""

    status = 507
    default_message = "507 Insufficient Storage - no room for the upload; nothing was stored"


class BadGateway(RegistryError):
    """An upstream of a virtual registry failed (an error status, a failed integrity check)."""

    status = 502
    default_message = "502 Bad Gateway"


class UpstreamUnavailable(RegistryError):
    """An upstream of a virtual registry cannot be reached and nothing is cached: never a 404,
    which would send clients to public registries."""

    status = 503
    default_message = "503 Service Unavailable - the upstream is unavailable and nothing is cached"
