"""PackageAPIView: authenticate, resolve the project or group, authorize, map errors.

Format views subclass it, set `package_format` and `actions` (HTTP method -> action), and
never check permissions themselves. After `initial()`, `self.principal` and `self.project`
(or `self.group`) are set.
"""

from django.conf import settings
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.views import APIView

from accounts import roles
from accounts.authentication import TokenAuthentication, authenticate_request, principal_of
from accounts.principals import ANONYMOUS_PRINCIPAL
from accounts.throttling import PackageRequestThrottle
from registry import epochs, formats, observe, policy, request_freshness, services
from registry.access_cache import RequestMemory
from registry.errors import NotFound, RegistryError, TooManyRequests, Unauthenticated

PROJECT = "project"
GROUP = "group"
INSTANCE = "instance"

DEFAULT_ACTIONS = {
    "GET": roles.READ_PACKAGE,
    "HEAD": roles.READ_PACKAGE,
    "PUT": roles.CREATE_PACKAGE,
    "POST": roles.CREATE_PACKAGE,
    "DELETE": roles.DESTROY_PACKAGE,
}
# The actions of a read-only view (downloads, metadata documents, group and instance routes).
READ = {"GET": roles.READ_PACKAGE, "HEAD": roles.READ_PACKAGE}


class ReadsPackage:
    """A view's GET reads the packages of one name, taken from a URL argument (through
    `name_of(value)` when the argument holds more than the name; None from it: nothing declared)."""

    def __init__(self, url_argument="package_name", name_of=None):
        self.url_argument = url_argument
        self.name_of = name_of

    def keys(self, fmt, url_kwargs):
        value = url_kwargs.get(self.url_argument)
        name = self.name_of(value) if self.name_of is not None and value is not None else value
        if name is None:
            return None
        return [epochs.package(fmt.name, fmt.normalize_name(name))]


class _ReadsWholeFormat:
    """A view's GET reads every package of its format (an index, a search)."""

    def keys(self, fmt, url_kwargs):
        return [epochs.format_wide(fmt.name)]


READS_PACKAGE = ReadsPackage()
READS_WHOLE_FORMAT = _ReadsWholeFormat()


class RememberingTokenAuthentication(TokenAuthentication):
    """TokenAuthentication through the request's RequestMemory, when it has one."""

    def authenticate(self, request):
        memory = request_freshness.of(request.META).memory
        principal = memory.principal(request) if memory is not None else authenticate_request(request)
        if principal.is_anonymous:
            return None
        return (principal.user, principal)


