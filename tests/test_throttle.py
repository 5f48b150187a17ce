"""Login and registration throttling in the real stores: places reserved before the
password is checked, growing waits, the device cookie, 429 + Retry-After, and unknown
usernames treated exactly like real ones."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.asgi import add_cookie
from sessionware.exceptions import ConfigurationError
from sessionware.stores import Store
from sessionware.throttle import (
    Attempt,
    LoginThrottle,
    RegistrationThrottle,
    TooManyAttemptsError,
    too_many_attempts,
)
from tests.test_auth_support import (
    SECRET,
    Clock,
    HandAdapter,
    attributes,
    client,
    dump,
    make_app,
    set_cookies,
)

pytestmark = pytest.mark.anyio

IP = "203.0.113.5"


def throttle(clock: Clock, **kw: int) -> LoginThrottle:
    """Small budgets for tests."""
    options: dict[str, Any] = {"max_attempts": 3, "ip_max_attempts": 10, "account_max_attempts": 6}
    options |= kw
    return LoginThrottle(window=600, lockout=10, clock=clock, **options)


async def wait_of(t: LoginThrottle, store: Store, user: str, ip: str, **kw: str) -> int:
    """0 if an attempt is let through (and then failed), else its Retry-After."""
    try:
        attempt = await t.reserve(store, user, ip, **kw)
    except TooManyAttemptsError as exc:
        return exc.retry_after
    await attempt.failed()
    return 0


async def fail(t: LoginThrottle, store: Store, user: str, ip: str, **kw: str) -> int:
    """One attempt that must be let through and fails; the wait it imposes."""
    attempt = await t.reserve(store, user, ip, **kw)
    return await attempt.failed()


async def race(t: LoginThrottle, store: Store, n: int, user: str = "alice") -> list[Attempt]:
    """``n`` concurrent reservations; the attempts that got a place."""
    results = await asyncio.gather(
        *(t.reserve(store, user, IP) for _ in range(n)), return_exceptions=True
    )
    for r in results:
        assert isinstance(r, (Attempt, TooManyAttemptsError)), r
    return [r for r in results if isinstance(r, Attempt)]


async def test_concurrent_attempts_get_at_most_the_budget(store: Store, clock: Clock) -> None:
    """40 attempts in flight at once against a budget of 3: exactly 3 get a place."""
    t = throttle(clock)
    admitted = await race(t, store, 40)
    assert len(admitted) == 3
    for attempt in admitted:
        await attempt.failed()
    assert len(await race(t, store, 40)) == 0  # the wait has not passed


async def test_past_the_limit_one_attempt_per_wait_even_concurrently(
    store: Store, clock: Clock
) -> None:
    """Once the wait has passed, 20 concurrent attempts let exactly one through."""
    t = throttle(clock)
    for _ in range(3):
        await fail(t, store, "alice", IP)
    clock.advance(10)
    admitted = await race(t, store, 20)
    assert len(admitted) == 1
    assert await admitted[0].failed() == 20  # and the next wait doubles


async def test_a_withdrawn_attempt_costs_nothing(store: Store, clock: Clock) -> None:
    """Attempts withdrawn because the hasher was busy give their places back: ten of them
    leave the whole budget of 3 for checked guesses."""
    t = throttle(clock)
    for attempt in await race(t, store, 3):
        await attempt.withdrawn()
    for _ in range(7):
        for attempt in await race(t, store, 1):
            await attempt.withdrawn()
    admitted = await race(t, store, 10)
    assert len(admitted) == 3


async def test_account_ip_budget_then_growing_wait(store: Store, clock: Clock) -> None:
    """Within budget no wait; past it the wait doubles with each further failure."""
    t = throttle(clock)
    assert [await fail(t, store, "alice", IP) for _ in range(3)] == [0, 0, 10]
    assert await wait_of(t, store, "alice", IP) == 10
    clock.advance(10)
    assert await fail(t, store, "alice", IP) == 20
    assert await wait_of(t, store, "alice", IP) == 20
    clock.advance(20)
    assert await fail(t, store, "alice", IP) == 40


async def test_places_held_in_flight_refuse_briefly(store: Store, clock: Clock) -> None:
    """While the budget is taken by attempts not yet decided, others wait a second."""
    t = throttle(clock)
    held = [await t.reserve(store, "alice", IP) for _ in range(3)]
    assert await wait_of(t, store, "alice", IP) == 1
    await held[0].succeeded()
    assert await wait_of(t, store, "alice", IP) == 0  # the success cleared account+IP


async def test_unknown_usernames_are_throttled_like_real_ones(
    store: Store, clock: Clock, tmp_path: Path
) -> None:
    """The same attempts give the same waits whether or not the account exists; no name at rest."""
    t = throttle(clock)
    known = [await wait_of(t, store, "alice@example.com", IP) for _ in range(5)]
    unknown = [await wait_of(t, store, "nobody@example.com", "198.51.100.9") for _ in range(5)]
    assert known == unknown == [0, 0, 0, 10, 10]
    text = await dump(store, tmp_path)
    assert "alice" not in text and "nobody" not in text and IP not in text


async def test_other_ip_is_not_locked_out_by_one_attacker(store: Store, clock: Clock) -> None:
    """One IP's failures do not block another IP until the higher per-account budget."""
    t = throttle(clock)
    for _ in range(3):
        await fail(t, store, "alice", IP)
    assert await wait_of(t, store, "alice", IP) > 0
    for n in range(3):
        await fail(t, store, "alice", f"198.51.100.{n}")
    assert await wait_of(t, store, "alice", "192.0.2.1") == 10  # account budget (6) spent
    clock.advance(10)
    assert await wait_of(t, store, "alice", "192.0.2.1") == 0  # and only briefly


