"""A small Flask app on ``Sessionware`` for the gunicorn tests (not a test module).

Served as ``tests.wsgi.gunicorn_app:app``; each worker process builds it from the
environment:

- ``SW_TEST_SECRET``: Flask's ``SECRET_KEY``;
- ``SW_TEST_STORE``: ``sqlite`` (with ``SW_TEST_SQLITE``, the file every worker
  shares) or ``redis`` (with ``SW_TEST_REDIS_URL`` and ``SW_TEST_PREFIX``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from typing import Any

from flask import Flask, jsonify, request, session
from flask.typing import ResponseReturnValue

from sessionware.flask import Sessionware
from sessionware.stores import RedisStore, SQLiteStore

# Every asyncio event loop this process creates, counted where every standard loop is
# built (uvloop's are not BaseEventLoops, and uvloop is not used on this path). A loop
# made and closed again in passing would leave nothing for a later look to find.
_created: list[str] = []
_loop_init = asyncio.base_events.BaseEventLoop.__init__


def _counting_init(self: asyncio.base_events.BaseEventLoop) -> None:
    _created.append(threading.current_thread().name)
    _loop_init(self)


asyncio.base_events.BaseEventLoop.__init__ = _counting_init  # type: ignore[method-assign]
asyncio.new_event_loop().close()  # the count works on this Python...
if _created != [threading.current_thread().name]:
    raise SystemExit("could not count event loops here")
_created.clear()  # ...and starts from nothing for the app


def _store() -> Any:
    kind = os.environ["SW_TEST_STORE"]
    if kind == "sqlite":
        return SQLiteStore(os.environ["SW_TEST_SQLITE"])
    if kind == "redis":
        return RedisStore.from_url(
            os.environ["SW_TEST_REDIS_URL"], prefix=os.environ["SW_TEST_PREFIX"]
        )
    raise SystemExit(f"unknown SW_TEST_STORE {kind!r}")


app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["SW_TEST_SECRET"],
    SESSIONWARE_COOKIE_NAME="sid",
    SESSIONWARE_SECURE=False,  # plain http on 127.0.0.1
)
Sessionware(app, store=_store())


def _hold() -> None:
    """Keep the worker busy for ``?hold=`` seconds, so concurrent requests spread over
    every worker instead of one worker taking them all."""
    time.sleep(float(request.args.get("hold", "0")))


@app.get("/healthz")
def healthz() -> str:
    """Readiness: touches no session."""
    return "ok"


@app.get("/set")
def set_values() -> ResponseReturnValue:
    """Set every query parameter in the session."""
    _hold()
    for k, v in request.args.items():
        if k != "hold":
            session[k] = v
    return jsonify(pid=os.getpid())


@app.get("/read")
def read() -> ResponseReturnValue:
    """The whole session, and which process served it."""
    _hold()
    return jsonify(pid=os.getpid(), session=dict(session))


@app.get("/incr")
def incr() -> ResponseReturnValue:
    """Add one to the session's counter in the store (session.increment)."""
    _hold()
    return jsonify(pid=os.getpid(), n=session.increment("n"))  # type: ignore[attr-defined]


@app.get("/runtime")
def runtime() -> ResponseReturnValue:
    """What this worker process runs: its threads, the asyncio event loops it ever
    created and any it still holds. The WSGI path must have made none: the stores are
    used through their sync faces, in the worker's own threads."""
    _hold()
    session.get("x")  # this request went through the session layer too
    alive = [type(o).__name__ for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    try:
        asyncio.get_running_loop()
        running = True
    except RuntimeError:
        running = False
    return jsonify(
        pid=os.getpid(),
        loops_created=list(_created),
        loops_alive=alive,
        running=running,
        threads=sorted(t.name for t in threading.enumerate()),
    )
