"""accounts.redis_client on the real Redis: drain_hash, the batch step of accounts.last_use and
registry.virtual.hit_counts (a hash taken whole, and put back when the write fails, without
undoing what was written to it meanwhile), and the cache backend that keeps its client."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import caches

from accounts import redis_client


@pytest.fixture
def name():
    name = f"test-drain-{uuid.uuid4().hex}"
    yield name
    redis_client.client().delete(redis_client.key(name))


def stored(name):
    taken = redis_client.client().hgetall(redis_client.key(name))
    return {field.decode(): value.decode() for field, value in taken.items()}


def test_a_hash_is_taken_whole_and_written_once(name):
    redis_client.client().hset(redis_client.key(name), mapping={"a": "1", "b": "2"})
    written = []
    assert redis_client.drain_hash(name, written.append) == 2
    assert written == [{"a": "1", "b": "2"}]
    assert stored(name) == {}
    assert redis_client.drain_hash(name, written.append) == 0  # nothing to write: not called
    assert len(written) == 1


def test_a_failed_write_puts_the_fields_back_but_keeps_newer_ones(name):
    connection, key = redis_client.client(), redis_client.key(name)
    connection.hset(key, mapping={"a": "1", "b": "2"})

    def failing(taken):
        assert taken == {"a": "1", "b": "2"}
        connection.hset(key, "b", "3")  # noted while the write ran
        raise RuntimeError("the database refused the batch")

    with pytest.raises(RuntimeError):
        redis_client.drain_hash(name, failing)
    assert stored(name) == {"a": "1", "b": "3"}


def test_the_cache_keeps_one_client_and_threads_share_it():
    cache = caches["default"]
    assert isinstance(cache, redis_client.RedisCache)
    assert len({id(cache._cache.get_client(write=write)) for write in (False, True, False)}) == 1
    keys = [f"test-kept-{uuid.uuid4().hex}" for _ in range(32)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: cache.set(key, {"key": key}, 30), keys))
        found = list(pool.map(cache.get, keys))
    assert found == [{"key": key} for key in keys]
    cache.delete_many(keys)
    assert cache.get_many(keys) == {}


def test_keys_follow_the_cache_prefix_when_it_changes(settings):
    # The prefix is read once per process; two instances sharing a Redis must never share keys.
    assert redis_client.key("x") == f"{settings.CACHES['default']['KEY_PREFIX']}:x"
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "KEY_PREFIX": "other"}}
    assert redis_client.key("x") == "other:x"