async def test_ip_budget_stops_spraying(store: Store, clock: Clock) -> None:
    """Many usernames from one IP hit the per-IP budget."""
    t = throttle(clock, ip_max_attempts=4)
    for n in range(4):
        await fail(t, store, f"user{n}", IP)
    assert await wait_of(t, store, "fresh-name", IP) == 10
    assert await wait_of(t, store, "fresh-name", "192.0.2.1") == 0


async def test_success_resets_account_ip_and_refunds_the_shared_budgets(
    store: Store, clock: Clock
) -> None:
    """A good login clears this account+IP and gives back its own place, keeping the
    failures in the account budget."""
    t = throttle(clock, max_attempts=2, account_max_attempts=3)
    await fail(t, store, "alice", IP)
    await fail(t, store, "alice", IP)
    assert await wait_of(t, store, "alice", IP) == 10
    clock.advance(10)
    await (await t.reserve(store, "alice", IP)).succeeded()
    for _ in range(5):  # successes never use up a budget
        await (await t.reserve(store, "alice", IP)).succeeded()
    await fail(t, store, "alice", IP)
    assert await wait_of(t, store, "alice", IP) == 10  # the account budget remembers


async def test_a_success_past_the_limit_does_not_jam_the_budget(store: Store, clock: Clock) -> None:
    """The attempt let through after a wait hands its ticket back when it succeeds."""
    t = throttle(clock, max_attempts=2, account_max_attempts=2)
    await fail(t, store, "alice", "192.0.2.1")
    await fail(t, store, "alice", "192.0.2.2")
    clock.advance(10)
    await (await t.reserve(store, "alice", "192.0.2.3")).succeeded()
    assert await wait_of(t, store, "alice", "192.0.2.4") == 0


async def test_a_refund_after_the_record_expired_banks_no_credit(clock: Clock) -> None:
    """Giving a place back to a record that has expired does not create spare places."""
    from sessionware.stores import MemoryStore

    store_clock = Clock()
    store = MemoryStore(development=True, clock=store_clock)
    t = throttle(clock)
    attempt = await t.reserve(store, "alice", IP)
    store_clock.advance(601)  # every budget's record expires while the attempt runs
    await attempt.succeeded()
    admitted = await race(t, store, 10)
    assert len(admitted) == 3


async def test_device_budget_replaces_the_account_budget(store: Store, clock: Clock) -> None:
    """A trusted device is counted only in its own budget, so the account budget spent
    by others does not stop it, and its own budget does."""
    t = throttle(clock)
    for n in range(6):
        await fail(t, store, "alice", f"198.51.100.{n}")
    assert await wait_of(t, store, "alice", "192.0.2.1") == 10
    assert await wait_of(t, store, "alice", "192.0.2.1", device="nonce-1") == 0
    assert await wait_of(t, store, "alice", "192.0.2.1", device="nonce-1") == 0
    assert await wait_of(t, store, "alice", "192.0.2.1", device="nonce-1") == 0
    assert await wait_of(t, store, "alice", "192.0.2.1", device="nonce-1") == 10
    assert await wait_of(t, store, "alice", "192.0.2.1", device="nonce-2") == 0


