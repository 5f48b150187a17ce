"""RedisStore on a standalone Redis: the store contract (both faces), compactness, no
raw ids at rest, no lost updates or resurrection through the middleware, URLs, round
trips, and the sync face: threads, sharing records with the async face, the clients
it is built from, and closing."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest
import redis
import redis.asyncio.retry
import redis.retry
from redis.backoff import NoBackoff

from sessionware.exceptions import (
    ConfigurationError,
    SessionCollisionError,
    StoreError,
    StoreUnavailableError,
)
from sessionware.stores import RedisStore, from_url
from sessionware.stores.base import Store
from sessionware.testing import StoreContract, new_key
from tests.stores.conftest import REDIS_URL
from tests.stores.redis_apps import SessionApp
from tests.stores.redis_servers import RedisServer, free_port, running_server


class TestRedisStore(StoreContract):
    """The contract, on the Redis at 127.0.0.1:6379 under this run's prefix."""

    @pytest.fixture
    async def backend(self, redis_prefix: str) -> AsyncIterator[Store]:
        """A RedisStore under a fresh sub-prefix of this run's prefix."""
        s = RedisStore.from_url(REDIS_URL, prefix=f"{redis_prefix}{uuid.uuid4().hex[:6]}:")
        yield s
        await s.close()


@pytest.fixture
async def store(redis_prefix: str) -> AsyncIterator[RedisStore]:
    """A RedisStore under a fresh sub-prefix of this run's prefix."""
    s = RedisStore.from_url(REDIS_URL, prefix=f"{redis_prefix}{uuid.uuid4().hex[:6]}:")
    yield s
    await s.close()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, for counting commands and connections."""
    with running_server() as server:
        yield server


def client_for(app: SessionApp) -> httpx.AsyncClient:
    """An in-process client that keeps the session cookie."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app.app), base_url="http://testserver"
    )


