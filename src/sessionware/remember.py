"""Remember-me: split tokens in a long-lived cookie, rotated on use, with theft detection.

The cookie holds ``selector:validator``, signed for the ``"remember"`` purpose. The
store keeps the series under ``"rm:" + sha256(selector)`` with only SHA-256 hashes
of validators (Paragon Initiative's split tokens), so a store dump yields no usable
cookie. Using a token rotates its validator (Jaspan 2006). The new validator is
*pending* until the browser presents it once: until then the old one stays valid,
so a response lost on the way (a closed tab, an aborted navigation) does not turn
the owner's next visit into a theft alarm. Once the new one is seen, every older
validator is retired and still accepted for ``grace`` seconds, because parallel
requests of one browser all carry it (Miller's post-mortem); after that, presenting
a retired or unknown validator for a known series is theft: the series and every
session spawned from it are revoked. A restored session is never *fresh*.

Record fields: ``u`` user id, ``c`` created, ``x`` absolute expiry, ``g`` the
user's revocation generation when issued (see :mod:`sessionware._generation`),
``ua``/``ip``/``h`` device and handle, and one ``v:<sha256 of a validator>`` per
validator: ``"0"`` current, ``"p<time>"`` pending since then, or the time it was
retired. Series are listed in their user's own index, beside the user's sessions:
their ``rm:`` keys never take the shape of a session key, so no user id can make
one family read as the other.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypedDict, Unpack

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionware import _generation
from sessionware._http import client_ip, cookie_header, header
from sessionware.config import seconds
from sessionware.cookies import cookie_values, format_set_cookie, is_prefixed, valid_name
from sessionware.exceptions import ConfigurationError, InvalidSignatureError, StoreUnavailableError
from sessionware.session import Session
from sessionware.signing import Signer
from sessionware.stores.base import Store
from sessionware.tokens import new_handle, new_split_token, parse_split_token, sha256_hex

__all__ = [
    "RememberConfig",
    "RememberMeMiddleware",
    "RememberOptions",
    "is_series_key",
    "issue",
    "last_used",
    "load_all",
    "read_token",
    "revoke_series",
    "revoke_user",
    "series_key",
    "series_of",
]


security_log = logging.getLogger("sessionware.security")

_CONFIG = "sessionware.remember"
_PENDING = "sessionware.remember.cookie"
_MAX_DAYS = 400  # RFC 6265bis caps Max-Age/Expires at 400 days
_CURRENT = "0"
_PENDING_MARK = "p"
#: Validators issued but never presented, per series: older ones are retired (they
#: still work for ``grace`` seconds). Far more than a browser's parallel restores.
_MAX_PENDING = 16
#: Retired validators kept for their grace window, per series: a replay flood cannot
#: grow a record without bound.
_MAX_RETIRED = 32
#: Session metadata: this restored session's browser has not shown its new validator yet.
_UNCONFIRMED = "rc"


class RememberOptions(TypedDict, total=False):
    """:class:`RememberConfig`'s options, so ``RememberMeMiddleware(**options)`` is typed."""

    cookie_name: str
    ttl: float | timedelta
    grace: float | timedelta
    secure: bool | None
    on_theft: Literal["series", "user"]


@dataclass(frozen=True, kw_only=True)
class RememberConfig:
    """Remember-me settings, checked when built; times are seconds or ``timedelta``."""

    cookie_name: str = "__Host-remember"
    ttl: float | timedelta = 30 * 86400
    grace: float | timedelta = 30
    secure: bool | None = None  # None: follow the session cookie's decision
    #: On theft, end the series and its sessions ("series"), or every session and
    #: series of the user ("user", Jaspan's "delete all remembered sessions").
    on_theft: Literal["series", "user"] = "series"

    def __post_init__(self) -> None:
        ttl = seconds(self.ttl, "remember-me ttl")
        assert ttl is not None
        if ttl > _MAX_DAYS * 86400:
            raise ConfigurationError("remember-me ttl is capped at 400 days (RFC 6265bis)")
        grace = self.grace.total_seconds() if isinstance(self.grace, timedelta) else self.grace
        if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
            raise ConfigurationError("remember-me grace must be seconds >= 0 (0 in tests)")
        if grace >= ttl:
            raise ConfigurationError("remember-me grace must be shorter than its ttl")
        if self.on_theft not in ("series", "user"):
            raise ConfigurationError("on_theft must be 'series' or 'user'")
        object.__setattr__(self, "ttl", ttl)
        object.__setattr__(self, "grace", float(grace))
        if not valid_name(self.cookie_name):
            raise ConfigurationError(f"cookie_name {self.cookie_name!r} is not a valid cookie name")
        if is_prefixed(self.cookie_name) and self.secure is False:
            raise ConfigurationError(
                f"a cookie named {self.cookie_name!r} must be Secure: for plain-http "
                "development use a name without the __Host-/__Secure- prefix"
            )

    @property
    def ttl_seconds(self) -> float:
        """The series lifetime in seconds."""
        return self.ttl  # type: ignore[return-value]

    @property
    def grace_seconds(self) -> float:
        """The reuse-grace window in seconds."""
        return self.grace  # type: ignore[return-value]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RememberConfig:
        """Build from ``REMEMBER_ME_TTL`` and ``REMEMBER_ME_GRACE`` (seconds) when set."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}
        for var, name in (("REMEMBER_ME_TTL", "ttl"), ("REMEMBER_ME_GRACE", "grace")):
            if env.get(var):
                try:
                    kwargs[name] = float(env[var])
                except ValueError:
                    raise ConfigurationError(f"{var} must be a number of seconds") from None
        kwargs.update(overrides)
        return cls(**kwargs)


# -- tokens and records ---------------------------------------------------------------


def series_key(selector: str) -> str:
    """The store key of a series: never the selector itself, never a session key's shape."""
    return "rm:" + sha256_hex(selector)


