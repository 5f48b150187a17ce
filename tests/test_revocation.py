"""Revocation is final, whatever races it, on every real store.

A thief replaying a stolen remember-me cookie in a tight loop, a client that drops its
session cookie on every request, a late response from before a login, user ids that
look like internal keys: each attacks one promise of ``sessionware.auth``.
"""

from __future__ import annotations

import anyio
import httpx
import pytest

from sessionware import auth
from sessionware.remember import RememberConfig
from sessionware.session import CSRF_FIELD
from sessionware.stores import Store
from sessionware.tokens import store_key
from tests.helpers import attributes, raw_id
from tests.test_auth_support import SECRET, Clock, client, make_app, series_keys, set_cookies

pytestmark = pytest.mark.anyio

SID = "__Host-sid"
REM = "__Host-remember"
THIEVES = 8
ROUNDS = 12


async def live_sessions(store: Store, user_id: str) -> list[str]:
    """Keys of the user's sessions that still load (series left out)."""
    keys = [k for k in await store.keys_of(user_id) if not k.startswith("rm:")]
    return [k for k in keys if await store.load(k) is not None]


def cookie_values(response: httpx.Response) -> dict[str, str]:
    """The values a response's Set-Cookie headers give, by name ("" when cleared)."""
    out = {}
    for name, header in set_cookies(response).items():
        out[name] = header.split(";")[0].split("=", 1)[1]
    return out


async def _thieves(app: object, stolen: str, got: list[str]) -> None:
    """Restore from the stolen cookie in parallel loops, always with the newest validator."""
    newest = [stolen]

    async def loop() -> None:
        for _ in range(ROUNDS * 4):
            async with client(app) as thief:
                r = await thief.get("/me", headers={"cookie": f"{REM}={newest[-1]}"})
                issued = cookie_values(r)
                if r.json()["user"] is not None and issued.get(SID):
                    got.append(issued[SID])
                if issued.get(REM):
                    newest.append(issued[REM])

    async with anyio.create_task_group() as tg:
        for _ in range(THIEVES):
            tg.start_soon(loop)


@pytest.mark.parametrize("sweep", ["password", "logout-others", "revoke"])
async def test_sweep_is_final_against_a_remember_me_loop(
    store: Store, clock: Clock, sweep: str
) -> None:
    """After a password change, "sign out other devices" or revoking the stolen device
    returns, no session of the thief's survives and no restore succeeds, though eight
    loops kept restoring from the stolen cookie while the sweep ran."""
    app = make_app(store, clock, remember=RememberConfig(grace=30))
    got: list[str] = []
    async with client(app) as victim, client(app) as owner:
        await victim.post("/login", json={"user": "alice", "remember": True})
        stolen = victim.cookies[REM]
        await owner.post("/login", json={"user": "alice"})

        async def sweep_midway() -> None:
            with anyio.fail_after(30):
                while len(got) < THIEVES:  # the loops are well under way
                    await anyio.sleep(0.001)
            if sweep == "revoke":
                # As a user would: sign out what the list shows until only this device
                # is left (a listed session may already have been replaced by then).
                for _ in range(50):
                    others = [d for d in (await owner.get("/devices")).json() if not d["current"]]
                    if not others:
                        break
                    for device in others:
                        await owner.post(f"/revoke/{device['handle']}")
            else:
                path = "/password" if sweep == "password" else "/logout-others"
                assert (await owner.post(path)).status_code == 200

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(_thieves, app, stolen, got)
                tg.start_soon(sweep_midway)
        # The loops have ended; whatever they minted before or during the sweep:
        assert (await owner.get("/me")).json()["user"] == "alice"
        after = len(got)
        async with client(app, cookies={REM: stolen}) as late:
            assert (await late.get("/me")).json()["user"] is None
        for sid in got:
            async with client(app, cookies={SID: sid}) as thief:
                assert (await thief.get("/me")).json()["user"] is None
        assert len(await live_sessions(store, "alice")) == 1  # the owner's, nothing else
        assert after >= THIEVES


