"""Flash messages on Flask: ``sessionware.flask.flash`` and the templates'
``get_flashed_messages`` keep one field per message, and what ``flask.flash`` queued
before the move is still shown. On every WSGI store, through Flask's test client and
a real threaded server for parallel requests."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import flask
import httpx
import pytest
from flask import Flask, jsonify, render_template_string, request
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from sessionware.flask import Sessionware, flash, get_flashed_messages
from sessionware.stores.base import StoreBase
from tests.helpers import SECRET


def make_app(store: StoreBase) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, SESSIONWARE_COOKIE_NAME="sid", TESTING=True)
    Sessionware(app, store=store, csrf=False)

    @app.get("/flash")
    def add() -> str:
        flash(request.args["m"], request.args.get("c", "message"))
        return "flashed"

    @app.get("/old-flash")
    def old() -> str:
        flask.flash(request.args["m"], "legacy")  # Flask's own, before the move
        return "flashed"

    @app.get("/show")
    def show() -> Response:
        return jsonify(get_flashed_messages(with_categories=True))

    @app.get("/page")
    def page() -> str:
        return render_template_string(
            "{% for c, m in get_flashed_messages(with_categories=true) %}[{{ c }}:{{ m }}]"
            "{% endfor %}|{{ get_flashed_messages()|length }}"
        )

    return app


def test_messages_are_shown_once_in_order_and_in_templates(wsgi_store: StoreBase) -> None:
    client = make_app(wsgi_store).test_client()
    client.get("/flash?m=one&c=ok")
    client.get("/old-flash?m=two")
    client.get("/flash?m=three&c=error")
    # Flask's own list is shown too, after ours (it holds no times to sort by).
    assert client.get("/page").text == "[ok:one][error:three][legacy:two]|3"
    assert client.get("/show").json == []


@pytest.fixture
def server(wsgi_store: StoreBase) -> Iterator[str]:
    srv = make_server("127.0.0.1", 0, make_app(wsgi_store), threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        thread.join(10)


def test_parallel_flashes_of_one_browser_all_land(server: str) -> None:
    with httpx.Client(base_url=server) as c:
        c.get("/flash", params={"m": "start"})
        cookie = c.cookies["sid"]

    def send(i: int) -> None:
        with httpx.Client(base_url=server, cookies={"sid": cookie}) as c:
            assert c.get("/flash", params={"m": f"m{i}"}).status_code == 200

    threads = [threading.Thread(target=send, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    with httpx.Client(base_url=server, cookies={"sid": cookie}) as c:
        shown = [m for _, m in c.get("/show").json()]
        assert sorted(shown) == sorted(["start", *(f"m{i}" for i in range(30))])
        assert c.get("/show").json() == []