def stats(server: RedisServer) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT, plus connections received."""
    out: dict[str, int] = {}
    text = server.send("INFO", "all").decode()
    for line in text.splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line[len("cmdstat_") :].split(":", 1)
            out[name] = int(rest.split(",")[0].split("=")[1])
        elif line.startswith("total_connections_received:"):
            out["connections"] = int(line.split(":")[1])
    return out


# -- layout and size --------------------------------------------------------------


@pytest.mark.anyio
async def test_session_holding_a_user_id_uses_at_most_124_bytes() -> None:
    """A session of c, a and .user_id uses <= 124 bytes of MEMORY USAGE (connect-redis: 248)."""
    s = RedisStore.from_url(REDIS_URL)  # the default 3-byte prefix
    key = new_key()
    try:
        await s.create(key, {"c": "1700000000", "a": "1700000000", ".user_id": '"42"'}, 60)
        usage = await s.client.memory_usage(s.record_key(key))
        assert usage is not None
        assert usage <= 124
    finally:
        await s.delete(key)
        await s.close()


def test_record_keys_are_compact_and_distinct() -> None:
    """Session keys become prefix + 24 digest bytes; other keys stay apart, even 24-byte ones."""
    s = RedisStore(redis.asyncio.Redis(), prefix="sw:")
    key = "ab" * 32
    assert s.record_key(key) == b"sw:" + bytes.fromhex(key)[:24]
    assert s.record_key("rm:abc") == b"sw:rm:abc"
    odd = "x" * 24  # same length as a digest: must not share its key space
    assert s.record_key(odd) == b"sw:" + b"x" * 24 + b"\xff"
    assert s.record_key("AB" * 32) == b"sw:" + b"AB" * 32
    assert s.user_key("42") == b"sw:u{42}"


@pytest.mark.anyio
async def test_ttl_is_what_the_core_asks(store: RedisStore) -> None:
    """A session written through the middleware expires after the idle timeout."""
    app = SessionApp(store, idle_timeout=120)
    async with client_for(app) as client:
        assert (await client.post("/login")).status_code == 200
    pttl = await store.client.pttl(store.record_key(app.seen["key"]))
    assert 0 < pttl <= 120_000


@pytest.mark.anyio
async def test_redis_holds_no_raw_session_id(redis_prefix: str) -> None:
    """No key, field or value under the prefix contains the raw session id or the cookie."""
    prefix = f"{redis_prefix}{uuid.uuid4().hex[:6]}:"
    s = RedisStore.from_url(REDIS_URL, prefix=prefix)
    app = SessionApp(s)
    async with client_for(app) as client:
        await client.post("/login")
        await client.post("/set/theme?v=dark")
        cookie = client.cookies["sid"]
        await s.link("42", app.seen["key"])
    raw_id = app.seen["id"].encode()
    sync = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(sync.scan_iter(match=prefix + "*"))
        assert len(keys) == 2  # the session hash and the user's set
        for k in keys:
            assert raw_id not in k and cookie.encode() not in k
            if sync.type(k) == b"hash":
                blob = b" ".join(a + b for a, b in sync.hgetall(k).items())
            else:
                blob = b" ".join(sync.smembers(k))
            assert raw_id not in blob and cookie.encode() not in blob
            assert b"dark" in blob or b"u{" in k
    finally:
        await s.close()
        sync.close()


# -- concurrency through the middleware ----------------------------------------------


@pytest.mark.anyio
async def test_fifty_concurrent_requests_each_adding_a_key_all_land(store: RedisStore) -> None:
    """Fifty concurrent requests on one session, each setting its own key: all fifty persist."""
    app = SessionApp(store)
    async with client_for(app) as client:
        assert (await client.post("/login")).status_code == 200
        codes: list[int] = []

        async def one(i: int) -> None:
            codes.append((await client.post(f"/set/k{i}?v={i}")).status_code)

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(one, i)
        assert codes == [200] * 50
        data = (await client.get("/get")).json()
    assert data == {"user_id": "42", **{f"k{i}": str(i) for i in range(50)}}


@pytest.mark.anyio
async def test_logout_racing_a_slow_write_does_not_resurrect(store: RedisStore) -> None:
    """A write that finishes after a logout destroyed the session leaves nothing behind."""
    app = SessionApp(store)
    async with client_for(app) as client:
        await client.post("/login")
        cookie = client.cookies["sid"]
        key = app.seen["key"]
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.post, "/slow/late")
            await app.entered.wait()
            assert (await client.post("/logout")).status_code == 200
            app.gate.set()
        assert await store.load(key) is None
        client.cookies.clear()
        client.cookies["sid"] = cookie
        assert (await client.get("/get")).json() == {}
    assert await store.load(key) is None


# -- the per-user index ---------------------------------------------------------------


@pytest.mark.anyio
async def test_user_sessions_lists_live_sessions_with_fields(store: RedisStore) -> None:
    """user_sessions returns each live linked session with its fields and drops dead ones."""
    live, dead = new_key(), new_key()
    await store.create(live, {".a": "1"}, 60)
    await store.create(dead, {".a": "2"}, 60)
    for k in (live, dead):
        await store.link("u1", k)
    await store.delete(dead)
    assert await store.user_sessions("u1") == {live: {".a": "1"}}
    assert await store.client.smembers(store.user_key("u1")) == {live}


@pytest.mark.anyio
async def test_delete_user_sessions_all_or_all_but_one(store: RedisStore) -> None:
    """delete_user_sessions removes every session of a user, or all but the kept one."""
    keys = [new_key() for _ in range(4)]
    other = new_key()
    for k in [*keys, other]:
        await store.create(k, {".a": "1"}, 60)
    for k in keys:
        await store.link("alice", k)
    await store.link("bob", other)
    assert await store.delete_user_sessions("alice", keep=keys[0]) == 3
    assert await store.keys_of("alice") == [keys[0]]
    assert await store.load(keys[1]) is None
    assert await store.delete_user_sessions("alice") == 1
    assert await store.keys_of("alice") == []
    assert await store.keys_of("bob") == [other]


@pytest.mark.anyio
async def test_link_prunes_dead_members_once_the_set_grows(store: RedisStore) -> None:
    """Linking into a set of more than 32 members drops the ones whose sessions are gone."""
    for _ in range(33):
        await store.link("u2", new_key())  # never created: dead members
    live = new_key()
    await store.create(live, {".a": "1"}, 60)
    await store.link("u2", live)
    assert await store.client.smembers(store.user_key("u2")) == {live}


# -- errors and URLs --------------------------------------------------------------------


@pytest.mark.anyio
async def test_collision_and_wrong_type_are_store_errors(store: RedisStore) -> None:
    """create on a live key raises SessionCollisionError; a foreign value under a session's
    key loads as no record (its cookie is no session, never a 500), and a write to it is
    a StoreError that names no key."""
    key = new_key()
    await store.create(key, {".a": "1"}, 60)
    with pytest.raises(SessionCollisionError):
        await store.create(key, {".a": "2"}, 60)
    other = new_key()
    await store.client.set(store.record_key(other), "not a hash")
    assert await store.load(other) is None
    assert store.sync.load(other) is None
    with pytest.raises(StoreError) as info:
        await store.apply(other, {"a": "1"}, [], 60)
    assert "did not write" in str(info.value)
    assert other not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1:26379",  # no service name
        "redis+sentinel://127.0.0.1:26379/svc/x",
        "redis+cluster://127.0.0.1:7000/3",
        "redis+cluster://127.0.0.1:notaport",
        "redis+cluster://127.0.0.1:7000?socket_timeout=1",
        "redis+tcp://127.0.0.1:6379",
        "redis://:hunter2@:6379?socket_timeout=abc",
    ],
)
def test_bad_urls_fail_with_the_accepted_forms(url: str) -> None:
    """A bad URL raises ConfigurationError listing the accepted forms, never the password."""
    with pytest.raises(ConfigurationError) as info:
        RedisStore.from_url(url)
    assert "redis+sentinel://" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_url_options_reach_the_client() -> None:
    """from_url sets the prefix from the URL and the default connect and command timeouts,
    on the asyncio client and on the synchronous one alike."""
    s = from_url("redis://127.0.0.1:6379/2?prefix=app:")
    assert isinstance(s, RedisStore)
    assert s.prefix == "app:"
    for client in (s.client, s.sync_client):
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_connect_timeout"] == 1.0
        assert (kwargs["socket_timeout"], kwargs["db"]) == (0.5, 2)
        assert (kwargs["decode_responses"], kwargs["health_check_interval"]) == (True, 0)
        assert kwargs["retry"].get_retries() == 1
    assert isinstance(
        s.client.connection_pool.connection_kwargs["retry"], redis.asyncio.retry.Retry
    )
    assert isinstance(s.sync_client, redis.Redis)
    assert isinstance(s.sync_client.connection_pool.connection_kwargs["retry"], redis.retry.Retry)
    s2 = RedisStore.from_url("redis://127.0.0.1:6379", prefix="x:", timeout=2.0)
    assert s2.prefix == "x:"
    assert s2.client.connection_pool.connection_kwargs["socket_timeout"] == 2.0
    assert s2.sync_client.connection_pool.connection_kwargs["socket_timeout"] == 2.0
    assert s2.cluster is False


def test_one_retry_option_serves_both_clients() -> None:
    """A ``retry=`` of either redis-py kind reaches each client as the kind it takes."""
    for given in (redis.asyncio.retry.Retry(NoBackoff(), 3), redis.retry.Retry(NoBackoff(), 3)):
        s = RedisStore.from_url("redis://127.0.0.1:6379/0", retry=given)
        got_async = s.client.connection_pool.connection_kwargs["retry"]
        got_sync = s.sync_client.connection_pool.connection_kwargs["retry"]
        assert type(got_async) is redis.asyncio.retry.Retry
        assert type(got_sync) is redis.retry.Retry
        assert got_async.get_retries() == got_sync.get_retries() == 3


def test_cluster_url_and_flag_build_cluster_clients() -> None:
    """redis+cluster:// and redis:// with cluster=True both give a cluster store."""
    a = RedisStore.from_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001?prefix=c:")
    b = RedisStore.from_url("redis://127.0.0.1:7000", cluster=True)
    assert a.cluster and b.cluster
    assert a.prefix == "c:"


