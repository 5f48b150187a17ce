"""``min_replicas_ack``: every write waits for N replicas (``WAIT``) on its own
connection, and one they did not confirm is an outage (503), on both faces, against a
real master and replica of our own, and on a Cluster of our own with a replica per
master (the WAIT goes to the node that owns the key, through ASK and MOVED). Without
the option nothing changes. The store's timeouts come from the URL too."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.crc import key_slot

from sessionware.exceptions import ConfigurationError, StoreUnavailableError
from sessionware.stores import RedisStore
from sessionware.testing import new_key
from tests.stores.redis_apps import SessionApp
from tests.stores.redis_servers import Cluster, RedisServer, _wait

pytestmark = pytest.mark.anyio


def warm_replicas(url: str) -> None:
    """Writes confirmed by every master's replica, with time to spare: the first
    acknowledgement of a fresh replica can wait for its one-second cron, later ones
    take a round trip (the tests' short ``replica_ack_timeout`` is for those)."""
    store = RedisStore.from_url(url + "?min_replicas_ack=1&replica_ack_timeout=5", timeout=10)
    try:
        for _ in range(24):  # on a cluster, some on every master
            key = new_key()
            store.sync.create(key, {"a": "1"}, 60)
            store.sync.delete(key)
    finally:
        store.sync.close()


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
            warm_replicas(master.url)
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


def _calls(server: RedisServer, command: str) -> int:
    stats = server.send("INFO", "commandstats")
    found = re.search(rb"cmdstat_" + command.encode() + rb":calls=(\d+)", stats)
    return int(found.group(1)) if found else 0


async def test_the_writes_of_concurrent_requests_share_one_wait(
    pair: Pair, durable: RedisStore, strict: RedisStore
) -> None:
    """Writes queued in one event-loop turn go in one pipeline ended by one WAIT (it
    confirms every write its connection made); each is confirmed or refused alike, and
    the reads of that turn wait for no replica."""
    keys = [new_key() for _ in range(20)]
    await asyncio.gather(*(durable.create(k, {"c": "1", "a": "1"}, 60) for k in keys))
    waits = _calls(pair.master, "wait")
    assert all(await asyncio.gather(*(durable.apply(k, {"n": k[:6]}, [], 60) for k in keys)))
    assert _calls(pair.master, "wait") == waits + 1
    for key in keys:
        assert pair.replica.send("HGET", durable.record_key(key), "n").endswith(
            f"{key[:6]}\r\n".encode()
        )
    with replica_paused(pair):
        results = await asyncio.gather(
            *(strict.apply(k, {"n": "x"}, [], 60) for k in keys),
            strict.load(keys[0]),
            return_exceptions=True,
        )
    assert all(isinstance(r, StoreUnavailableError) for r in results[:-1])
    assert isinstance(results[-1], dict)  # the read of the same turn answered


async def test_a_server_that_never_answers_costs_one_handshake_per_call() -> None:
    """A Redis that accepts connections and never answers (hung, or slower than the
    timeout) fails a call after one handshake, on both faces: redis-py's retry is kept
    for a broken connection, not a timed-out one, which would double every 503's wait."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # the kernel completes the handshakes; nobody answers
        store = RedisStore.from_url(f"redis://127.0.0.1:{listener.getsockname()[1]}/0?timeout=0.2")
        try:
            with pytest.raises(StoreUnavailableError, match="Timeout"):
                await store.load(new_key())
            with pytest.raises(StoreUnavailableError, match="Timeout"):
                store.sync.load(new_key())
        finally:
            await store.close()
        listener.setblocking(False)
        accepted = []
        with contextlib.suppress(BlockingIOError):
            while True:
                accepted.append(listener.accept()[0])
        for conn in accepted:
            conn.close()
        assert len(accepted) == 2


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
        warm_replicas(sentinel.url)
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


# -- the store's timeouts from the URL -------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0?timeout=0.2&connect_timeout=0.3",
        "redis+sentinel://127.0.0.1:26379/mymaster/0?timeout=0.2&connect_timeout=0.3",
        "redis+cluster://127.0.0.1:7000?timeout=0.2&connect_timeout=0.3",
    ],
)
async def test_timeouts_come_from_the_url_of_every_form(url: str) -> None:
    """``?timeout=`` and ``?connect_timeout=`` reach both clients (no connection is made)."""
    store = RedisStore.from_url(url)
    try:
        client = store.client
        if store.cluster:
            kwargs = client.get_connection_kwargs()
        else:
            kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == 0.2
        assert kwargs["socket_connect_timeout"] == 0.3
        assert "timeout" not in kwargs
    finally:
        await store.close()
    store = RedisStore.from_url(url, timeout=0.4)  # a keyword wins over the URL
    try:
        if not store.cluster:
            assert store.client.connection_pool.connection_kwargs["socket_timeout"] == 0.4
    finally:
        await store.close()


@pytest.mark.parametrize("query", ["?timeout=soon", "?timeout=0", "?connect_timeout=-1"])
def test_a_bad_timeout_in_the_url_fails_at_start_up(query: str) -> None:
    with pytest.raises(ConfigurationError, match="timeout must be seconds"):
        RedisStore.from_url("redis://127.0.0.1:6379/0" + query)


async def test_a_redis_slower_than_the_url_timeout_is_a_503_then_service(pair: Pair) -> None:
    """A Redis that does not answer within ``?timeout=`` makes the request a 503 (never
    a request waiting on it); once Redis answers again the same app serves."""
    store = RedisStore.from_url(pair.master.url + "?timeout=0.2")
    app = SessionApp(store)
    transport = httpx.ASGITransport(app=app.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.post("/login")).status_code == 200
            pair.master.pause()
            try:
                assert (await client.get("/get")).status_code == 503
                assert (await client.post("/set/k")).status_code == 503
            finally:
                pair.master.resume()
            assert (await client.get("/get")).json() == {"user_id": "42"}
    finally:
        await store.close()


# -- Redis Cluster ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Three masters with one replica each, our own processes."""
    with tempfile.TemporaryDirectory(prefix="sw-rcluster-") as tmp:
        c = Cluster(Path(tmp), replicas=1, node_timeout_ms=5000)
        try:
            c.start()
            warm_replicas(c.url)
            yield c
        finally:
            c.stop()


def on_replica(replica: RedisServer, key: bytes, field: str) -> bytes:
    """HGET on a replica (READONLY first, on the same connection, or it answers MOVED)."""
    payload = b"".join(
        b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
        for args in ([b"READONLY"], [b"HGET", key, field.encode()])
    )
    with socket.create_connection(("127.0.0.1", replica.port), timeout=2) as conn:
        conn.sendall(payload)
        data = b""
        while True:
            reply = data.partition(b"+OK\r\n")[2]  # READONLY's answer, then HGET's
            if (reply.startswith((b"-", b"$-1")) and b"\r\n" in reply) or reply.count(b"\r\n") >= 2:
                return reply  # an error (MOVED: its map lacks the slot), nil, or a value
            chunk = conn.recv(65536)
            assert chunk, "the replica closed the connection"
            data += chunk


def owner(store: RedisStore, key: str) -> int:
    """The port of the master the store's client believes owns ``key``'s record."""
    return int(store.client.get_node_from_key(store.record_key(key)).port)


async def cluster_store(cluster: Cluster, ack_timeout: float) -> RedisStore:
    store = RedisStore.from_url(
        cluster.url + f"?min_replicas_ack=1&replica_ack_timeout={ack_timeout}", timeout=5
    )
    await store.ping()  # the client has read the slots
    return store


async def test_on_cluster_every_write_waits_for_the_replica_of_the_keys_master(
    cluster: Cluster,
) -> None:
    """Each store write, on both faces, returns only once the replica of the master that
    owns its key has it; keys on all three masters, one batch spanning several."""
    store = await cluster_store(cluster, 2)
    replicas = cluster.replicas()
    try:
        keys = [new_key() for _ in range(12)]
        assert len({owner(store, k) for k in keys}) == 3
        for i, key in enumerate(keys):
            face_is_sync = i % 2 == 1
            if face_is_sync:
                store.sync.create(key, {"c": "1", "a": "1"}, 60)
                assert store.sync.apply(key, {"n": str(i)}, ["c"], 60)
                assert store.sync.incr(key, "hits", 2, 60, create=False) == 2
                store.sync.link("ada", key)
            else:
                await store.create(key, {"c": "1", "a": "1"}, 60)
                assert await store.apply(key, {"n": str(i)}, ["c"], 60)
                assert await store.incr(key, "hits", 2, 60, create=False) == 2
                await store.link("ada", key)
            replica = replicas[owner(store, key)]
            assert on_replica(replica, store.record_key(key), "n").endswith(f"{i}\r\n".encode())
            assert on_replica(replica, store.record_key(key), "hits").endswith(b"2\r\n")
        assert await store.incr("th:ada", "n", 1, 60) == 1
        assert sorted(await store.keys_of("ada")) == sorted(keys)
        await store.unlink("ada", keys[0])
        store.sync.delete(keys[1])
        assert await store.delete_user_sessions("ada", keep=keys[2]) == 9  # one batch
        for key in keys:
            replica = replicas[owner(store, key)]
            kept = key == keys[0] or key == keys[2]
            assert on_replica(replica, store.record_key(key), "a").startswith(b"$1") is kept
    finally:
        await store.close()


async def test_on_cluster_a_paused_replica_fails_only_its_own_masters_writes(
    cluster: Cluster,
) -> None:
    """WAIT counts the replicas of the key's own master: with one replica paused, writes
    to its master's keys fail as outages while writes to the other masters go on (a WAIT
    sent to every node and summed, as redis-py's cluster client does, would pass both)."""
    store = await cluster_store(cluster, 0.2)
    try:
        victim = owner(store, first := new_key())
        mine, others = [first], []
        while len(mine) < 2 or len(others) < 4:
            key = new_key()
            (mine if owner(store, key) == victim else others).append(key)
        for key in mine + others:
            await store.create(key, {"c": "1", "a": "1"}, 60)
        replica = cluster.replicas()[victim]
        replica.pause()
        try:
            for key in mine[:2]:
                with pytest.raises(StoreUnavailableError, match="0 of the 1 replicas"):
                    await store.apply(key, {"k": "v"}, [], 60)
                with pytest.raises(StoreUnavailableError, match="replicas"):
                    store.sync.apply(key, {"k": "w"}, [], 60)
            with pytest.raises(StoreUnavailableError, match="replicas"):
                await store.delete(mine[0])
            for key in others[:4]:
                assert await store.apply(key, {"k": "v"}, [], 60)
                assert store.sync.apply(key, {"k": "w"}, [], 60)
            loaded = await store.load(mine[1])  # a read waits for nobody
            assert loaded is not None and loaded["k"] == "w"
        finally:
            replica.resume()
    finally:
        await store.close()


def _errorstat(node: RedisServer, word: str) -> int:
    found = re.search(
        rb"errorstat_" + word.encode() + rb":count=(\d+)", node.send("INFO", "errorstats")
    )
    return int(found.group(1)) if found else 0


async def test_on_cluster_writes_follow_ask_and_moved_in_a_migration_and_wait_there(
    cluster: Cluster,
) -> None:
    """A slot migrated under a live session: a write to the key that has left (ASK) and a
    new key in the migrating slot (ASK, on the sync face) land on the new owner and wait
    for its replica (paused, the write fails: the WAIT went to that node, not the old
    one); after the slot is handed over a write to the old owner (MOVED) lands too."""
    store = await cluster_store(cluster, 2)
    strict = await cluster_store(cluster, 0.2)
    try:
        key = new_key()
        await store.create(key, {"c": "1", "a": "1"}, 60)
        record = store.record_key(key)
        slot = key_slot(record)
        source = cluster.node(owner(store, key))
        target = cluster.node(next(p for p in cluster.replicas() if p != source.port))
        replica = cluster.replicas()[target.port]
        ids = {n.port: n.send("CLUSTER", "MYID").split(b"\r\n")[1] for n in (source, target)}
        target.send("CLUSTER", "SETSLOT", str(slot), "IMPORTING", ids[source.port])
        source.send("CLUSTER", "SETSLOT", str(slot), "MIGRATING", ids[target.port])
        assert source.send("MIGRATE", "127.0.0.1", str(target.port), "", "0", "5000",
                           "KEYS", record) == b"+OK\r\n"  # fmt: skip
        asks = _errorstat(source, "ASK")
        replica.pause()
        try:
            with pytest.raises(StoreUnavailableError, match="0 of the 1 replicas"):
                await strict.apply(key, {"moved": "unconfirmed"}, [], 60)
        finally:
            replica.resume()
        assert await store.apply(key, {"moved": "ask"}, [], 60)
        fresh = next(k for k in iter(new_key, None) if key_slot(store.record_key(k)) == slot)
        store.sync.create(fresh, {"c": "1", "a": "1"}, 60)
        assert _errorstat(source, "ASK") >= asks + 3
        assert source.send("EXISTS", record).startswith(b"-ASK ")  # gone from the source

        for port in cluster.replicas():  # the slot handed over, as redis-cli does
            cluster.node(port).send("CLUSTER", "SETSLOT", str(slot), "NODE", ids[target.port])
        moves = _errorstat(source, "MOVED")
        assert store.client.get_node_from_key(record).port == source.port  # still the old map
        assert await store.apply(key, {"moved": "moved"}, [], 60)
        assert _errorstat(source, "MOVED") > moves
        assert (await store.load(key) or {}).get("moved") == "moved"
        # The replica learns that its master owns the slot by gossip: then it serves it.
        _wait("the replica serving the slot", lambda: on_replica(replica, record, "moved")
              .endswith(b"moved\r\n"))  # fmt: skip
        assert on_replica(replica, store.record_key(fresh), "a").endswith(b"1\r\n")
    finally:
        await store.close()
        await strict.close()