async def test_restore_flood_reuses_one_session(store: Store, clock: Clock) -> None:
    """A client that drops its session cookie and restores on every request keeps one
    stored session per remembered device, sequentially and in parallel bursts."""
    app = make_app(store, clock, remember=RememberConfig(grace=30), max_sessions_per_user=4)
    async with client(app) as c:
        await c.post("/login", json={"user": "alice", "remember": True})
        rem = c.cookies[REM]
    async with client(app) as laptop:
        await laptop.post("/login", json={"user": "alice"})  # another device, left alone
        for _ in range(30):
            clock.advance(6)  # one restore every few seconds, never keeping the session
            async with client(app, cookies={REM: rem}) as flood:
                assert (await flood.get("/me")).json()["user"] == "alice"
        assert len(await live_sessions(store, "alice")) == 2

        async def one() -> None:
            async with client(app, cookies={REM: rem}) as flood:
                await flood.get("/me")

        async with anyio.create_task_group() as tg:
            for _ in range(80):  # a burst: far more than the cap, all at once
                tg.start_soon(one)
        assert 2 <= len(await live_sessions(store, "alice")) <= 5  # cap=4, +1 racing
        assert (await laptop.get("/me")).json()["user"] == "alice"  # never evicted first
        clock.advance(6)
        async with client(app, cookies={REM: rem}) as flood:
            assert (await flood.get("/me")).json()["user"] == "alice"
        assert len(await live_sessions(store, "alice")) == 2


async def test_sessions_per_user_are_capped(store: Store, clock: Clock) -> None:
    """Past max_sessions_per_user a login ends the user's least recently seen sessions."""
    app = make_app(store, clock, max_sessions_per_user=3)
    clients = [client(app) for _ in range(5)]
    for i, c in enumerate(clients):
        await c.__aenter__()
        clock.advance(1)
        await c.post("/login", json={"user": "alice"})
        await c.get(f"/put?i={i}")
    try:
        assert len(await live_sessions(store, "alice")) == 3
        users = [(await c.get("/me")).json()["user"] for c in clients]
        assert users == [None, None, "alice", "alice", "alice"]  # the oldest two ended
    finally:
        for c in clients:
            await c.__aexit__(None, None, None)


async def test_user_ids_cannot_reach_another_key_family(store: Store, clock: Clock) -> None:
    """alice changing her password leaves user "rm:alice" (and a hex-looking id) signed in."""
    app = make_app(store, clock, remember=RememberConfig(grace=0))
    lookalike = store_key("x")  # 64 hex characters, the shape of a session key
    async with client(app) as alice, client(app) as rm_alice, client(app) as hexy:
        await alice.post("/login", json={"user": "alice", "remember": True})
        await rm_alice.post("/login", json={"user": "rm:alice", "remember": True})
        await hexy.post("/login", json={"user": lookalike, "remember": True})
        assert (await alice.post("/password")).status_code == 200
        assert (await rm_alice.get("/me")).json()["user"] == "rm:alice"
        assert (await hexy.get("/me")).json()["user"] == lookalike
        assert len(await series_keys(store, "rm:alice")) == 1
        assert len(await series_keys(store, lookalike)) == 1
        devices = (await rm_alice.get("/devices")).json()
        assert len(devices) == 1 and devices[0]["current"]


async def test_odd_handles_are_not_found_never_an_error(store: Store, clock: Clock) -> None:
    """Non-ASCII, over-long and empty handles revoke nothing and raise nothing."""
    app = make_app(store, clock)
    async with client(app) as c:
        await c.post("/login", json={"user": "alice"})
        for handle in ["é", "ü" * 20, "a" * 500, "%00", "--help"]:
            r = await c.post(f"/revoke/{handle}")
            assert r.status_code == 200 and r.json() == {"found": False}
        assert await auth.revoke(store, "alice", "") is False
        assert await auth.revoke(store, "alice", "\u00e9" * 12) is False
        assert (await c.get("/me")).json()["user"] == "alice"


