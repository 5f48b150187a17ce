"""Login and registration throttling, counted in the session store with ``Store.incr``.

An attempt takes its place in every budget *before* the password is checked (one
atomic increment per budget), so concurrent guesses cannot all slip past a check
that is counted only afterwards: N parallel attempts against a budget of B evaluate
at most B passwords, with any number of worker processes sharing the store. A
success clears this account+IP (or this device) and gives its place back to the
shared budgets; a failure keeps it. Past a budget one attempt is let through per
wait, and the wait doubles: ``lockout * 2**(failures - limit)`` after the last
failure, capped at ``window``. Usernames are hashed into the keys (no PII at rest)
and unknown ones are counted exactly like real ones, so a 429 says nothing about
which accounts exist.

The budgets (OWASP Authentication Cheat Sheet; ASVS 4.0.3 2.2.1 caps an account at
100 failures an hour):

- per account + client IP (small: one attacker is slowed at once);
- per client IP, any account (against password spraying);
- per account from untrusted browsers, any IP (against credential stuffing from
  many IPs);
- per device, for a browser that presents a valid *device cookie* for this account
  (OWASP's device-cookie scheme): a signed cookie issued after a successful login.

The trade-off: a browser that has signed in as the user before is exempt from the
account-wide budget and has its own small one instead, so a stranger spraying the
account from anywhere cannot lock its owner out; the account-wide budget still
refuses strangers (and the owner on a new browser) for a doubling wait while the
account is under attack. See docs/security.md, "Login throttling".

Sync and async, one implementation. Reserving, refunding and recording are
:mod:`operations <sessionware._ops>` (here and in ``_budget``) that yield store calls.
The async API awaits them: ``async with throttle.attempt(request, name) as attempt``,
``await attempt.succeeded()``. Sync code (a WSGI app, whose requests carry a
:class:`~sessionware.session.SyncSession`) uses ``throttle.sync``, a face with the same
methods as plain calls, as ``store.sync`` is for a store: ``with
throttle.sync.attempt(request, name) as attempt`` hands out a :class:`SyncAttempt`,
whose ``succeeded()`` / ``failed()`` / ``withdrawn()`` are plain calls. A face rather
than ``*_sync`` methods keeps one name per step (``check``, ``attempt``, ``failed``...)
in both worlds, and one throttle object configures both. :class:`Attempt` and
:class:`SyncAttempt` hold nothing but one-line dispatchers over :class:`BaseAttempt`'s
operations, as :class:`~sessionware.session.Session` and
:class:`~sessionware.session.SyncSession` do over the session's verbs.
"""

from __future__ import annotations

import math
import time
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any, Literal, TypeVar

from sessionware import events as _events
from sessionware._ops import Op
from sessionware.auth import _budget as budget
from sessionware.auth import _device_cookie as device_cookie
from sessionware.auth._run import on_store
from sessionware.auth._view import (
    RequestLike,
    as_view,
    async_session,
    base_session,
    client_ip,
    sync_session,
)
from sessionware.config import seconds
from sessionware.cookies import valid_name
from sessionware.exceptions import ConfigurationError, HasherBusyError, TooManyAttemptsError
from sessionware.request import RequestView
from sessionware.session import BaseSession
from sessionware.stores.base import Call, Store
from sessionware.tokens import sha256_hex

__all__ = [
    "Attempt",
    "BaseAttempt",
    "LoginThrottle",
    "RegistrationThrottle",
    "SyncAttempt",
    "SyncLoginThrottle",
    "SyncRegistrationThrottle",
    "TooManyAttemptsError",
]

A = TypeVar("A", bound="BaseAttempt")

_PENDING = "sessionware.throttle"  # view.state key: attempts reserved by check()
_MAX_DAYS = 400  # RFC 6265bis caps Max-Age at 400 days


