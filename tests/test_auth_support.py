"""Shared pieces of the auth tests: the real stores, a movable clock, a small app.

The stores are the real ones: memory, SQLite in ``tmp_path``, Redis on 127.0.0.1:6379
under a per-test prefix, PostgreSQL on 127.0.0.1:5432 (database ``test``) in tables of
their own; both servers are cleaned up after each test and fail the run when missing.

Not a test module of its own (it holds no tests); the auth, remember-me, throttle,
FastAPI and testing-helper tests import from it. :class:`HandView` and
:class:`HandAdapter` drive the same calls with no framework at all;
:class:`SyncHandAdapter` does what a sync (WSGI) adapter does, with plain calls.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis
import redis.asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionware import SessionConfig, SessionMiddleware
from sessionware.auth import (
    current_user_id,
    is_recent_login,
    is_remembered,
    login,
    logout,
    logout_everywhere,
    password_changed,
    reauthenticate,
    require_user,
    requires_recent_login,
    revoke,
    sessions_of,
)
from sessionware.core import Outgoing, SessionCore
from sessionware.remember import RememberConfig, RememberMeMiddleware
from sessionware.session import Session, SyncSession
from sessionware.stores import MemoryStore, SQLiteStore, Store
from sessionware.stores.base import StoreBase
from sessionware.throttle import LoginThrottle

STORES = ["memory", "sqlite", "redis", "postgres"]
SECRET = "test-secret-" + "x" * 40
REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@contextmanager
def sync_store(kind: str, folder: Path) -> Iterator[StoreBase]:
    """A real store of ``kind`` (memory, sqlite, redis, postgres), used through its sync
    face: SQLite in ``folder``, Redis under a prefix of its own and PostgreSQL in tables
    of its own, both removed afterwards."""
    s: StoreBase
    if kind == "memory":
        s = MemoryStore(development=True)
    elif kind == "sqlite":
        s = SQLiteStore(folder / "sessions.db")
    elif kind == "redis":
        from sessionware.stores.redis import RedisStore

        s = RedisStore.from_url(REDIS_URL, prefix=f"swsync{uuid.uuid4().hex[:10]}:")
    else:
        from sessionware.stores.postgres import PostgresStore

        s = PostgresStore(POSTGRES_URL, table="sw_sync_" + uuid.uuid4().hex[:12])
    try:
        yield s
    finally:
        if kind == "postgres":
            s.sync.drop()
        s.sync.close()
        if kind == "redis":
            raw = redis.Redis.from_url(REDIS_URL)  # raw: keys are binary digests
            try:
                for key in raw.scan_iter(match=s.prefix + "*", count=1000):  # type: ignore[attr-defined]
                    raw.delete(key)
            finally:
                raw.close()
BASE = "https://testserver"


class Clock:
    """A clock the tests move by hand instead of sleeping."""

    def __init__(self, start: float | None = None) -> None:
        import time

        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@asynccontextmanager
async def open_store(kind: str, tmp_path: Path) -> AsyncIterator[Store]:
    """One of the real stores; Redis under a per-test prefix that is deleted afterwards."""
    if kind == "memory":
        yield MemoryStore(development=True)
        return
    if kind == "sqlite":
        sqlite_store = SQLiteStore(tmp_path / "sessions.db")
        try:
            yield sqlite_store
        finally:
            await sqlite_store.close()
        return
    if kind == "postgres":
        from sessionware.stores.postgres import PostgresStore

        pg_store = PostgresStore(POSTGRES_URL, table="sw_auth_" + uuid.uuid4().hex[:12])
        try:
            yield pg_store
        finally:
            await pg_store.drop()
            await pg_store.close()
        return
    from sessionware.stores.redis import RedisStore

    prefix = f"swauth{uuid.uuid4().hex[:10]}:"
    redis_store = RedisStore.from_url(REDIS_URL, prefix=prefix)
    try:
        yield redis_store
    finally:
        await redis_store.close()
        # A raw client: session keys are binary digests, which a decoding client cannot read.
        raw = redis.asyncio.Redis.from_url(REDIS_URL)
        async for key in raw.scan_iter(match=prefix + "*", count=1000):
            await raw.delete(key)
        await raw.aclose()


async def dump(store: Store, tmp_path: Path) -> str:
    """Every byte the store holds, as text, to search for secrets that must not be there."""
    if isinstance(store, MemoryStore):
        return repr(store._data) + repr(store._users)
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(tmp_path / "sessions.db")
        try:
            rows = conn.execute("SELECT key, fields FROM sessionware_sessions").fetchall()
            rows += conn.execute("SELECT user_id, key FROM sessionware_user_sessions").fetchall()
        finally:
            conn.close()
        return repr(rows)
    if getattr(store, "kind", "") == "postgres":
        import psycopg

        table: str = store.table  # type: ignore[attr-defined]
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL) as conn:
            cur = await conn.execute(f"SELECT key, fields::text FROM {table}")
            rows = await cur.fetchall()
            cur = await conn.execute(f"SELECT * FROM {table}_users")
            rows += await cur.fetchall()
        return repr(rows)
    client: Any = redis.asyncio.Redis.from_url(REDIS_URL)  # raw: keys are binary digests
    out = []
    async for key in client.scan_iter(match=store.prefix + "*", count=1000):  # type: ignore[attr-defined]
        kind = await client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        value = await client.hgetall(key) if kind == "hash" else await client.smembers(key)
        out.append(repr((key, value)))
    await client.aclose()
    return "\n".join(out)


def make_app(
    store: Store,
    clock: Clock,
    *,
    remember: RememberConfig | None = None,
    throttle: LoginThrottle | None = None,
    **options: Any,
) -> Starlette:
    """A small app that uses every public auth call, the way a user's app would."""

    async def do_login(request: Request) -> Response:
        form = await request.json()
        if throttle is not None:
            await throttle.check(request, form["user"])
            if form.get("password") != "right":
                await throttle.failed(request, form["user"])
                return JSONResponse({"error": "invalid credentials"}, status_code=401)
            await throttle.succeeded(request, form["user"])
        await login(request, form["user"], remember=bool(form.get("remember")))
        return JSONResponse({"ok": True})

    async def do_logout(request: Request) -> Response:
        await logout(request)
        return JSONResponse({"ok": True})

    async def me(request: Request) -> Response:
        session = request.session
        return JSONResponse(
            {
                "user": current_user_id(request),
                "fresh": is_recent_login(request, 300),
                "data": dict(session),
                "remembered": is_remembered(request),
            }
        )

    async def put(request: Request) -> Response:
        request.session.update(dict(request.query_params))
        return JSONResponse({"ok": True})

    async def devices(request: Request) -> Response:
        user = require_user(request)
        return JSONResponse(
            [
                {
                    "handle": d.handle,
                    "current": d.current,
                    "ip": d.ip,
                    "ua": d.user_agent,
                    "remembered": d.remembered,
                }
                for d in await sessions_of(request, user)
            ]
        )

    async def do_revoke(request: Request) -> Response:
        user = require_user(request)
        found = await revoke(request, user, request.path_params["handle"])
        return JSONResponse({"found": found})

    async def others(request: Request) -> Response:
        user = require_user(request)
        return JSONResponse({"ended": await logout_everywhere(request, user, keep=request)})

    async def password(request: Request) -> Response:
        ended = await password_changed(request, require_user(request))
        return JSONResponse({"ok": True, "ended": ended})

    async def reauth(request: Request) -> Response:
        await reauthenticate(request)
        return JSONResponse({"ok": True})

    async def sensitive(request: Request) -> Response:
        requires_recent_login(request, 300)
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            Route("/login", do_login, methods=["POST"]),
            Route("/logout", do_logout, methods=["POST"]),
            Route("/me", me),
            Route("/put", put),
            Route("/devices", devices),
            Route("/revoke/{handle}", do_revoke, methods=["POST"]),
            Route("/logout-others", others, methods=["POST"]),
            Route("/password", password, methods=["POST"]),
            Route("/reauth", reauth, methods=["POST"]),
            Route("/sensitive", sensitive),
        ]
    )
    if remember is not None:
        app.add_middleware(RememberMeMiddleware, config=remember)
    app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET], clock=clock, **options)
    return app


