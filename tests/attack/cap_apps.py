"""The small apps the session-cap race tests serve: one Starlette app (uvicorn) and one
Flask app (gunicorn) with ``max_sessions_per_user`` and its policy from the environment.

Not a test module. ``CAP_STORE`` is the store URL, ``CAP`` the cap and ``CAP_POLICY``
the policy; ``POST /login?user=U`` logs U in (409 when the cap refuses it), ``GET /me``
names the logged-in user and ``GET /live?user=U`` counts U's live sessions in the
store (its index, each record loaded), which is what the tests assert on.
"""

from __future__ import annotations

import os
from typing import Any

from sessionware.auth.fields import USER
from sessionware.auth.series import is_series_key
from sessionware.stores import from_url

SECRET = "cap-race-test-secret-" + "k" * 40


def _options() -> dict[str, Any]:
    return {
        "max_sessions_per_user": int(os.environ["CAP"]),
        "max_sessions_policy": os.environ["CAP_POLICY"],
    }


def starlette_app() -> Any:
    """The ASGI app: the coroutines of ``sessionware.auth`` under SessionMiddleware."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    from sessionware import SessionMiddleware
    from sessionware.auth import current_user_id, login
    from sessionware.exceptions import SessionLimitError

    store = from_url(os.environ["CAP_STORE"])

    async def do_login(request: Request) -> JSONResponse:
        try:
            await login(request, request.query_params["user"])
        except SessionLimitError as exc:
            return JSONResponse({"refused": exc.detail}, status_code=409)
        return JSONResponse({"user": current_user_id(request)})

    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"user": current_user_id(request)})

    async def live(request: Request) -> JSONResponse:
        user = request.query_params["user"]
        keys = [k for k in await store.keys_of(user) if not is_series_key(k)]
        records = [await store.load(k) for k in keys]
        return JSONResponse({"live": sum(1 for r in records if r and r.get(USER) == user)})

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route("/login", do_login, methods=["POST"]),
            Route("/me", me),
            Route("/live", live),
            Route("/healthz", healthz),
        ]
    )
    app.add_middleware(
        SessionMiddleware,
        store=store,
        secrets=[SECRET],
        cookie_name="sid",
        secure=False,
        **_options(),
    )
    return app


def flask_app() -> Any:
    """The WSGI app: the Flask extension's ``login_user`` on the store's sync face."""
    from flask import Flask, jsonify, request
    from flask.typing import ResponseReturnValue

    from sessionware.flask import Sessionware, UserMixin, current_user, login_user

    store = from_url(os.environ["CAP_STORE"])
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET,
        SESSIONWARE_COOKIE_NAME="sid",
        SESSIONWARE_SECURE=False,
        **{"SESSIONWARE_" + k.upper(): v for k, v in _options().items()},
    )
    sw = Sessionware(app, store=store, csrf=False)

    class User(UserMixin):
        def __init__(self, user_id: str) -> None:
            self.id = user_id

    @sw.user_loader
    def load(user_id: str) -> User:
        return User(user_id)

    @app.post("/login")
    def do_login() -> ResponseReturnValue:
        login_user(User(request.args["user"]))  # a refusal is the extension's 409
        return jsonify(user=request.args["user"])

    @app.get("/me")
    def me() -> ResponseReturnValue:
        return jsonify(user=current_user.get_id() if current_user.is_authenticated else None)

    @app.get("/live")
    def live() -> ResponseReturnValue:
        user = request.args["user"]
        face = store.sync
        keys = [k for k in face.keys_of(user) if not is_series_key(k)]
        records = [face.load(k) for k in keys]
        return jsonify(live=sum(1 for r in records if r and r.get(USER) == user))

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return "ok"

    return app
