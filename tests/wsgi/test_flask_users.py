"""``UserLoader.get_sync`` in sync code (Flask), on the WSGI stores: one load per request."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest
from flask import Flask

from sessionware.exceptions import ConfigurationError
from sessionware.flask import Sessionware, UserMixin, current_view, login_user
from sessionware.stores.base import StoreBase
from sessionware.users import UserLoader
from tests.helpers import SECRET


@dataclass(frozen=True, eq=False)
class User(UserMixin):
    id: str
    name: str


USERS = {"1": User("1", "Ada")}
CALLS: Counter[str] = Counter()


def load_user_sync(user_id: str) -> User | None:
    CALLS[user_id] += 1
    return USERS.get(user_id)


async def load_user_async(user_id: str) -> User | None:
    return USERS.get(user_id)


def test_sync_code_uses_get_sync_and_is_told_about_an_async_loader(
    wsgi_store: StoreBase,
) -> None:
    sync_users = UserLoader(load_user_sync)
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, TESTING=True, SESSIONWARE_COOKIE_NAME="sid")
    sw = Sessionware(app, store=wsgi_store, csrf=False)

    @sw.user_loader
    def flask_load(user_id: str) -> User | None:
        return USERS.get(user_id)

    @app.get("/login/<uid>")
    def sign_in(uid: str) -> str:
        login_user(USERS[uid])
        return "ok"

    @app.get("/me")
    def me() -> str:
        view = current_view()
        first, second = sync_users.get_sync(view), sync_users.get_sync(view)
        assert first is second
        with pytest.raises(ConfigurationError, match="async"):
            UserLoader(load_user_async).get_sync(view)
        return first.name if first else "nobody"

    client = app.test_client()
    assert client.get("/me").text == "nobody"
    client.get("/login/1")
    CALLS.clear()
    assert client.get("/me").text == "Ada"
    assert dict(CALLS) == {"1": 1}