def _norm(username: str) -> str:
    # "Alice", "alice " and a full-width "alice" share one budget: case and width
    # tricks gain an attacker nothing.
    return unicodedata.normalize("NFKC", username).strip().casefold()


def _key(*parts: str) -> str:
    return "th:" + sha256_hex("\0".join(parts))


def _positive_ints(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{name} must be a positive int")


def _timing(obj: Any) -> budget.Timing:
    """Check ``obj.window`` and ``obj.lockout``, store them as seconds, return them."""
    window = seconds(obj.window, "window")
    assert window is not None
    lockout = seconds(obj.lockout, "lockout") if obj.lockout is not None else None
    lockout = min(lockout or 60.0, window)
    object.__setattr__(obj, "window", window)
    object.__setattr__(obj, "lockout", lockout)
    return budget.Timing(window=window, lockout=lockout)


def _env_numbers(env: Any, names: tuple[str, str]) -> tuple[int | None, float | None]:
    count, window = names
    try:
        return (
            int(env[count]) if env.get(count) else None,
            float(env[window]) if env.get(window) else None,
        )
    except ValueError:
        raise ConfigurationError(f"{count} and {window} must be numbers") from None


def _where(request: RequestLike) -> tuple[RequestView, BaseSession, str | None]:
    """The request's view, its session (for the store and secrets) and client address."""
    v = as_view(request)
    session = base_session(v)
    return v, session, client_ip(v, session.config.trust_proxy)


def _report(
    view: RequestView | None,
    name: _events.EventName,
    user: str,
    reason: str,
    ip: str | None = None,
) -> None:
    """Emit ``name`` through the request's events (logged only without a request).

    ``user`` is the normalised name the visitor typed (the throttle never learns
    whether it is an account), empty for a registration.
    """
    events = None
    if view is not None:
        session = base_session(view)
        events = _events.of(session)
        if ip is None:
            ip = client_ip(view, session.config.trust_proxy)
    _events.emit(events, name, user_id=user or None, client=ip, reason=reason)


class BaseAttempt:
    """One login attempt, holding its place in every budget until its outcome is known.

    Its outcomes are written once here, as operations; :class:`Attempt` awaits them and
    :class:`SyncAttempt` runs them with plain calls. Decide once; an attempt left
    undecided (an exception, a forgotten call) counts as failed when the throttle's
    ``attempt()`` block closes it.
    """

    def __init__(
        self,
        throttle: LoginThrottle,
        store: Store,
        hold: budget.Hold,
        user: str,
        view: RequestView | None = None,
    ) -> None:
        self._throttle, self._store, self._hold = throttle, store, hold
        self._user, self._view = user, view
        self.outcome: Literal["succeeded", "failed", "withdrawn"] | None = None

    def _decide(self, outcome: Literal["succeeded", "failed", "withdrawn"]) -> None:
        if self.outcome is not None:
            raise RuntimeError(f"this login attempt already {self.outcome}")
        self.outcome = outcome

    def _failed(self) -> Op[int]:
        self._decide("failed")
        t = self._throttle
        wait = yield from budget.fail(self._hold, t.timing, t.clock())
        _report(self._view, "login_failed", self._user, "bad credentials")
        return math.ceil(wait)

    def _withdrawn(self) -> Op[None]:
        self._decide("withdrawn")
        yield from budget.release(self._hold, self._throttle.timing)

    def _succeeded(self) -> Op[None]:
        self._decide("succeeded")
        yield from budget.succeed(self._hold, self._throttle.timing)
        if self._view is not None:
            self._throttle._trust(self._view, self._user)


class Attempt(BaseAttempt):
    """A login attempt of async code: ``await attempt.succeeded()`` and friends."""

    async def failed(self) -> int:
        """Keep this attempt's places as a failure; return the wait the next one faces."""
        return await on_store(self._store).arun(self._failed())

    async def withdrawn(self) -> None:
        """Give every place back unchanged: no password was checked (the hasher was busy)."""
        return await on_store(self._store).arun(self._withdrawn())

    async def succeeded(self) -> None:
        """Clear this account+IP (or device), give the shared places back, and send
        this browser a new device cookie (when the attempt came with a request)."""
        return await on_store(self._store).arun(self._succeeded())


class SyncAttempt(BaseAttempt):
    """A login attempt of sync code: the same outcomes as :class:`Attempt`, plain calls."""

    def failed(self) -> int:
        """Keep this attempt's places as a failure; return the wait the next one faces."""
        return on_store(self._store).run(self._failed())

    def withdrawn(self) -> None:
        """Give every place back unchanged: no password was checked (the hasher was busy)."""
        return on_store(self._store).run(self._withdrawn())

    def succeeded(self) -> None:
        """Clear this account+IP (or device), give the shared places back, and send a
        new device cookie (when the attempt came with a request)."""
        return on_store(self._store).run(self._succeeded())


@dataclass(frozen=True, kw_only=True)
class LoginThrottle:
    """Login attempt budgets, checked when built; times are seconds or ``timedelta``.

    ``async with throttle.attempt(request, username) as attempt:`` reserves (or
    raises :class:`TooManyAttemptsError`) before any password work; call
    ``await attempt.succeeded()`` on a good password. In sync code the same through
    :attr:`sync`: ``with throttle.sync.attempt(request, username) as attempt:`` and
    ``attempt.succeeded()``.
    """

    max_attempts: int = 5  # per account + IP
    ip_max_attempts: int = 50  # per IP, any account
    account_max_attempts: int = 20  # per account from untrusted browsers (< ASVS's 100/h)
    device_max_attempts: int | None = None  # per device cookie; default max_attempts
    window: float | timedelta = 15 * 60
    lockout: float | timedelta | None = None  # first wait over a budget; default min(60, window)
    #: Default ``__Host-device``, or ``device`` when the session cookie is unprefixed.
    device_cookie_name: str | None = None
    device_max_age: float | timedelta = 365 * 86400
    clock: Callable[[], float] = field(default=time.time, repr=False)
    timing: budget.Timing = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.device_max_attempts is None:
            object.__setattr__(self, "device_max_attempts", self.max_attempts)
        _positive_ints(
            self, "max_attempts", "ip_max_attempts", "account_max_attempts", "device_max_attempts"
        )
        if self.account_max_attempts < self.max_attempts:
            raise ConfigurationError(
                "account_max_attempts must be at least max_attempts, so one attacker's IP "
                "is stopped before the owner's account is"
            )
        object.__setattr__(self, "timing", _timing(self))
        self._check_device_cookie()

    def _check_device_cookie(self) -> None:
        name = self.device_cookie_name
        if name is not None and not valid_name(name):
            raise ConfigurationError(f"device_cookie_name {name!r} is not a valid cookie name")
        max_age = seconds(self.device_max_age, "device_max_age")
        assert max_age is not None
        if max_age > _MAX_DAYS * 86400:
            raise ConfigurationError("device_max_age is capped at 400 days (RFC 6265bis)")
        object.__setattr__(self, "device_max_age", max_age)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> LoginThrottle:
        """Build from ``LOGIN_MAX_ATTEMPTS`` and ``LOGIN_WINDOW`` (seconds) when set."""
        import os

        n, window = _env_numbers(
            os.environ if environ is None else environ, ("LOGIN_MAX_ATTEMPTS", "LOGIN_WINDOW")
        )
        kwargs: dict[str, Any] = {}
        if n is not None:
            kwargs["max_attempts"] = n
            kwargs["account_max_attempts"] = max(n * 4, 20)
            kwargs["ip_max_attempts"] = max(n * 10, 50)
        if window is not None:
            kwargs["window"] = window
        kwargs.update(overrides)
        return cls(**kwargs)

    @property
    def device_max_age_seconds(self) -> float:
        """How long a browser keeps the device cookie, in seconds."""
        return self.device_max_age  # type: ignore[return-value]

    # -- the store-level API ------------------------------------------------------

    def budgets(
        self, username: str, ip: str | None, device: str | None = None
    ) -> list[budget.Budget]:
        """The budgets one attempt is counted against, smallest first."""
        user = _norm(username)
        if device is not None:
            assert self.device_max_attempts is not None
            return [budget.Budget(_key("d", user, device), self.device_max_attempts, True)]
        addr = ip or "-"
        return [
            budget.Budget(_key("ai", user, addr), self.max_attempts, True),
            budget.Budget(_key("a", user), self.account_max_attempts),
            budget.Budget(_key("i", addr), self.ip_max_attempts),
        ]

    def _reserve(
        self,
        username: str,
        ip: str | None,
        nonce: str | None,
        view: RequestView | None,
        store: Store,
        cls: type[A],
    ) -> Op[A]:
        budgets = self.budgets(username, ip, nonce)
        hold, wait = yield from budget.reserve(budgets, self.timing, self.clock())
        if hold is None:
            retry = max(1, math.ceil(wait))
            _report(view, "throttled", _norm(username), f"locked out for {retry}s", ip)
            raise TooManyAttemptsError(retry)
        return cls(self, store, hold, _norm(username), view)

    async def reserve(
        self, store: Store, username: str, ip: str | None, *, device: str | None = None
    ) -> Attempt:
        """Take this attempt's place in every budget, or raise :class:`TooManyAttemptsError`.

        ``device`` is the nonce of a verified device cookie for ``username``. Without a
        request no device cookie is sent on success.
        """
        return await on_store(store).arun(self._reserve(username, ip, device, None, store, Attempt))

    # -- the request-level API (any framework: a RequestView or a request) ----------

    @cached_property
    def sync(self) -> SyncLoginThrottle:
        """This throttle for sync code: the same methods as plain calls (made once)."""
        return SyncLoginThrottle(self)

    def _cookie_name(self, session: BaseSession) -> str:
        return device_cookie.cookie_name(self.device_cookie_name, session.config.cookie_name)

    def _trust(self, view: RequestView, user: str) -> None:
        session = base_session(view)
        max_age = int(self.device_max_age)  # type: ignore[arg-type]
        name = self._cookie_name(session)
        view.add_cookie(device_cookie.issue(view, session, name, user, max_age))

    def _check(self, request: RequestLike, username: str, cls: type[A]) -> Op[A]:
        v, session, ip = _where(request)
        user = _norm(username)
        nonce = device_cookie.read(v, session, self._cookie_name(session), user)
        attempt = yield from self._reserve(username, ip, nonce, v, session.store, cls)
        v.state.setdefault(_PENDING, {})[user] = attempt
        return attempt

    async def check(self, request: RequestLike, username: str) -> Attempt:
        """Reserve this request's attempt (429 + Retry-After when over budget) and return it.

        Call it before any password work, for known and unknown usernames alike, then
        ``attempt.succeeded()`` / ``attempt.failed()`` (or this throttle's
        :meth:`succeeded` / :meth:`failed` with the same request and username).
        """
        return await async_session(request, "LoginThrottle.sync.check").core.arun(
            self._check(request, username, Attempt)
        )

    def _settle(
        self, request: RequestLike, attempt: BaseAttempt, error: BaseException | None
    ) -> Op[None]:
        """Close an ``attempt()`` block: a busy hasher withdraws an undecided attempt (no
        password was checked), anything else left undecided counts as failed."""
        try:
            if isinstance(error, HasherBusyError) and attempt.outcome is None:
                # Refused before any password work: the guess costs the guesser nothing,
                # and nothing more than a retry to the owner.
                yield from attempt._withdrawn()
        finally:
            as_view(request).state[_PENDING].pop(attempt._user, None)
        if attempt.outcome is None:
            yield from attempt._failed()

    @asynccontextmanager
    async def attempt(self, request: RequestLike, username: str) -> AsyncIterator[Attempt]:
        """Reserve on entry (or raise :class:`TooManyAttemptsError`); an attempt not marked
        ``succeeded()`` by the end of the block counts as failed."""
        attempt = await self.check(request, username)
        try:
            yield attempt
        except BaseException as error:
            await async_session(request, "LoginThrottle.sync.attempt").core.arun(
                self._settle(request, attempt, error)
            )
            raise
        await async_session(request, "LoginThrottle.sync.attempt").core.arun(
            self._settle(request, attempt, None)
        )

    def _pending(self, request: RequestLike, username: str) -> BaseAttempt | None:
        pending: dict[str, BaseAttempt] = as_view(request).state.get(_PENDING, {})
        return pending.pop(_norm(username), None)

    def _failed(self, request: RequestLike, username: str) -> Op[int]:
        attempt = self._pending(request, username)
        if attempt is None:  # no check() first: count the failure all the same
            v, session, ip = _where(request)
            hold = budget.Hold(budgets=self.budgets(username, ip))
            for b in hold.budgets:
                yield Call("incr", (b.key, "n", 1, self.timing.window))
            attempt = BaseAttempt(self, session.store, hold, _norm(username), v)
        return (yield from attempt._failed())

    async def failed(self, request: RequestLike, username: str) -> int:
        """Count the failure of the attempt :meth:`check` reserved; return the wait it imposes."""
        return await async_session(request, "LoginThrottle.sync.failed").core.arun(
            self._failed(request, username)
        )

    def _succeeded(self, request: RequestLike, username: str) -> Op[None]:
        attempt = self._pending(request, username)
        if attempt is None:  # no check() first: nothing reserved, only clear and trust
            v, session, ip = _where(request)
            personal = [b for b in self.budgets(username, ip) if b.personal]
            hold = budget.Hold(budgets=personal)
            attempt = BaseAttempt(self, session.store, hold, _norm(username), v)
        yield from attempt._succeeded()

    async def succeeded(self, request: RequestLike, username: str) -> None:
        """Close the attempt :meth:`check` reserved as a good login."""
        return await async_session(request, "LoginThrottle.sync.succeeded").core.arun(
            self._succeeded(request, username)
        )


class SyncLoginThrottle:
    """``throttle.sync``: a :class:`LoginThrottle`'s methods as plain calls, for sync code
    (requests carrying a :class:`~sessionware.session.SyncSession`), over the same
    operations; the attempts it hands out are :class:`SyncAttempt`."""

    __slots__ = ("_throttle",)

    def __init__(self, throttle: LoginThrottle) -> None:
        self._throttle = throttle

    def reserve(
        self, store: Store, username: str, ip: str | None, *, device: str | None = None
    ) -> SyncAttempt:
        """Take this attempt's place in every budget, or raise :class:`TooManyAttemptsError`."""
        return on_store(store).run(
            self._throttle._reserve(username, ip, device, None, store, SyncAttempt)
        )

    def check(self, request: RequestLike, username: str) -> SyncAttempt:
        """Reserve this request's attempt (429 + Retry-After when over budget) and return it."""
        return sync_session(request, "LoginThrottle.check").core.run(
            self._throttle._check(request, username, SyncAttempt)
        )

    @contextmanager
    def attempt(self, request: RequestLike, username: str) -> Iterator[SyncAttempt]:
        """Reserve on entry (or raise :class:`TooManyAttemptsError`); an attempt not marked
        ``succeeded()`` by the end of the block counts as failed."""
        attempt = self.check(request, username)
        try:
            yield attempt
        except BaseException as error:
            sync_session(request, "LoginThrottle.attempt").core.run(
                self._throttle._settle(request, attempt, error)
            )
            raise
        sync_session(request, "LoginThrottle.attempt").core.run(
            self._throttle._settle(request, attempt, None)
        )

    def failed(self, request: RequestLike, username: str) -> int:
        """Count the failure of the attempt :meth:`check` reserved; return the wait it imposes."""
        return sync_session(request, "LoginThrottle.failed").core.run(
            self._throttle._failed(request, username)
        )

    def succeeded(self, request: RequestLike, username: str) -> None:
        """Close the attempt :meth:`check` reserved as a good login."""
        return sync_session(request, "LoginThrottle.succeeded").core.run(
            self._throttle._succeeded(request, username)
        )


@dataclass(frozen=True, kw_only=True)
class RegistrationThrottle:
    """New accounts per client IP: each costs a password hash, so each is counted, kept
    whatever its outcome, before any hashing; past the budget the wait doubles."""

    max_attempts: int = 10
    window: float | timedelta = 3600
    lockout: float | timedelta | None = None  # first wait over the budget; default min(60, window)
    clock: Callable[[], float] = field(default=time.time, repr=False)
    timing: budget.Timing = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _positive_ints(self, "max_attempts")
        object.__setattr__(self, "timing", _timing(self))

    @classmethod
    def from_env(
        cls, environ: dict[str, str] | None = None, **overrides: Any
    ) -> RegistrationThrottle:
        """Build from ``REGISTER_MAX_ATTEMPTS`` and ``REGISTER_WINDOW`` (seconds) when set."""
        import os

        n, window = _env_numbers(
            os.environ if environ is None else environ,
            ("REGISTER_MAX_ATTEMPTS", "REGISTER_WINDOW"),
        )
        kwargs: dict[str, Any] = {}
        if n is not None:
            kwargs["max_attempts"] = n
        if window is not None:
            kwargs["window"] = window
        kwargs.update(overrides)
        return cls(**kwargs)

    @cached_property
    def sync(self) -> SyncRegistrationThrottle:
        """This throttle for sync code: the same methods as plain calls (made once)."""
        return SyncRegistrationThrottle(self)

    def _reserve(self, ip: str | None, view: RequestView | None = None) -> Op[None]:
        budgets = [budget.Budget(_key("r", ip or "-"), self.max_attempts)]
        now = self.clock()
        hold, wait = yield from budget.reserve(budgets, self.timing, now)
        if hold is None:
            retry = max(1, math.ceil(wait))
            _report(view, "throttled", "", f"registrations locked out for {retry}s", ip)
            raise TooManyAttemptsError(retry)
        yield from budget.fail(hold, self.timing, now)  # kept: the hash will be spent

    async def reserve(self, store: Store, ip: str | None) -> None:
        """Count one registration from ``ip``, or raise :class:`TooManyAttemptsError`."""
        return await on_store(store).arun(self._reserve(ip))

    def _check(self, request: RequestLike) -> Op[None]:
        view, _, ip = _where(request)
        yield from self._reserve(ip, view)

    async def check(self, request: RequestLike) -> None:
        """Count this request's registration before hashing (429 + Retry-After over budget)."""
        return await async_session(request, "RegistrationThrottle.sync.check").core.arun(
            self._check(request)
        )


class SyncRegistrationThrottle:
    """``registration_throttle.sync``: its methods as plain calls, for sync code."""

    __slots__ = ("_throttle",)

    def __init__(self, throttle: RegistrationThrottle) -> None:
        self._throttle = throttle

    def reserve(self, store: Store, ip: str | None) -> None:
        """Count one registration from ``ip``, or raise :class:`TooManyAttemptsError`."""
        return on_store(store).run(self._throttle._reserve(ip))

    def check(self, request: RequestLike) -> None:
        """Count this request's registration before hashing (429 + Retry-After over budget)."""
        return sync_session(request, "RegistrationThrottle.check").core.run(
            self._throttle._check(request)
        )
