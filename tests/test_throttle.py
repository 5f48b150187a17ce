"""Login throttling in the real stores: budgets, growing waits, 429 + Retry-After, and
unknown usernames treated exactly like real ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionware.exceptions import ConfigurationError
from sessionware.stores import Store
from sessionware.throttle import LoginThrottle, TooManyAttemptsError, too_many_attempts
from tests.test_auth_support import Clock, client, dump, make_app

pytestmark = pytest.mark.anyio

IP = "203.0.113.5"


def throttle(clock: Clock, **kw: int) -> LoginThrottle:
    """Small budgets for tests."""
    options = {"max_attempts": 3, "ip_max_attempts": 10, "account_max_attempts": 6} | kw
    return LoginThrottle(window=600, lockout=10, clock=clock, **options)


async def test_account_ip_budget_then_growing_wait(store: Store, clock: Clock) -> None:
    """Within budget no wait; past it the wait doubles with each further failure."""
    t = throttle(clock)
    waits = [await t.failure(store, "alice", IP) for _ in range(3)]
    assert waits == [0, 0, 10]
    assert await t.retry_after(store, "alice", IP) == 10
    clock.advance(10)
    assert await t.retry_after(store, "alice", IP) == 0
    assert await t.failure(store, "alice", IP) == 20
    clock.advance(20)
    assert await t.failure(store, "alice", IP) == 40


async def test_unknown_usernames_are_throttled_like_real_ones(
    store: Store, clock: Clock, tmp_path: Path
) -> None:
    """The same failures give the same waits whether or not the account exists; no name at rest."""
    t = throttle(clock)
    known = [await t.failure(store, "alice@example.com", IP) for _ in range(4)]
    unknown = [await t.failure(store, "nobody@example.com", "198.51.100.9") for _ in range(4)]
    assert known == unknown == [0, 0, 10, 20]
    text = await dump(store, tmp_path)
    assert "alice" not in text and "nobody" not in text and IP not in text


async def test_other_ip_is_not_locked_out_by_one_attacker(store: Store, clock: Clock) -> None:
    """One IP's failures do not block the owner's IP until the higher per-account budget."""
    t = throttle(clock)
    for _ in range(3):
        await t.failure(store, "alice", IP)
    assert await t.retry_after(store, "alice", IP) > 0
    assert await t.retry_after(store, "alice", "192.0.2.1") == 0
    for n in range(3):
        await t.failure(store, "alice", f"198.51.100.{n}")
    assert await t.retry_after(store, "alice", "192.0.2.1") == 10  # account budget (6) spent
    clock.advance(10)
    assert await t.retry_after(store, "alice", "192.0.2.1") == 0  # and only briefly


async def test_ip_budget_stops_spraying(store: Store, clock: Clock) -> None:
    """Many usernames from one IP hit the per-IP budget."""
    t = throttle(clock, ip_max_attempts=4)
    for n in range(4):
        await t.failure(store, f"user{n}", IP)
    assert await t.retry_after(store, "fresh-name", IP) == 10
    assert await t.retry_after(store, "fresh-name", "192.0.2.1") == 0


async def test_success_resets_only_account_ip(store: Store, clock: Clock) -> None:
    """A good login clears this account+IP's failures, not the IP or account budgets."""
    t = throttle(clock, max_attempts=2, account_max_attempts=3)
    await t.failure(store, "alice", IP)
    await t.failure(store, "alice", IP)
    assert await t.retry_after(store, "alice", IP) == 10
    await t.success(store, "alice", IP)
    assert await t.retry_after(store, "alice", IP) == 0
    await t.failure(store, "alice", IP)
    assert await t.retry_after(store, "alice", IP) == 10  # the account budget remembers


async def test_app_answers_429_with_retry_after(store: Store, clock: Clock) -> None:
    """Through an app: a 429 with Retry-After, the same for unknown and known usernames."""
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


def test_helpers_and_config() -> None:
    """The 429 helpers carry Retry-After; bad budgets fail at start-up; env sets limits."""
    assert too_many_attempts(7).headers["retry-after"] == "7"
    err = TooManyAttemptsError(7)
    assert (err.status_code, err.headers, err.retry_after) == (429, {"Retry-After": "7"}, 7)
    with pytest.raises(ConfigurationError):
        LoginThrottle(max_attempts=0)
    with pytest.raises(ConfigurationError, match="account_max_attempts"):
        LoginThrottle(max_attempts=10, account_max_attempts=5)
    t = LoginThrottle.from_env({"LOGIN_MAX_ATTEMPTS": "3", "LOGIN_WINDOW": "30"})
    assert (t.max_attempts, t.window, t.lockout) == (3, 30.0, 30.0)
    assert t.account_max_attempts > t.max_attempts
