"""`/-/metrics` in Prometheus' text format, with prometheus_client in multiprocess mode: every
process writes its counts to files in PROMETHEUS_MULTIPROC_DIR (packhouse.settings.METRICS_DIR),
and a scrape sums them, so the answer covers every gunicorn worker of the node, whichever one
answers the scrape. Scrape each node.

- Requests: `packhouse_http_requests_total{format, route, method, status}` and the duration
  histogram `packhouse_http_request_duration_seconds{format}`, counted by
  registry.observe.ObserveApplication around everything (answers the response cache replays
  before Django included: they carry the facts they were remembered with). `route` is the URL
  pattern, never the path.
- Packages: bytes uploaded (published files) and downloaded (served files, through a redirect to
  the object store or not), publishes and deletes, by format.
- Response reuse: `packhouse_response_reuse_total{result="replayed"|"built"}`, metadata documents
  and downloads from the local disk (registry.response_cache); the reuse ratio is
  replayed / (replayed + built).
- Authentication failures by reason and deploy tokens by scope: accounts.metrics.
- Cluster-wide, read at each scrape: the Celery queue length (Redis), cleanup policy runs (the
  "counters" cache that every process shares).

Access: an address in PACKHOUSE_METRICS_ALLOWED_IPS (default loopback), or an instance admin's
token (401 without a credential, 403 for anyone else).
"""

import functools
import ipaddress
import os
from pathlib import Path

import redis
from django.conf import settings
from django.core.cache import caches
from django.http import HttpResponse
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from accounts import throttling
from accounts.authentication import InvalidCredential, authenticate_request, carries_credential
from registry import epochs

CLEANUP_RUNS_KEY = "metrics:cleanup-runs"

REQUESTS = Counter("packhouse_http_requests_total", "HTTP requests answered", ["format", "route", "method", "status"])
DURATION = Histogram(
    "packhouse_http_request_duration_seconds",
    "Time to the answer's headers (a streamed body's bytes are not included)",
    ["format"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BYTES = Counter("packhouse_package_bytes_total", "Bytes of package files published and served", ["direction", "format"])
PUBLISHES = Counter("packhouse_publishes_total", "Package versions published (or files added to one)", ["format"])
DELETES = Counter("packhouse_deletes_total", "Package versions and files deleted", ["format", "what"])
REUSE = Counter(
    "packhouse_response_reuse_total", "Metadata and download answers replayed before Django or remembered", ["result"]
)


@functools.lru_cache(maxsize=4096)
def labelled(metric, *values):
    """`metric.labels(*values)`, looked up once per process: labels() takes a lock and converts
    every value on each call, which the per-request counters (registry.observe, the replay) would
    pay on every answer. The label sets are bounded (formats, route patterns, methods, statuses)."""
    return metric.labels(*values)


def _prune_dead_processes():
    """Counts of processes that no longer run are dropped (a restart is a counter reset), so the
    directory does not grow with every worker a node ever had."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    for path in Path(directory).glob("*.db"):
        try:
            pid = int(path.stem.rsplit("_", 1)[-1])
            os.kill(pid, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except PermissionError:  # alive, another user's
            continue


_prune_dead_processes()


def count_cleanup_run():
    cache = caches["counters"]
    try:
        cache.incr(CLEANUP_RUNS_KEY)
    except ValueError:  # first run since the counters were cleared
        cache.add(CLEANUP_RUNS_KEY, 0, timeout=None)
        cache.incr(CLEANUP_RUNS_KEY)


class ClusterCollector:
    """What every process shares, read at scrape time."""

    def collect(self):
        runs = CounterMetricFamily("packhouse_cleanup_runs", "Cleanup policy runs (every process of the cluster)")
        runs.add_metric([], caches["counters"].get(CLEANUP_RUNS_KEY, 0))
        yield runs
        length = _queue_length()
        if length is not None:
            queue = GaugeMetricFamily("packhouse_celery_queue_length", "Tasks waiting in the Celery queue")
            queue.add_metric([], length)
            yield queue


def _queue_length():
    if not settings.REDIS_URL:
        return None  # tasks run in the request: there is no queue
    try:
        return epochs.client().llen(getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery"))
    except redis.RedisError:
        return None


def allowed(request):
    """(allowed, status to answer otherwise) for a scrape."""
    address = throttling.client_address(request)
    try:
        ip = ipaddress.ip_address(address)
        if any(ip in ipaddress.ip_network(net, strict=False) for net in settings.METRICS_ALLOWED_IPS):
            return True, None
    except ValueError:
        pass
    if not carries_credential(request.META):
        return False, 401
    try:
        principal = authenticate_request(request)
    except InvalidCredential:
        return False, 401
    return (True, None) if principal.is_admin else (False, 403)


def metrics_view(request):
    ok, status = allowed(request)
    if not ok:
        response = HttpResponse(f"{status} {'Unauthorized' if status == 401 else 'Forbidden'}\n", status=status)
        if status == 401:
            response["WWW-Authenticate"] = 'Basic realm="Packhouse Package Registry"'
        return response
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(ClusterCollector())
    response = HttpResponse(generate_latest(registry), content_type="text/plain; version=0.0.4; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response