# -- through an app ------------------------------------------------------------------


def login_app(store: Store, clock: Clock, t: LoginThrottle, **options: Any) -> Starlette:
    """A login endpoint written with ``throttle.attempt``; the password is "right"."""

    async def do_login(request: Request) -> Response:
        form = await request.json()
        async with t.attempt(request, form["user"]) as attempt:
            if form["password"] != "right":
                return JSONResponse({"error": "invalid credentials"}, status_code=401)
            await attempt.succeeded()
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/login", do_login, methods=["POST"])])
    app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET], clock=clock, **options)
    return app


async def post(c: httpx.AsyncClient, user: str, password: str, device: str = "") -> httpx.Response:
    """One login post, with a device cookie when given (the client keeps no cookies)."""
    headers = {"cookie": f"__Host-device={device}"} if device else {}
    return await c.post("/login", json={"user": user, "password": password}, headers=headers)


def device_of(response: httpx.Response, name: str = "__Host-device") -> str:
    """The value of the device cookie a response sets."""
    return set_cookies(response)[name].split(";")[0].split("=", 1)[1]


async def test_app_answers_429_with_retry_after(store: Store, clock: Clock) -> None:
    """Through the check/failed/succeeded calls: a 429 with Retry-After, the same for
    unknown and known usernames."""
    app = make_app(store, clock, throttle=throttle(clock))
    async with client(app) as c:
        for user in ("alice", "ghost"):
            codes = [
                (await c.post("/login", json={"user": user, "password": "wrong"})).status_code
                for _ in range(3)
            ]
            assert codes == [401, 401, 401]
            r = await c.post("/login", json={"user": user, "password": "right"})
            assert r.status_code == 429
            assert r.headers["retry-after"] == "10"
        clock.advance(10)
        r = await c.post("/login", json={"user": "alice", "password": "right"})
        assert r.status_code == 200


async def test_concurrent_requests_check_at_most_the_budget(store: Store, clock: Clock) -> None:
    """30 concurrent posts with the right password last: only 3 are checked, none gets in."""
    app = login_app(store, clock, throttle(clock))
    async with client(app) as c:
        wrong = [post(c, "alice", "wrong") for _ in range(29)]
        answers = await asyncio.gather(*wrong, post(c, "alice", "right"))
    codes = [r.status_code for r in answers]
    assert codes.count(401) + codes.count(200) == 3
    assert codes.count(429) == 27
    assert codes[-1] == 429


async def test_success_sends_a_device_cookie(store: Store, clock: Clock) -> None:
    """A good login sets ``__Host-device``: HttpOnly, Secure, SameSite=Lax, a year long;
    a failure or a 429 sets none."""
    app = login_app(store, clock, throttle(clock))
    async with client(app) as c:
        bad = await post(c, "alice", "wrong")
        good = await post(c, "alice", "right")
    assert "set-cookie" not in bad.headers
    header = set_cookies(good)["__Host-device"]
    assert attributes(header) == {"path=/", "secure", "httponly", "samesite=lax"}
    assert "Max-Age=31536000" in header
    assert good.headers["cache-control"] == "no-store"


async def test_unprefixed_session_cookie_gives_an_unprefixed_device_cookie(
    store: Store, clock: Clock
) -> None:
    """Beside a plain-http ``sid`` the device cookie is ``device`` and follows its Secure."""
    app = login_app(store, clock, throttle(clock), cookie_name="sid", secure=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as c:
        good = await post(c, "alice", "right")
    header = set_cookies(good)["device"]
    assert "secure" not in attributes(header) and "httponly" in attributes(header)


async def test_device_cookie_keeps_the_owner_in_while_the_account_is_sprayed(
    store: Store, clock: Clock
) -> None:
    """Spraying from many IPs spends the account budget: a new browser is refused, the
    owner's known browser gets in, and a cookie for another user, a tampered one or a
    spent device budget are not a way around it."""
    t = throttle(clock)
    owner = login_app(store, clock, t)
    async with client(owner) as c:
        cookie = device_of(await post(c, "alice", "right"))
        mallory = device_of(await post(c, "mallory", "right"))
    for n in range(8):
        sprayer = httpx.ASGITransport(app=owner, client=(f"198.51.100.{n}", 4000))
        async with httpx.AsyncClient(transport=sprayer, base_url="https://testserver") as c:
            await post(c, "alice", "guess")
    async with client(owner) as c:
        assert (await post(c, "alice", "right")).status_code == 429
        assert (await post(c, "alice", "right", mallory)).status_code == 429
        assert (await post(c, "alice", "right", cookie[:-2] + "AA")).status_code == 429
        assert (await post(c, "alice", "right", cookie)).status_code == 200
        codes = [(await post(c, "alice", "wrong", cookie)).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


async def test_extra_cookies_go_out_with_an_untouched_session(store: Store, clock: Clock) -> None:
    """A cookie queued with ``add_cookie`` is sent even when the session has nothing to write."""

    async def page(request: Request) -> Response:
        add_cookie(request.scope, "extra=1; Path=/; HttpOnly")
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", page)])
    app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET], clock=clock)
    async with client(app) as c:
        r = await c.get("/")
    assert r.headers.get_list("set-cookie") == ["extra=1; Path=/; HttpOnly"]
    assert r.headers["cache-control"] == "no-store"


