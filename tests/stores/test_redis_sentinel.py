"""RedisStore through Redis Sentinel (a master and one sentinel these tests start):
the store contract (both faces), and both faces finding the master by service name."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest
import redis.asyncio
from bench.faults.redis_scenarios import SERVICE, SentinelSet, sentinel_set
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.sentinel import SentinelConnectionPool as SyncSentinelConnectionPool

from sessionware.exceptions import ConfigurationError
from sessionware.stores import RedisStore, from_url
from sessionware.stores.base import Store
from sessionware.testing import StoreContract, new_key
from tests.stores.redis_apps import SessionApp
from tests.stores.redis_servers import RedisServer, Sentinel, free_port


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


async def _until(check: Callable[[], Awaitable[bool]], seconds: float) -> float | None:
    """Seconds until ``check()`` held (polled every 20 ms), or None if it never did."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    return None


@pytest.mark.anyio
@pytest.mark.parametrize("face", ["async", "sync"])
async def test_a_failover_is_followed_as_soon_as_sentinel_names_the_new_master(
    face: str,
) -> None:
    """After ``SENTINEL FAILOVER`` the old master goes on taking writes until Sentinel
    demotes it, about ten seconds later, and its full resync then erases them. A store
    that waits for the old master to refuse a write (redis-py's connections alone)
    loses every write of those seconds; this one asks Sentinel again while in use and
    writes to the new master within a second of it being named."""
    with sentinel_set() as sentinels:
        old = sentinels.master.port
        store = RedisStore.from_url(sentinels.url + "?master_check_interval=0.1")
        try:

            async def create(key: str) -> None:
                if face == "async":
                    await store.create(key, {"a": "1"}, 600)
                else:
                    await asyncio.to_thread(store.sync.create, key, {"a": "1"}, 600)

            await create(new_key())  # connected to the old master
            held = []
            if face == "async":
                # Connections in use when the master changes (a server under load has
                # many): the pool drops only idle ones, so these come back still
                # connected to the old master, and the store must move them itself.
                pool = store.client.connection_pool
                held = [await pool.get_connection() for _ in range(4)]
            first = sentinels.sentinels[0][0]

            async def failing_over() -> bool:
                # Refused (-NOGOODSLAVE) until Sentinel has a fresh word from the replica.
                return sentinels.sentinel_command("SENTINEL", "FAILOVER", SERVICE) == b"+OK\r\n"

            assert await _until(failing_over, 10) is not None, "Sentinel refused the failover"

            async def named() -> bool:
                return sentinels.master_port(first) not in (None, old)

            assert await _until(named, 20) is not None, "Sentinel named no new master"
            new = sentinels.master_port(first)
            assert new is not None
            until = time.monotonic() + 0.3
            while time.monotonic() < until:  # in use: the store hears of it (every 0.1 s)
                await create(new_key())
            for conn in held:
                await pool.release(conn)

            async def lands_on_new_master() -> bool:
                key = new_key()
                await create(key)
                probe = RedisStore.from_url(f"redis://127.0.0.1:{new}/0")
                try:
                    return await probe.load(key) is not None
                finally:
                    await probe.close()

            took = await _until(lands_on_new_master, 5)
            assert took is not None, "writes still went to the old master 5 s after the switch"
            assert took < 1.5
        finally:
            await store.close()


@contextlib.contextmanager
def decoy_sentinel(sentinels: SentinelSet) -> Iterator[int]:
    """An empty redis-server and a Sentinel that names it the master of SERVICE at
    config epoch 0: what a Sentinel that has not heard of a failover says while the old
    master, restarted without persistence, answers again (healthy, empty, a master)."""
    workdir = sentinels.workdir
    server = RedisServer(workdir).start()
    port = free_port()
    conf = workdir / f"decoy-{port}.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {workdir}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {server.port} 1\n"
    )
    proc = subprocess.Popen(["redis-server", str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                if sentinels.master_port(port) == server.port:
                    break
            assert time.monotonic() < deadline, "the decoy Sentinel never answered"
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)
        server.stop()


@pytest.mark.anyio
@pytest.mark.parametrize("face", ["async", "sync"])
async def test_the_master_of_the_newest_configuration_is_believed(face: str) -> None:
    """After a failover, a Sentinel that has not heard of it names the old master; if
    that one came back empty (no persistence), it answers as a healthy master. redis-py
    believes the first healthy answer, so a store asking that Sentinel first read
    signed-in sessions as gone. The store asks every Sentinel and believes the newest
    configuration (the highest config epoch)."""
    with sentinel_set() as sentinels:
        old, first = sentinels.master.port, sentinels.sentinels[0][0]

        async def failing_over() -> bool:
            return sentinels.sentinel_command("SENTINEL", "FAILOVER", SERVICE) == b"+OK\r\n"

        async def named() -> bool:
            return sentinels.master_port(first) not in (None, old)

        assert await _until(failing_over, 10) is not None, "Sentinel refused the failover"
        assert await _until(named, 20) is not None, "Sentinel named no new master"
        new = sentinels.master_port(first)
        writer = RedisStore.from_url(f"redis://127.0.0.1:{new}/0")
        key = new_key()
        await writer.create(key, {".user": '"42"'}, 600)
        await writer.close()
        with decoy_sentinel(sentinels) as decoy:
            real = ",".join(f"127.0.0.1:{p}" for p, _ in sentinels.sentinels)
            store = RedisStore.from_url(f"redis+sentinel://127.0.0.1:{decoy},{real}/{SERVICE}/0")
            try:
                if face == "async":
                    found = await store.load(key)
                else:
                    found = await asyncio.to_thread(store.sync.load, key)
            finally:
                await store.close()
        assert found == {".user": '"42"'}, "the store believed the stale Sentinel"


@pytest.mark.parametrize("value", ["0", "-1", "soon", "7200"])
def test_a_bad_master_check_interval_fails_at_start_up_with_the_fix(value: str) -> None:
    url = f"redis+sentinel://127.0.0.1:26379/mymaster/0?master_check_interval={value}"
    with pytest.raises(ConfigurationError, match="master_check_interval must be seconds"):
        RedisStore.from_url(url)


def test_master_check_interval_is_checked_when_the_store_is_built_from_clients() -> None:
    client = redis.asyncio.Redis()
    with pytest.raises(ConfigurationError, match="at most 60"):
        RedisStore(client, master_check_interval=61)
