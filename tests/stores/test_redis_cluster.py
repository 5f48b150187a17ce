"""RedisStore on a 3-master Redis Cluster these tests start themselves: the store
contract (both faces), cross-slot user indexes, concurrent requests through the
middleware, and the sync face's client built on first use."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
import redis.cluster

from sessionware.stores import RedisStore
from sessionware.stores.base import Store
from sessionware.testing import StoreContract, new_key
from tests.stores.redis_apps import SessionApp
from tests.stores.redis_servers import Cluster


class TestRedisClusterStore(StoreContract):
    """The contract, on the test cluster."""

    @pytest.fixture
    async def backend(self, redis_cluster: Cluster) -> AsyncIterator[Store]:
        """A cluster RedisStore under a fresh prefix (the cluster is thrown away afterwards)."""
        s = RedisStore.from_url(redis_cluster.url, prefix=f"c{uuid.uuid4().hex[:2]}:")
        yield s
        await s.close()


@pytest.fixture
async def store(redis_cluster: Cluster) -> AsyncIterator[RedisStore]:
    """A cluster RedisStore under a fresh prefix."""
    s = RedisStore.from_url(redis_cluster.url, prefix=f"c{uuid.uuid4().hex[:2]}:")
    yield s
    await s.close()


def slots(cluster: Cluster, *keys: bytes) -> set[int]:
    """The hash slots ``keys`` map to, as the cluster computes them."""
    node = cluster.nodes[0]
    out = set()
    for k in keys:
        reply = node.send("CLUSTER", "KEYSLOT", k)
        out.add(int(reply[1:].strip()))
    return out


@pytest.mark.anyio
async def test_store_is_a_cluster_store(store: RedisStore) -> None:
    """redis+cluster:// builds a cluster client, and sessions spread over several masters."""
    assert store.cluster
    await store.ping()
    keys = [new_key() for _ in range(30)]
    for k in keys:
        await store.create(k, {".a": "1"}, 60)
    nodes = {store.client.get_node_from_key(store.record_key(k)).port for k in keys}
    assert len(nodes) > 1
    loaded = [await store.load(k) for k in keys]
    assert loaded == [{".a": "1"}] * 30


@pytest.mark.anyio
async def test_user_index_spans_slots(store: RedisStore, redis_cluster: Cluster) -> None:
    """A user's set sits in its hash-tag slot while keys_of and delete_user_sessions reach
    sessions on every master."""
    keys = [new_key() for _ in range(12)]
    for k in keys:
        await store.create(k, {".a": "1"}, 60)
        await store.link("42", k)
    assert slots(redis_cluster, store.user_key("42")) == slots(redis_cluster, b"42")
    record_slots = slots(redis_cluster, *(store.record_key(k) for k in keys))
    assert len(record_slots) > 1
    assert await store.keys_of("42") == sorted(keys)
    assert set(await store.user_sessions("42")) == set(keys)
    assert await store.delete_user_sessions("42", keep=keys[0]) == 11
    assert await store.keys_of("42") == [keys[0]]


@pytest.mark.anyio
async def test_fifty_concurrent_requests_all_land_on_the_cluster(store: RedisStore) -> None:
    """Fifty concurrent requests on one session, each adding its own key, all persist."""
    app = SessionApp(store)
    transport = httpx.ASGITransport(app=app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.post("/login")).status_code == 200

        async def one(i: int) -> None:
            assert (await client.post(f"/set/k{i}?v={i}")).status_code == 200

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(one, i)
        data = (await client.get("/get")).json()
        assert data == {"user_id": "42", **{f"k{i}": str(i) for i in range(50)}}
        await client.post("/logout")
        assert await store.load(app.seen["key"]) is None


@pytest.mark.anyio
async def test_sync_face_is_built_on_first_use_and_shares_records(
    store: RedisStore, redis_cluster: Cluster
) -> None:
    """The synchronous RedisCluster is built when the sync face is first used; its
    writes reach every master and the async face reads them, and its user index spans
    slots as the async one does."""
    assert store.sync_client is None
    keys = [new_key() for _ in range(12)]
    for k in keys:
        store.sync.create(k, {".a": "1"}, 60)
        store.sync.link("7", k)
    assert isinstance(store.sync_client, redis.cluster.RedisCluster)
    assert len(slots(redis_cluster, *(store.record_key(k) for k in keys))) > 1
    assert [await store.load(k) for k in keys] == [{".a": "1"}] * 12
    assert await store.keys_of("7") == sorted(keys)
    await store.delete(keys[1])
    assert store.sync.keys_of("7") == sorted(set(keys) - {keys[1]})
    assert set(store.sync.user_sessions("7")) == set(keys) - {keys[1]}
    assert store.sync.delete_user_sessions("7", keep=keys[0]) == 10
    assert await store.keys_of("7") == [keys[0]]


@pytest.mark.anyio
async def test_sync_face_reloads_scripts_on_every_master(
    store: RedisStore, redis_cluster: Cluster
) -> None:
    """After every master forgot its scripts, sync-face writes on keys across the
    masters still work (the scripts are loaded again)."""
    keys = [new_key() for _ in range(6)]
    for k in keys:
        store.sync.create(k, {".a": "1"}, 60)
    for node in redis_cluster.nodes:
        node.send("SCRIPT", "FLUSH")
    for k in keys:
        assert store.sync.apply(k, {".b": "2"}, [], 60)
        assert store.sync.incr(k, ".n", 2, 60, create=False) == 2
    assert [await store.load(k) for k in keys] == [{".a": "1", ".b": "2", ".n": "2"}] * 6
