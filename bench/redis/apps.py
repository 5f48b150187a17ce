"""The Python apps of the Redis bench: one Starlette app, with or without sessions.

``BENCH_KIND`` picks the layer: ``bare``; ``sessionware`` (RedisStore, coalesced);
``sessionware-naive`` (RedisStore with ``coalesce=False``: one command per request,
the "before"); ``starsessions`` (PyPI starsessions on its RedisStore). ``REDIS_URL``
says where Redis is. The routes match ``bench/node/app.js`` one for one.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

SECRET = "bench-secret-" + "x" * 40  # a bench-only value, never a real secret
IDLE = 30 * 60


def _session(request: Request) -> Any:
    return request.session if "session" in request.scope else {}


async def read(request: Request) -> PlainTextResponse:
    """Read the user id of an existing session."""
    return PlainTextResponse(f"u={_session(request).get('user_id', '')}")


async def write(request: Request) -> PlainTextResponse:
    """Change the session on every request."""
    s = _session(request)
    s["n"] = s.get("n", 0) + 1
    return PlainTextResponse(f"n={s['n']}")


async def login(request: Request) -> PlainTextResponse:
    """Store a user id (a new session when no cookie came)."""
    _session(request)["user_id"] = "42"
    return PlainTextResponse("in")


async def inc(request: Request) -> PlainTextResponse:
    """Add one to the counter named by ``?k=`` (the lost-update check).

    ``?atomic=1`` (sessionware only) uses ``session.increment``: the store adds, instead
    of a read-modify-write in the handler.
    """
    s = _session(request)
    k = request.query_params.get("k", "n")
    if request.query_params.get("atomic") and hasattr(s, "increment"):
        n = await s.increment(k)
        return PlainTextResponse(f"{k}={n}")
    s[k] = s.get(k, 0) + 1
    return PlainTextResponse(f"{k}={s[k]}")


async def dump(request: Request) -> JSONResponse:
    """The whole session."""
    return JSONResponse(dict(_session(request)))


def make_app() -> Any:
    """Build the app ``BENCH_KIND`` names."""
    kind = os.environ.get("BENCH_KIND", "bare")
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    routes = [
        Route("/read", read),
        Route("/write", write),
        Route("/login", login),
        Route("/inc", inc),
        Route("/dump", dump),
    ]
    app = Starlette(routes=routes)
    if kind == "bare":
        return app
    if kind == "starsessions":
        from redis.asyncio import Redis
        from starsessions import SessionAutoloadMiddleware, SessionMiddleware
        from starsessions.stores.redis import RedisStore as StarRedisStore

        app.add_middleware(SessionAutoloadMiddleware)
        store = StarRedisStore(connection=Redis.from_url(url))
        options = {"lifetime": IDLE, "cookie_https_only": False, "cookie_name": "sid"}
        app.add_middleware(SessionMiddleware, store=store, **options)
        return app
    from sessionware import SessionMiddleware as Sessions
    from sessionware.stores import RedisStore

    if kind not in ("sessionware", "sessionware-naive"):
        raise SystemExit(f"unknown BENCH_KIND {kind!r}")
    ours = RedisStore.from_url(url, coalesce=kind == "sessionware")
    app.add_middleware(
        Sessions, store=ours, secrets=[SECRET], cookie_name="sid", secure=False, idle_timeout=IDLE
    )
    return app
