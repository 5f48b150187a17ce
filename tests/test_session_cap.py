"""``max_sessions_per_user`` and ``max_sessions_policy``: the oldest session goes, or the
new login is refused (409); and under bursts of parallel logins of one user, async and
on threads through the sync face, never more than the cap stays live; on the real stores."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sessionware import SessionConfig
from sessionware.auth import sessions_of
from sessionware.auth import sync as auth_sync
from sessionware.core import SessionCore
from sessionware.events import Event, Events
from sessionware.exceptions import SessionLimitError
from sessionware.remember import RememberConfig
from sessionware.signing import Signer
from sessionware.stores import Store
from sessionware.tokens import store_key
from tests.test_auth_support import (
    SECRET,
    STORES,
    Clock,
    SyncHandAdapter,
    client,
    make_app,
    series_keys,
    set_cookies,
    sync_store,
)

pytestmark = pytest.mark.anyio

SID = "__Host-sid"
REM = "__Host-remember"
CAP = 3
BURST = 20


async def test_oldest_policy_ends_the_least_recently_seen(store: Store, clock: Clock) -> None:
    """Past the cap a login ends the session seen longest ago, and says so in an event."""
    events = Events()
    revoked: list[Event] = []
    events.subscribe("session_revoked", revoked.append)
    app = make_app(store, clock, max_sessions_per_user=2, events=events)
    async with client(app) as a, client(app) as b, client(app) as c:
        await a.post("/login", json={"user": "ann"})
        clock.advance(10)
        await b.post("/login", json={"user": "ann"})
        clock.advance(10)
        devices = (await a.get("/devices")).json()
        first = next(d["handle"] for d in devices if d["current"])
        clock.advance(70)  # past the touch interval: b's visit refreshes its last-seen
        await b.get("/me")
        clock.advance(10)
        assert (await c.post("/login", json={"user": "ann"})).status_code == 200
        assert (await a.get("/me")).json()["user"] is None
        assert (await b.get("/me")).json()["user"] == "ann"
        assert (await c.get("/me")).json()["user"] == "ann"
    assert [(e.user_id, e.handle, e.reason) for e in revoked] == [("ann", first, "session_cap")]
    assert len(await sessions_of(store, "ann")) == 2


async def test_refuse_policy_answers_409_and_keeps_the_others(store: Store, clock: Clock) -> None:
    """Under "refuse" the login past the cap gets a 409 that says what to do, its session
    and remember-me series are undone, and the sessions already there keep working; once
    one signs out, a new login is let in."""
    events = Events()
    failed: list[Event] = []
    events.subscribe("login_failed", failed.append)
    app = make_app(
        store,
        clock,
        remember=RememberConfig(grace=0),
        max_sessions_per_user=2,
        max_sessions_policy="refuse",
        events=events,
    )
    async with client(app) as a, client(app) as b, client(app) as c:
        await a.post("/login", json={"user": "bea"})
        await b.post("/login", json={"user": "bea"})
        r = await c.post("/login", json={"user": "bea", "remember": True})
        assert r.status_code == 409
        assert "sign out of one" in r.text
        assert set_cookies(r)[REM].startswith(f"{REM}=;")
        assert (await c.get("/me")).json()["user"] is None
        assert await series_keys(store, "bea") == []
        assert [(await x.get("/me")).json()["user"] for x in (a, b)] == ["bea", "bea"]
        assert [(e.user_id, e.reason) for e in failed] == [("bea", "session_cap")]
        await b.post("/logout")
        assert (await c.post("/login", json={"user": "bea"})).status_code == 200
        assert (await c.get("/me")).json()["user"] == "bea"
    assert len(await sessions_of(store, "bea")) == 2


async def test_refused_restore_signs_the_device_out(store: Store, clock: Clock) -> None:
    """A remember-me restore that replaces its own device's session is let in; one past a
    "refuse" cap is refused: the browser is left signed out with its remember-me cookie
    cleared and its series revoked, instead of retrying on every request."""
    app = make_app(
        store,
        clock,
        remember=RememberConfig(grace=0),
        max_sessions_per_user=1,
        max_sessions_policy="refuse",
    )
    async with client(app) as a, client(app) as b:
        await a.post("/login", json={"user": "dee", "remember": True})
        clock.advance(10)
        a.cookies.delete(SID)  # the browser restarted: only the remember-me cookie is left
        assert (await a.get("/me")).json()["user"] == "dee"  # replaces its own session
        # The session expires on the server (its record gone), the series lives on.
        raw = Signer([SECRET], salt="session").unsign(a.cookies[SID])
        await store.delete(store_key(raw))
        a.cookies.delete(SID)
        assert (await b.post("/login", json={"user": "dee"})).status_code == 200
        r = await a.get("/me")
        assert r.json()["user"] is None
        assert set_cookies(r)[REM].startswith(f"{REM}=;")
        assert (await b.get("/me")).json()["user"] == "dee"
    assert await series_keys(store, "dee") == []


@pytest.mark.parametrize("policy", ["oldest", "refuse"])
async def test_parallel_logins_never_pass_the_cap(store: Store, clock: Clock, policy: str) -> None:
    """20 logins of one user at once, each its own browser: at most 3 live sessions at
    the end, every session a 200 answered still works or was displaced by a later one,
    and under "refuse" the others are 409s and at least one login got in."""
    app = make_app(store, clock, max_sessions_per_user=CAP, max_sessions_policy=policy)

    async def one() -> tuple[int, str | None]:
        async with client(app) as c:
            r = await c.post("/login", json={"user": "eve"})
            return r.status_code, c.cookies.get(SID)

    for _ in range(2):  # a second burst lands on the survivors of the first
        results = await asyncio.gather(*(one() for _ in range(BURST)))
        live = await sessions_of(store, "eve")
        assert 1 <= len(live) <= CAP, (policy, len(live))
        codes = [code for code, _ in results]
        if policy == "refuse":
            assert set(codes) <= {200, 409} and codes.count(200) <= CAP
        else:
            assert codes == [200] * BURST


@pytest.mark.parametrize("kind", STORES)
@pytest.mark.parametrize("policy", ["oldest", "refuse"])
def test_parallel_sync_logins_never_pass_the_cap(kind: str, policy: str, tmp_path: Path) -> None:
    """The same burst from 20 threads on the store's sync face (what a WSGI app does)."""
    with sync_store(kind, tmp_path) as store:
        config = SessionConfig(
            secrets=[SECRET], max_sessions_per_user=CAP, max_sessions_policy=policy
        )
        core = SessionCore(config, store)

        def one(_: int) -> int:
            browser = SyncHandAdapter(core)
            view = browser.request()
            try:
                auth_sync.login(view, "fay")
            except SessionLimitError:
                browser.respond(view, 409)
                return 409
            browser.respond(view)
            return 200

        with ThreadPoolExecutor(max_workers=BURST) as pool:
            codes = list(pool.map(one, range(BURST)))
        live = auth_sync.sessions_of(store, "fay")
        assert 1 <= len(live) <= CAP, (policy, len(live))
        if policy == "refuse":
            assert set(codes) <= {200, 409} and 1 <= codes.count(200) <= CAP
        else:
            assert codes == [200] * BURST