def is_series_key(key: str) -> bool:
    """Whether a key from a user's index names a remember-me series (not a session)."""
    return key[:3] == "rm:"


def _signer(session: Session) -> Signer:
    return Signer(session.config.secrets, salt="remember")


def read_token(value: str, signer: Signer) -> tuple[str, str] | None:
    """``(selector, validator)`` from a cookie value whose signature verifies, else None."""
    if len(value) > 200:
        return None
    try:
        return parse_split_token(signer.unsign(value))
    except InvalidSignatureError:
        return None


def config_of(scope: Mapping[str, Any]) -> RememberConfig | None:
    """The :class:`RememberConfig` of the middleware serving this request, if any."""
    cfg = scope.get(_CONFIG)
    return cfg if isinstance(cfg, RememberConfig) else None


def _clock(session: Session) -> float:
    return (session.config.clock or time.time)()


def _presented(scope: Mapping[str, Any], cfg: RememberConfig) -> list[str]:
    return cookie_values(cookie_header(scope.get("headers", ())), cfg.cookie_name)


async def issue(
    scope: Scope, session: Session, user_id: str, cfg: RememberConfig, generation: int
) -> str:
    """Start a new series for ``user_id`` under its revocation ``generation``, queue its
    cookie, and return its store key."""
    now = _clock(session)
    selector, validator = new_split_token()
    key = series_key(selector)
    ua = header(scope.get("headers", ()), b"user-agent")
    fields = {
        "u": user_id,
        "c": str(int(now)),
        "x": str(int(now + cfg.ttl_seconds)),
        "g": str(generation),
        "v:" + sha256_hex(validator): _CURRENT,
        "ua": ua[:256] if ua else "",
        "ip": client_ip(scope, session.config.trust_proxy) or "",
        # A public handle, so "your devices" can list and revoke a remembered browser
        # whose session has ended while its remember-me cookie lives on.
        "h": new_handle(),
    }
    await session.store.create(key, fields, cfg.ttl_seconds)
    await session.store.link(user_id, key)
    token = _signer(session).sign(f"{selector}:{validator}")
    scope[_PENDING] = (token, int(cfg.ttl_seconds))
    return key


async def load_all(
    store: Store, keys: list[str], owner_field: str, user_id: str
) -> list[tuple[str, Mapping[str, str]]]:
    """Load ``keys`` concurrently (one pipelined round trip on Redis) and keep the
    records that still belong to ``user_id``."""
    loaded = await asyncio.gather(*(store.load(key) for key in keys))
    return [
        (key, fields)
        for key, fields in zip(keys, loaded, strict=True)
        if fields is not None and fields.get(owner_field) == user_id
    ]


async def series_of(store: Store, user_id: str) -> list[tuple[str, Mapping[str, str]]]:
    """The user's live remember-me series: ``(store key, record)`` pairs."""
    keys = [key for key in await store.keys_of(user_id) if is_series_key(key)]
    return await load_all(store, keys, "u", user_id)


def last_used(fields: Mapping[str, str]) -> float | None:
    """When a series was last used to sign in (its creation if never), in epoch seconds."""
    used = [_stamp(v) for name, v in fields.items() if name[:2] == "v:" and v != _CURRENT]
    created = fields.get("c")
    return max(used, default=float(created) if created is not None else None)


def _stamp(value: str) -> float:
    """The time in a validator's state: when it was issued (pending) or retired."""
    return float(value[1:] if value[:1] == _PENDING_MARK else value)


async def revoke_series(store: Store, key: str, user_id: str | None = None) -> None:
    """Delete one series (and its index entry)."""
    if user_id is None:
        fields = await store.load(key)
        user_id = fields.get("u") if fields else None
    await store.delete(key)
    if user_id:
        await store.unlink(user_id, key)


