"""Attempt budgets in a store: reserve a place *before* the work, keep it or give it back.

Each budget is one store record counted with the atomic ``Store.incr``. Its fields:
``n`` places taken (attempts in flight plus failures kept), ``f`` failures, ``l`` the
time of the last failure, and ``t:<l>`` a one-use ticket for the single attempt
allowed once the wait after failure ``l`` has passed. Because the place is taken by
the same atomic increment that reads the count, N concurrent attempts against a
budget of B get at most B places, whichever worker process or store serves them.

Past its limit a budget admits one attempt per wait, and the wait doubles with each
failure: ``lockout * 2**(f - limit)`` after the last one, capped at ``window``.

Reserving, refunding and recording are :mod:`operations <sessionware._ops>` that
yield store calls, so the async throttle and its sync face run the same steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sessionware._ops import Op
from sessionware.stores.base import Call

__all__ = ["Budget", "Hold", "Timing", "fail", "release", "reserve", "succeed"]

_TAKEN, _FAILED, _LAST, _TICKET = "n", "f", "l", "t:"


@dataclass(frozen=True, slots=True)
class Budget:
    """One counter: its store key, how many attempts it allows, and whether a success
    clears it (``personal``: account+IP, one device) or only gives its place back."""

    key: str
    limit: int
    personal: bool = False


@dataclass(frozen=True, slots=True)
class Timing:
    """How long a budget's record lives and how the wait past its limit grows."""

    window: float
    lockout: float

    def delay(self, failures: int, limit: int) -> float:
        """The wait after the last failure once ``failures`` reached ``limit``."""
        return min(self.lockout * 2.0 ** min(failures - limit, 32), self.window)


@dataclass(slots=True)
class Hold:
    """The places one attempt holds: its budgets and the tickets it claimed."""

    budgets: list[Budget] = field(default_factory=list)
    tickets: list[tuple[Budget, str]] = field(default_factory=list)


def _give_back(key: str, name: str, timing: Timing) -> Op[None]:
    # A record that expired meanwhile is not re-created by the refund (create=False).
    value = yield Call("incr", (key, name, -1, timing.window), {"create": False})
    if value is not None and value < 0:
        # A new record that never counted this place: never bank credit.
        yield Call("incr", (key, name, -value, timing.window))


def _past_limit(budget: Budget, timing: Timing, now: float, hold: Hold) -> Op[float]:
    """0 if this attempt may go past the limit (its ticket is claimed), else the wait."""
    fields = (yield Call("load", (budget.key,))) or {}
    failures = int(fields.get(_FAILED, "0"))
    if failures < budget.limit:
        return 1.0  # the places are held by attempts still in flight
    stamp = fields.get(_LAST, "0")
    due = float(stamp) + timing.delay(failures, budget.limit)
    if now < due:
        return due - now
    ticket = _TICKET + stamp
    if (yield Call("incr", (budget.key, ticket, 1, timing.window))) == 1:
        hold.tickets.append((budget, ticket))
        return 0.0
    yield from _give_back(budget.key, ticket, timing)  # another attempt got this one
    return timing.delay(failures + 1, budget.limit)


def reserve(budgets: Sequence[Budget], timing: Timing, now: float) -> Op[tuple[Hold | None, float]]:
    """Take a place in every budget, or in none: ``(hold, 0)`` or ``(None, wait)``."""
    hold = Hold()
    wait = 0.0
    for budget in budgets:
        taken = yield Call("incr", (budget.key, _TAKEN, 1, timing.window))
        hold.budgets.append(budget)
        if taken > budget.limit:
            wait = yield from _past_limit(budget, timing, now, hold)
            if wait > 0:
                break
    if wait <= 0:
        return hold, 0.0
    yield from release(hold, timing)
    return None, wait


def release(hold: Hold, timing: Timing) -> Op[None]:
    """Give back every place and ticket of ``hold`` (a refused or successful attempt)."""
    for budget in hold.budgets:
        yield from _give_back(budget.key, _TAKEN, timing)
    for budget, ticket in hold.tickets:
        yield from _give_back(budget.key, ticket, timing)


def fail(hold: Hold, timing: Timing, now: float) -> Op[float]:
    """Keep the places as failures; return the wait the next attempt will face."""
    wait = 0.0
    for budget in hold.budgets:
        # The time first, then the count: a concurrent reader that sees the new count
        # also sees the new time, so it never opens a wait early.
        yield Call("apply", (budget.key, {_LAST: repr(now)}, [], timing.window))
        failures = yield Call("incr", (budget.key, _FAILED, 1, timing.window))
        if failures >= budget.limit:
            wait = max(wait, timing.delay(failures, budget.limit))
    return wait


def succeed(hold: Hold, timing: Timing) -> Op[None]:
    """Clear the personal budgets; give this attempt's place back to the shared ones."""
    shared = Hold(
        budgets=[b for b in hold.budgets if not b.personal],
        tickets=[(b, t) for b, t in hold.tickets if not b.personal],
    )
    for budget in hold.budgets:
        if budget.personal:
            yield Call("delete", (budget.key,))
    yield from release(shared, timing)
