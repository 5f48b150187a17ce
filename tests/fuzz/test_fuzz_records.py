"""Stored records: every JSON value round-trips through the field encoding, and a record
that is garbage (a foreign or damaged one) opens as no session, never an exception
that would be a 500: through the core, behind the middleware on every store (written
with the store's own encoding), as raw rows and keys the store cannot have written,
and as a damaged remember-me series."""

from __future__ import annotations

import json
import math
import secrets
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.config import SessionConfig
from sessionware.core import SessionCore
from sessionware.exceptions import StoreError
from sessionware.remember import RememberConfig, read_token, series_key
from sessionware.session import Session, dumps, loads
from sessionware.signing import Signer
from sessionware.stores import MemoryStore, SQLiteStore, Store
from sessionware.tokens import store_key
from tests.fuzz.conftest import FUZZ, FUZZ_STORES
from tests.helpers import SECRET, signed
from tests.test_auth_support import POSTGRES_URL, REDIS_URL, Clock, client, make_app

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


# What a damaged or foreign record may hold in a field: JSON that dumps() never writes
# (NaN, infinities, lone-surrogate escapes), broken JSON, odd spellings, plain text.
odd_json = st.sampled_from(
    ["NaN", "[NaN]", '{"a":Infinity}', "-Infinity", "[1e999]", "1e999", '"\\ud800"',
     '["\\udc80x"]', '{"\\ud83d":1}', '["\\ud83d\\ude00"]', '"\\u0000"', "[", "{}", '"x"',
     "[1]", "nan", "", " 1", "1 ", "null", "00", "-", "1|2|3|4", "||x|", '["x", 3, null]']
)  # fmt: skip
field_texts = st.text(max_size=20) | odd_json | json_values.map(dumps)
field_names = (
    st.sampled_from(["c", "a", "o", "l", "i", "k", "rm", "_u", "h", ".x", ".y", "."])
    | st.text(max_size=6)
    | st.text(max_size=6).map(lambda t: "." + t)
)
garbage_fields = st.dictionaries(field_names, field_texts, max_size=8)
NOW = 1_700_000_100.0


@FUZZ
@given(garbage_fields, st.booleans(), st.booleans())
def test_a_garbage_record_opens_and_finishes_without_raising(
    fields: dict[str, str], live: bool, write: bool
) -> None:
    """Half the records carry live timestamps, so the decoding of the rest is reached;
    the response side (what changed, what to write) runs on whatever opened."""
    if live:
        fields = {**fields, "c": "1700000000", "a": "1700000050"}
    core = SessionCore(SessionConfig(secrets=[SECRET], clock=lambda: NOW), MemoryStore())
    session, _ = core.opened("sid=v", ("x" * 43, "k" * 64), fields, Session)
    event("opened as a session" if not session.is_new else "opened as none")
    if write:
        session["added"] = 1
    json.dumps(dict(session), allow_nan=False)  # whatever it holds is plain data
    session.unchanged()
    session.all_fields()  # the response re-encodes what changed: never raises


def _expected_keys(fields: dict[str, str]) -> list[str] | None:
    """The keys a live record without order or lifetime fields must be served with, or
    None when some value does not decode (then: no session)."""
    keys = []
    for name, text in fields.items():
        if name[:1] == ".":
            try:
                loads(text)
            except ValueError:
                return None
            keys.append(name[1:])
    return sorted(keys)


async def _me(request: Request) -> JSONResponse:
    return JSONResponse({"keys": sorted(request.session)})


async def _write(request: Request) -> JSONResponse:
    request.session["added"] = 1
    return JSONResponse({"keys": sorted(request.session)})


def _app(store: Store) -> Starlette:
    app = Starlette(routes=[Route("/", _me), Route("/write", _write)])
    app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET], cookie_name="sid")
    return app


