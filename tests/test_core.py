"""core.py: the per-request decisions, with time moved by a clock instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from sessionware import SessionConfig
from sessionware.core import SessionCore
from sessionware.exceptions import ConfigurationError
from sessionware.session import Session
from sessionware.stores import MemoryStore
from sessionware.testing import ManualClock
from sessionware.tokens import new_session_id, store_key
from tests.helpers import SECRET, Browser, CountingStore, raw_id, session_app, set_cookies

pytestmark = pytest.mark.anyio


def timed_app(
    clock: ManualClock, *, store_clock: ManualClock | None = None, **options: object
) -> tuple[object, CountingStore]:
    """An app whose config and store share ``clock`` (or the store keeps its own)."""
    store = CountingStore(clock=store_clock or clock)
    return session_app(store, clock=clock, **options), store


# -- idle timeout -----------------------------------------------------------------------


async def test_idle_timeout_slides_with_activity() -> None:
    """A session used every 60 s outlives a 100 s idle timeout: each use moves the deadline."""
    clock = ManualClock()
    app, store = timed_app(clock, idle_timeout=100, touch_interval=10)
    async with Browser(app) as b:
        await b.get("/set?user=ada")
        for _ in range(5):
            clock.advance(60)
            assert (await b.get("/read")).json() == {"user": "ada"}
    assert store.calls["apply"] == 5


async def test_reads_inside_touch_interval_cause_no_write() -> None:
    """Reads closer together than touch_interval cost no store write at all."""
    clock = ManualClock()
    app, store = timed_app(clock, idle_timeout=100, touch_interval=30)
    async with Browser(app) as b:
        await b.get("/set?user=ada")
        store.calls.clear()
        for _ in range(5):
            clock.advance(5)
            r = await b.get("/read")
            assert set_cookies(r) == []
        assert store.writes() == 0
        clock.advance(10)  # 35 s since the write: the refresh is due
        await b.get("/read")
    assert store.calls["apply"] == 1


async def test_idle_session_expires() -> None:
    """After idle_timeout without a request the session is gone and its cookie is cleared."""
    clock = ManualClock()
    app, _ = timed_app(clock, idle_timeout=100)
    async with Browser(app) as b:
        await b.get("/set?user=ada")
        clock.advance(101)
        r = await b.get("/read")
    assert r.json() == {}
    (header,) = set_cookies(r)
    assert header.startswith("__Host-sid=;")


async def test_idle_timeout_enforced_by_core_even_if_store_keeps_record() -> None:
    """The core refuses an idle record by its last-activity time, even if the store still has it."""
    clock = ManualClock(time.time())
    store_clock = ManualClock(time.time())  # the store's time stands still
    app, store = timed_app(clock, store_clock=store_clock, idle_timeout=100)
    async with Browser(app) as b:
        await b.get("/set?user=ada")
        key = store_key(raw_id(b.value or ""))
        clock.advance(150)
        assert await store.load(key) is not None  # still in the store
        r = await b.get("/read")
    assert r.json() == {}
    assert await store.load(key) is None  # and the core deleted it


# -- absolute timeout -------------------------------------------------------------------


async def test_absolute_timeout_is_never_extended_by_activity() -> None:
    """However active, a session ends absolute_timeout after it was created."""
    clock = ManualClock()
    app, _ = timed_app(clock, idle_timeout=100, absolute_timeout=250, touch_interval=10)
    async with Browser(app) as b:
        await b.get("/set?user=ada")
        for _ in range(4):  # t = 60, 120, 180, 240: alive each time
            clock.advance(60)
            assert (await b.get("/set?n=1")).status_code == 200
            assert (await b.get("/read")).json()["user"] == "ada"
        clock.advance(20)  # t = 260: past the absolute timeout, only 20 s idle
        assert (await b.get("/read")).json() == {}


async def test_regenerate_does_not_restart_the_absolute_timeout() -> None:
    """A new id keeps the creation time: regenerate() is not a new lifetime."""
    clock = ManualClock()
    app, _ = timed_app(clock, idle_timeout=100, absolute_timeout=250, touch_interval=10)
    async with Browser(app) as b:
        await b.get("/set?user=ada")
        clock.advance(90)
        await b.get("/regenerate")
        clock.advance(90)
        await b.get("/regenerate")
        clock.advance(90)  # t = 270: 90 s idle is fine, 270 s since creation is not
        assert (await b.get("/read")).json() == {}


async def test_store_ttl_is_the_smaller_of_both_timeouts() -> None:
    """Near its absolute end, a record is stored only for the time it has left."""
    clock = ManualClock()
    app, store = timed_app(clock, idle_timeout=100, absolute_timeout=150, touch_interval=1)
    async with Browser(app) as b:
        await b.get("/set?user=ada")
        key = store_key(raw_id(b.value or ""))
        clock.advance(90)
        await b.get("/read")  # refresh: ttl = min(100, 150 - 90) = 60
        assert store._data[key][1] == pytest.approx(clock.now + 60)


async def test_absolute_shorter_than_idle_wins() -> None:
    """An absolute timeout shorter than the idle one ends the session first."""
    clock = ManualClock()
    app, _ = timed_app(clock, idle_timeout=1000, absolute_timeout=50)
    async with Browser(app) as b:
        await b.get("/set?user=ada")
        clock.advance(51)
        assert (await b.get("/read")).json() == {}


# -- plan: what to write ----------------------------------------------------------------


@pytest.fixture
def core() -> Iterator[SessionCore]:
    """A core on a memory store with a fixed clock."""
    clock = ManualClock()
    yield SessionCore(
        SessionConfig(secrets=[SECRET], clock=clock, touch_interval=10),
        MemoryStore(development=True, clock=clock),
    )


def _loaded(core: SessionCore, **values: str) -> Session:
    now = str(int(core.clock()))
    fields = {"c": now, "a": now, **{"." + k: f'"{v}"' for k, v in values.items()}}
    return Session(core, new_session_id(), fields)


def test_plan_nothing_for_new_untouched_session(core: SessionCore) -> None:
    """A new session with no data plans no write."""
    assert core.plan(Session(core, None, None), core.clock()) is None


def test_plan_create_for_new_session_with_data(core: SessionCore) -> None:
    """A new session with data plans a create with the data and both times."""
    s = Session(core, None, None)
    s["user"] = "ada"
    w = core.plan(s, core.clock())
    assert w is not None and w.kind == "create"
    now = str(int(core.clock()))
    assert w.sets == {".user": '"ada"', "c": now, "a": now}
    assert w.key == store_key(s.id)


def test_plan_save_uninitialized_creates_empty_session(core: SessionCore) -> None:
    """save_uninitialized=True stores even an empty new session (express-session's option)."""
    c2 = SessionCore(
        SessionConfig(secrets=[SECRET], save_uninitialized=True, clock=core.clock), core.store
    )
    w = c2.plan(Session(c2, None, None), c2.clock())
    assert w is not None and w.kind == "create"


def test_plan_nothing_for_unchanged_loaded_session(core: SessionCore) -> None:
    """A loaded, unchanged session inside touch_interval plans nothing."""
    s = _loaded(core, user="ada")
    assert s["user"] == "ada"
    assert core.plan(s, core.clock() + 5) is None


def test_plan_apply_only_changes(core: SessionCore) -> None:
    """A changed loaded session plans an apply of only the changed and deleted fields."""
    s = _loaded(core, user="ada", theme="dark", old="x")
    s["theme"] = "light"
    del s["old"]
    w = core.plan(s, core.clock() + 1)
    assert w is not None and w.kind == "apply"
    # The key order changed (one key went), so its hint is rewritten.
    assert w.sets == {".theme": '"light"', "o": '["user","theme"]', "a": str(int(core.clock() + 1))}
    assert w.dels == [".old"]


def test_plan_touch_when_due(core: SessionCore) -> None:
    """An unchanged session plans a refresh of only "a" once touch_interval has passed."""
    s = _loaded(core, user="ada")
    w = core.plan(s, core.clock() + 11)
    assert w is not None and w.sets == {"a": str(int(core.clock() + 11))} and w.dels == []


def test_plan_resave_writes_every_field(core: SessionCore) -> None:
    """resave=True rewrites every user field even when nothing changed."""
    c2 = SessionCore(SessionConfig(secrets=[SECRET], resave=True, clock=core.clock), core.store)
    s = _loaded(c2, user="ada", theme="dark")
    w = c2.plan(s, c2.clock() + 1)
    assert w is not None
    assert {".user", ".theme"} <= w.sets.keys()


def test_alive_refuses_records_without_times(core: SessionCore) -> None:
    """A record missing or with garbage creation/activity times counts as dead."""
    now = core.clock()
    assert not core.alive({".x": "1"}, now)
    assert not core.alive({"c": "soon", "a": "1"}, now)
    assert core.alive({"c": str(int(now)), "a": str(int(now))}, now)


# -- ids ----------------------------------------------------------------------------------


async def test_genid_is_used_for_new_sessions() -> None:
    """A custom genid makes the ids of new sessions."""
    fixed = iter(["G" * 43, "H" * 43])
    app = session_app(MemoryStore(development=True), genid=lambda: next(fixed))
    async with Browser(app) as b:
        await b.get("/set?x=1")
        assert raw_id(b.value or "") == "G" * 43


async def test_genid_collision_is_retried_with_a_new_id() -> None:
    """When genid returns a live id, the core retries and leaves the existing record alone."""
    store = MemoryStore(development=True)
    taken = "T" * 43
    await store.create(store_key(taken), {".owner": '"victim"', "c": "0", "a": "0"}, 3600)
    ids = iter([taken, "N" * 43])
    async with Browser(session_app(store, genid=lambda: next(ids))) as b:
        r = await b.get("/set?x=1")
    assert r.status_code == 200
    assert raw_id(b.value or "") == "N" * 43
    assert dict(await store.load(store_key(taken)) or {})[".owner"] == '"victim"'


def test_badly_shaped_genid_is_refused() -> None:
    """A genid returning a short or odd id is refused, saying what an id must look like."""
    core = SessionCore(
        SessionConfig(secrets=[SECRET], genid=lambda: "1234"), MemoryStore(development=True)
    )
    with pytest.raises(ConfigurationError, match="128 bits"):
        core.new_id()


def test_read_cookie_accepts_only_signed_well_shaped_ids(core: SessionCore) -> None:
    """read_cookie returns (id, store key) only for a properly signed, well-shaped value."""
    sid = new_session_id()
    good = core.signer.sign(sid)
    assert core.read_cookie(f"__Host-sid={good}") == (sid, store_key(sid))
    assert core.read_cookie(f"__Host-sid={good}") == (sid, store_key(sid))  # cached alike
    assert core.read_cookie(f"__Host-sid={sid}") is None
    assert core.read_cookie(f"__Host-sid={core.signer.sign('short')}") is None
    assert core.read_cookie(f"sid={good}") is None
    assert core.read_cookie(None) is None
