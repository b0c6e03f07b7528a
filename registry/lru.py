"""The one per-process memory of Packhouse: a thread-safe LRU bounded by the cost of what it holds.

Remembered credentials and access decisions (registry.access_cache, cost 1 each, bounded in
count and age), replayed answers (registry.response_cache) and local copies of documents
(registry.documents), both bounded in bytes, are each one BoundedLRU. Limits are read on every
put, so a changed setting applies at once. An entry costing more than a quarter of the limit is
not kept: one large document must not push out everything else.
"""

import threading
import time
from collections import OrderedDict


def _unit_cost(key, value):
    return 1


class BoundedLRU:
    def __init__(self, limit, cost=_unit_cost, max_age=None):
        """`limit()` is the most the entries may cost together, `cost(key, value)` one entry's
        cost; `max_age()`, when given, the seconds after which an entry is never returned."""
        self._limit = limit
        self._cost = cost
        self._max_age = max_age
        self._entries = OrderedDict()  # key -> (value, cost, stored at)
        self._total = 0
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            if self._max_age is not None and time.monotonic() - entry[2] >= self._max_age():
                self._remove(key)
                return default
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key, value):
        limit = self._limit()
        cost = self._cost(key, value)
        if cost > limit // 4 and limit >= 4:
            return
        with self._lock:
            self._remove(key)
            self._entries[key] = (value, cost, time.monotonic())
            self._total += cost
            while self._total > limit:
                _, (_, evicted_cost, _) = self._entries.popitem(last=False)
                self._total -= evicted_cost

    def discard(self, key):
        with self._lock:
            self._remove(key)

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._total = 0

    def values(self):
        with self._lock:
            return [entry[0] for entry in self._entries.values()]

    @property
    def total_cost(self):
        return self._total

    def __len__(self):
        return len(self._entries)

    def _remove(self, key):
        previous = self._entries.pop(key, None)
        if previous is not None:
            self._total -= previous[1]
