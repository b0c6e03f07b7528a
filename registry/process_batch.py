"""Values a process adds up in memory and hands on in one call every few seconds, from a thread
of its own: what the replay path counts (registry.download_counts, registry.virtual.hit_counts)
without a Redis round trip per answer.

A process that exits (a graceful stop or restart of a worker) sends what it holds; one killed
outright loses at most its last interval. A send that fails keeps the batch for the next one."""

import atexit
import logging
import os
import threading
import time

from django.db import connection

from registry import background

logger = logging.getLogger(__name__)


class ProcessBatch:
    """{key: value} of this process not yet sent. `add` merges a value into its key's with
    `combine(old, new)`; every `seconds()` (and at exit, and when `send` is called) the whole batch
    goes to `deliver(batch)`, whose failure puts it back. While `seconds()` is 0, `add` delivers
    each value at once instead."""

    def __init__(self, name, deliver, combine, seconds):
        self.name = name
        self.deliver = deliver
        self.combine = combine
        self.seconds = seconds
        self.lock = threading.Lock()  # guards `pending`, taken for microseconds
        # Held while a batch is on its way: whoever else reads where batches go (a flush in this
        # process) waits for it to arrive rather than miss it.
        self.sending = threading.RLock()
        self.pending = {}
        self.sender = None
        self.pid = None
        atexit.register(self._send_at_exit)

    def add(self, key, value):
        if not self.seconds():
            self.deliver({key: value})
            return
        with self.lock:
            if self.pid != os.getpid():  # the first value of this process, or of a fork of it
                self.pid, self.sender, self.pending = os.getpid(), None, {}
            old = self.pending.get(key)
            self.pending[key] = value if old is None else self.combine(old, value)
            if self.sender is None:
                self.sender = background.start(self._send_forever, self.name)

    def send(self):
        """Deliver this process's batch now; on a failure it is kept and the error propagates."""
        with self.sending:
            with self.lock:
                if self.pid != os.getpid():
                    return
                taken, self.pending = self.pending, {}
            if not taken:
                return
            try:
                self.deliver(taken)
            except Exception:
                with self.lock:
                    for key, value in taken.items():
                        old = self.pending.get(key)
                        self.pending[key] = value if old is None else self.combine(value, old)
                raise

    def _send_forever(self):
        while True:
            time.sleep(self.seconds() or 1)
            try:
                self.send()
            except Exception:  # noqa: BLE001 - kept for the next interval, never ends the thread
                logger.exception("%s kept for the next batch", self.name)
            finally:
                connection.close()  # this thread's, if a delivery used the database

    def _send_at_exit(self):
        try:
            self.send()
        except Exception:  # noqa: BLE001 - the process is ending: say what was lost
            logger.exception("%s of this process lost at its exit", self.name)
