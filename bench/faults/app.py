"""The app the fault harness drives, on ASGI (uvicorn) and WSGI (gunicorn).

``SESSION_STORE`` picks the store and ``SESSION_SECRET`` signs; ``FAULT_IDLE`` and
``FAULT_ABSOLUTE`` set the timeouts (seconds).

``FAULT_CLOCK_FILE`` names a file holding a number of seconds: this process's
``time.time()`` then returns the real time plus that number (the file read at most
every 0.1 s). It is replaced before sessionware is imported, so every default clock
(the core's, the store's) meets the step exactly as it would meet a stepped system
clock, while monotonic clocks go on, as they do then; the machine's clock is never
touched. ``FAULT_RAW_CLOCK=1`` hands the core and the store that wall clock itself
(no ``SteadyClock``): the contrast run, showing what the clock scenario catches.

Routes: ``POST /login?user=U`` (a new session holding U, the id regenerated),
``POST /write?k=K&v=V`` (one key; the 200 leaves only after the store acknowledged),
``GET /read`` (the session as JSON), ``POST /logout`` (destroys it), ``GET /healthz``
(no store).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

SECRET = os.environ.get("SESSION_SECRET", "fault-harness-secret-" + "x" * 40)


def _stepped(real: Callable[[], float], path: str) -> Callable[[], float]:
    cache = {"at": -1.0, "offset": 0.0}

    def stepped() -> float:
        now = real()
        if abs(now - cache["at"]) > 0.1:  # read at most every 0.1 s
            cache["at"] = now
            try:
                with open(path) as f:
                    cache["offset"] = float(f.read().strip() or 0)
            except (OSError, ValueError):
                pass
        return now + cache["offset"]

    return stepped


if os.environ.get("FAULT_CLOCK_FILE"):
    time.time = _stepped(time.time, os.environ["FAULT_CLOCK_FILE"])


def options() -> dict[str, Any]:
    """The session options every app here shares."""
    found: dict[str, Any] = {
        "cookie_name": "sid",
        "secure": False,
        "idle_timeout": float(os.environ.get("FAULT_IDLE", "1800")),
        "absolute_timeout": float(os.environ.get("FAULT_ABSOLUTE", "43200")),
        "max_sessions_per_user": None,
    }
    if os.environ.get("FAULT_RAW_CLOCK"):
        found["clock"] = time.time
    return found


def store() -> Any:
    """The store ``SESSION_STORE`` names (on the raw wall clock in the contrast run)."""
    from sessionware.stores import from_url

    raw = {"clock": time.time} if os.environ.get("FAULT_RAW_CLOCK") else {}
    return from_url(os.environ["SESSION_STORE"], **raw)


def asgi() -> Any:
    """The Starlette app (a uvicorn factory)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    from sessionware import SessionMiddleware

    async def login(request: Request) -> PlainTextResponse:
        await request.session.regenerate()
        request.session["user"] = request.query_params["user"]
        return PlainTextResponse("in")

    async def write(request: Request) -> PlainTextResponse:
        request.session[request.query_params["k"]] = int(request.query_params["v"])
        return PlainTextResponse("ok")

    async def read(request: Request) -> JSONResponse:
        return JSONResponse(dict(request.session))

    async def logout(request: Request) -> PlainTextResponse:
        await request.session.destroy()
        return PlainTextResponse("out")

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/write", write, methods=["POST"]),
            Route("/read", read),
            Route("/logout", logout, methods=["POST"]),
            Route("/healthz", healthz),
        ]
    )
    app.add_middleware(SessionMiddleware, store=store(), secrets=[SECRET], **options())
    return app


def wsgi() -> Any:
    """The same app on Flask (a gunicorn factory: ``bench.faults.app:wsgi()``)."""
    from flask import Flask, jsonify, request, session

    from sessionware.flask import Sessionware

    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET

    @app.post("/login")
    def login() -> str:
        session.regenerate()  # type: ignore[attr-defined]
        session["user"] = request.args["user"]
        return "in"

    @app.post("/write")
    def write() -> str:
        session[request.args["k"]] = int(request.args["v"])
        return "ok"

    @app.get("/read")
    def read() -> Any:
        return jsonify(dict(session))

    @app.post("/logout")
    def logout() -> str:
        session.destroy()  # type: ignore[attr-defined]
        return "out"

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    opts = options()
    opts.pop("clock", None)  # Flask's settings take no clock (the clock scenario is ASGI)
    app.config.update({f"SESSIONWARE_{k.upper()}": v for k, v in opts.items()})
    app.config["SESSIONWARE_CSRF"] = False
    Sessionware(app, store=store())
    return app
