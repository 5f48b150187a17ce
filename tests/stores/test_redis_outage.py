"""When Redis goes away the app answers 503 with a log line, and serves again as soon
as Redis is back, with no restart: a redis-server of the test's own is stopped (by
PID), restarted on the same port, and frozen with SIGSTOP. The sync face fails and
recovers the same way."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest

from sessionware.exceptions import StoreUnavailableError
from sessionware.stores import RedisStore
from sessionware.testing import new_key
from tests.stores.redis_apps import SessionApp
from tests.stores.redis_servers import RedisServer, running_server


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A redis-server this test may kill and restart."""
    with running_server() as s:
        yield s


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[RedisStore]:
    """A RedisStore on that server with the default timeouts."""
    s = RedisStore.from_url(server.url)
    yield s
    await s.close()


def outage_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Messages of the middleware's store-outage log records."""
    return [r.getMessage() for r in caplog.records if "store unavailable" in r.getMessage()]


@pytest.mark.anyio
async def test_503_while_down_then_normal_service_after_restart(
    server: RedisServer, store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Killing Redis turns requests into 503s with one log line; restarting it restores service."""
    caplog.set_level(logging.ERROR, logger="sessionware")
    app = SessionApp(store)
    transport = httpx.ASGITransport(app=app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.post("/login")).status_code == 200
        assert (await client.get("/get")).json() == {"user_id": "42"}
        cookie = client.cookies["sid"]

        server.stop()
        for path in ("/get", "/get", "/login"):
            method = client.get if path == "/get" else client.post
            down = await method(path)
            assert down.status_code == 503
            assert down.headers["retry-after"] == "5"
            assert b"Traceback" not in down.content
            assert "set-cookie" not in down.headers
        logs = outage_logs(caplog)
        assert len(logs) == 1  # rate-limited: one line for the burst
        assert "ConnectionError" in logs[0]
        assert app.seen["id"] not in caplog.text and cookie not in caplog.text
        assert app.seen["key"] not in caplog.text

        server.start()  # same port, empty (nothing was persisted)
        assert (await client.get("/get")).status_code == 200
        assert (await client.post("/login")).status_code == 200
        assert (await client.post("/set/after?v=back")).status_code == 200
        assert (await client.get("/get")).json() == {"user_id": "42", "after": "back"}


@pytest.mark.anyio
async def test_a_hung_redis_times_out_into_503_and_recovers(
    server: RedisServer, store: RedisStore
) -> None:
    """A Redis that stops answering (SIGSTOP) gives 503 after the command timeout, then recovers."""
    app = SessionApp(store)
    transport = httpx.ASGITransport(app=app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.post("/login")).status_code == 200
        server.pause()
        try:
            assert (await client.get("/get")).status_code == 503
        finally:
            server.resume()
        assert (await client.get("/get")).json() == {"user_id": "42"}


@pytest.mark.anyio
async def test_every_store_method_raises_store_unavailable_when_down(
    server: RedisServer, store: RedisStore
) -> None:
    """With Redis gone every store call raises StoreUnavailableError, whose text names no key."""
    key = new_key()
    await store.create(key, {".a": "1"}, 60)
    server.stop()
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.load(key),
        lambda: store.create(new_key(), {".a": "1"}, 60),
        lambda: store.apply(key, {".b": "2"}, [], 60),
        lambda: store.delete(key),
        lambda: store.incr("th:" + key, "n", 1, 60),
        lambda: store.link("u", key),
        lambda: store.unlink("u", key),
        lambda: store.keys_of("u"),
        lambda: store.delete_user_sessions("u"),
        store.ping,
    ]
    for call in calls:
        with pytest.raises(StoreUnavailableError) as info:
            await call()
        assert key not in str(info.value)
        assert str(info.value).startswith("redis unavailable")


def test_sync_face_raises_store_unavailable_when_down_then_recovers(
    server: RedisServer,
) -> None:
    """With Redis gone every sync-face call raises StoreUnavailableError (naming no key);
    once Redis is back on its port the same store serves again."""
    store = RedisStore.from_url(server.url)
    key = new_key()
    try:
        store.sync.create(key, {".a": "1"}, 60)
        server.stop()
        calls: list[Callable[[], object]] = [
            lambda: store.sync.load(key),
            lambda: store.sync.create(new_key(), {".a": "1"}, 60),
            lambda: store.sync.apply(key, {".b": "2"}, [], 60),
            lambda: store.sync.delete(key),
            lambda: store.sync.incr("th:" + key, "n", 1, 60),
            lambda: store.sync.link("u", key),
            lambda: store.sync.unlink("u", key),
            lambda: store.sync.keys_of("u"),
            lambda: store.sync.delete_user_sessions("u"),
            store.sync.ping,
        ]
        for call in calls:
            with pytest.raises(StoreUnavailableError) as info:
                call()
            assert key not in str(info.value)
            assert str(info.value).startswith("redis unavailable")

        server.start()  # same port, empty (nothing was persisted)
        assert store.sync.load(key) is None
        store.sync.create(key, {".a": "2"}, 60)
        store.sync.link("u", key)
        assert store.sync.keys_of("u") == [key]
        assert store.sync.load(key) == {".a": "2"}
    finally:
        store.sync.close()


def test_a_hung_redis_times_out_on_the_sync_face_and_recovers(server: RedisServer) -> None:
    """A Redis that stops answering (SIGSTOP) makes a sync call fail within its timeout
    with StoreUnavailableError; after SIGCONT the same store answers again."""
    store = RedisStore.from_url(server.url, timeout=0.3)
    key = new_key()
    try:
        store.sync.create(key, {".a": "1"}, 60)
        server.pause()
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError) as info:
                store.sync.load(key)
            assert time.monotonic() - started < 3
            assert "Timeout" in str(info.value)
        finally:
            server.resume()
        assert store.sync.load(key) == {".a": "1"}
    finally:
        store.sync.close()
