"""Remember-me: rotation, theft detection, grace window, expiry, storage at rest,
cookie attributes and the token wire format, on the real stores."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from sessionware.exceptions import ConfigurationError
from sessionware.remember import RememberConfig, read_token, series_key
from sessionware.signing import Signer
from sessionware.stores import Store
from sessionware.tokens import sha256_hex
from tests.test_auth_support import (
    Clock,
    HandAdapter,
    HandView,
    attributes,
    client,
    dump,
    make_app,
    series_keys,
    set_cookies,
)

pytestmark = pytest.mark.anyio

SID = "__Host-sid"
REM = "__Host-remember"
IDLE = 1800


def token_of(cookie: str) -> tuple[str, str]:
    """(selector, validator) of a remember cookie value."""
    parsed = read_token(cookie, Signer(["test-secret-" + "x" * 40], salt="remember"))
    assert parsed is not None
    return parsed


async def test_restore_rotates_validator_and_is_not_fresh(store: Store, clock: Clock) -> None:
    """An expired session comes back from remember-me: new id, rotated validator, not fresh."""
    app = make_app(store, clock, remember=RememberConfig(grace=0))
    async with client(app) as c:
        await c.post("/login", json={"user": "alice", "remember": True})
        sid1, rem1 = c.cookies[SID], c.cookies[REM]
        clock.advance(IDLE + 1)  # the session idles out; the series lives on
        r = await c.get("/me")
        assert r.json() == {"user": "alice", "fresh": False, "data": {}, "remembered": True}
        assert c.cookies[SID] != sid1
        rem2 = c.cookies[REM]
        assert token_of(rem2)[0] == token_of(rem1)[0] and token_of(rem2)[1] != token_of(rem1)[1]
        assert "Max-Age=" in set_cookies(r)[REM]
        assert (await c.get("/sensitive")).status_code == 401  # never fresh (Flask-Login)
        devices = (await c.get("/devices")).json()
        assert [d["remembered"] for d in devices] == [True]
        assert (await c.post("/reauth")).status_code == 200
        assert (await c.get("/sensitive")).status_code == 200


async def test_stolen_cookie_replayed_after_owner_used_it(
    store: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Theft: replaying a rotated validator revokes the series and every session from it."""
    app = make_app(store, clock, remember=RememberConfig(grace=0))
    async with client(app) as owner:
        await owner.post("/login", json={"user": "alice", "remember": True})
        stolen = owner.cookies[REM]
        clock.advance(IDLE + 1)
        assert (await owner.get("/me")).json()["user"] == "alice"  # owner rotates
        assert (await owner.get("/me")).json()["user"] == "alice"  # and shows the new one
        clock.advance(1)
        with caplog.at_level(logging.WARNING, logger="sessionware.security"):
            async with client(app, cookies={REM: stolen}) as thief:
                r = await thief.get("/me")
                assert r.json()["user"] is None
                assert set_cookies(r)[REM].startswith(f"{REM}=;")
        assert any("possible theft" in rec.getMessage() for rec in caplog.records)
        assert stolen.split(".")[0] not in caplog.text
        assert (await owner.get("/me")).json()["user"] is None  # owner's session revoked too
        assert await series_keys(store, "alice") == []
        assert await store.load(series_key(token_of(stolen)[0])) is None
        owner.cookies.delete(SID)
        assert (await owner.get("/me")).json()["user"] is None  # rotated cookie dead too


async def test_thief_first_then_owner_revokes_the_thief(store: Store, clock: Clock) -> None:
    """If the thief uses the cookie first, the owner's next use ends the thief's session."""
    app = make_app(store, clock, remember=RememberConfig(grace=0))
    async with client(app) as owner:
        await owner.post("/login", json={"user": "alice", "remember": True})
        async with client(app, cookies={REM: owner.cookies[REM]}) as thief:
            assert (await thief.get("/me")).json()["user"] == "alice"
            assert (await thief.get("/me")).json()["user"] == "alice"  # new validator seen
            clock.advance(1)
            owner.cookies.delete(SID)
            assert (await owner.get("/me")).json()["user"] is None
            assert (await thief.get("/me")).json()["user"] is None
        assert await store.keys_of("alice") == []


