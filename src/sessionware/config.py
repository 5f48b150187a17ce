"""``SessionConfig``: every option, validated once at start-up.

Options follow express-session where it is right and fix it where it is not:
``save_uninitialized`` and ``resave`` default to False, the default cookie name is
``__Host-sid`` (no framework fingerprint), and both timeouts are enforced on the server.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, TypedDict

from sessionware.cookies import format_set_cookie, is_prefixed, valid_name
from sessionware.events import Events
from sessionware.exceptions import ConfigurationError

__all__ = ["MIN_SECRET_LENGTH", "SECRET_HINT", "SessionConfig", "SessionOptions", "seconds"]

MIN_SECRET_LENGTH = 32
SECRET_HINT = (
    "make one with `sessionware secret` (or "
    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`) and pass it as "
    "secrets=[...] or in the SESSION_SECRET environment variable"
)
_SAME_SITE = ("lax", "strict", "none")


def seconds(value: float | timedelta | None, what: str) -> float | None:
    """Turn a timeout given in seconds or as a ``timedelta`` into seconds."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{what} must be seconds (int or float) or a timedelta")
    if value <= 0:
        raise ConfigurationError(f"{what} must be positive, got {value!r}")
    return float(value)


def _timeout(value: float | timedelta | None, what: str) -> float:
    """A server-side timeout: required, since a session the server never ends is a
    stolen cookie that works forever (ASVS 7.3.1/7.3.2)."""
    found = seconds(value, what)
    if found is None:
        raise ConfigurationError(
            f"{what}=None is not supported: sessions always end on the server. For long "
            f"logins pass a long {what}, e.g. {what}=timedelta(days=14) (Starlette's "
            "max_age), or keep the defaults and add remember-me (RememberMeMiddleware)"
        )
    return found


def _check_legacy(cookies: Sequence[Any]) -> None:
    """Old cookies must be readers (``sessionware.migrate``), given as a list."""
    if isinstance(cookies, (str, bytes)) or not isinstance(cookies, Sequence):
        raise ConfigurationError(
            "legacy_cookies must be a list, e.g. [StarletteCookie(secret_key=OLD_SECRET)] "
            "from sessionware.migrate"
        )
    for cookie in cookies:
        if not (callable(getattr(cookie, "read", None)) and getattr(cookie, "cookie_name", None)):
            raise ConfigurationError(
                f"legacy_cookies holds {type(cookie).__name__}: use StarletteCookie(...) or "
                "FlaskCookie(...) from sessionware.migrate"
            )


class _Masked(tuple[str, ...]):
    """A tuple of secrets that never prints them."""

    def __repr__(self) -> str:
        return f"<{len(self)} secret(s) hidden>"


class SessionOptions(TypedDict, total=False):
    """The keyword options of :class:`SessionConfig` (besides ``secrets``), for typed ``**kwargs``.

    ``SessionMiddleware(app, store=..., secrets=..., **options)`` takes these, so a typo
    is a type error and ``app.add_middleware`` type-checks under mypy strict.
    """

    cookie_name: str
    genid: Callable[[], str] | None
    resave: bool
    save_uninitialized: bool
    rolling: bool
    idle_timeout: float | timedelta
    absolute_timeout: float | timedelta
    touch_interval: float | timedelta | None
    trust_proxy: bool | int
    http_only: bool
    secure: bool | Literal["auto"]
    same_site: Literal["lax", "strict", "none"] | None
    domain: str | None
    path: str
    max_age: float | timedelta | None
    partitioned: bool
    max_size: int
    max_sessions_per_user: int | None
    max_sessions_policy: Literal["oldest", "refuse"]
    events: Events | None
    max_lifetime: float | timedelta
    rotate_every: float | timedelta | None
    rotate_grace: float | timedelta
    websocket_check_interval: float | timedelta
    clock: Callable[[], float] | None
    store_url: str | None
    legacy_cookies: Sequence[Any]