def test_sync_face_of_an_unreachable_cluster_is_unavailable_until_it_answers() -> None:
    """Building a cluster store connects nothing (a synchronous RedisCluster would), and
    its sync face reports an unreachable cluster as StoreUnavailableError on each use."""
    s = RedisStore.from_url(f"redis+cluster://127.0.0.1:{free_port()}", connect_timeout=0.5)
    assert s.sync_client is None
    for _ in range(2):  # nothing is remembered from the failed attempt
        with pytest.raises(StoreUnavailableError):
            s.sync.load(new_key())
    assert s.sync_client is None


# -- round trips ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_unchanged_session_read_is_one_hgetall_and_no_write(own_server: RedisServer) -> None:
    """Reading an unchanged session costs exactly one HGETALL and writes nothing."""
    s = RedisStore.from_url(own_server.url)
    app = SessionApp(s)
    try:
        async with client_for(app) as client:
            await client.post("/login")
            own_server.send("CONFIG", "RESETSTAT")
            for _ in range(3):
                assert (await client.get("/get")).json() == {"user_id": "42"}
        counted = stats(own_server)
    finally:
        await s.close()
    assert counted.get("hgetall") == 3
    ours = ("hgetall", "info", "config", "connections")
    assert {k for k in counted if k.split("|")[0] not in ours} == set()


