"""factory_boy factories, one section per app. Token factories return the row; the plaintext
is on `row.plaintext` (set only by the factory, never stored)."""

import factory
from django.utils import timezone

from accounts import tokens
from accounts.models import (
    AccessToken,
    CiJob,
    DeployToken,
    Group,
    JobTokenScopeLink,
    Membership,
    Project,
    User,
)
from accounts.roles import AccessLevel
from registry.models import RegistryUpstream, Upstream, VirtualRegistry
from registry.virtual import services
from tests.helpers import auth_headers

# --- accounts ------------------------------------------------------------------------------


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    name = factory.LazyAttribute(lambda u: u.username.title())
    password = factory.PostGenerationMethodCall("set_password", "password-123")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class AdminFactory(UserFactory):
    is_superuser = True
    is_staff = True


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group

    name = factory.Sequence(lambda n: f"Group {n}")
    path = factory.Sequence(lambda n: f"group-{n}")
    visibility = "private"


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    path = factory.Sequence(lambda n: f"project-{n}")
    group = factory.SubFactory(GroupFactory)
    visibility = "private"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    access_level = AccessLevel.DEVELOPER


def member(resource, level=AccessLevel.DEVELOPER, **membership):
    """A new user who is a member of `resource` (a Project or Group) at `level`."""
    user = UserFactory()
    target = {"project": resource} if isinstance(resource, Project) else {"group": resource}
    MembershipFactory(user=user, access_level=level, **target, **membership)
    return user


def _issue_token(row, prefix):
    row.plaintext = tokens.issue(row, prefix)
    return row


class AccessTokenFactory(factory.django.DjangoModelFactory):
    """A personal access token (scopes ["api"] unless told)."""

    class Meta:
        model = AccessToken

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"token-{n}")
    scopes = factory.LazyFunction(lambda: ["api"])

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return _issue_token(model_class(**kwargs), tokens.PERSONAL_PREFIX)


def token_headers(resource, level, kind="private"):
    """Request headers (tests.helpers.auth_headers, spelled as `kind`) carrying the personal access
    token of a new member of `resource` at `level`."""
    return auth_headers(AccessTokenFactory(user=member(resource, level)).plaintext, kind)


class DeployTokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeployToken

    name = factory.Sequence(lambda n: f"deploy-{n}")
    scopes = factory.LazyFunction(lambda: ["read_package_registry", "write_package_registry"])

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return _issue_token(model_class(**kwargs), tokens.DEPLOY_PREFIX)


class CiJobFactory(factory.django.DjangoModelFactory):
    """A running job; its token is on `.plaintext`."""

    class Meta:
        model = CiJob

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        job = model_class(**kwargs)
        token = tokens.mint(tokens.JOB_PREFIX)
        job.token_digest = tokens.digest(token)
        job.save()
        job.plaintext = token
        return job


class JobTokenScopeLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobTokenScopeLink


def bot_token(resource, access_level, scopes=("api",)):
    """A project or group access token: a bot user who is a member of `resource`."""
    is_project = isinstance(resource, Project)
    bot = UserFactory(
        is_bot=True,
        username=f"{'project' if is_project else 'group'}_{resource.pk}_bot_{User.objects.count()}",
    )
    MembershipFactory(
        user=bot, access_level=access_level, **({"project": resource} if is_project else {"group": resource})
    )
    return AccessTokenFactory(
        user=bot,
        scopes=list(scopes),
        kind=AccessToken.Kind.PROJECT if is_project else AccessToken.Kind.GROUP,
        **({"resource_project": resource} if is_project else {"resource_group": resource}),
    )


def finish(job):
    job.status = CiJob.Status.SUCCESS
    job.finished_at = timezone.now()
    job.save()
    return job


TOKEN_KINDS = ("personal", "project", "group", "deploy", "job")


def credential(kind, project, user, level=AccessLevel.DEVELOPER):
    """(user name, token) of one kind of token (TOKEN_KINDS) reaching `project`, as clients send
    them in Basic credentials: `user`'s personal token, a project or group bot at `level`, a
    deploy token of the project, or a CI job of the project run by `user`."""
    if kind == "personal":
        return user.username, AccessTokenFactory(user=user).plaintext
    if kind == "project":
        return "bot", bot_token(project, level).plaintext
    if kind == "group":
        return "bot", bot_token(project.group, level).plaintext
    if kind == "deploy":
        token = DeployTokenFactory(project=project)
        return token.username, token.plaintext
    return "gitlab-ci-token", CiJobFactory(project=project, user=user).plaintext


# --- registry.virtual ------------------------------------------------------------------------


class VirtualRegistryFactory(factory.django.DjangoModelFactory):
    """A virtual registry (npm unless told), named after its format unless told."""

    class Meta:
        model = VirtualRegistry

    group = factory.SubFactory(GroupFactory)
    format = "npm"
    name = factory.LazyAttribute(lambda registry: registry.format)


def local_upstream(registry, project, name="ours"):
    """A local upstream serving `project`, last in `registry`'s order, made by the service (whether
    the caller may read the project is not asked)."""
    upstream, _ = services.create_local_upstream(
        registry, {"name": name, "local_project_id": project.pk}, can_read_target=lambda target: None
    )
    return upstream


def remote_upstream(registry, url, name, position=1):
    """A remote upstream of `registry`'s group at `url`, at `position` in the registry's order."""
    upstream = Upstream.objects.create(group=registry.group, format=registry.format, kind="remote", name=name, url=url)
    RegistryUpstream.objects.create(registry=registry, upstream=upstream, position=position)
    return upstream


def registry_over_remotes(fmt, group_path, urls, **fields):
    """A virtual registry of `fmt` in a new top-level group, its upstreams remote ones at `urls`
    ({name: url}), in that order."""
    registry = VirtualRegistryFactory(group=GroupFactory(path=group_path), format=fmt, **fields)
    for position, (name, url) in enumerate(urls.items(), start=1):
        remote_upstream(registry, url, name, position)
    return registry


def registry_over_project(fmt, group_path, project_path):
    """(registry, project): a virtual registry of `fmt` in a new top-level group, its one upstream a
    local upstream serving a new private project of that group."""
    group = GroupFactory(path=group_path)
    project = ProjectFactory(group=group, path=project_path, visibility="private")
    registry = VirtualRegistryFactory(group=group, format=fmt)
    local_upstream(registry, project)
    return registry, project