async def adopt(store: Store, key: str, generation: int, now: float) -> bool:
    """Move a series that survives a sweep (the device kept) to the new ``generation``."""
    fields = await store.load(key)
    if fields is None:
        return False
    left = float(fields.get("x", "0")) - now
    return left > 0 and await store.apply(key, {"g": str(generation)}, [], left)


async def revoke_user(store: Store, user_id: str, *, keep: str | None = None) -> int:
    """Delete every series of ``user_id`` except ``keep``; return how many."""
    n = 0
    for key in await store.keys_of(user_id):
        if not is_series_key(key):
            continue
        if keep is None or not hmac.compare_digest(key, keep):
            await revoke_series(store, key, user_id)
            n += 1
    return n


async def forget(scope: Scope, session: Session) -> None:
    """Revoke this session's series and the one the browser presents; clear the cookie."""
    from sessionware.auth import SERIES

    series = session.get_meta(SERIES)
    if series:
        await revoke_series(session.store, series)
    cfg = config_of(scope)
    if cfg is None:
        return
    presented = _presented(scope, cfg)
    signer = _signer(session)
    for value in presented:
        token = read_token(value, signer)
        if token is not None:
            await revoke_series(session.store, series_key(token[0]))
    if presented or series:
        scope[_PENDING] = ("", 0)


_State = Literal["current", "pending", "grace"]


def _match(fields: Mapping[str, str], digest: str, now: float, grace: float) -> _State | None:
    """``"current"``, ``"pending"``, ``"grace"`` or None (theft) for a validator's hash."""
    found: str | None = None
    for name, value in fields.items():
        # Compare against every entry, not stopping early (no timing hint).
        if name[:2] == "v:" and hmac.compare_digest(name[2:], digest):
            found = value
    if found is None:
        return None
    if found == _CURRENT:
        return "current"
    if found[:1] == _PENDING_MARK:
        return "pending"
    try:
        return "grace" if now - float(found) < grace else None
    except ValueError:
        return None


def _rotation(
    fields: Mapping[str, str], digest: str, state: _State, new: str | None, now: float, grace: float
) -> tuple[dict[str, str], list[str]]:
    """The series update for one use: ``(fields to set, fields to delete)``.

    A new pending validator is added (unless ``new`` is None: a confirmation only).
    Presenting a pending one proves the browser got it: it becomes current and every
    other live validator is retired now (their grace clock starts). Presenting the
    current one retires nothing, since the response carrying its replacement may never
    arrive. Retired validators past their grace are dropped and surplus pending ones
    retired: a record never holds more than ``_MAX_PENDING`` pending and
    ``_MAX_RETIRED`` retired validators.
    """
    stamp = str(int(now))
    used = "v:" + digest
    sets = {} if new is None else {"v:" + sha256_hex(new): _PENDING_MARK + stamp}
    dels: list[str] = []
    pending: list[tuple[float, str]] = []
    retired: list[tuple[float, str]] = []
    for name, value in fields.items():
        if name[:2] != "v:" or name == used:
            continue
        live = value == _CURRENT or value[:1] == _PENDING_MARK
        if state == "pending" and live:
            sets[name] = stamp
        elif value[:1] == _PENDING_MARK:
            pending.append((_stamp(value), name))
        elif value != _CURRENT:
            if now - _stamp(value) >= grace:
                dels.append(name)
            else:
                retired.append((_stamp(value), name))
    if state == "pending":
        sets[used] = _CURRENT
    pending.sort()
    extra = 0 if new is None else 1
    for _, name in pending[: max(0, len(pending) + extra - _MAX_PENDING)]:
        sets[name] = stamp
        retired.append((now, name))
    retired.sort()
    dels.extend(name for _, name in retired[: max(0, len(retired) - _MAX_RETIRED)])
    return sets, dels


async def _theft(store: Store, key: str, user: str, cfg: RememberConfig) -> None:
    from sessionware.auth import logout_everywhere, revoke_series_sessions

    await revoke_series(store, key, user)
    if cfg.on_theft == "user":
        ended = await logout_everywhere(store, user)
    else:
        ended = await revoke_series_sessions(store, user, key)
    security_log.warning(
        "remember-me token reused outside the grace window (possible theft): "
        "series revoked with %d session(s) user=%s",
        ended,
        user,
    )