async def test_theft_can_end_every_session_of_the_user(store: Store, clock: Clock) -> None:
    """With on_theft="user" a detected theft also ends the user's unrelated sessions."""
    app = make_app(store, clock, remember=RememberConfig(grace=0, on_theft="user"))
    async with client(app) as laptop, client(app) as phone:
        await phone.post("/login", json={"user": "alice", "remember": True})
        await laptop.post("/login", json={"user": "alice"})
        stolen = phone.cookies[REM]
        clock.advance(1)
        phone.cookies.delete(SID)
        assert (await phone.get("/me")).json()["user"] == "alice"  # rotates
        assert (await phone.get("/me")).json()["user"] == "alice"  # the new one is seen
        async with client(app, cookies={REM: stolen}) as thief:
            assert (await thief.get("/me")).json()["user"] is None
        assert (await laptop.get("/me")).json()["user"] is None
        assert await store.keys_of("alice") == []
    with pytest.raises(ConfigurationError, match="on_theft"):
        RememberConfig(on_theft="everyone")  # type: ignore[arg-type]


async def test_grace_window_accepts_parallel_requests(store: Store, clock: Clock) -> None:
    """Inside the grace window the replaced validator still logs in; after it, it is theft."""
    app = make_app(store, clock, remember=RememberConfig(grace=30))
    async with client(app) as c:
        await c.post("/login", json={"user": "alice", "remember": True})
        old = c.cookies[REM]
        clock.advance(IDLE + 1)
        assert (await c.get("/me")).json()["user"] == "alice"
        assert (await c.get("/me")).json()["user"] == "alice"  # the new validator is seen
        clock.advance(5)
        async with client(app, cookies={REM: old}) as parallel:
            r = await parallel.get("/me")
            assert r.json()["user"] == "alice"
            assert REM not in set_cookies(r)  # no second rotation for a parallel request
        clock.advance(30)
        async with client(app, cookies={REM: old}) as late:
            assert (await late.get("/me")).json()["user"] is None
        assert await series_keys(store, "alice") == []


async def test_lost_response_is_not_theft(store: Store, clock: Clock) -> None:
    """A restore whose response never arrived leaves the old cookie working past the grace
    window (no false alarm); once the browser shows a new validator, the old one is theft."""
    app = make_app(store, clock, remember=RememberConfig(grace=30))
    async with client(app) as login:
        await login.post("/login", json={"user": "alice", "remember": True})
        old = login.cookies[REM]
    clock.advance(IDLE + 1)
    async with client(app, cookies={REM: old}) as lost:
        r = await lost.get("/me")  # the browser never receives this response
        assert r.json()["user"] == "alice" and REM in set_cookies(r)
    clock.advance(IDLE + 3600)  # far past the grace window
    async with client(app, cookies={REM: old}) as owner:
        assert (await owner.get("/me")).json()["user"] == "alice"  # not signed out
        assert (await owner.get("/me")).json()["user"] == "alice"  # new validator confirmed
        assert await series_keys(store, "alice") != []
    clock.advance(31)
    async with client(app, cookies={REM: old}) as thief:
        assert (await thief.get("/me")).json()["user"] is None
    assert await series_keys(store, "alice") == []  # theft still detected


async def test_pending_validators_are_bounded(store: Store, clock: Clock) -> None:
    """A browser that keeps losing responses gets a new validator each time, but the series
    never holds more than a handful of them."""
    app = make_app(store, clock, remember=RememberConfig(grace=0))
    async with client(app) as login:
        await login.post("/login", json={"user": "alice", "remember": True})
        old = login.cookies[REM]
    for _ in range(40):
        clock.advance(IDLE + 1)
        async with client(app, cookies={REM: old}) as lost:
            assert (await lost.get("/me")).json()["user"] == "alice"
    fields = await store.load(series_key(token_of(old)[0]))
    assert fields is not None
    # 16 pending at most, the current one, and the pending one retired by this very use.
    assert 2 <= sum(1 for name in fields if name.startswith("v:")) <= 18