@pytest.mark.anyio
async def test_concurrent_loads_share_one_connection(own_server: RedisServer) -> None:
    """Twenty concurrent loads share one connection and round trip; uncoalesced they need twenty."""
    seen = {}
    for coalesce in (True, False):
        s = RedisStore.from_url(own_server.url, coalesce=coalesce)
        key = new_key()
        await s.create(key, {".a": "1"}, 60)
        before = stats(own_server)["connections"]
        loaded = await _gather(s, key, 20)
        # minus one: stats() itself connects once
        seen[coalesce] = stats(own_server)["connections"] - before - 1
        assert loaded == [{".a": "1"}] * 20
        await s.close()
    # The create opened one connection; coalesced loads reuse it, naive ones need 19 more.
    assert seen == {True: 0, False: 19}


async def _gather(s: RedisStore, key: str, n: int) -> list[object]:
    out: list[object] = [None] * n

    async def one(i: int) -> None:
        out[i] = await s.load(key)

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    return out


@pytest.mark.anyio
async def test_scripts_are_reloaded_after_script_flush(own_server: RedisServer) -> None:
    """After the server forgets its scripts (a restart, SCRIPT FLUSH), writes still work."""
    s = RedisStore.from_url(own_server.url)
    try:
        key = new_key()
        await s.create(key, {".a": "1"}, 60)
        own_server.send("SCRIPT", "FLUSH")
        assert await s.apply(key, {".b": "2"}, [], 60)
        own_server.send("SCRIPT", "FLUSH")
        assert await s.incr("th:" + secrets.token_hex(4), "n", 3, 60) == 3
        assert await s.load(key) == {".a": "1", ".b": "2"}
    finally:
        await s.close()


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.anyio
async def test_store_on_a_plain_client_of_either_protocol(redis_prefix: str, protocol: int) -> None:
    """RedisStore(client) works on a client that returns bytes, over RESP2 or RESP3."""
    client = redis.asyncio.Redis(host="127.0.0.1", port=6379, protocol=protocol)
    s = RedisStore(client, prefix=f"{redis_prefix}p{protocol}{uuid.uuid4().hex[:4]}:")
    try:
        key = new_key()
        await s.create(key, {".a": '"ü"', "c": "1"}, 60)
        assert await s.apply(key, {".b": "2"}, [], 60)
        assert await s.load(key) == {".a": '"ü"', "c": "1", ".b": "2"}
        await s.link("u", key)
        assert await s.keys_of("u") == [key]
        assert await s.user_sessions("u") == {key: {".a": '"ü"', "c": "1", ".b": "2"}}
        assert await s.delete_user_sessions("u") == 1
    finally:
        await s.close()