# -- registration ----------------------------------------------------------------------


async def test_registrations_per_ip_are_capped_even_concurrently(
    store: Store, clock: Clock
) -> None:
    """20 concurrent registrations from one IP: 4 are let through, each kept; another IP
    is not affected; after the wait one more."""
    t = RegistrationThrottle(max_attempts=4, window=600, lockout=10, clock=clock)
    results = await asyncio.gather(
        *(t.reserve(store, IP) for _ in range(20)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 4
    assert all(r is None or isinstance(r, TooManyAttemptsError) for r in results)
    await t.reserve(store, "192.0.2.1")
    with pytest.raises(TooManyAttemptsError) as refused:
        await t.reserve(store, IP)
    assert refused.value.retry_after == 10
    clock.advance(10)
    await t.reserve(store, IP)


def test_helpers_and_config() -> None:
    """The 429 helpers carry Retry-After; bad budgets fail at start-up; env sets limits."""
    assert too_many_attempts(7).headers["retry-after"] == "7"
    err = TooManyAttemptsError(7)
    assert (err.status_code, err.headers, err.retry_after) == (429, {"Retry-After": "7"}, 7)
    with pytest.raises(ConfigurationError):
        LoginThrottle(max_attempts=0)
    with pytest.raises(ConfigurationError, match="account_max_attempts"):
        LoginThrottle(max_attempts=10, account_max_attempts=5)
    with pytest.raises(ConfigurationError, match="device_cookie_name"):
        LoginThrottle(device_cookie_name="bad name")
    with pytest.raises(ConfigurationError, match="400 days"):
        LoginThrottle(device_max_age=500 * 86400)
    t = LoginThrottle.from_env({"LOGIN_MAX_ATTEMPTS": "3", "LOGIN_WINDOW": "30"})
    assert (t.max_attempts, t.window, t.lockout, t.device_max_attempts) == (3, 30.0, 30.0, 3)
    assert t.account_max_attempts > t.max_attempts
    r = RegistrationThrottle.from_env({"REGISTER_MAX_ATTEMPTS": "2", "REGISTER_WINDOW": "60"})
    assert (r.max_attempts, r.window) == (2, 60.0)
    with pytest.raises(ConfigurationError, match="REGISTER_MAX_ATTEMPTS"):
        RegistrationThrottle.from_env({"REGISTER_MAX_ATTEMPTS": "many"})


async def test_throttle_on_a_hand_made_view(store: Store, clock: Clock) -> None:
    """check / failed / succeeded on a plain RequestView: the reserved attempt waits in
    ``view.state``, the device cookie goes out through ``view.add_cookie``, and the
    refusal is sessionware's own 429 with Retry-After."""
    t = throttle(clock)
    browser = HandAdapter(store, clock)
    view = await browser.request()
    await t.check(view, "alice")
    assert view.state  # the attempt waits there for its outcome
    await t.succeeded(view, "alice")
    [device] = view.cookies
    assert device.startswith("__Host-device=") and "httponly" in attributes(device)
    await browser.respond(view)
    assert "__Host-device" in browser.jar

    stranger = HandAdapter(store, clock)
    for _ in range(3):
        view = await stranger.request()
        await t.check(view, "alice")
        await t.failed(view, "alice")
        assert view.cookies == []
    with pytest.raises(TooManyAttemptsError) as refused:
        await t.check(await stranger.request(), "alice")
    assert refused.value.status_code == 429
    assert refused.value.headers == {"Retry-After": "10"}
    view = await browser.request()  # the owner's browser, with its device cookie
    await t.check(view, "alice")
    await t.succeeded(view, "alice")