async def test_parallel_restores_leave_the_last_cookie_working(store: Store, clock: Clock) -> None:
    """Parallel restores from one cookie all log in, and the new cookie the browser keeps
    still works later (rotations write per-field, never overwriting each other)."""
    import anyio

    app = make_app(store, clock, remember=RememberConfig(grace=30))
    async with client(app) as c:
        await c.post("/login", json={"user": "alice", "remember": True})
        rem = c.cookies[REM]
    clock.advance(IDLE + 1)
    issued: list[str] = []

    async def tab() -> None:
        async with client(app, cookies={REM: rem}) as t:
            r = await t.get("/me")
            assert r.json()["user"] == "alice"
            header = set_cookies(r).get(REM)
            if header:
                issued.append(header.split(";")[0].split("=", 1)[1])

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(tab)
    assert issued
    clock.advance(IDLE + 31)  # past the grace window too
    async with client(app, cookies={REM: issued[-1]}) as later:
        assert (await later.get("/me")).json()["user"] == "alice"


async def test_expired_series_is_refused_and_removed(store: Store, clock: Clock) -> None:
    """A remember-me token past its ttl logs nobody in, and its record is deleted."""
    app = make_app(store, clock, remember=RememberConfig(ttl=3600, grace=0))
    async with client(app) as c:
        await c.post("/login", json={"user": "alice", "remember": True})
        selector = token_of(c.cookies[REM])[0]
        clock.advance(3601)
        r = await c.get("/me")
        assert r.json()["user"] is None
        assert set_cookies(r)[REM].startswith(f"{REM}=;")
        assert await store.load(series_key(selector)) is None
        assert await series_keys(store, "alice") == []


async def test_raw_tokens_never_reach_the_store(
    store: Store, clock: Clock, tmp_path: Path
) -> None:
    """The store holds only hashes: no session id, no selector, no validator in clear."""
    app = make_app(store, clock, remember=RememberConfig(grace=0))
    async with client(app) as c:
        await c.post("/login", json={"user": "alice", "remember": True})
        clock.advance(IDLE + 1)
        await c.get("/me")
        sid = c.cookies[SID].rsplit(".", 1)[0]
        selector, validator = token_of(c.cookies[REM])
        text = await dump(store, tmp_path)
    assert "alice" in text  # the dump really holds the records
    assert sha256_hex(validator) in text
    for secret in (sid, selector, validator, c.cookies[REM], c.cookies[SID]):
        assert secret not in text


async def test_cookie_attributes(store: Store, clock: Clock) -> None:
    """Remember cookie: HttpOnly, Secure, SameSite=Lax, Path=/, Max-Age=ttl; session has none."""
    app = make_app(store, clock, remember=RememberConfig(ttl=timedelta(days=30)))
    async with client(app) as c:
        r = await c.post("/login", json={"user": "alice", "remember": True})
    cookies = set_cookies(r)
    parts = cookies[REM].split("; ")
    expected = {"path=/", f"Max-Age={30 * 86400}", "secure", "httponly", "samesite=lax"}
    assert set(parts[1:]) == expected
    assert "Max-Age" not in cookies[SID]


async def test_plain_http_dev_name_follows_session_secure(store: Store, clock: Clock) -> None:
    """An unprefixed remember cookie over plain http is not Secure when the session's isn't."""
    app = make_app(
        store, clock, remember=RememberConfig(cookie_name="remember"), cookie_name="sid"
    )
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.post("/login", json={"user": "alice", "remember": True})
        assert "secure" not in attributes(set_cookies(r)["remember"])
        assert "secure" not in attributes(set_cookies(r)["sid"])


