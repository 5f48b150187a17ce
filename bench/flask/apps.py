"""The apps the Flask bench serves: one Flask app, with or without a session layer.

Served by gunicorn as ``bench.flask.apps:make_app()``. ``BENCH_KIND`` picks the layer:

- ``bare``: no session at all (the handlers never touch ``flask.session``);
- ``passthrough``: the bare app inside a WSGI middleware that does nothing: the
  noise gauge (it should keep 0.97-1.03 of bare; outside that the run is too noisy);
- ``memory``, ``sqlite``, ``redis``: sessionware (``Sessionware(app)``) on a
  MemoryStore, a SQLiteStore in ``BENCH_SQLITE``, a RedisStore on ``BENCH_REDIS``;
- ``cookie``: Flask's own signed-cookie session (the default session interface);
- ``flask-session``: Flask-Session's server-side session on Redis (``BENCH_REDIS``);
- ``redis-login``: sessionware on Redis with its login layer (``login_user``,
  ``current_user`` through ``@sw.user_loader``): what a Flask-Login user migrates to;
- ``flask-session-login``: Flask-Session on Redis with Flask-Login (``login_user``,
  ``current_user`` through ``@login_manager.user_loader``).

With a login layer, ``/read`` answers ``current_user``'s id and ``/login`` calls
``login_user`` (sessionware's also gives the session a new id and indexes the device).

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


class User:
    """The smallest user both login layers accept (an id, active, authenticated)."""

    is_active = True
    is_authenticated = True
    is_anonymous = False

    def __init__(self, user_id: str) -> None:
        self.id = user_id

    def get_id(self) -> str:
        return self.id


def _views(app: Flask, bare: bool, login: Any = None) -> None:
    """The routes; ``login`` is ``(login_user, current_user)`` of a login layer."""

    @app.get("/read")
    def read() -> str:
        if bare:
            return "user=0"
        if login is not None:
            return f"user={login[1].get_id() or 0}"
        return f"user={session.get('user', 0)}"

    @app.get("/write")
    def write() -> str:
        if bare:
            return "n=1"
        n = session.get("n", 0) + 1
        session["n"] = n
        return f"n={n}"

    @app.get("/login")
    def login_() -> str:
        if bare:
            return "user=42"
        if login is not None:
            login[0](User("42"))
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


class _Passthrough:
    """A WSGI middleware that only calls the app: what any layer costs at the least."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)


def make_app() -> Any:
    """Build the app ``BENCH_KIND`` names."""
    kind = os.environ.get("BENCH_KIND", "bare")
    app = Flask(__name__)
    if kind in ("bare", "passthrough"):
        _views(app, bare=True)
        return app if kind == "bare" else _Passthrough(app)
    app.config["SECRET_KEY"] = SECRET
    if kind == "cookie":
        _views(app, bare=False)
        return app
    if kind in ("flask-session", "flask-session-login"):
        import redis
        from flask_session import Session

        app.config.update(
            SESSION_TYPE="redis", SESSION_REDIS=redis.Redis.from_url(os.environ["BENCH_REDIS"])
        )
        Session(app)
        login = None
        if kind == "flask-session-login":
            import flask_login

            manager = flask_login.LoginManager(app)
            manager.user_loader(User)
            login = (flask_login.login_user, flask_login.current_user)
        _views(app, bare=False, login=login)
        return app
    from sessionware.flask import Sessionware, current_user, login_user
    from sessionware.stores import MemoryStore, RedisStore, SQLiteStore

    store: Any
    if kind == "memory":
        store = MemoryStore(development=True)
    elif kind == "sqlite":
        store = SQLiteStore(os.environ["BENCH_SQLITE"])
    elif kind in ("redis", "redis-login"):
        store = RedisStore.from_url(os.environ["BENCH_REDIS"], prefix="bench:")
    else:
        raise SystemExit(f"unknown BENCH_KIND {kind!r}")
    app.config.update(SESSIONWARE_COOKIE_NAME="sid", SESSIONWARE_SECURE=False)
    sw = Sessionware(app, store=store)
    sw.user_loader(User)
    _views(app, bare=False, login=(login_user, current_user) if kind == "redis-login" else None)
    return app