def client(app: Any, **kwargs: Any) -> httpx.AsyncClient:
    """An in-process HTTPS client of ``app``."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, **kwargs)


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """The response's Set-Cookie headers by cookie name."""
    out = {}
    for header in response.headers.get_list("set-cookie"):
        out[header.split("=", 1)[0]] = header
    return out


def attributes(header: str) -> set[str]:
    """The attribute names of a Set-Cookie header other than Max-Age and Expires."""
    parts = [p.strip() for p in header.split(";")[1:]]
    return {
        p.split("=")[0].lower() if p.lower().startswith(("max-age", "expires")) else p.lower()
        for p in parts
    } - {"max-age", "expires"}


async def series_keys(store: Store, user_id: str) -> list[str]:
    """The remember-me series listed in the user's index (beside the user's sessions)."""
    from sessionware.remember import is_series_key

    return [key for key in await store.keys_of(user_id) if is_series_key(key)]


class HandView:
    """A :class:`~sessionware.request.RequestView` written by hand: plain attributes, no
    framework, no middleware; the cookies queued for the response are kept in ``cookies``."""

    def __init__(
        self,
        session: Any,
        *,
        headers: list[tuple[bytes, bytes]] | None = None,
        scheme: str = "https",
        client: str | None = "198.51.100.7",
        method: str = "POST",
    ) -> None:
        self.method = method
        self.headers = headers or []
        self.scheme = scheme
        self.client = client
        self.session = session
        self.state: dict[str, Any] = {}
        self.cookies: list[str] = []

    def add_cookie(self, set_cookie: str) -> None:
        self.cookies.append(set_cookie)


