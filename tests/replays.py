"""What the tests of answers replayed before Django (registry.response_cache, through
packhouse.wsgi as gunicorn runs it) set up and count: a registry over a project with a publisher
and a reader, the replays the metrics show, and the queries of a document asked twice, the second
time replayed."""

from accounts.roles import AccessLevel
from registry import metrics
from tests.core.test_response_reuse import queries_for
from tests.factories import registry_over_project, token_headers


def replayed_count():
    """How many answers this process has replayed so far (the REUSE counter's `replayed`)."""
    return metrics.REUSE.labels("replayed")._value.get()


def asked_twice(path, **headers):
    """(first, second): `path` asked twice through packhouse.wsgi; the first answer is built (200,
    with queries), the second is the first replayed (no query, the same body)."""
    first, first_queries = queries_for(path, **headers)
    second, second_queries = queries_for(path, **headers)
    assert first.status_code == 200 and first_queries > 0 and second_queries == 0
    assert second.body == first.body
    return first, second


def registry_publisher_reader(fmt, group_path, project_path, publisher_level):
    """(registry, project, publisher, reader): factories.registry_over_project's registry and project,
    and the request headers of a member of the project at `publisher_level` and of a Reporter of the
    group, both made before anything is remembered (a new membership changes the identity epoch)."""
    registry, project = registry_over_project(fmt, group_path, project_path)
    publisher = token_headers(project, publisher_level)
    return registry, project, publisher, token_headers(registry.group, AccessLevel.REPORTER)
