"""registry.lru.BoundedLRU: the one per-process memory (no database)."""

import pytest

from registry import lru


@pytest.fixture(autouse=True)
def _isolated_storage():
    """This module needs no storage, database or cache."""


def test_least_recently_used_entries_go_first_when_the_cost_is_over_the_limit():
    memory = lru.BoundedLRU(limit=lambda: 9, cost=lambda key, value: len(value[:2]))
    for key in "abc":
        memory.put(key, "12")
    assert memory.get("a") == "12"  # now the most recent
    memory.put("d", "12")  # 8 > 9? no: kept with all
    memory.put("e", "12")  # 10 > 9: b, the least recent, goes
    assert memory.get("b") is None
    assert [memory.get(key) for key in "cade"] == ["12"] * 4
    assert memory.total_cost == 8


def test_an_entry_over_a_quarter_of_the_limit_is_not_kept():
    memory = lru.BoundedLRU(limit=lambda: 100, cost=lambda key, value: len(value))
    memory.put("small", "x" * 25)
    memory.put("large", "x" * 26)
    assert memory.get("small") == "x" * 25
    assert memory.get("large", "missing") == "missing"


def test_replacing_a_key_counts_its_cost_once():
    memory = lru.BoundedLRU(limit=lambda: 100, cost=lambda key, value: len(value))
    memory.put("k", "x" * 10)
    memory.put("k", "x" * 20)
    assert memory.total_cost == 20 and len(memory) == 1
    memory.discard("k")
    assert memory.total_cost == 0 and len(memory) == 0


def test_an_entry_older_than_the_maximum_age_is_never_returned(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(lru.time, "monotonic", lambda: now[0])
    memory = lru.BoundedLRU(limit=lambda: 10, max_age=lambda: 60)
    memory.put("principal", "alice")
    now[0] += 59.9
    assert memory.get("principal") == "alice"
    now[0] += 0.1
    assert memory.get("principal") is None
    assert len(memory) == 0


def test_a_lowered_limit_applies_at_the_next_put():
    limit = [10]
    memory = lru.BoundedLRU(limit=lambda: limit[0])
    for key in range(10):
        memory.put(key, key)
    limit[0] = 4
    memory.put("new", 1)
    assert len(memory) == 4 and memory.get("new") == 1
