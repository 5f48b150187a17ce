"""A small app for the rotation race test, served by uvicorn with several workers.

Its clock is the real one plus an offset read from ``CLOCK_FILE``, so the test moves
every worker past ``rotate_every`` at once without waiting a minute; the store's own
expiry (the grace window of an old id) runs on real time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.auth import current_user_id, login, logout_everywhere
from sessionware.stores import from_url

SECRET = "rotation-race-secret-" + "r" * 40


def from_env() -> Starlette:
    """The app on ``SESSION_STORE``, rotating every 60 s with ``ROTATE_GRACE``."""
    offset_file = Path(os.environ["CLOCK_FILE"])
    store = from_url(os.environ["SESSION_STORE"])

    def clock() -> float:
        return time.time() + float(offset_file.read_text() or 0)

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def sign_in(request: Request) -> JSONResponse:
        await login(request, request.path_params["user"])
        return JSONResponse({"user": current_user_id(request)})

    async def add(request: Request) -> JSONResponse:
        request.session[request.path_params["key"]] = 1
        return JSONResponse({"user": current_user_id(request)})

    async def read(request: Request) -> JSONResponse:
        return JSONResponse({"user": current_user_id(request), "data": dict(request.session)})

    async def everywhere(request: Request) -> JSONResponse:
        n = await logout_everywhere(store, request.path_params["user"])
        return JSONResponse({"ended": n})

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/login/{user}", sign_in, methods=["POST"]),
            Route("/add/{key}", add, methods=["POST"]),
            Route("/read", read),
            Route("/everywhere/{user}", everywhere, methods=["POST"]),
        ]
    )
    app.add_middleware(
        SessionMiddleware,
        store=store,
        secrets=[SECRET],
        cookie_name="sid",
        secure=False,
        rotate_every=60,
        rotate_grace=float(os.environ.get("ROTATE_GRACE", "2")),
        clock=clock,
    )
    return app