async def _request(app: Starlette, sid: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.get(path, headers={"cookie": f"sid={signed(sid)}"})


def _live(fields: dict[str, str]) -> dict[str, str]:
    """``fields`` with live timestamps."""
    now = str(int(time.time()))
    return {k: v for k, v in fields.items() if k not in ("c", "a")} | {"c": now, "a": now}


def _predictable(record: dict[str, str]) -> bool:
    """Whether the page's keys follow from the values alone: no order field, and no
    lifetime field (which may end the session or not, depending on what it says)."""
    return "o" not in record and "l" not in record


@pytest.mark.anyio
@FUZZ
@given(garbage_fields, st.sampled_from(["/", "/write"]))
async def test_a_garbage_record_behind_the_middleware_is_served_or_none(
    fields: dict[str, str], path: str
) -> None:
    """On the memory store, many examples: never a 500; and without order or lifetime
    fields, the page is the record's keys when every value decodes, none when one does
    not."""
    store = MemoryStore(development=True)
    sid = secrets.token_urlsafe(32)
    record = _live(fields)
    await store.create(store_key(sid), record, 600)
    answer = await _request(_app(store), sid, path)
    assert answer.status_code == 200, answer.text
    if not _predictable(record):
        event("order or lifetime field")
        return
    keys = _expected_keys(record)
    event("served" if keys else "no session" if keys is None else "empty")
    expected = keys or []
    if path == "/write":
        expected = sorted({*expected, "added"})
    assert answer.json() == {"keys": expected}


@pytest.mark.anyio
@settings(FUZZ, max_examples=FUZZ_STORES)
@given(garbage_fields, st.sampled_from(["/", "/write"]))
@example({".x": "[NaN]"}, "/")
@example({".x": '["\\ud800"]'}, "/write")
@example({"o": "{bad", ".x": "1"}, "/")
@example({"o": '["x", 3, null]', ".x": "[1,"}, "/write")
async def test_a_garbage_record_in_a_real_store_is_a_page_never_a_500(
    store: Store, fields: dict[str, str], path: str
) -> None:
    """Written into each real store with its own encoding, under a real session's key,
    then requested with that session's cookie."""
    sid = secrets.token_urlsafe(32)
    record = _live(fields)
    try:
        await store.create(store_key(sid), record, 600)
    except StoreError as exc:  # the store refuses to keep it (text with no UTF-8 form)
        event(f"store refused: {type(exc).__name__}")
        return
    answer = await _request(_app(store), sid, path)
    assert answer.status_code == 200, answer.text
    if _predictable(record):
        keys = _expected_keys(record)
        assert set(answer.json()["keys"]) - {"added"} == set(keys or [])


@pytest.mark.anyio
@pytest.mark.parametrize("lifetime", ["|||nan", "|||inf", "|||1e999", "|||0.5"])
async def test_a_damaged_lifetime_field_keeps_its_session_and_answers(lifetime: str) -> None:
    """A record whose own cookie Max-Age does not read, written to by the request."""
    store = MemoryStore(development=True)
    sid = secrets.token_urlsafe(32)
    await store.create(store_key(sid), {**_live({".x": "1"}), "l": lifetime}, 600)
    answer = await _request(_app(store), sid, "/write")
    assert answer.status_code == 200, answer.text
    assert "Max-Age=0" not in answer.headers.get("set-cookie", "")


# -- rows and keys the store cannot have written ---------------------------------------


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "raw.db")
    yield s
    await s.close()


raw_rows = (
    st.text(max_size=60)
    | st.binary(max_size=20)
    | st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=4).map(
        json.dumps
    )
    | st.lists(st.text(max_size=5), max_size=3).map(json.dumps)
    | st.sampled_from(['{"c": null}', '{"\\ud800": "1"}', '{"c":"1","a":"1",".x":"[NaN]"}'])
)


@pytest.mark.anyio
@settings(FUZZ, max_examples=FUZZ_STORES)
@given(raw_rows)
async def test_a_raw_sqlite_row_of_any_shape_is_a_page_never_a_500(
    sqlite_store: SQLiteStore, tmp_path: Path, row: str | bytes
) -> None:
    """Any text or blob in the fields column of a live row under a real session's key."""
    sid = secrets.token_urlsafe(32)
    with sqlite3.connect(tmp_path / "raw.db") as conn:
        conn.execute(
            "INSERT INTO sessionware_sessions (key, fields, expires) VALUES (?, ?, ?)",
            (store_key(sid), row, time.time() + 600),
        )
    answer = await _request(_app(sqlite_store), sid, "/write")
    assert answer.status_code == 200, answer.text


@pytest.fixture
async def redis_store() -> AsyncIterator[Any]:
    from sessionware.stores.redis import RedisStore

    prefix = f"swfuzz{uuid.uuid4().hex[:10]}:"
    s = RedisStore.from_url(REDIS_URL, prefix=prefix)
    raw = redis.asyncio.Redis.from_url(REDIS_URL)
    yield s, raw
    await s.close()
    async for key in raw.scan_iter(match=prefix + "*", count=1000):
        await raw.delete(key)
    await raw.aclose()


REDIS_RAW = {
    "a-string": lambda raw, key: raw.set(key, b"x", ex=600),
    "a-list": lambda raw, key: raw.rpush(key, b"x"),
    "a-set": lambda raw, key: raw.sadd(key, b"x"),
    "non-utf8-value": lambda raw, key: raw.hset(key, mapping={b"c": b"1", b".x": b"\xff"}),
    "non-utf8-name": lambda raw, key: raw.hset(key, mapping={b"\xfe": b"1"}),
}


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(REDIS_RAW))
async def test_a_foreign_redis_key_is_a_page_never_a_500(redis_store: Any, kind: str) -> None:
    """A key of another type, or a hash that is not UTF-8, under a real session's key."""
    store, raw = redis_store
    sid = secrets.token_urlsafe(32)
    key = store.record_key(store_key(sid))
    await REDIS_RAW[kind](raw, key)
    await raw.expire(key, 600)
    answer = await _request(_app(store), sid, "/")
    assert answer.status_code == 200, answer.text


