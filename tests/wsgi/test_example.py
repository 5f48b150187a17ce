"""examples/flask_app.py, the README's Flask app, works as a new user would run it."""

from __future__ import annotations

import re
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.helpers import SECRET

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flask_app.py"


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The example's module namespace, on a SQLite file of its own."""
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("SESSIONWARE_STORE", f"sqlite:///{tmp_path}/sessions.sqlite3")
    loaded = runpy.run_path(str(EXAMPLE))
    yield loaded
    loaded["sw"].core.store.sync.close()


def token_of(page: str) -> str:
    """The CSRF token of the form on ``page``."""
    found = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def sign_in(client: FlaskClient, password: str, *, remember: bool = False) -> Any:
    """Fill in and send the login form as a browser would (its token included)."""
    token = token_of(client.get("/login").text)
    form = {"username": "ada", "password": password, "_csrf": token}
    if remember:
        form["remember"] = "on"
    return client.post("/login", data=form)


def test_sign_in_then_the_protected_page_knows_the_user(example: dict[str, Any]) -> None:
    """Login redirects home; home shows the user, a counter in flask.session, one device."""
    client = example["app"].test_client()
    assert client.get("/").status_code == 302  # @login_required sends strangers to /login
    r = sign_in(client, "correct horse battery staple")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    home = client.get("/").get_json()
    assert home["user"] == "ada" and home["visits"] == 1 and len(home["devices"]) == 1
    assert client.get("/").get_json()["visits"] == 2


def test_a_wrong_password_is_refused_and_counted(example: dict[str, Any]) -> None:
    """A wrong password shows the form again; the stranger is still not signed in."""
    client = example["app"].test_client()
    r = sign_in(client, "wrong")
    assert r.status_code == 200 and "Wrong username or password." in r.text
    assert client.get("/").status_code == 302


def test_remember_me_survives_the_end_of_the_session(example: dict[str, Any]) -> None:
    """With "remember me", a browser that lost its session cookie is signed in again."""
    client = example["app"].test_client()
    sign_in(client, "correct horse battery staple", remember=True)
    assert client.get_cookie("remember") is not None
    client.delete_cookie("sid")
    assert client.get("/").get_json()["user"] == "ada"


def test_a_post_without_the_token_is_refused(example: dict[str, Any]) -> None:
    """CSRF is on by default: a signed-in browser's POST without its token gets 403."""
    client = example["app"].test_client()
    sign_in(client, "correct horse battery staple")
    assert client.post("/logout").status_code == 403
    assert client.get("/").status_code == 200
