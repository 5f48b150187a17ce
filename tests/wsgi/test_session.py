"""Flask's own ``flask.session`` is a sessionware session: values, flash, config, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, flash, get_flashed_messages, session

from sessionware.exceptions import ConfigurationError, HTTPError
from sessionware.flask import FlaskSession, Sessionware
from sessionware.stores import MemoryStore
from sessionware.tokens import store_key
from tests.helpers import SECRET, raw_id


def make_app(store: MemoryStore, **config: object) -> Flask:
    """A small Flask app on sessionware: a counter, flash messages, an error."""
    app = Flask(__name__)
    app.config.update({"SECRET_KEY": SECRET, "SESSIONWARE_COOKIE_NAME": "sid", **config})
    Sessionware(app, store=store)

    @app.get("/count")
    def count() -> str:
        assert isinstance(session._get_current_object(), FlaskSession)  # type: ignore[attr-defined]
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    @app.get("/flash")
    def flash_it() -> str:
        flash("saved")
        return "ok"

    @app.get("/messages")
    def messages() -> str:
        return ",".join(get_flashed_messages())

    @app.get("/denied")
    def denied() -> str:
        raise HTTPError(401, "Not authenticated", {"WWW-Authenticate": "Session"})

    return app


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    """A fresh development MemoryStore."""
    s = MemoryStore(development=True)
    yield s
    s.sync.close()


def test_flask_session_is_stored_server_side_under_a_hashed_id(store: MemoryStore) -> None:
    """The cookie holds only a signed random id; the value lives in the store, at SHA-256."""
    client = make_app(store).test_client()
    first = client.get("/count")
    assert first.text == "1"
    (set_cookie,) = first.headers.getlist("Set-Cookie")
    value = set_cookie.split(";")[0].split("=", 1)[1]
    record = store.sync.load(store_key(raw_id(value)))
    assert record is not None and record[".n"] == "1"
    assert "Cookie" in first.headers["Vary"]
    assert client.get("/count").text == "2"


def test_flash_messages_work_unchanged(store: MemoryStore) -> None:
    """flask.flash writes into the session; the next request reads and clears it."""
    client = make_app(store).test_client()
    client.get("/flash")
    assert client.get("/messages").text == "saved"
    assert client.get("/messages").text == ""


def test_secret_key_fallbacks_still_verify_old_cookies(store: MemoryStore) -> None:
    """A cookie signed with an old key (now in SECRET_KEY_FALLBACKS) still opens its session."""
    client = make_app(store).test_client()
    assert client.get("/count").text == "1"
    rotated = make_app(store, SECRET_KEY="new-secret-" + "n" * 40, SECRET_KEY_FALLBACKS=[SECRET])
    cookie = client.get_cookie("sid")
    assert cookie is not None
    again = rotated.test_client()
    again.set_cookie("sid", cookie.value)
    assert again.get("/count").text == "2"
    forgotten = make_app(store, SECRET_KEY="new-secret-" + "n" * 40).test_client()
    forgotten.set_cookie("sid", cookie.value)
    assert forgotten.get("/count").text == "1"  # without the fallback: no session


def test_http_error_is_answered_with_its_status_and_headers(store: MemoryStore) -> None:
    """sessionware's HTTPError becomes its status, text and headers in Flask too."""
    r = make_app(store).test_client().get("/denied")
    assert r.status_code == 401
    assert r.text == "Not authenticated"
    assert r.headers["WWW-Authenticate"] == "Session"


def test_wrong_configuration_fails_at_start_with_the_fix(store: MemoryStore) -> None:
    """No SECRET_KEY, or an unknown SESSIONWARE_ setting, stops init_app with a message."""
    app = Flask(__name__)
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        Sessionware(app, store=store)
    app.config.update(SECRET_KEY=SECRET, SESSIONWARE_IDLE_TIMOUT=60)
    with pytest.raises(ConfigurationError, match="SESSIONWARE_IDLE_TIMEOUT"):
        Sessionware(app, store=store)


def test_a_refused_option_is_named_as_app_config_spells_it(store: MemoryStore) -> None:
    """The core's message in Flask's words: the __Host- cookie over plain http names
    SESSIONWARE_SECURE, SameSite=None without Secure names both settings."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, SESSIONWARE_SECURE=False)
    with pytest.raises(ConfigurationError) as plain:
        Sessionware(app, store=store)
    assert "set SESSIONWARE_SECURE = True or 'auto'" in str(plain.value)
    assert "secure=" not in str(plain.value)
    app.config.update(SESSIONWARE_COOKIE_NAME="sid", SESSIONWARE_SAME_SITE="none")
    with pytest.raises(ConfigurationError) as none:
        Sessionware(app, store=store)
    wanted = "SESSIONWARE_SAME_SITE = 'none' needs SESSIONWARE_SECURE = True"
    assert str(none.value).startswith(wanted)


@pytest.mark.parametrize("config", [{"SECRET_KEY": "dev"}, {"SECRET_KEY_FALLBACKS": ["old"]}])
def test_a_short_secret_key_is_refused_in_flask_words(
    store: MemoryStore, config: dict[str, Any]
) -> None:
    """Flask's habitual SECRET_KEY = "dev" (or a short fallback) stops init_app with
    Flask's setting names, not the core's secrets=[...]."""
    app = Flask(__name__)
    app.config.update({"SECRET_KEY": SECRET, "SESSIONWARE_COOKIE_NAME": "sid", **config})
    with pytest.raises(ConfigurationError) as refused:
        Sessionware(app, store=store)
    assert str(refused.value).startswith("SECRET_KEY and every SECRET_KEY_FALLBACKS entry must")
    assert "secrets=" not in str(refused.value)