async def test_login_seeds_the_csrf_secret(store: Store, clock: Clock) -> None:
    """The session a login writes already holds its CSRF secret, so pages opened in
    parallel right after the login all render tokens for one secret."""
    app = make_app(store, clock)
    async with client(app) as c:
        await c.post("/login", json={"user": "alice"})
        fields = await store.load(store_key(raw_id(c.cookies[SID], [SECRET])))
        assert fields is not None and fields.get(CSRF_FIELD)


async def test_late_response_from_before_login_keeps_the_new_cookie(
    store: Store, clock: Clock
) -> None:
    """A request that carried the pre-login id and answers after the login neither clears
    the browser's new cookie nor hands it another session."""
    app = make_app(store, clock)
    async with client(app) as c:
        await c.get("/put?cart=1")
        before = c.cookies[SID]
        await c.post("/login", json={"user": "alice"})
        after = c.cookies[SID]
        assert after != before
        stale = {"cookie": f"{SID}={before}"}
    async with client(app) as tab:  # a request sent before the login, answered after it
        late = await tab.get("/put?x=2", headers=stale)
        assert "set-cookie" not in late.headers
        late = await tab.get("/me", headers=stale)
        assert late.json()["user"] is None and "set-cookie" not in late.headers
    async with client(app, cookies={SID: after}) as same_browser:
        assert (await same_browser.get("/me")).json()["user"] == "alice"


async def test_a_destroyed_session_is_still_cleared(store: Store, clock: Clock) -> None:
    """Logout (not a login) elsewhere: a request with the dead cookie clears it."""
    app = make_app(store, clock)
    async with client(app) as c:
        await c.post("/login", json={"user": "alice"})
        sid = c.cookies[SID]
        await c.post("/logout")
    async with client(app) as tab:
        r = await tab.get("/me", headers={"cookie": f"{SID}={sid}"})
        assert r.headers.get("set-cookie", "").startswith(f"{SID}=;")


async def test_both_cookies_agree_on_secure_with_two_proto_lines(
    store: Store, clock: Clock
) -> None:
    """A client's own X-Forwarded-Proto line ahead of the proxy's cannot split the
    Secure flag: the session and remember-me cookies follow the proxy's hop alike."""
    app = make_app(
        store,
        clock,
        remember=RememberConfig(cookie_name="remember", grace=0),
        cookie_name="sid",
        trust_proxy=1,
    )
    transport = httpx.ASGITransport(app=app)
    for client_says, proxy_says, secure in [("https", "http", False), ("http", "https", True)]:
        headers = [("x-forwarded-proto", client_says), ("x-forwarded-proto", proxy_says)]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.post("/login", json={"user": "alice", "remember": True}, headers=headers)
        cookies = r.headers.get_list("set-cookie")
        assert len(cookies) == 2
        assert all(("secure" in attributes(h)) is secure for h in cookies), cookies


async def test_increment_never_recreates_a_destroyed_session(store: Store, clock: Clock) -> None:
    """A request that loaded the session before another one destroyed it cannot bring the
    record back by incrementing: it gets StoreError and the key stays empty."""
    from sessionware import SessionConfig
    from sessionware.core import SessionCore
    from sessionware.exceptions import StoreError

    core = SessionCore(SessionConfig(secrets=[SECRET], clock=clock), store)
    first, _ = core.open(None, None, clock())
    first["n"] = 1
    await first.save()
    fields = await store.load(first.key)
    slow, _ = core.open(first.id, fields, clock(), first.key)
    logout, _ = core.open(first.id, fields, clock(), first.key)
    await logout.destroy()
    with pytest.raises(StoreError):
        await slow.increment("n")
    assert await store.load(first.key) is None
    assert slow.vanished
