"""The session is a real dict: JSON, ``|``, ``==``, ``copy()`` and ``isinstance`` work as
on a dict, every mutating method is tracked exactly, and key order survives the store."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionware import SessionConfig, SessionMiddleware
from sessionware.core import SessionCore
from sessionware.session import Session, SyncSession
from sessionware.stores import MemoryStore, Store
from sessionware.testing import ManualClock
from tests.helpers import SECRET, Browser

pytestmark = pytest.mark.anyio


@pytest.fixture
def core() -> SessionCore:
    """A core on a development memory store with a hand-moved clock."""
    clock = ManualClock()
    return SessionCore(
        SessionConfig(secrets=[SECRET], clock=clock), MemoryStore(development=True, clock=clock)
    )


async def reloaded(core: SessionCore, s: Session) -> Session:
    """``s`` saved, then loaded back as the next request would see it."""
    await s.save()
    fields = await core.store.load(s.key)
    assert fields is not None
    return Session(core, s.id, fields)


async def stored(core: SessionCore, **values: Any) -> Session:
    """A session holding ``values``, saved and loaded back."""
    s = Session(core, None, None)
    s.update(values)
    return await reloaded(core, s)


async def test_is_a_dict_to_json_and_isinstance(core: SessionCore) -> None:
    """json.dumps, isinstance(dict), dict(), ** and == with a dict see the values."""
    s = await stored(core, user="ada", cart=[1, 2])
    assert isinstance(s, dict)
    assert json.dumps(s) == '{"user": "ada", "cart": [1, 2]}'
    assert dict(s) == {"user": "ada", "cart": [1, 2]} == s
    assert {**s} == {"user": "ada", "cart": [1, 2]}
    assert s != {"user": "bob"}
    assert s.accessed  # reading through any of these counts as reading (Vary: Cookie)


async def test_json_dumps_alone_counts_as_reading(core: SessionCore) -> None:
    """Serialising the session is a read: the response must vary by Cookie."""
    s = await stored(core, a=1)
    assert not s.accessed
    json.dumps(s)
    assert s.accessed


async def test_or_operators_return_plain_dicts(core: SessionCore) -> None:
    """session | d and d | session make plain dicts and leave the session unchanged."""
    s = await stored(core, a=1, b=2)
    left, right = s | {"b": 3}, {"b": 3, "z": 0} | s
    assert type(left) is dict and left == {"a": 1, "b": 3}
    assert type(right) is dict and right == {"b": 2, "z": 0, "a": 1}
    assert s.unchanged()


async def test_copy_is_a_plain_untracked_dict(core: SessionCore) -> None:
    """copy(), copy.copy and deepcopy give plain dicts; changing them changes nothing."""
    s = await stored(core, a={"n": 1})
    for snapshot in (s.copy(), copy.copy(s), copy.deepcopy(s)):
        assert type(snapshot) is dict and snapshot == {"a": {"n": 1}}
    plain = s.copy()
    plain["b"] = 2
    assert "b" not in s and s.unchanged()


async def test_fromkeys_makes_a_plain_dict() -> None:
    """Session.fromkeys cannot make a session (it belongs to a request): a plain dict."""
    assert Session.fromkeys(["a"], 1) == {"a": 1}
    assert type(Session.fromkeys(["a"])) is dict


Op = Callable[[dict[str, Any]], Any]

OPS: dict[str, Op] = {
    "setitem": lambda d: d.__setitem__("b", [9]),
    "delitem": lambda d: d.__delitem__("a"),
    "pop": lambda d: d.pop("c"),
    "pop-missing": lambda d: d.pop("nope", None),
    "popitem": lambda d: d.popitem(),
    "setdefault-new": lambda d: d.setdefault("n", {"x": 1}),
    "setdefault-old": lambda d: d.setdefault("a", 5),
    "update": lambda d: d.update({"a": 7}, z=8),
    "update-pairs": lambda d: d.update([("y", 1)]),
    "ior": lambda d: d.__ior__({"c": "new", "w": None}),
    "clear-then-set": lambda d: (d.clear(), d.__setitem__("after", 1)),
    "nested-in-place": lambda d: d["b"].append(3),
}


@pytest.mark.parametrize("name", sorted(OPS))
async def test_every_mutation_reaches_the_store_exactly(core: SessionCore, name: str) -> None:
    """Each dict method applied to the session and to a plain dict leaves the stored
    record equal to the plain dict, in the same order."""
    start = {"a": 1, "b": [1, 2], "c": "x"}
    plain = dict(start)
    s = await stored(core, **start)
    assert OPS[name](plain) == OPS[name](s)
    again = await reloaded(core, s)
    assert list(again.items()) == list(plain.items())


async def test_ior_operator_is_tracked(core: SessionCore) -> None:
    """session |= {...} (the operator, not the method) is saved."""
    s = await stored(core, a=1)
    s |= {"b": 2}
    assert isinstance(s, Session)
    assert list((await reloaded(core, s)).items()) == [("a", 1), ("b", 2)]


async def test_ior_refuses_non_json_before_setting_anything(core: SessionCore) -> None:
    """|= with one bad value sets none of the others."""
    s = await stored(core, a=1)
    with pytest.raises(TypeError, match="'bad'"):
        s |= {"ok": 1, "bad": object()}
    assert dict(s) == {"a": 1} and s.unchanged()


async def test_popitem_is_lifo(core: SessionCore) -> None:
    """popitem() removes the last key set, as a dict does."""
    s = await stored(core, first=1, second=2)
    s["third"] = 3
    assert s.popitem() == ("third", 3)
    assert s.popitem() == ("second", 2)
    assert list(await reloaded(core, s)) == ["first"]


async def test_modified_true_forces_a_write_of_in_place_changes(core: SessionCore) -> None:
    """session.modified = True (Flask's idiom) marks every key for writing."""
    s = await stored(core, a=1)
    assert not s.modified
    s.modified = True
    assert s.modified and s.changes()[0] == {".a": "1"}


async def test_key_order_survives_every_store(store: Store) -> None:
    """Insertion order comes back from each real store, long values (which turn a Redis
    hash unordered) and jsonb (which sorts keys) included, across adds and deletes."""
    core = SessionCore(SessionConfig(secrets=[SECRET]), store)
    names = ["zeta", "alpha", "mid", "b", "a-very-long-key-name", "c"]
    s = Session(core, None, None)
    for n in names:
        s[n] = n * 30
    s = await reloaded(core, s)
    assert list(s) == names
    del s["alpha"]
    s["aaa"] = 1
    s = await reloaded(core, s)
    assert list(s) == ["zeta", "mid", "b", "a-very-long-key-name", "c", "aaa"]
    assert s.popitem() == ("aaa", 1)


async def test_concurrent_requests_writing_different_keys_both_land(store: Store) -> None:
    """Two requests of one session, each changing its own key through dict methods,
    both land: per-key change sets survive the dict rewrite."""
    core = SessionCore(SessionConfig(secrets=[SECRET]), store)
    base = await stored(core, shared=0)
    one = Session(core, base.id, await store.load(base.key))
    two = Session(core, base.id, await store.load(base.key))
    one |= {"left": 1}
    two.setdefault("right", 2)
    await one.save()
    await two.save()
    final = Session(core, base.id, await store.load(base.key))
    assert dict(final) == {"shared": 0, "left": 1, "right": 2}


def test_sync_session_is_a_dict_too(core: SessionCore) -> None:
    """The WSGI session is the same dict."""
    s = SyncSession(core, None, None)
    s["a"] = 1
    assert isinstance(s, dict) and json.dumps(s) == '{"a": 1}'


async def test_jsonresponse_of_the_session_in_an_app() -> None:
    """JSONResponse(request.session) works, and the response varies by Cookie."""

    async def put(request: Request) -> JSONResponse:
        session = request.session  # request.session has no setter for |= to assign
        session |= dict(request.query_params)
        return JSONResponse(session)

    app = Starlette(routes=[Route("/put", put)])
    app.add_middleware(SessionMiddleware, store=MemoryStore(development=True), secrets=[SECRET])
    async with Browser(app) as b:
        await b.get("/put?a=1")
        r = await b.get("/put?b=2")
    assert r.json() == {"a": "1", "b": "2"}
    assert "cookie" in r.headers["vary"].lower()
