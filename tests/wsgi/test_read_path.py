"""The Flask read path, kept lean: what an unchanged session's response carries, which
load it uses, and that a store subclass's own load is never bypassed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, session

from sessionware.flask import Sessionware
from sessionware.stores import MemoryStore, SQLiteStore
from sessionware.stores.base import Fields, StoreBase
from sessionware.stores.redis import RedisStore
from sessionware.tokens import store_key
from tests.helpers import SECRET, raw_id
from tests.test_auth_support import REDIS_URL, sync_store
from tests.wsgi.conftest import WSGI_STORES


def make_app(store: StoreBase) -> Flask:
    """An app with a login, a read, a read that sets Vary itself, and a page that ignores
    the session."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, SESSIONWARE_COOKIE_NAME="sid")
    Sessionware(app, store=store)

    @app.get("/login")
    def login() -> str:
        session["user"] = "42"
        return "ok"

    @app.get("/read")
    def read() -> str:
        return f"user={session.get('user')}"

    @app.get("/vary")
    def vary() -> Response:
        response = Response(f"user={session.get('user')}")
        response.headers.add("Vary", "Accept-Encoding")
        response.headers.add("Vary", "Accept-Language")
        return response

    @app.get("/static")
    def static_page() -> str:
        return "same for everyone"

    return app


@pytest.fixture(params=WSGI_STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreBase]:
    """Each real store in turn."""
    with sync_store(request.param, tmp_path) as s:
        yield s


def test_an_unchanged_read_sends_only_vary_and_writes_nothing(store: StoreBase) -> None:
    """Reading a stored session answers with ``Vary: Cookie``, no Set-Cookie, no
    Cache-Control, and leaves the record exactly as it was (nothing written)."""
    client = make_app(store).test_client()
    client.get("/login")
    cookie = client.get_cookie("sid")
    assert cookie is not None
    key = store_key(raw_id(cookie.value))
    before = store.sync.load(key)
    assert before is not None
    for _ in range(3):
        r = client.get("/read")
        assert r.text == "user=42"
        assert r.headers.getlist("Vary") == ["Cookie"]
        assert "Set-Cookie" not in r.headers
        assert "Cache-Control" not in r.headers
    assert store.sync.load(key) == before


def test_several_vary_lines_become_one_naming_cookie_too(store: StoreBase) -> None:
    """An app's own Vary lines are kept, and Cookie is added once, on one line."""
    client = make_app(store).test_client()
    client.get("/login")
    r = client.get("/vary")
    assert r.headers.getlist("Vary") == ["Accept-Encoding, Accept-Language, Cookie"]


def test_a_page_that_never_reads_the_session_does_not_vary_unless_a_cookie_came(
    store: StoreBase,
) -> None:
    """No cookie and no session use: the response goes out as the app made it; with a
    session cookie it still varies (the answer may depend on who asks)."""
    client = make_app(store).test_client()
    assert "Vary" not in client.get("/static").headers
    client.get("/login")
    assert client.get("/static").headers.getlist("Vary") == ["Cookie"]


class CountingSQLite(SQLiteStore):
    """A SQLiteStore whose subclass counts loads in its own operation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loads = 0

    def _op_load(self, key: str) -> Any:
        self.loads += 1
        return (yield from super()._op_load(key))


class CountingMemory(MemoryStore):
    """A MemoryStore whose subclass counts loads through load_inline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loads = 0

    def load_inline(self, key: str) -> Fields | None:
        self.loads += 1
        return super().load_inline(key)


class CountingRedis(RedisStore):
    """A RedisStore whose subclass counts loads in its own operation."""

    loads = 0

    def _op_load(self, key: str) -> Any:
        self.loads += 1
        return (yield from super()._op_load(key))


def test_a_subclass_load_is_run_as_written(tmp_path: Path) -> None:
    """A store subclass that overrides how it loads (its _op_load, or load_inline with
    its own load beside it) sees every read of the Flask app: the lean path never
    goes around it."""
    redis_store = CountingRedis.from_url(REDIS_URL, prefix=f"swrp{uuid.uuid4().hex[:8]}:")
    stores: list[Any] = [
        CountingSQLite(tmp_path / "s.db"),
        CountingMemory(development=True),
        redis_store,
    ]
    try:
        for s in stores:
            client = make_app(s).test_client()
            client.get("/login")
            s.loads = 0
            for _ in range(3):
                assert client.get("/read").text == "user=42"
            assert s.loads == 3, type(s).__name__
    finally:
        for s in stores:
            s.sync.close()
        _clear(redis_store)


def _clear(store: RedisStore) -> None:
    import redis

    raw = redis.Redis.from_url(REDIS_URL)
    try:
        for key in raw.scan_iter(match=store.prefix + "*", count=1000):  # type: ignore[attr-defined]
            raw.delete(key)
    finally:
        raw.close()
