"""Redis fixtures: the shared server on 127.0.0.1:6379 under a per-run prefix, and
Cluster / Sentinel set-ups these tests start themselves (see ``redis_servers``).

A missing Redis fails the run; nothing is skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.stores.redis_servers import Cluster, Sentinel, running_cluster, running_sentinel

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test run on the shared Redis; its keys are deleted at the end."""
    prefix = f"swt{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.unlink(key)
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Cluster]:
    """A 3-master Redis Cluster on spare loopback ports, for the whole run."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[Sentinel]:
    """A master and a sentinel watching it, for the whole run."""
    with running_sentinel() as sentinel:
        yield sentinel