class HandAdapter:
    """The few lines an adapter for any framework runs around a request, over a real
    store: open the session from the Cookie header, finish it into Set-Cookie values,
    and keep the cookies like a browser (``jar``)."""

    def __init__(self, store: Store, clock: Clock, **options: Any) -> None:
        self.core = SessionCore(SessionConfig(secrets=[SECRET], clock=clock, **options), store)
        self.jar: dict[str, str] = {}

    async def request(self, headers: list[tuple[bytes, bytes]] | None = None) -> HandView:
        """A request from the browser: its cookies, the given header lines, its session."""
        cookie = "; ".join(f"{k}={v}" for k, v in self.jar.items()) or None
        lines = [(b"cookie", cookie.encode())] if cookie else []
        session = await self.core.arun(self.core.begin(cookie, Session))
        return HandView(session, headers=lines + (headers or []))

    async def respond(self, view: HandView, status: int = 200) -> list[str]:
        """Finish the request; the Set-Cookie values, which the jar takes in."""
        core = self.core
        cookies = await core.arun(core.finish(view.session, status, view.headers, view.scheme))
        return take_in(self.jar, core.outgoing(view.session, cookies, view.cookies))


def take_in(jar: dict[str, str], out: Outgoing | None) -> list[str]:
    """The Set-Cookie values a response sends, taken into a browser's ``jar``."""
    sent = list(out.cookies) if out is not None else []
    for line in sent:
        name, _, rest = line.partition("=")
        value = rest.split(";")[0]
        if value and "Max-Age=0" not in line:
            jar[name] = value
        else:
            jar.pop(name, None)
    return sent


class SyncHandAdapter:
    """:class:`HandAdapter` as a sync adapter runs it: the session opened and finished with
    plain calls on the store's sync face (``core.run``), a :class:`SyncSession` per request.

    One browser (its own jar) of the app whose ``core`` it is given; browsers of one
    app share the core, as the requests of one WSGI app do.
    """

    def __init__(self, core: SessionCore) -> None:
        self.core = core
        self.jar: dict[str, str] = {}

    def request(self, headers: list[tuple[bytes, bytes]] | None = None) -> HandView:
        """A request from the browser: its cookies, the given header lines, its session."""
        cookie = "; ".join(f"{k}={v}" for k, v in self.jar.items()) or None
        lines = [(b"cookie", cookie.encode())] if cookie else []
        session = self.core.run(self.core.begin(cookie, SyncSession))
        return HandView(session, headers=lines + (headers or []))

    def respond(self, view: HandView, status: int = 200) -> list[str]:
        """Finish the request; the Set-Cookie values, which the jar takes in."""
        core = self.core
        cookies = core.run(core.finish(view.session, status, view.headers, view.scheme))
        return take_in(self.jar, core.outgoing(view.session, cookies, view.cookies))
