"""A small app for the flash race test, served by uvicorn as a real server.

``SESSION_STORE`` picks the store; ``/flash?m=..`` adds a message, ``/show`` takes them.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.flash import flash, get_flashed_messages
from sessionware.stores import from_url


async def add(request: Request) -> PlainTextResponse:
    flash(request, request.query_params["m"], request.query_params.get("c", "message"))
    return PlainTextResponse("flashed")


async def show(request: Request) -> JSONResponse:
    return JSONResponse(get_flashed_messages(request, with_categories=True))


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/flash", add), Route("/show", show), Route("/healthz", healthz)])
app.add_middleware(
    SessionMiddleware,
    store=from_url(os.environ["SESSION_STORE"]),
    secrets=[os.environ["SESSION_SECRET"]],
    cookie_name="sid",
    secure=False,
)