@dataclass(frozen=True, kw_only=True)
class SessionConfig:
    """Every session option, checked when built so a mistake fails at start-up."""

    secrets: Sequence[str]
    cookie_name: str = "__Host-sid"
    genid: Callable[[], str] | None = None
    resave: bool = False
    save_uninitialized: bool = False
    rolling: bool = False
    idle_timeout: float | timedelta = 30 * 60
    absolute_timeout: float | timedelta = 12 * 60 * 60
    touch_interval: float | timedelta | None = None
    trust_proxy: bool | int = False
    http_only: bool = True
    secure: bool | Literal["auto"] = "auto"
    same_site: Literal["lax", "strict", "none"] | None = "lax"
    domain: str | None = None
    path: str = "/"
    max_age: float | timedelta | None = None
    partitioned: bool = False
    max_size: int = 64 * 1024
    #: Live sessions one user may hold; a login past it ends that user's least recently
    #: seen session (None: no limit). Bounds what a remember-me replay loop can mint.
    max_sessions_per_user: int | None = 32
    #: What a login past ``max_sessions_per_user`` does: ``"oldest"`` ends the user's
    #: least recently seen sessions, ``"refuse"`` refuses the new login
    #: (:class:`~sessionware.exceptions.SessionLimitError`).
    max_sessions_policy: Literal["oldest", "refuse"] = "oldest"
    #: The app's :class:`~sessionware.events.Events` subscribers (logins, failures,
    #: revocations...); every event is logged on ``sessionware.security`` either way.
    events: Events | None = field(default=None, repr=False)
    #: The longest per-session idle or absolute timeout (or cookie Max-Age) that
    #: ``session.set_lifetime()`` and ``login(..., absolute_timeout=...)`` accept: a
    #: login may outlive the global timeouts ("keep me signed in"), never forever.
    max_lifetime: float | timedelta = 30 * 86400
    #: Give a session in use a new id once its id is this old (seconds; None: never).
    #: The old id keeps working for ``rotate_grace`` seconds, for requests in flight.
    rotate_every: float | timedelta | None = None
    rotate_grace: float | timedelta = 30
    #: How often an open WebSocket looks at its session: saves what the handler wrote,
    #: refreshes the idle expiry if the socket was used, and closes it (code 1008) once
    #: the session was revoked, destroyed or expired.
    websocket_check_interval: float | timedelta = 30
    #: Where "now" comes from (epoch seconds). Tests pass a clock they move by hand:
    #: ``time.time`` is read once when the core is built, so patching it later does not
    #: reach sessionware.
    clock: Callable[[], float] | None = field(default=None, repr=False)
    #: Where sessions live when no ``store=`` is given (``SESSION_STORE``); see
    #: :func:`sessionware.stores.from_url`. Never logged: it may hold a password.
    store_url: str | None = field(default=None, repr=False)
    #: Old framework session cookies to exchange for server-side sessions during a
    #: migration (:class:`sessionware.migrate.StarletteCookie`, ``FlaskCookie``).
    legacy_cookies: Sequence[Any] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        secrets = self.secrets
        if isinstance(secrets, str):
            secrets = [s.strip() for s in secrets.split(",") if s.strip()]
        if not secrets:
            raise ConfigurationError(f"no session secret is set: {SECRET_HINT}")
        for s in secrets:
            if not isinstance(s, str) or len(s) < MIN_SECRET_LENGTH:
                raise ConfigurationError(
                    f"every session secret must be at least {MIN_SECRET_LENGTH} characters: "
                    + SECRET_HINT
                )
        set_(self, "secrets", _Masked(secrets))
        if not valid_name(self.cookie_name):
            raise ConfigurationError(f"cookie_name {self.cookie_name!r} is not a valid cookie name")
        same_site = self.same_site.lower() if isinstance(self.same_site, str) else None
        if same_site is not None and same_site not in _SAME_SITE:
            raise ConfigurationError("same_site must be 'lax', 'strict', 'none' or None")
        set_(self, "same_site", same_site)
        if self.secure not in (True, False, "auto"):
            raise ConfigurationError("secure must be True, False or 'auto'")
        prefix = is_prefixed(self.cookie_name)
        if prefix and self.secure is False:
            raise ConfigurationError(
                f"a cookie named {self.cookie_name!r} must be Secure: set secure=True or 'auto', "
                "or for plain-http development use a name without the __Host-/__Secure- prefix"
            )
        if prefix == "__Host-" and (self.domain or self.path != "/"):
            raise ConfigurationError(
                f"a __Host- cookie ({self.cookie_name!r}) may have no Domain and only Path=/ "
                "(RFC 6265bis §4.1.3.2): drop domain/path or use another name"
            )
        if same_site == "none" and self.secure is not True:
            raise ConfigurationError(
                "same_site='none' needs secure=True (browsers drop SameSite=None cookies "
                "without Secure); use same_site='lax' or set secure=True"
            )
        if self.partitioned and self.secure is not True:
            raise ConfigurationError("partitioned cookies must be Secure: set secure=True")
        if self.path and not self.path.startswith("/"):
            raise ConfigurationError("path must start with '/'")
        try:  # what the cookie writer would refuse on every response: refuse it now
            format_set_cookie(
                self.cookie_name, "v", path=self.path, domain=self.domain, same_site=same_site
            )
        except ValueError as exc:
            raise ConfigurationError(
                f"{exc}: path and domain must be visible ASCII without ';' or spaces"
            ) from None
        idle = _timeout(self.idle_timeout, "idle_timeout")
        absolute = _timeout(self.absolute_timeout, "absolute_timeout")
        set_(self, "idle_timeout", idle)
        set_(self, "absolute_timeout", absolute)
        touch = seconds(self.touch_interval, "touch_interval")
        if touch is None:
            touch = min(60.0, (idle or 0) / 10)
        set_(self, "touch_interval", touch)
        max_age = seconds(self.max_age, "max_age")
        if max_age is not None and max_age > 400 * 86400:
            raise ConfigurationError("max_age is capped at 400 days by browsers (RFC 6265bis)")
        if max_age is not None and max_age < 1:
            raise ConfigurationError(
                "max_age is whole seconds in the cookie, and Max-Age=0 deletes it: use at "
                "least 1 (or None for a browser-session cookie)"
            )
        set_(self, "max_age", max_age)
        if isinstance(self.trust_proxy, bool):
            set_(self, "trust_proxy", 1 if self.trust_proxy else 0)
        elif not isinstance(self.trust_proxy, int) or self.trust_proxy < 0:
            raise ConfigurationError("trust_proxy must be a bool or the number of proxy hops")
        if not isinstance(self.max_size, int) or self.max_size < 256:
            raise ConfigurationError("max_size must be an int of at least 256 bytes")
        cap = self.max_sessions_per_user
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ConfigurationError("max_sessions_per_user must be a positive int or None")
        if self.max_sessions_policy not in ("oldest", "refuse"):
            raise ConfigurationError("max_sessions_policy must be 'oldest' or 'refuse'")
        if self.events is not None and not isinstance(self.events, Events):
            raise ConfigurationError("events must be a sessionware.events.Events")
        self._check_lifetimes(set_)
        _check_legacy(self.legacy_cookies)
        set_(self, "legacy_cookies", tuple(self.legacy_cookies))
        if self.genid is not None and not callable(self.genid):
            raise ConfigurationError("genid must be a callable returning a new id")

    def _check_lifetimes(self, set_: Callable[..., None]) -> None:
        """``max_lifetime`` and the rotation options (seconds once checked)."""
        longest = _timeout(self.max_lifetime, "max_lifetime")
        if longest > 400 * 86400:
            raise ConfigurationError(
                "max_lifetime is capped at 400 days (the longest cookie browsers keep)"
            )
        set_(self, "max_lifetime", longest)
        every = seconds(self.rotate_every, "rotate_every")
        grace = _timeout(self.rotate_grace, "rotate_grace")
        if grace > 300:
            raise ConfigurationError(
                "rotate_grace is how long an old id keeps working after rotation: keep it "
                "short (at most 300 seconds; 30-60 is plenty for requests in flight)"
            )
        if every is not None and every < max(60.0, 2 * grace):
            raise ConfigurationError(
                f"rotate_every={every:g}s is too short: rotate at most once a minute and "
                f"at least twice rotate_grace ({grace:g}s), e.g. rotate_every=15 * 60"
            )
        set_(self, "rotate_every", every)
        set_(self, "rotate_grace", grace)
        interval = _timeout(self.websocket_check_interval, "websocket_check_interval")
        if interval < 0.05:
            raise ConfigurationError("websocket_check_interval must be at least 0.05 seconds")
        set_(self, "websocket_check_interval", interval)

    def lifetime_warning(self) -> str | None:
        """What is wrong when the cookie is set to outlive the session it points to.

        Starlette's ``max_age`` is also how long its sessions live; here the server ends
        a session after ``idle_timeout`` / ``absolute_timeout`` whatever the cookie says.
        """
        max_age, absolute = self.cookie_max_age, self.absolute
        if max_age is None or max_age <= absolute:
            return None
        return (
            f"max_age={max_age:g}s keeps the cookie after the session ends on the server "
            f"(absolute_timeout={absolute:g}s, idle_timeout={self.idle:g}s): browsers "
            "would send a dead cookie and users find themselves signed out. For sessions "
            "that last as long as the cookie, raise absolute_timeout and idle_timeout to "
            "max_age; otherwise lower max_age (or drop it for a browser-session cookie)"
        )

    @property
    def idle(self) -> float:
        """Idle timeout in seconds."""
        return self.idle_timeout  # type: ignore[return-value]

    @property
    def absolute(self) -> float:
        """Absolute timeout in seconds."""
        return self.absolute_timeout  # type: ignore[return-value]

    @property
    def cookie_max_age(self) -> float | None:
        """The cookie's Max-Age in seconds, or None for a browser-session cookie."""
        return self.max_age  # type: ignore[return-value]

    def describe(self) -> dict[str, Any]:
        """The effective settings worth logging: never the secrets."""
        return {
            "cookie_name": self.cookie_name,
            "secure": self.secure,
            "http_only": self.http_only,
            "same_site": self.same_site,
            "domain": self.domain,
            "path": self.path,
            "max_age": self.max_age,
            "partitioned": self.partitioned,
            "idle_timeout": self.idle_timeout,
            "absolute_timeout": self.absolute_timeout,
            "rolling": self.rolling,
            "trust_proxy": self.trust_proxy,
            "max_sessions_per_user": self.max_sessions_per_user,
            "rotate_every": self.rotate_every,
            "max_sessions_policy": self.max_sessions_policy,
            "secrets": len(self.secrets),
        }

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> SessionConfig:
        """Build from ``SESSION_SECRET`` (comma-separated, first signs), ``SESSION_STORE``
        and the timeouts.

        ``SESSION_IDLE_TIMEOUT`` and ``SESSION_ABSOLUTE_TIMEOUT`` are seconds; the store
        URL forms are those of :func:`sessionware.stores.from_url`.
        """
        env = os.environ if environ is None else environ
        # A comma-separated string; the constructor splits it (first signs, all verify).
        kwargs: dict[str, Any] = {"secrets": env.get("SESSION_SECRET", "")}
        if env.get("SESSION_STORE"):
            kwargs["store_url"] = env["SESSION_STORE"]
        for var, name in (
            ("SESSION_IDLE_TIMEOUT", "idle_timeout"),
            ("SESSION_ABSOLUTE_TIMEOUT", "absolute_timeout"),
        ):
            if env.get(var):
                try:
                    kwargs[name] = float(env[var])
                except ValueError:
                    raise ConfigurationError(f"{var} must be a number of seconds") from None
        kwargs.update(overrides)
        return cls(**kwargs)