async def _restore(scope: Scope, session: Session, cfg: RememberConfig) -> None:
    """Log the browser back in from its remember-me cookie, or clear a bad cookie."""
    from sessionware.auth import begin

    store = session.store
    signer = _signer(session)
    for value in _presented(scope, cfg):
        token = read_token(value, signer)
        if token is None:
            continue
        selector, validator = token
        key = series_key(selector)
        fields = await store.load(key)
        if fields is None or "u" not in fields:
            continue
        user, now = fields["u"], _clock(session)
        expires = float(fields.get("x", "0"))
        if expires <= now:
            await revoke_series(store, key, user)
            security_log.info("remember-me series expired user=%s", user)
            break
        generation = fields.get("g", "0")
        if generation != str(await _generation.current(store, user)):
            # Issued before the user signed out everywhere (or changed the password).
            await revoke_series(store, key, user)
            security_log.info("remember-me series from before a revocation refused user=%s", user)
            break
        digest = sha256_hex(validator)
        state = _match(fields, digest, now, cfg.grace_seconds)
        if state is None:
            await _theft(store, key, user, cfg)
            break
        rotated = state != "grace"
        if rotated:
            new = new_split_token()[1]
            sets, dels = _rotation(fields, digest, state, new, now, cfg.grace_seconds)
            if not await store.apply(key, sets, dels, expires - now):
                break  # revoked meanwhile
            scope[_PENDING] = (signer.sign(f"{selector}:{new}"), int(expires - now))
        if not await begin(
            session, scope, user, fresh=False, series=key, generation=int(generation)
        ):
            security_log.info("remember-me restore lost a race with a revocation user=%s", user)
            break
        if rotated:
            session.set_meta(_UNCONFIRMED, "1")
        security_log.info("restored from remember-me user=%s", user)
        return
    scope[_PENDING] = ("", 0)


async def _confirm(scope: Scope, session: Session, cfg: RememberConfig) -> None:
    """On the first request after a restore, see whether the browser got the new validator.

    If it did, that validator becomes current and the older ones start their grace
    clock at once, so a copy of the old cookie stops working within ``grace`` seconds
    instead of at the owner's next restore. Checked once per restore.
    """
    from sessionware.auth import SERIES

    session.set_meta(_UNCONFIRMED, None)
    series = session.get_meta(SERIES)
    signer = _signer(session)
    for value in _presented(scope, cfg):
        token = read_token(value, signer)
        if token is None or series is None or series_key(token[0]) != series:
            continue
        fields = await session.store.load(series)
        now = _clock(session)
        if fields is None:
            return
        digest = sha256_hex(token[1])
        if _match(fields, digest, now, cfg.grace_seconds) == "pending":
            sets, dels = _rotation(fields, digest, "pending", None, now, cfg.grace_seconds)
            left = float(fields.get("x", "0")) - now
            if left > 0:
                await session.store.apply(series, sets, dels, left)
            return


async def _unavailable(send: Send) -> None:
    body = b"Service temporarily unavailable. Try again shortly.\n"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"5"),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RememberMeMiddleware:
    """Restore logins from the remember-me cookie; place it *inside* SessionMiddleware.

    With Starlette: ``app.add_middleware(RememberMeMiddleware)`` **before**
    ``app.add_middleware(SessionMiddleware, ...)`` (the last added runs first).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: RememberConfig | None = None,
        **options: Unpack[RememberOptions],
    ) -> None:
        if config is not None and options:
            raise ConfigurationError("pass either config=RememberConfig(...) or options, not both")
        self.app = app
        self.config = config or RememberConfig(**options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = scope.get("session")
        if not isinstance(session, Session):
            raise ConfigurationError("RememberMeMiddleware must run inside SessionMiddleware")
        cfg = self.config
        scope[_CONFIG] = cfg
        from sessionware.auth import USER

        try:
            if session.get_meta(USER) is None:
                if _presented(scope, cfg):
                    await _restore(scope, session, cfg)
            elif session.get_meta(_UNCONFIRMED) is not None:
                await _confirm(scope, session, cfg)
        except StoreUnavailableError:
            # Fail closed and loudly, never a silently anonymous user.
            security_log.error("remember-me restore failed: the store is unavailable")
            await _unavailable(send)
            return

        async def send_wrapper(message: Message) -> None:
            pending = scope.get(_PENDING)
            if message["type"] == "http.response.start" and pending is not None:
                value, max_age = pending
                set_cookie = format_set_cookie(
                    cfg.cookie_name,
                    value,
                    path="/",
                    max_age=max_age,
                    secure=self._secure(scope, session),  # only when a cookie goes out
                    http_only=True,
                    same_site="lax",
                )
                cookie = (b"set-cookie", set_cookie.encode())
                message["headers"] = [*message.get("headers", ()), cookie]
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _secure(self, scope: Scope, session: Session) -> bool:
        cfg = self.config
        if is_prefixed(cfg.cookie_name):
            return True
        if cfg.secure is not None:
            return cfg.secure
        # The session cookie's own Secure decision, so both cookies always agree.
        return session.secure_for(scope)