def test_token_wire_format() -> None:
    """Valid, tampered, truncated and wrong-purpose remember tokens (a pinned vector)."""
    signer = Signer(["k" * 32], salt="remember")
    value = "AAAAAAAAAAAAAAAAAAAAAA:" + "B" * 43
    signed = signer.sign(value)
    assert signed == value + "._YZwBou7SaADeKipj633SVSaMMG3A585DZzyKMKGETQ"
    assert read_token(signed, signer) == ("AAAAAAAAAAAAAAAAAAAAAA", "B" * 43)
    assert read_token(signed[:-1] + ("A" if signed[-1] != "A" else "B"), signer) is None
    assert read_token(signed[:-5], signer) is None
    assert read_token(Signer(["k" * 32], salt="session").sign(value), signer) is None
    assert read_token(signer.sign("no-separator-here-at-all"), signer) is None


def test_config_is_validated() -> None:
    """Bad remember-me settings fail at start-up; env vars set ttl and grace."""
    with pytest.raises(ConfigurationError, match="400 days"):
        RememberConfig(ttl=timedelta(days=401))
    with pytest.raises(ConfigurationError, match="Secure"):
        RememberConfig(secure=False)
    with pytest.raises(ConfigurationError, match="grace"):
        RememberConfig(grace=-1)
    cfg = RememberConfig.from_env({"REMEMBER_ME_TTL": "120", "REMEMBER_ME_GRACE": "0"})
    assert (cfg.ttl_seconds, cfg.grace_seconds) == (120.0, 0.0)
    with pytest.raises(ConfigurationError, match="REMEMBER_ME_TTL"):
        RememberConfig.from_env({"REMEMBER_ME_TTL": "soon"})


async def test_remember_me_on_a_hand_made_view(store: Store, clock: Clock) -> None:
    """Issue, restore with rotation, and logout on a plain RequestView: the restore is
    ``remember.on_request`` and each cookie goes out through ``view.add_cookie``, once."""
    from sessionware.auth import current_user_id, is_remembered, login, logout
    from sessionware.remember import on_request

    cfg = RememberConfig(grace=0)
    browser = HandAdapter(store, clock)

    async def visit() -> HandView:
        view = await browser.request()
        await on_request(view, cfg)
        return view

    view = await visit()
    await login(view, "alice", remember=True)
    sent = await browser.respond(view)
    assert sorted(c.split("=", 1)[0] for c in sent) == [REM, SID]
    issued = browser.jar[REM]

    clock.advance(IDLE + 1)  # the session idles out; the series lives on
    view = await visit()
    assert current_user_id(view) == "alice" and is_remembered(view)
    sent = await browser.respond(view)
    assert [c.split("=", 1)[0] for c in sent].count(REM) == 1
    assert token_of(browser.jar[REM])[0] == token_of(issued)[0]
    assert token_of(browser.jar[REM])[1] != token_of(issued)[1]

    view = await visit()
    await logout(view)
    sent = await browser.respond(view)
    cleared = [c for c in sent if c.startswith(f"{REM}=;")]
    assert len(cleared) == 1 and "Max-Age=0" in cleared[0]
    assert await series_keys(store, "alice") == []
    assert current_user_id(await visit()) is None


@pytest.mark.parametrize(
    "damage",
    [{"u": "\x1f"}, {"u": ""}, {"x": "abc"}, {"x": "nan"}, {"x": "inf"}, {"v:é": "0"}],
    ids=["unprintable-user", "no-user", "expiry-text", "expiry-nan", "expiry-inf",
         "non-ascii-validator"],
)  # fmt: skip
async def test_a_damaged_series_restores_nobody_and_answers(
    store: Store, clock: Clock, damage: dict[str, str]
) -> None:
    """A series record that does not read (damaged, or written by something else) signs
    nobody in and the page answers, instead of a 500 (found by record fuzzing)."""
    app = make_app(store, clock, remember=RememberConfig(grace=0))
    async with client(app) as c:
        await c.post("/login", json={"user": "alice", "remember": True})
        cookie = c.cookies[REM]
    key = series_key(token_of(cookie)[0])
    fields = await store.load(key)
    assert fields is not None
    await store.delete(key)
    await store.create(key, {**fields, **damage}, 600)
    async with client(app, cookies={REM: cookie}) as c:
        answer = await c.get("/me")
        assert answer.status_code == 200 and answer.json()["user"] is None
        assert set_cookies(answer)[REM].startswith(f"{REM}=;")  # the cookie is cleared
