"""``min_replicas_ack``: every write waits for N replicas (``WAIT``) on its own
connection, and one they did not confirm is an outage (503), on both faces, against a
real master and replica of our own. Without the option nothing changes."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from sessionware.exceptions import ConfigurationError, StoreUnavailableError
from sessionware.stores import RedisStore
from sessionware.testing import new_key
from tests.stores.redis_apps import SessionApp
from tests.stores.redis_servers import RedisServer, _wait

pytestmark = pytest.mark.anyio


class Pair:
    def __init__(self, master: RedisServer, replica: RedisServer) -> None:
        self.master, self.replica = master, replica


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """A master and one replica of it, both our own processes."""
    with tempfile.TemporaryDirectory(prefix="sw-repl-") as tmp:
        master = RedisServer(Path(tmp), None, "--repl-diskless-sync-delay", "0").start()
        replica = RedisServer(Path(tmp), None, "--replicaof", "127.0.0.1", str(master.port))
        try:
            replica.start()
            _wait("the replica in sync", lambda: b"state=online" in master.send("INFO"))
            # The first acknowledgement of a fresh replica can take its one-second
            # cron; later ones take a round trip.
            master.send("SET", "warm", "1")
            assert master.send("WAIT", "1", "5000") == b":1\r\n"
            yield Pair(master, replica)
        finally:
            replica.stop()
            master.stop()


@contextlib.contextmanager
def replica_paused(pair: Pair) -> Iterator[None]:
    pair.replica.pause()
    try:
        yield
    finally:
        pair.replica.resume()


@pytest.fixture
async def durable(pair: Pair) -> AsyncIterator[RedisStore]:
    """A store whose writes wait for the replica: up to 2 s (a healthy replica confirms
    in a round trip; the long bound only keeps a slow first one from failing a test)."""
    store = RedisStore.from_url(
        pair.master.url + "?min_replicas_ack=1&replica_ack_timeout=2", timeout=5
    )
    yield store
    await store.close()


@pytest.fixture
async def strict(pair: Pair) -> AsyncIterator[RedisStore]:
    """The same with 0.2 s: how long each write waits while the replica is paused."""
    store = RedisStore.from_url(pair.master.url + "?min_replicas_ack=1&replica_ack_timeout=0.2")
    yield store
    await store.close()


async def test_a_confirmed_write_is_on_the_replica_when_it_returns(
    pair: Pair, durable: RedisStore
) -> None:
    key = new_key()
    await durable.create(key, {"c": "1", "a": "1", "user": "ada"}, 60)
    assert await durable.apply(key, {"colour": "teal"}, [], 60)
    # No waiting here: WAIT returned only once the replica had both writes.
    on_replica = pair.replica.send("HGET", durable.record_key(key), "colour")
    assert on_replica.endswith(b"teal\r\n")


async def test_an_unconfirmed_write_fails_as_an_outage_and_reads_go_on(
    pair: Pair, durable: RedisStore, strict: RedisStore
) -> None:
    """The write itself reached the master (WAIT cannot undo it): the caller is told
    it is not safe, which is what keeps a 200 from promising a write a failover loses."""
    key = new_key()
    await durable.create(key, {"c": "1", "a": "1"}, 60)
    await strict.create(new_key(), {"c": "1", "a": "1"}, 60)  # its scripts loaded
    with replica_paused(pair):
        with pytest.raises(StoreUnavailableError, match="0 of the 1 replicas"):
            await strict.apply(key, {"k": "v"}, [], 60)
        with pytest.raises(StoreUnavailableError):
            await strict.create(new_key(), {"c": "1", "a": "1"}, 60)
        with pytest.raises(StoreUnavailableError, match="replicas"):
            strict.sync.apply(key, {"k": "w"}, [], 60)
        loaded = await strict.load(key)  # a read waits for nobody
        assert loaded is not None and loaded["k"] == "w"
        assert strict.sync.load(key) == loaded
        with pytest.raises(StoreUnavailableError):
            await strict.delete(key)
    assert await durable.load(key) is None
    other = new_key()
    await durable.create(other, {"c": "1", "a": "1"}, 60)  # confirmed again
    assert durable.sync.apply(other, {"k": "x"}, [], 60)


async def test_the_app_answers_503_for_a_write_no_replica_confirmed(
    pair: Pair, strict: RedisStore
) -> None:
    app = SessionApp(strict)
    transport = httpx.ASGITransport(app=app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.post("/login")).status_code == 200
        jar = {"cookie": f"sid={client.cookies['sid']}"}
        client.cookies.clear()
        with replica_paused(pair):
            assert (await client.get("/get", headers=jar)).json() == {"user_id": "42"}
            assert (await client.post("/set/k", headers=jar)).status_code == 503
            assert (await client.post("/login")).status_code == 503
        assert (await client.post("/set/k", headers=jar, params={"v": "2"})).status_code == 200


async def test_without_the_option_writes_do_not_wait(pair: Pair) -> None:
    store = RedisStore.from_url(pair.master.url)
    try:
        with replica_paused(pair):
            key = new_key()
            await store.create(key, {"c": "1", "a": "1"}, 60)
            assert await store.apply(key, {"k": "v"}, [], 60)
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?min_replicas_ack=one", "whole number"),
        ("?min_replicas_ack=1&replica_ack_timeout=0", "replica_ack_timeout"),
        ("?min_replicas_ack=-1", "whole number"),
        ("?min_replicas_ack=1&replica_ack_timeout=0.5", "shorter than the store's timeout"),
    ],
)
def test_bad_settings_fail_at_start_up_with_the_fix(query: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RedisStore.from_url("redis://127.0.0.1:6379/0" + query)


def test_cluster_refuses_it_with_the_reason() -> None:
    with pytest.raises(ConfigurationError, match="Cluster"):
        RedisStore.from_url("redis+cluster://127.0.0.1:7000?min_replicas_ack=1", min_replicas_ack=1)


async def test_deletes_alone_can_wait_for_replicas(pair: Pair) -> None:
    """``min_replicas_ack_deletes``: a logout is confirmed by a replica, ordinary writes
    are not held up."""
    store = RedisStore.from_url(
        pair.master.url + "?min_replicas_ack_deletes=1&replica_ack_timeout=0.2"
    )
    try:
        key = new_key()
        await store.create(key, {"c": "1", "a": "1"}, 60)
        await store.delete(new_key())  # scripts loaded, a first WAIT answered
        with replica_paused(pair):
            assert await store.apply(key, {"k": "v"}, [], 60)  # no wait
            with pytest.raises(StoreUnavailableError, match="replicas"):
                await store.delete(key)
            with pytest.raises(StoreUnavailableError, match="replicas"):
                store.sync.delete(key)
    finally:
        await store.close()


async def test_under_sentinel_session_ends_wait_for_a_replica_by_default() -> None:
    """A failover there is automatic: a logout the old master took just before it must
    not come back, so the delete waits for the replica; other writes do not."""
    from tests.stores.redis_servers import running_sentinel

    with running_sentinel() as sentinel:
        store = RedisStore.from_url(sentinel.url + "?replica_ack_timeout=0.2")
        try:
            key = new_key()
            await store.create(key, {"c": "1", "a": "1"}, 60)
            await store.delete(new_key())
            assert sentinel.replica is not None
            sentinel.replica.pause()
            try:
                assert await store.apply(key, {"k": "v"}, [], 60)
                with pytest.raises(StoreUnavailableError, match="replicas"):
                    await store.delete(key)
            finally:
                sentinel.replica.resume()
            await store.delete(key)
            assert await store.load(key) is None
        finally:
            await store.close()
        plain = RedisStore.from_url(sentinel.url + "?min_replicas_ack_deletes=0")
        try:
            sentinel.replica.pause()
            try:
                await plain.delete(new_key())  # opted out: no wait
            finally:
                sentinel.replica.resume()
        finally:
            await plain.close()