class PackageAPIView(APIView):
    package_format = None  # a registry.formats.PackageFormat instance
    scope = PROJECT
    actions = DEFAULT_ACTIONS
    authentication_classes = [RememberingTokenAuthentication]
    permission_classes = []
    throttle_classes = [PackageRequestThrottle]

    project = None
    group = None

    # What this view's GET is built from, known from the URL alone (ReadsPackage,
    # READS_WHOLE_FORMAT), or None. Declared, it lets a GET remember what it read under those
    # packages' epochs: registry.documents.cached_document caches documents under them,
    # registry.response_cache replays whole answers, and `find_file` remembers file lookups.
    # Undeclared, documents are built on every request.
    reads = None

    @classmethod
    def package_epochs(cls, url_kwargs):
        """The epochs (registry.epochs) of what `reads` declares for this URL; None without."""
        return cls.reads.keys(cls.package_format, url_kwargs) if cls.reads is not None else None

    def action_for(self, request):
        return self.actions.get(request.method)

    def initial(self, request, *args, **kwargs):
        # Epochs first, before anything is looked up (registry.access_cache); the response cache
        # may have read them already.
        package_keys = self.package_epochs(kwargs) if request.method in ("GET", "HEAD") else None
        state = request_freshness.of(request.META)
        memory = state.memory = RequestMemory.for_request(request, package_keys, state.epochs)
        if package_keys:  # what registry.documents keys this GET's document on
            stamps = memory.package_epochs if memory is not None else epochs.current(package_keys)
            state.package_stamps = tuple(stamps) if stamps is not None else None
        memory = memory or policy.NO_MEMORY
        super().initial(request, *args, **kwargs)
        self.principal = principal_of(request)
        action = self.action_for(request)
        if action is None:
            raise exceptions.MethodNotAllowed(request.method)
        if self.scope == PROJECT:
            self.project = policy.resolve_project(kwargs["project_ref"], memory)
            if self.project is None:
                policy.deny_unknown(self.principal, "Project")
            observe.note_target(request, self.project)
            self.access = policy.authorize(self.principal, self.project, action, memory)
        elif self.scope == GROUP:
            self.group = policy.resolve_group(kwargs["group_ref"], memory)
            if self.group is None:
                policy.deny_unknown(self.principal, "Group")
            observe.note_target(request, self.group)
            policy.authorize_group(self.principal, self.group, action, memory)
        elif action != roles.READ_PACKAGE:
            # Nothing is ever published at instance level.
            if self.principal.is_anonymous:
                raise Unauthenticated()
            raise NotFound()

    def act_in_project(self, project, action):
        """At group or instance level, where a package found there decides the project (tag
        writes through an aggregating route): that project becomes this view's, once the policy
        allows `action` on it (401, 403 or 404 as on the project's own route)."""
        self.access = policy.authorize(self.principal, project, action)
        self.project = project

    def find_file(self, name, version, file_name):
        """services.find_file in this view's project, remembered under the package's epoch when
        the view declares it (`package_epochs`)."""
        memory = request_freshness.of(self.request.META).memory

        def lookup():
            return services.find_file(self.project, self.package_format, name, version, file_name)

        if memory is None:
            return lookup()
        key = ("file", self.project.pk, self.package_format.name, name, version, file_name)
        return memory.remember_under_packages(key, lookup)

    def remember_lookup(self, key, compute):
        """`compute()`, a lookup among the packages this view declares it reads (`reads`),
        remembered under those packages' epochs and the caller's identity (RequestMemory): done
        again after any change to either. Done every time when the view declares nothing."""
        memory = request_freshness.of(self.request.META).memory
        if memory is None:
            return compute()
        return memory.remember_under_packages((self.package_format.name, *key), compute)

    def reusable(self, response):
        """`response`, a small document built only from the packages this view reads, marked as
        one registry.response_cache may answer again while they and the caller's identity are
        unchanged (registry.documents marks the documents it builds so)."""
        request_freshness.of(self.request.META).reusable = True
        return response

    def pullable_projects(self):
        """Projects whose packages this caller may pull: under `self.group` (group scope),
        on the whole instance (instance scope), or just `self.project` (project scope)."""
        if self.scope == PROJECT:
            return policy.Project.objects.filter(pk=self.project.pk)
        return policy.pullable_projects(self.principal, self.group)

    def anonymous_may_pull(self):
        """Whether a caller without credentials may pull everything this view reaches: its
        project, or every project under its group. For formats that tell their clients up front
        whether to send credentials on every request (a configuration document they read first)."""
        if self.scope == PROJECT:
            return policy.can(ANONYMOUS_PRINCIPAL, self.project, roles.READ_PACKAGE)
        if self.scope == GROUP:
            return policy.anonymous_pulls_everything(self.group)
        return False

    def handle_exception(self, exc):
        if isinstance(exc, exceptions.Throttled):
            response = self.package_format.error_response(TooManyRequests(str(exc.detail)), self.request)
            response["Retry-After"] = str(int(exc.wait or 1))
            return response
        if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
            exc = Unauthenticated(str(exc.detail))
        elif isinstance(exc, exceptions.MethodNotAllowed):
            exc = RegistryError(f"405 Method {self.request.method} Not Allowed")
            exc.status = 405
        if isinstance(exc, NotFound) and self.scope != PROJECT and getattr(self, "principal", None) is not None:
            # An anonymous miss on an aggregating endpoint may be a package in a project that needs
            # credentials: challenge, so that clients that wait for a challenge send theirs.
            if self.principal.is_anonymous:
                exc = Unauthenticated()
        if isinstance(exc, RegistryError):
            return self.package_format.error_response(exc, self.request)
        return super().handle_exception(exc)


class AnyAccept(BaseContentNegotiation):
    """Package clients send assorted Accept headers (an abbreviated document, or anything at
    all): the one document answers them all, never a 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def base_url(request):
    """The server's own URL without a trailing slash, as clients reach it: settings.EXTERNAL_URL
    when set (behind a proxy), else the request's scheme and host."""
    return (settings.EXTERNAL_URL or request.build_absolute_uri("/")).rstrip("/")


@csrf_exempt  # any method: clients send no CSRF token, and the answer is a 404 whatever they send
def unknown_format_path(request, format_name, **kwargs):
    """A path under a format's prefix that none of its routes knows: the format's own 404."""
    return formats.get(format_name).error_response(NotFound("404 Not Found"), request)
