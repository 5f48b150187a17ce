"""Stored records: every JSON value round-trips through the field encoding, and a record
that is garbage (a foreign or damaged one) opens as no session, never an exception that
would be a 500, through the core and through a real store behind the middleware."""

from __future__ import annotations

import json
import math
import secrets
import time
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.config import SessionConfig
from sessionware.core import SessionCore
from sessionware.session import Session, dumps, loads
from sessionware.stores import MemoryStore, Store
from tests.fuzz.conftest import FUZZ
from tests.helpers import SECRET, signed

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@FUZZ
@given(json_values)
def test_every_json_value_round_trips(value: Any) -> None:
    back = loads(dumps(value))
    assert back == value or (isinstance(value, float) and math.isclose(back, value))


@FUZZ
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_a_session_stores_and_reloads_its_data_exactly(data: dict[str, Any]) -> None:
    core = SessionCore(SessionConfig(secrets=[SECRET]), MemoryStore())
    session = Session(core, None, None)
    session.update(data)
    sets, _ = session.changes()
    fields = {"c": "1700000000", "a": "1700000000", **sets}
    again = Session(core, "x" * 43, fields, "k" * 64)
    assert dict(again) == data
    assert list(again) == list(data)  # insertion order kept


garbage_fields = st.dictionaries(
    st.one_of(st.sampled_from(["c", "a", "o", "l", "i", "g", ".x", ".y", "_u"]), st.text()),
    st.one_of(st.text(), st.sampled_from(["1700000000", "[", "{}", '"x"', "[1]", "nan", "1e999"])),
    max_size=8,
)


@FUZZ
@given(garbage_fields, st.booleans())
def test_a_garbage_record_opens_as_a_session_or_none_never_raises(
    fields: dict[str, str], live: bool
) -> None:
    """Half the records carry live timestamps, so the decoding of the rest is reached."""
    now = 1_700_000_100.0
    if live:
        fields = {**fields, "c": "1700000000", "a": "1700000050"}
    core = SessionCore(SessionConfig(secrets=[SECRET], clock=lambda: now), MemoryStore())
    session, _ = core.opened("sid=v", ("x" * 43, "k" * 64), fields, Session)
    json.dumps(dict(session))  # whatever it holds is plain data


async def _me(request: Request) -> JSONResponse:
    return JSONResponse({"keys": sorted(request.session)})


NOW = str(int(time.time()))


@pytest.mark.anyio
@pytest.mark.parametrize(
    "fields",
    [
        {"c": NOW, "a": NOW, ".x": "not json"},
        {"c": NOW, "a": NOW, "o": "{bad", ".x": "1"},
        {"c": NOW, "a": NOW, "o": "7", ".x": "1"},
        {"c": NOW, "a": NOW, "o": '["x", 3, null]', ".x": "[1,"},
        {"c": "soon", "a": "later"},
        {"c": NOW, "a": NOW, "l": "a|b|c"},
    ],
)
async def test_a_damaged_record_in_a_real_store_is_no_session_not_a_500(
    store: Store, fields: dict[str, str]
) -> None:
    """Written straight into the store under a real session's key, then requested with
    that session's cookie: the answer is a page, never a 500."""
    from sessionware.tokens import store_key

    app = Starlette(routes=[Route("/", _me)])
    app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET], cookie_name="sid")
    sid = secrets.token_urlsafe(32)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        cookie = {"cookie": f"sid={signed(sid)}"}
        # The control: a sound record under that key is this cookie's session.
        await store.create(store_key(sid), {"c": NOW, "a": NOW, ".ok": "1"}, 600)
        assert (await client.get("/", headers=cookie)).json() == {"keys": ["ok"]}
        await store.delete(store_key(sid))
        await store.create(store_key(sid), fields, 600)
        answer = await client.get("/", headers=cookie)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"keys": []}  # no session: the damaged record is not served