@pytest.fixture
async def postgres_store() -> AsyncIterator[Any]:
    from sessionware.stores.postgres import PostgresStore

    s = PostgresStore(POSTGRES_URL, table="sw_fuzz_" + uuid.uuid4().hex[:12])
    await s.load("0" * 64)  # creates the table
    yield s
    await s.drop()
    await s.close()


@pytest.mark.anyio
@pytest.mark.parametrize("row", ["[1]", '"x"', '{"c": null}', '{"c": 1, "a": 2}'])
async def test_a_foreign_postgres_row_is_a_page_never_a_500(postgres_store: Any, row: str) -> None:
    """A jsonb value that is not an object of texts, under a real session's key."""
    import psycopg

    sid = secrets.token_urlsafe(32)
    insert = "INSERT INTO {} (key, fields, expires) VALUES (%s, %s::jsonb, %s)"
    async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
        await conn.execute(
            insert.format(postgres_store.table), (store_key(sid), row, time.time() + 600)
        )
    answer = await _request(_app(postgres_store), sid, "/")
    assert answer.status_code == 200, answer.text


# -- a damaged remember-me series ------------------------------------------------------

REM = "__Host-remember"
series_texts = st.text(max_size=12) | st.sampled_from(
    ["abc", "inf", "-inf", "nan", "1e999", "", "p", "pnan", "p1e999", "0", "p0", "é"]
)
series_edits = st.lists(
    st.tuples(
        st.sampled_from(["u", "c", "x", "g", "h", "ua", "ip", "v:", "v:é", "v:current", "z"])
        | st.text(max_size=4),
        st.none() | series_texts,
    ),
    min_size=1,
    max_size=4,
)


@pytest.fixture
async def remembered() -> dict[str, Any]:
    """A login with remember-me on a memory store: the cookie and the series record."""
    store, clock = MemoryStore(development=True), Clock()
    app = make_app(store, clock, remember=RememberConfig(grace=0))
    async with client(app) as c:
        await c.post("/login", json={"user": "alice", "remember": True})
        cookie = c.cookies[REM]
    token = read_token(cookie, Signer(["test-secret-" + "x" * 40], salt="remember"))
    assert token is not None
    key = series_key(token[0])
    fields = await store.load(key)
    assert fields is not None
    return {"app": app, "store": store, "cookie": cookie, "key": key, "fields": dict(fields)}


@pytest.mark.anyio
@FUZZ
@given(series_edits)
async def test_a_damaged_remember_me_series_is_a_page_never_a_500(
    remembered: dict[str, Any], edits: list[tuple[str, str | None]]
) -> None:
    """The series of a real remember-me cookie, with fields changed, removed or added,
    then restored from: signed in or not, never a 500."""
    fields = dict(remembered["fields"])
    current = next(name for name in fields if name[:2] == "v:")
    for name, value in edits:
        name = current if name == "v:current" else name
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    store, key = remembered["store"], remembered["key"]
    await store.delete(key)
    await store.create(key, fields, 600)
    async with client(remembered["app"], cookies={REM: remembered["cookie"]}) as c:
        answer = await c.get("/me")
        event(f"user {answer.json()['user']}" if answer.status_code == 200 else "error")
        assert answer.status_code == 200, answer.text
        assert (await c.get("/devices")).status_code in (200, 401)


device_fields = st.dictionaries(
    st.sampled_from(["c", "a", "at", "hdl", "rr", "rm", "ip", "ua", "fr"]) | st.text(max_size=4),
    series_texts,
    max_size=6,
)


@pytest.mark.anyio
@FUZZ
@given(device_fields)
async def test_a_damaged_session_of_the_user_lists_and_ends_without_a_500(
    remembered: dict[str, Any], fields: dict[str, str]
) -> None:
    """Another session record of the signed-in user, damaged, in the user's index: the
    devices page lists, and signing out everywhere else ends it, never with a 500."""
    store = remembered["store"]
    key = store_key(secrets.token_urlsafe(32))
    await store.create(key, {**fields, "uid": "alice"}, 600)
    await store.link("alice", key)
    async with client(remembered["app"]) as c:
        await c.post("/login", json={"user": "alice"})
        listed = await c.get("/devices")
        assert listed.status_code == 200, listed.text
        ended = await c.post("/logout-others")
        assert ended.status_code == 200, ended.text
    assert await store.load(key) is None  # ended like any other session of the user
