"""RedisStore through Redis Sentinel (a master and one sentinel these tests start):
the store contract (both faces), and both faces finding the master by service name."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.sentinel import SentinelConnectionPool as SyncSentinelConnectionPool

from sessionware.stores import RedisStore, from_url
from sessionware.stores.base import Store
from sessionware.testing import StoreContract, new_key
from tests.stores.redis_apps import SessionApp
from tests.stores.redis_servers import Sentinel


class TestRedisSentinelStore(StoreContract):
    """The contract, on the master the sentinel names."""

    @pytest.fixture
    async def backend(self, redis_sentinel: Sentinel) -> AsyncIterator[Store]:
        """A RedisStore from a redis+sentinel:// URL under a fresh prefix."""
        s = RedisStore.from_url(redis_sentinel.url, prefix=f"s{uuid.uuid4().hex[:2]}:")
        yield s
        await s.close()


@pytest.mark.anyio
async def test_sentinel_url_reaches_the_named_master(redis_sentinel: Sentinel) -> None:
    """A session written through redis+sentinel:// lands on the master the sentinel names."""
    s = from_url(redis_sentinel.url + "?prefix=sx:")
    assert isinstance(s, RedisStore)
    assert isinstance(s.client.connection_pool, SentinelConnectionPool)
    app = SessionApp(s)
    transport = httpx.ASGITransport(app=app.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.post("/login")).status_code == 200
            assert (await client.get("/get")).json() == {"user_id": "42"}
        rkey = s.record_key(app.seen["key"])
        assert redis_sentinel.master.send("EXISTS", rkey) == b":1\r\n"
    finally:
        await s.close()


@pytest.mark.anyio
async def test_sync_face_reaches_the_named_master(redis_sentinel: Sentinel) -> None:
    """The sync face of a redis+sentinel:// store asks the sentinel for the master and
    writes there; the async face reads what it wrote."""
    s = RedisStore.from_url(redis_sentinel.url, prefix=f"sy{uuid.uuid4().hex[:2]}:")
    try:
        assert isinstance(s.sync_client.connection_pool, SyncSentinelConnectionPool)
        assert s.sync_client.connection_pool.service_name == redis_sentinel.service
        key = new_key()
        s.sync.create(key, {".a": "1"}, 60)
        assert redis_sentinel.master.send("EXISTS", s.record_key(key)) == b":1\r\n"
        assert await s.load(key) == {".a": "1"}
    finally:
        await s.close()
