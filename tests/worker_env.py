"""Each pytest-xdist worker gets a Redis database and a var directory of its own.

Loaded with `-p tests.worker_env` (pyproject's addopts), so it runs before pytest-django reads the
settings. The database needs nothing here: pytest-django gives each worker its own test database
(`test_<name>_gw0`, `…_gw1`). What workers would otherwise share:
- Redis: every test empties the cache (`cache.clear()` is FLUSHDB) and the epochs, throttling
  counters and Celery queue live there. Worker N uses database (D - N) mod 16, D being the one
  `PACKHOUSE_REDIS_URL` names, so the default `…/15` gives 15, 14, …
- `PACKHOUSE_VAR_DIR` (file caches, metrics): a subdirectory per worker.
The live servers a test starts inherit both through the environment.
"""

import os
from urllib.parse import urlsplit, urlunsplit

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _redis_url_for_worker(url, index):
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(database - index) % 16}"))


if WORKER.startswith("gw"):
    _index = int(WORKER[2:])
    if os.environ.get("PACKHOUSE_REDIS_URL"):
        os.environ["PACKHOUSE_REDIS_URL"] = _redis_url_for_worker(os.environ["PACKHOUSE_REDIS_URL"], _index)
    if os.environ.get("PACKHOUSE_VAR_DIR"):
        _var = os.path.join(os.environ["PACKHOUSE_VAR_DIR"], WORKER)
        os.makedirs(_var, exist_ok=True)
        os.environ["PACKHOUSE_VAR_DIR"] = _var
