"""registry.process_batch: values a process adds up and hands on in one call."""

import time

import pytest

from registry.process_batch import ProcessBatch


def summing(deliver, seconds=3600):
    return ProcessBatch("test values", deliver, lambda old, new: old + new, lambda: seconds)


def test_values_are_merged_and_delivered_in_one_call():
    delivered = []
    batch = summing(delivered.append)
    for key in ("a", "b", "a", "a"):
        batch.add(key, 1)
    batch.send()
    batch.send()  # nothing left: no empty delivery
    assert delivered == [{"a": 3, "b": 1}]


def test_a_failed_delivery_keeps_the_batch_for_the_next():
    delivered = []

    def deliver(values):
        if not delivered:
            delivered.append("refused")
            raise ConnectionError("down")
        delivered.append(values)

    batch = summing(deliver)
    batch.add("a", 2)
    with pytest.raises(ConnectionError):
        batch.send()
    batch.add("a", 1)
    batch.add("b", 5)
    batch.send()
    assert delivered == ["refused", {"a": 3, "b": 5}]


def test_the_process_thread_delivers_within_the_interval():
    delivered = []
    batch = summing(delivered.append, seconds=0.05)
    batch.add("a", 1)
    deadline = time.monotonic() + 5
    while not delivered and time.monotonic() < deadline:
        time.sleep(0.01)
    assert delivered == [{"a": 1}]
    assert batch.sender.is_alive() and batch.sender.daemon


def test_with_no_interval_each_value_is_delivered_at_once():
    delivered = []
    batch = summing(delivered.append, seconds=0)
    batch.add("a", 1)
    batch.add("a", 1)
    assert delivered == [{"a": 1}, {"a": 1}]
    assert batch.sender is None  # no thread started
