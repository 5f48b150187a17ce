"""The apps the Flask bench serves: one Flask app, with or without a session layer.

Served by gunicorn as ``bench.flask.apps:make_app()``. ``BENCH_KIND`` picks the layer:

- ``bare``: no session at all (the handlers never touch ``flask.session``);
- ``memory``, ``sqlite``, ``redis``: sessionware (``Sessionware(app)``) on a
  MemoryStore, a SQLiteStore in ``BENCH_SQLITE``, a RedisStore on ``BENCH_REDIS``;
- ``cookie``: Flask's own signed-cookie session (the default session interface);
- ``flask-session``: Flask-Session's server-side session on Redis (``BENCH_REDIS``).

Routes: ``/read`` (read one value of the session), ``/write`` (bump a counter),
``/login`` (a new session holding a user id), ``/inc?k=NAME`` (bump the counter
``NAME``: the lost-update check) and ``/dump`` (the whole session as JSON).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify, request, session
from flask.typing import ResponseReturnValue

SECRET = "bench-secret-" + "x" * 40  # a bench-only value, never a real secret


def _views(app: Flask, bare: bool) -> None:
    @app.get("/read")
    def read() -> str:
        if bare:
            return "user=0"
        return f"user={session.get('user', 0)}"

    @app.get("/write")
    def write() -> str:
        if bare:
            return "n=1"
        n = session.get("n", 0) + 1
        session["n"] = n
        return f"n={n}"

    @app.get("/login")
    def login() -> str:
        if bare:
            return "user=42"
        session["user"] = "42"
        return "user=42"

    @app.get("/inc")
    def inc() -> str:
        key = request.args.get("k", "n")
        session[key] = session.get(key, 0) + 1
        return "ok"

    @app.get("/dump")
    def dump() -> ResponseReturnValue:
        return jsonify(dict(session))


def make_app() -> Any:
    """Build the app ``BENCH_KIND`` names."""
    kind = os.environ.get("BENCH_KIND", "bare")
    app = Flask(__name__)
    _views(app, bare=kind == "bare")
    if kind == "bare":
        return app
    app.config["SECRET_KEY"] = SECRET
    if kind == "cookie":
        return app
    if kind == "flask-session":
        import redis
        from flask_session import Session

        app.config.update(
            SESSION_TYPE="redis", SESSION_REDIS=redis.Redis.from_url(os.environ["BENCH_REDIS"])
        )
        Session(app)
        return app
    from sessionware.flask import Sessionware
    from sessionware.stores import MemoryStore, RedisStore, SQLiteStore

    store: Any
    if kind == "memory":
        store = MemoryStore(development=True)
    elif kind == "sqlite":
        store = SQLiteStore(os.environ["BENCH_SQLITE"])
    elif kind == "redis":
        store = RedisStore.from_url(os.environ["BENCH_REDIS"], prefix="bench:")
    else:
        raise SystemExit(f"unknown BENCH_KIND {kind!r}")
    app.config.update(SESSIONWARE_COOKIE_NAME="sid", SESSIONWARE_SECURE=False)
    Sessionware(app, store=store)
    return app
