"""Login throttling, counted in the session store with ``Store.incr``.

Three budgets of failed attempts per ``window`` (OWASP Authentication Cheat Sheet;
ASVS 4.0.3 2.2.1 caps an account at 100 failures an hour): per account *and* client
IP (small, so one attacker is slowed at once), per IP (against password spraying),
and per account from anywhere (higher, against credential stuffing across IPs, so an
attacker who knows a username cannot lock its owner out for long). Over a budget
the wait grows: ``lockout * 2**(failures - limit)`` from the last failure, capped at
``window``. Usernames are hashed into the keys (no PII at rest) and unknown ones
are counted exactly like real ones, so a 429 says nothing about which accounts exist.
"""

from __future__ import annotations

import math
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response

from sessionware.config import seconds
from sessionware.exceptions import ConfigurationError, SessionwareError
from sessionware.stores.base import Store
from sessionware.tokens import sha256_hex

__all__ = ["LoginThrottle", "TooManyAttemptsError", "too_many_attempts"]


class TooManyAttemptsError(SessionwareError, HTTPException):
    """Too many failed logins: a 429 with ``Retry-After`` in Starlette and FastAPI apps."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        HTTPException.__init__(
            self,
            429,
            "Too many attempts. Try again later.",
            headers={"Retry-After": str(retry_after)},
        )


def too_many_attempts(retry_after: int) -> Response:
    """A plain 429 response with ``Retry-After`` (RFC 6585 §4), for handlers that return one."""
    return PlainTextResponse(
        "Too many attempts. Try again later.\n",
        status_code=429,
        headers={"Retry-After": str(retry_after), "Cache-Control": "no-store"},
    )


def _norm(username: str) -> str:
    # "Alice", "alice " and a full-width "alice" share one budget: case and width
    # tricks gain an attacker nothing.
    return unicodedata.normalize("NFKC", username).strip().casefold()


@dataclass(frozen=True, kw_only=True)
class LoginThrottle:
    """Failed-login budgets, checked when built; times are seconds or ``timedelta``."""

    max_attempts: int = 5  # per account + IP
    ip_max_attempts: int = 50  # per IP, any account
    account_max_attempts: int = 20  # per account, any IP (20 per 15 min < ASVS's 100/h)
    window: float | timedelta = 15 * 60
    lockout: float | timedelta | None = None  # first wait over a budget; default min(60, window)
    clock: Callable[[], float] = field(default=time.time, repr=False)

    def __post_init__(self) -> None:
        for name in ("max_attempts", "ip_max_attempts", "account_max_attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a positive int")
        if self.account_max_attempts < self.max_attempts:
            raise ConfigurationError(
                "account_max_attempts must be at least max_attempts, so one attacker's IP "
                "is stopped before the owner's account is"
            )
        window = seconds(self.window, "window")
        assert window is not None
        object.__setattr__(self, "window", window)
        lockout = seconds(self.lockout, "lockout") if self.lockout is not None else None
        object.__setattr__(self, "lockout", min(lockout or 60.0, window))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> LoginThrottle:
        """Build from ``LOGIN_MAX_ATTEMPTS`` and ``LOGIN_WINDOW`` (seconds) when set."""
        import os

        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}
        try:
            if env.get("LOGIN_MAX_ATTEMPTS"):
                n = int(env["LOGIN_MAX_ATTEMPTS"])
                kwargs["max_attempts"] = n
                kwargs["account_max_attempts"] = max(n * 4, 20)
                kwargs["ip_max_attempts"] = max(n * 10, 50)
            if env.get("LOGIN_WINDOW"):
                kwargs["window"] = float(env["LOGIN_WINDOW"])
        except ValueError:
            raise ConfigurationError(
                "LOGIN_MAX_ATTEMPTS and LOGIN_WINDOW must be numbers"
            ) from None
        kwargs.update(overrides)
        return cls(**kwargs)

    # -- keys -------------------------------------------------------------------

    def _budgets(self, username: str, ip: str | None) -> list[tuple[str, int]]:
        user, addr = _norm(username), ip or "-"
        return [
            ("th:" + sha256_hex(f"ai\0{user}\0{addr}"), self.max_attempts),
            ("th:" + sha256_hex(f"i\0{addr}"), self.ip_max_attempts),
            ("th:" + sha256_hex(f"a\0{user}"), self.account_max_attempts),
        ]

    def _wait(self, failures: int, last: float, limit: int, now: float) -> float:
        if failures < limit:
            return 0.0
        lockout: float = self.lockout  # type: ignore[assignment]
        window: float = self.window  # type: ignore[assignment]
        delay = min(lockout * 2.0 ** min(failures - limit, 32), window)
        return max(0.0, last + delay - now)

    # -- the store-level API ------------------------------------------------------

    async def retry_after(self, store: Store, username: str, ip: str | None) -> int:
        """Seconds to wait before another attempt may be checked (0: go ahead)."""
        now = self.clock()
        wait = 0.0
        for key, limit in self._budgets(username, ip):
            fields = await store.load(key)
            if fields is not None:
                n, last = int(fields.get("n", "0")), float(fields.get("l", "0"))
                wait = max(wait, self._wait(n, last, limit, now))
        return math.ceil(wait)

    async def failure(self, store: Store, username: str, ip: str | None) -> int:
        """Count a failed attempt; return the wait it imposes (0 while within budget)."""
        now = self.clock()
        window: float = self.window  # type: ignore[assignment]
        wait = 0.0
        for key, limit in self._budgets(username, ip):
            n = await store.incr(key, "n", 1, window)
            await store.apply(key, {"l": str(now)}, [], window)
            wait = max(wait, self._wait(n, now, limit, now))
        return math.ceil(wait)

    async def success(self, store: Store, username: str, ip: str | None) -> None:
        """Forget this account+IP's failures; the IP and account budgets are left alone."""
        await store.delete(self._budgets(username, ip)[0][0])

    # -- the request-level API (Starlette / FastAPI) -------------------------------

    @staticmethod
    def _where(request: HTTPConnection) -> tuple[Store, str | None]:
        from sessionware.auth import _session, client_ip

        session = _session(request)
        return session.store, client_ip(request.scope, session.config.trust_proxy)

    async def check(self, request: HTTPConnection, username: str) -> None:
        """Raise :class:`TooManyAttemptsError` (429 + Retry-After) if this login must wait.

        Call it before checking the password, for known and unknown usernames alike.
        """
        store, ip = self._where(request)
        wait = await self.retry_after(store, username, ip)
        if wait:
            raise TooManyAttemptsError(wait)

    async def failed(self, request: HTTPConnection, username: str) -> int:
        """Count a failed login of this request; return the wait it imposes."""
        store, ip = self._where(request)
        return await self.failure(store, username, ip)

    async def succeeded(self, request: HTTPConnection, username: str) -> None:
        """Clear this account+IP's failures after a good login."""
        store, ip = self._where(request)
        await self.success(store, username, ip)
