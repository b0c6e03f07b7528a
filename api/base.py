"""ManagementView: the one gate in front of every /api/v4 management endpoint.

- Deploy tokens are not accepted on the management API (GitLab does not recognise them
  there): 403 on every endpoint.
- Job tokens are accepted only where a view says so (`allow_job_token`): GET /job and the
  job's own finish call; elsewhere 403.
- Access tokens need the `api` scope; `read_api` (and `read_user` on user endpoints) only
  for GET/HEAD. Otherwise 403.
- Anonymous callers get 401 (with the Basic challenge) except on the few read endpoints that
  list public things (`anonymous_methods`).

Permission decisions on projects and groups are made by `registry.policy`; the helpers here
only resolve references and ask it.
"""

from django.db import transaction
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.views import APIView

from accounts import acting, roles
from accounts.authentication import principal_of
from accounts.principals import ACCESS_TOKEN, DEPLOY_TOKEN, JOB_TOKEN
from api.exceptions import UnknownRoute
from api.pagination import GitLabPagination
from registry import observe, policy
from registry.errors import Forbidden, NotFound, Unauthenticated

READ_METHODS = ("GET", "HEAD", "OPTIONS")


class ManagementView(APIView):
    permission_classes = []
    anonymous_methods = ()
    allow_job_token = False
    read_user_scope = False  # GET endpoints about users: a `read_user` token suffices

    def dispatch(self, request, *args, **kwargs):
        """A write runs in one transaction, so the audit events it causes (accounts.audit) are
        committed with it or not at all."""
        if request.method in READ_METHODS:
            return super().dispatch(request, *args, **kwargs)
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        method = request.method.lower()
        wrong_method = method not in self.http_method_names or not hasattr(self, method)
        spanning_ref = next((str(v) for k, v in kwargs.items() if k.endswith("ref") and "/" in str(v)), None)
        if wrong_method and spanning_ref is None:
            raise MethodNotAllowed(request.method)  # before the caller: Grape routes first
        super().initial(request, *args, **kwargs)
        self.principal = principal = principal_of(request)
        acting.note_principal(principal)
        if principal.kind == DEPLOY_TOKEN:
            raise Forbidden("403 Forbidden - deploy tokens are not accepted on this endpoint")
        if principal.kind == JOB_TOKEN and not self.allow_job_token:
            raise Forbidden("403 Forbidden - job tokens are not accepted on this endpoint")
        if principal.kind == ACCESS_TOKEN and not self._scope_ok(request.method, principal.scopes):
            raise Forbidden("403 Forbidden - insufficient_scope")
        if wrong_method:
            # A reference spanning segments is a full path only if it names a project (group)
            # the caller sees; otherwise the path is no route of ours (deny_missing), and a
            # hidden project's path answers what a missing one does.
            if request.path.startswith("/api/v4/groups/"):
                self.get_group(spanning_ref)
            else:
                self.get_project(spanning_ref)
            raise MethodNotAllowed(request.method)
        if principal.is_anonymous and request.method not in self.anonymous_methods:
            raise Unauthenticated()

    def _scope_ok(self, method, scopes):
        if "api" in scopes:
            return True
        if method in READ_METHODS:
            return "read_api" in scopes or (self.read_user_scope and "read_user" in scopes)
        return False

    # --- who ------------------------------------------------------------------------------

    @property
    def user(self):
        return self.principal.user

    def require_admin(self):
        if not self.principal.is_admin:
            raise Forbidden()

    # --- what -----------------------------------------------------------------------------

    def get_project(self, ref, action=None):
        """The project at `ref`, after the policy allowed `action` (None: seeing it)."""
        project = policy.resolve_project(str(ref))
        if project is None:
            self.deny_missing(str(ref), "Project")
        observe.note_target(self.request, project)
        self.access = policy.authorize(self.principal, project, action or roles.READ_PROJECT)
        return project

    def get_group(self, ref, action=roles.READ_GROUP):
        group = policy.resolve_group(str(ref))
        if group is None:
            self.deny_missing(str(ref), "Group")
        observe.note_target(self.request, group)
        policy.authorize_group(self.principal, group, action)
        return group

    def deny_missing(self, ref, what):
        """No project (group) at `ref`. A reference spans segments because URL-encoded slashes
        arrive decoded; when a shorter run of its segments names one the caller sees, the path is
        a route Packhouse does not have (`/projects/1/repository/tree`), never a missing
        resource: 404 `{"error": "404 Not Found"}`. Otherwise the policy's answer for an
        unknown target (the same as for a hidden one)."""
        segments = ref.split("/")
        for cut in range(len(segments) - 1, 0, -1):
            head = "/".join(segments[:cut])
            if what == "Project":
                target = policy.resolve_project(head)
                seen = target is not None and policy.can(self.principal, target, roles.READ_PROJECT)
            else:
                target = policy.resolve_group(head)
                seen = target is not None and policy.group_visible(self.principal, target)
            if seen:
                raise UnknownRoute()
        policy.deny_unknown(self.principal, what)

    def paginate(self, items, render):
        return self.paginate_page(items, lambda page: [render(item) for item in page])

    def paginate_page(self, items, render_page):
        """`paginate` with the whole page rendered at once, so that what its items need can be
        read in bulk."""
        paginator = GitLabPagination()
        page = paginator.paginate_queryset(items, self.request, view=self)
        return paginator.get_paginated_response(render_page(page))


def not_found(what):
    raise NotFound(f"404 {what} Not Found")
