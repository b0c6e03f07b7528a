"""The two-node topology of scripts/cluster.py on the test database: two nodes (uWSGI behind nginx) with
separate PACKHOUSE_VAR_DIRs, one Celery worker with beat, one Redis, a SeaweedFS bucket, nginx
(deploy/nginx.conf) in front. Per-process caches are at their defaults (on, with Redis)."""

import os

import pytest
from django.db import connection

from scripts.cluster import Cluster
from tests.clients.maven.test_mvn import maven  # noqa: F401 - the clients' fixtures, used here too
from tests.clients.nuget.test_nuget_exe import nuget_exe  # noqa: F401
from tests.clients.pypi.test_pip_twine import dists  # noqa: F401
from tests.seaweed import Bucket


# Module scope: its Celery beat flushes download counts and runs every scheduled task on this
# worker's database and Redis, which must not go on under the tests that run after this file.
@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker, seaweedfs, tmp_path_factory):
    redis_url = os.environ.get("PACKHOUSE_REDIS_URL", "")
    if not redis_url:
        pytest.fail("the two-node tests need PACKHOUSE_REDIS_URL (one Redis for both nodes)")
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    bucket = Bucket(seaweedfs, seaweedfs.new_bucket())
    topology = Cluster(
        tmp_path_factory.mktemp("cluster"),
        database_url=database_url,
        redis_url=redis_url,
        storage_url=bucket.storage_url,
    ).start()
    topology.bucket = bucket
    yield topology
    topology.stop()


@pytest.fixture
def nodes(cluster):
    """Both nodes up (a test that killed one gets it back)."""
    yield cluster.nodes
    for node in cluster.nodes:
        if not node.running():
            node.start()
