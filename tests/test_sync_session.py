"""The one core driven with plain calls: what a WSGI adapter does, on real stores.

Each "request" here is what a sync adapter runs: ``core.run(core.begin(cookie,
SyncSession))``, the handler, then ``core.run(core.finish(...))`` for the Set-Cookie
values. The verbs are the same operations the async ``Session`` awaits.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionware import SessionConfig
from sessionware.core import SessionCore
from sessionware.exceptions import StoreError
from sessionware.session import BaseSession, Session, SyncSession
from sessionware.stores import MemoryStore, SQLiteStore
from sessionware.stores.base import StoreBase
from tests.helpers import SECRET

VERBS = ("regenerate", "destroy", "save", "reload", "increment", "touch")


@pytest.fixture(params=["memory", "sqlite"])
def core(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionCore]:
    """A core on a real store, used only through the store's sync face."""
    store: StoreBase
    if request.param == "memory":
        store = MemoryStore(development=True)
    else:
        store = SQLiteStore(tmp_path / "s.db")
    yield SessionCore(SessionConfig(secrets=[SECRET], cookie_name="sid"), store)
    store.sync.close()


def cookie_of(set_cookies: list[str]) -> str | None:
    """The ``sid=...`` pair a browser would send back, from the response's Set-Cookie values."""
    for value in set_cookies:
        pair = value.split(";", 1)[0]
        if pair.startswith("sid=") and pair != "sid=":
            return pair
    return None


def request(core: SessionCore, cookie: str | None) -> SyncSession:
    """Open a request's session the way a sync adapter does."""
    return core.run(core.begin(cookie, SyncSession))


def respond(core: SessionCore, session: SyncSession, status: int = 200) -> list[str]:
    """Finish a request the way a sync adapter does; the Set-Cookie values to send."""
    return core.run(core.finish(session, status, [], "http"))


def test_a_value_set_in_one_request_is_read_in_the_next(core: SessionCore) -> None:
    """Set, respond with a cookie, come back with it: the value is there."""
    s = request(core, None)
    s["cart"] = ["apple"]
    cookie = cookie_of(respond(core, s))
    assert cookie is not None
    again = request(core, cookie)
    assert again["cart"] == ["apple"]
    assert not again.is_new
    assert respond(core, again) == []  # an unchanged read writes nothing, sends nothing


def test_regenerate_moves_the_data_and_kills_the_old_id(core: SessionCore) -> None:
    """regenerate() without await: new id, same data, the old cookie loads nothing."""
    s = request(core, None)
    s["user"] = "alice"
    old = cookie_of(respond(core, s))
    s2 = request(core, old)
    s2.regenerate()
    new = cookie_of(respond(core, s2))
    assert new is not None and new != old
    assert request(core, new)["user"] == "alice"
    stale = request(core, old)
    assert stale.is_new and "user" not in stale
    assert stale.superseded  # the old cookie is not cleared: the browser holds the new one


def test_destroy_deletes_the_record_and_clears_the_cookie(core: SessionCore) -> None:
    """destroy(): the record is gone and the response deletes the cookie."""
    s = request(core, None)
    s["x"] = 1
    cookie = cookie_of(respond(core, s))
    s2 = request(core, cookie)
    s2.destroy()
    out = respond(core, s2)
    assert len(out) == 1 and out[0].startswith("sid=;") and "Max-Age=0" in out[0]
    assert request(core, cookie).is_new


def test_save_reload_touch_and_increment(core: SessionCore) -> None:
    """The remaining verbs as plain calls, against the store."""
    s = request(core, None)
    s["n"] = 1
    s.save()
    assert not s.is_new
    assert s.increment("n", 4) == 5
    other = request(core, cookie_of(respond(core, s)))
    assert other["n"] == 5
    other["n"] = 99
    other.reload()  # drops the unsaved change
    assert other["n"] == 5
    other.touch()
    other.destroy()
    with pytest.raises(StoreError):
        s.increment("n")  # destroyed meanwhile: never re-created


def test_a_5xx_response_saves_nothing(core: SessionCore) -> None:
    """The handler failed half-way: its changes are not stored."""
    s = request(core, None)
    s["x"] = 1
    assert respond(core, s, 500) == []
    assert s.is_new


def test_threads_changing_different_keys_all_land(core: SessionCore) -> None:
    """Eight threads, each its own request on one session, each setting its own key."""
    s = request(core, None)
    s["start"] = True
    cookie = cookie_of(respond(core, s))

    def one(i: int) -> None:
        mine = request(core, cookie)
        mine[f"k{i}"] = i
        respond(core, mine)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = request(core, cookie)
    assert {k: final[k] for k in final if k.startswith("k")} == {f"k{i}": i for i in range(8)}


@pytest.mark.parametrize("verb", VERBS)
def test_each_verb_is_written_once(verb: str) -> None:
    """Session and SyncSession only dispatch: the verb's logic lives in BaseSession."""
    assert f"_{verb}" in BaseSession.__dict__
    for cls in (Session, SyncSession):
        body = inspect.getsource(cls.__dict__[verb]).split('"""')[-1]
        code = [line.strip() for line in body.splitlines() if line.strip()]
        assert len(code) == 1 and f"self._{verb}(" in code[0], (cls.__name__, code)
