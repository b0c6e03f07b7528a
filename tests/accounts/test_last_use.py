"""Token uses noted in Redis by replayed answers (accounts.last_use.note) reach the rows'
`last_used_at` through the beat task's flush: each once, never moving a row back, the latest
note of a token winning."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts import last_use, redis_client
from accounts.models import AccessToken
from registry import tasks
from tests.factories import AccessTokenFactory, DeployTokenFactory, ProjectFactory
from tests.helpers import free_port

pytestmark = pytest.mark.django_db


def moment(seconds):
    return datetime.fromtimestamp(seconds, tz=UTC)


def test_the_flush_writes_each_noted_use_to_its_row_once():
    access = AccessTokenFactory()
    deploy = DeployTokenFactory(project=ProjectFactory())
    tasks.flush_token_last_use()

    assert last_use.note(last_use.credential_of(access), 1_800_000_000.5)
    assert last_use.note(last_use.credential_of(deploy), 1_800_000_100.0)
    access.refresh_from_db()
    assert access.last_used_at is None  # noted in Redis, not yet in the row

    assert tasks.flush_token_last_use() == 2
    access.refresh_from_db()
    deploy.refresh_from_db()
    assert access.last_used_at == moment(1_800_000_000.5)
    assert deploy.last_used_at == moment(1_800_000_100.0)
    assert tasks.flush_token_last_use() == 0  # nothing written twice


def test_a_note_never_moves_a_row_back_and_the_latest_note_wins():
    older, newer = AccessTokenFactory(), AccessTokenFactory()
    recent = timezone.now().replace(microsecond=0)
    AccessToken.objects.filter(pk=older.pk).update(last_used_at=recent)  # Django recorded a later use
    last_use.note(last_use.credential_of(older), (recent - timedelta(minutes=5)).timestamp())
    last_use.note(last_use.credential_of(newer), 1_800_000_000.0)
    last_use.note(last_use.credential_of(newer), 1_800_000_060.0)

    assert tasks.flush_token_last_use() == 2

    older.refresh_from_db()
    newer.refresh_from_db()
    assert older.last_used_at == recent
    assert newer.last_used_at == moment(1_800_000_060.0)


def test_only_access_and_deploy_tokens_have_a_name_to_note():
    assert last_use.credential_of(None) is None
    assert last_use.credential_of(ProjectFactory()) is None


def test_the_flush_tasks_leave_their_batches_for_the_next_beat_when_redis_is_unreachable(settings, caplog):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    redis_client.client.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="registry.tasks"):
            assert tasks.flush_token_last_use() == 0
            assert tasks.flush_download_counts() == 0
    finally:
        redis_client.client.cache_clear()
    assert "token uses stay pending: ConnectionError" in caplog.text
    assert "download counts stay pending: ConnectionError" in caplog.text