@pytest.mark.anyio
async def test_two_app_instances_share_sessions_without_losing_writes(redis_prefix: str) -> None:
    """Two apps with their own stores and pools (like two processes) share one session:
    a cookie from one works on the other, and 50 concurrent writes split between them all land."""
    prefix = f"{redis_prefix}{uuid.uuid4().hex[:6]}:"
    stores = [RedisStore.from_url(REDIS_URL, prefix=prefix) for _ in range(2)]
    apps = [SessionApp(s) for s in stores]
    clients = [client_for(app) for app in apps]
    try:
        await clients[0].post("/login")
        clients[1].cookies["sid"] = clients[0].cookies["sid"]
        assert (await clients[1].get("/get")).json() == {"user_id": "42"}

        async def one(i: int) -> None:
            assert (await clients[i % 2].post(f"/set/k{i}?v={i}")).status_code == 200

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(one, i)
        expected = {"user_id": "42", **{f"k{i}": str(i) for i in range(50)}}
        assert (await clients[0].get("/get")).json() == expected
        assert (await clients[1].get("/get")).json() == expected
    finally:
        for c in clients:
            await c.aclose()
        for s in stores:
            await s.close()


def test_tls_urls_build_tls_connections() -> None:
    """rediss://, rediss+sentinel:// and rediss+cluster:// all connect over TLS."""
    plain = RedisStore.from_url("rediss://127.0.0.1:6380/1")
    assert plain.client.connection_pool.connection_class.__name__ == "SSLConnection"
    sentinel = RedisStore.from_url("rediss+sentinel://127.0.0.1:26379,127.0.0.2/svc/3")
    pool = sentinel.client.connection_pool
    assert pool.connection_class.__name__ == "SentinelManagedSSLConnection"
    assert (pool.service_name, pool.connection_kwargs["db"]) == ("svc", 3)
    cluster = RedisStore.from_url("rediss+cluster://127.0.0.1:7000,127.0.0.1:7001")
    assert cluster.client.connection_kwargs["connection_class"].__name__ == "SSLConnection"


# -- the sync face -----------------------------------------------------------------


def test_sync_face_from_many_threads_counts_every_incr(redis_prefix: str) -> None:
    """Eight threads sharing one store's sync face increment one counter 200 times: the
    count is exact and every call saw a value of its own."""
    s = RedisStore.from_url(REDIS_URL, prefix=f"{redis_prefix}{uuid.uuid4().hex[:6]}:")
    key = new_key("th:")
    start = threading.Barrier(8)

    def worker() -> list[int]:
        start.wait()
        return [s.sync.incr(key, "n", 1, 60) for _ in range(25)]

    try:
        with ThreadPoolExecutor(8) as pool:
            seen = [v for got in pool.map(lambda _: worker(), range(8)) for v in got]
        assert sorted(seen) == list(range(1, 201))
        assert s.sync.load(key) == {"n": "200"}
    finally:
        s.sync.close()


@pytest.mark.anyio
async def test_each_face_sees_the_other_faces_writes(store: RedisStore) -> None:
    """What the sync face writes the async face reads, and the other way round, for
    records, counters, the user index and the extra methods."""
    key, other = new_key(), new_key()
    store.sync.create(key, {".a": "1"}, 60)
    assert await store.load(key) == {".a": "1"}
    assert await store.apply(key, {".b": "2"}, [".a"], 60)
    assert store.sync.load(key) == {".b": "2"}
    assert store.sync.incr(key, ".n", 5, 60, create=False) == 5
    assert await store.incr(key, ".n", 1, 60, create=False) == 6
    await store.create(other, {".a": "x"}, 60)
    store.sync.link("u7", key)
    await store.link("u7", other)
    assert store.sync.keys_of("u7") == sorted([key, other])
    assert store.sync.user_sessions("u7") == {key: {".b": "2", ".n": "6"}, other: {".a": "x"}}
    assert store.sync.delete_user_sessions("u7", keep=key) == 1
    assert await store.keys_of("u7") == [key]
    store.sync.ping()
    store.sync.delete(key)
    assert await store.load(key) is None


