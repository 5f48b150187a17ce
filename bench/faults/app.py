"""The app the fault harness drives, on ASGI (uvicorn) and WSGI (gunicorn).

``SESSION_STORE`` picks the store and ``SESSION_SECRET`` signs; ``FAULT_IDLE`` and
``FAULT_ABSOLUTE`` set the timeouts (seconds), ``FAULT_STORE_OPTIONS`` is appended to
nothing (the URL carries the store's options). When ``FAULT_CLOCK_FILE`` names a file,
the app's wall clock is ``time.time()`` plus the number in it: that is how the harness
steps "the system clock" of this process without touching the machine's.

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

from sessionware._clock import SteadyClock

SECRET = os.environ.get("SESSION_SECRET", "fault-harness-secret-" + "x" * 40)


def _wall() -> Callable[[], float]:
    path = os.environ.get("FAULT_CLOCK_FILE")
    if not path:
        return time.time
    cache = {"at": 0.0, "offset": 0.0}

    def wall() -> float:
        now = time.time()
        if now - cache["at"] > 0.1:  # read at most every 0.1 s
            cache["at"] = now
            try:
                with open(path) as f:
                    cache["offset"] = float(f.read().strip() or 0)
            except (OSError, ValueError):
                pass
        return now + cache["offset"]

    return wall


def options() -> dict[str, Any]:
    """The session options every app here shares."""
    return {
        "cookie_name": "sid",
        "secure": False,
        "idle_timeout": float(os.environ.get("FAULT_IDLE", "1800")),
        "absolute_timeout": float(os.environ.get("FAULT_ABSOLUTE", "43200")),
        "clock": SteadyClock(_wall()),
        "max_sessions_per_user": None,
    }


def asgi() -> Any:
    """The Starlette app (a uvicorn factory)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    from sessionware import SessionMiddleware
    from sessionware.stores import from_url

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
    app.add_middleware(
        SessionMiddleware,
        store=from_url(os.environ["SESSION_STORE"]),
        secrets=[SECRET],
        **options(),
    )
    return app


def wsgi() -> Any:
    """The same app on Flask (a gunicorn factory: ``bench.faults.app:wsgi()``)."""
    from flask import Flask, jsonify, request, session

    from sessionware.flask import Sessionware
    from sessionware.stores import from_url

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
    opts.pop("clock")  # Flask's settings take no clock: the default one is steady too
    app.config.update({f"SESSIONWARE_{k.upper()}": v for k, v in opts.items()})
    app.config["SESSIONWARE_CSRF"] = False
    Sessionware(app, store=from_url(os.environ["SESSION_STORE"]))
    return app