@pytest.mark.anyio
async def test_bad_text_fails_only_its_own_call_in_a_shared_batch(store: RedisStore) -> None:
    """A value with no UTF-8 form, coalesced into one pipeline with a good write, fails
    only its own call: the good record lands."""
    good, bad = new_key(), new_key()
    results = await asyncio.gather(
        store.create(good, {".a": "1"}, 60),
        store.create(bad, {".a": "x\ud800"}, 60),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], StoreError)
    assert await store.load(good) == {".a": "1"}
    assert await store.load(bad) is None


@pytest.mark.anyio
async def test_sync_face_reloads_scripts_after_script_flush(own_server: RedisServer) -> None:
    """The sync face loads the scripts again when the server has forgotten them."""
    s = RedisStore.from_url(own_server.url)
    try:
        key = new_key()
        s.sync.create(key, {".a": "1"}, 60)
        own_server.send("SCRIPT", "FLUSH")
        assert s.sync.apply(key, {".b": "2"}, [], 60)
        own_server.send("SCRIPT", "FLUSH")
        assert s.sync.incr("th:" + secrets.token_hex(4), "n", 3, 60) == 3
        assert s.sync.load(key) == {".a": "1", ".b": "2"}
    finally:
        await s.close()


def connected_clients(server: RedisServer) -> int:
    """Clients connected to ``server`` now, this query's own connection included."""
    text = server.send("INFO", "clients").decode()
    return int(text.split("connected_clients:")[1].split()[0])


@pytest.mark.anyio
async def test_sync_client_connects_when_used_and_close_closes_both(
    own_server: RedisServer,
) -> None:
    """from_url opens no sync connection until the sync face is used, and close()
    closes the connections of both faces."""
    s = RedisStore.from_url(own_server.url)
    key = new_key()
    await s.create(key, {".a": "1"}, 60)
    assert connected_clients(own_server) == 2  # the async face's, and this query's
    assert s.sync.load(key) == {".a": "1"}
    assert connected_clients(own_server) == 3
    await s.close()
    deadline = time.monotonic() + 5
    while connected_clients(own_server) > 1 and time.monotonic() < deadline:
        await anyio.sleep(0.02)
    assert connected_clients(own_server) == 1


@pytest.mark.anyio
async def test_an_asyncio_client_alone_has_no_sync_face(redis_prefix: str) -> None:
    """RedisStore(asyncio client) works asynchronously, and store.sync says how to get a
    sync face; with sync_client= both faces work on one record."""
    prefix = f"{redis_prefix}{uuid.uuid4().hex[:6]}:"
    alone = RedisStore(redis.asyncio.Redis(host="127.0.0.1", port=6379), prefix=prefix)
    both = RedisStore(
        redis.asyncio.Redis(host="127.0.0.1", port=6379),
        sync_client=redis.Redis(host="127.0.0.1", port=6379),
        prefix=prefix,
    )
    try:
        key = new_key()
        await alone.create(key, {".a": "1"}, 60)
        with pytest.raises(ConfigurationError) as info:
            alone.sync.load(key)
        assert "sync_client=" in str(info.value) and "from_url" in str(info.value)
        assert both.sync.load(key) == {".a": "1"}
        assert both.sync.apply(key, {".b": "2"}, [], 60)
        assert await alone.load(key) == {".a": "1", ".b": "2"}
    finally:
        await alone.close()
        await both.close()


@pytest.mark.anyio
async def test_a_synchronous_client_alone_gives_only_a_sync_face(redis_prefix: str) -> None:
    """RedisStore(redis.Redis(...)) serves store.sync; its async face says how to get one;
    mixing up the two kinds of client is refused."""
    s = RedisStore(redis.Redis(host="127.0.0.1", port=6379), prefix=f"{redis_prefix}sy:")
    try:
        key = new_key()
        s.sync.create(key, {".a": "1"}, 60)
        assert s.sync.load(key) == {".a": "1"}
        assert s.client is None
        with pytest.raises(ConfigurationError) as info:
            await s.load(key)
        assert "redis.asyncio" in str(info.value)
        s.sync.delete(key)
    finally:
        await s.close()
    with pytest.raises(TypeError):
        RedisStore(redis.asyncio.Redis(), sync_client=redis.asyncio.Redis())
    with pytest.raises(TypeError):
        RedisStore(redis.Redis(), sync_client=redis.Redis())
