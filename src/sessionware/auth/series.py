"""Remember-me series records: their settings, store keys and format, and the cookie
a request sends; a leaf module.

The cookie holds ``selector:validator``, signed for the ``"remember"`` purpose. The
store keeps the series under ``"rm:" + sha256(selector)`` with only SHA-256 hashes
of validators (Paragon Initiative's split tokens), so a store dump yields no usable
cookie.

Record fields: ``u`` user id, ``c`` created, ``x`` absolute expiry, ``g`` the
user's revocation generation when issued (see :mod:`sessionware.auth.generation`),
``ua``/``ip``/``h`` device and handle, and one ``v:<sha256 of a validator>`` per
validator: ``"0"`` current, ``"p<time>"`` pending since then, or the time it was
retired. Series are listed in their user's own index, beside the user's sessions:
their ``rm:`` keys never take the shape of a session key, so no user id can make
one family read as the other.

The cookie a request is to send waits in ``view.state`` (:func:`queue_cookie`, the
last value wins) until :func:`send_cookie` hands it to ``view.add_cookie`` at the end
of a restore, login or logout: one Set-Cookie per operation.

Everything here that touches the store is an :mod:`operation <sessionware._ops>`
yielding :class:`~sessionware.stores.base.Call` values, with no store argument: the
login, logout and restore operations that use it run on either face of the store
(``await`` in an ASGI app, plain calls in a WSGI app), one implementation for both.

This module owns that format and imports nothing else of :mod:`sessionware.auth`:
the login path (which issues and revokes series) and :mod:`sessionware.remember`
(which restores from them, on top of auth) both build on it, so neither imports the
other's internals and there is no import cycle.
"""

from __future__ import annotations

import hmac
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from sessionware._http import client_ip, cookie_header, header
from sessionware._ops import Op
from sessionware.config import seconds
from sessionware.cookies import cookie_values, format_set_cookie, is_prefixed, valid_name
from sessionware.exceptions import ConfigurationError, InvalidSignatureError
from sessionware.session import BaseSession
from sessionware.signing import Signer
from sessionware.stores.base import Call
from sessionware.tokens import new_handle, new_split_token, parse_split_token, sha256_hex

if TYPE_CHECKING:
    from sessionware.request import RequestView

__all__ = [
    "CURRENT",
    "PENDING_COOKIE",
    "PENDING_MARK",
    "SESSION_FIELD",
    "RememberConfig",
    "RememberOptions",
    "adopt",
    "clock",
    "config_of",
    "forget",
    "is_series_key",
    "is_sound",
    "issue",
    "last_used",
    "load_all",
    "presented",
    "queue_cookie",
    "read_token",
    "revoke_series",
    "revoke_user",
    "send_cookie",
    "series_key",
    "series_of",
    "signer",
    "stamp",
]

#: Where a request's RememberConfig, the remember-me cookie value it is to send, and
#: the last Set-Cookie queued for it live in the request's ``view.state``.
CONFIG_KEY = "sessionware.remember"
PENDING_COOKIE = "sessionware.remember.cookie"
SENT_COOKIE = "sessionware.remember.sent"
#: The session metadata field naming the series a session was made from (its store key).
SESSION_FIELD = "rm"
CURRENT = "0"
PENDING_MARK = "p"
_MAX_DAYS = 400  # RFC 6265bis caps Max-Age/Expires at 400 days


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


_DIGEST = re.compile(r"[0-9a-f]{64}")


def is_sound(fields: Mapping[str, str]) -> bool:
    """Whether ``fields`` reads as a series record as :func:`issue` and the restore write
    it: a user, finite times, validators named by their SHA-256 with a state that reads.
    A damaged or foreign record is then no series, never an error at sign-in."""
    user = fields.get("u")
    # login() takes only such user ids, and a restore signs the user in through it.
    if not user or len(user) > 256 or not user.isprintable():
        return False
    try:
        if not math.isfinite(float(fields["x"])):
            return False
        if not math.isfinite(float(fields.get("c", "0"))):
            return False
        for name, value in fields.items():
            if name[:2] == "v:" and not (
                _DIGEST.fullmatch(name[2:]) and (value == CURRENT or math.isfinite(stamp(value)))
            ):
                return False
    except (KeyError, ValueError):
        return False
    return True


def signer(session: BaseSession) -> Signer:
    """The remember-me cookie's signer (its own salt: no other token verifies as one)."""
    return Signer(session.config.secrets, salt="remember")


def read_token(value: str, signer: Signer) -> tuple[str, str] | None:
    """``(selector, validator)`` from a cookie value whose signature verifies, else None."""
    if len(value) > 200:
        return None
    try:
        return parse_split_token(signer.unsign(value))
    except InvalidSignatureError:
        return None


def config_of(view: RequestView) -> RememberConfig | None:
    """The :class:`RememberConfig` of the middleware serving this request, if any."""
    cfg = view.state.get(CONFIG_KEY)
    return cfg if isinstance(cfg, RememberConfig) else None


def clock(session: BaseSession) -> float:
    """The session's clock, now."""
    return session.core.clock()


def presented(view: RequestView, cfg: RememberConfig) -> list[str]:
    """The remember-me cookie values this request carries (any number, unverified)."""
    return cookie_values(cookie_header(view.headers), cfg.cookie_name)


def queue_cookie(view: RequestView, value: str, max_age: int) -> None:
    """Make ``value`` (``""`` clears) the remember-me cookie :func:`send_cookie` sends.

    The last value queued wins: a login that clears the old cookie and issues a new
    one sends one Set-Cookie, not two.
    """
    view.state[PENDING_COOKIE] = (value, max_age)


def send_cookie(view: RequestView, session: BaseSession) -> None:
    """Hand the queued remember-me cookie to the response (``view.add_cookie``), if any.

    Called once at the end of each operation (a restore, a login, a logout). The
    cookie goes out even when the session writes nothing, and is Secure exactly when
    the session cookie is, so both cookies of a response agree.
    """
    pending = view.state.pop(PENDING_COOKIE, None)
    cfg = config_of(view)
    if pending is None or cfg is None:
        return
    value, max_age = pending
    if is_prefixed(cfg.cookie_name):
        secure = True
    elif cfg.secure is not None:
        secure = cfg.secure
    else:
        secure = session.secure_for(view)
    set_cookie = format_set_cookie(
        cfg.cookie_name,
        value,
        path="/",
        max_age=max_age,
        secure=secure,
        http_only=True,
        same_site="lax",
    )
    if view.state.get(SENT_COOKIE) == set_cookie:
        return  # a second clear in one request (a failed restore, then a logout)
    view.state[SENT_COOKIE] = set_cookie
    view.add_cookie(set_cookie)


def issue(
    view: RequestView,
    session: BaseSession,
    user_id: str,
    cfg: RememberConfig,
    generation: int,
) -> Op[str]:
    """Start a new series for ``user_id`` under its revocation ``generation``, queue its
    cookie, and return its store key."""
    now = clock(session)
    selector, validator = new_split_token()
    key = series_key(selector)
    ua = header(view.headers, b"user-agent")
    fields = {
        "u": user_id,
        "c": str(int(now)),
        "x": str(int(now + cfg.ttl_seconds)),
        "g": str(generation),
        "v:" + sha256_hex(validator): CURRENT,
        "ua": ua[:256] if ua else "",
        "ip": client_ip(view.headers, view.client, session.config.trust_proxy) or "",
        # A public handle, so "your devices" can list and revoke a remembered browser
        # whose session has ended while its remember-me cookie lives on.
        "h": new_handle(),
    }
    yield Call("create", (key, fields, cfg.ttl_seconds))
    yield Call("link", (user_id, key))
    token = signer(session).sign(f"{selector}:{validator}")
    queue_cookie(view, token, int(cfg.ttl_seconds))
    return key


def load_all(
    keys: list[str], owner_field: str, user_id: str
) -> Op[list[tuple[str, Mapping[str, str]]]]:
    """Load ``keys`` and keep the records that still belong to ``user_id``.

    The loads go as one batch (concurrent on the async face: one round trip on Redis).
    """
    if not keys:
        return []
    loaded = yield [Call("load", (key,)) for key in keys]
    return [
        (key, fields)
        for key, fields in zip(keys, loaded, strict=True)
        if fields is not None and fields.get(owner_field) == user_id
    ]


def series_of(user_id: str) -> Op[list[tuple[str, Mapping[str, str]]]]:
    """The user's live remember-me series: ``(store key, record)`` pairs."""
    listed: list[str] = yield Call("keys_of", (user_id,))
    return (yield from load_all([key for key in listed if is_series_key(key)], "u", user_id))


def last_used(fields: Mapping[str, str]) -> float | None:
    """When a series was last used to sign in (its creation if never), in epoch seconds."""
    used = [stamp(v) for name, v in fields.items() if name[:2] == "v:" and v != CURRENT]
    created = fields.get("c")
    return max(used, default=float(created) if created is not None else None)


def stamp(value: str) -> float:
    """The time in a validator's state: when it was issued (pending) or retired."""
    return float(value[1:] if value[:1] == PENDING_MARK else value)


def revoke_series(key: str, user_id: str | None = None) -> Op[None]:
    """Delete one series (and its index entry)."""
    if user_id is None:
        fields = yield Call("load", (key,))
        user_id = fields.get("u") if fields else None
    yield Call("delete", (key,))
    if user_id:
        yield Call("unlink", (user_id, key))


def adopt(key: str, generation: int, now: float) -> Op[bool]:
    """Move a series that survives a sweep (the device kept) to the new ``generation``."""
    fields = yield Call("load", (key,))
    if fields is None:
        return False
    left = float(fields.get("x", "0")) - now
    if left <= 0:
        return False
    return bool((yield Call("apply", (key, {"g": str(generation)}, [], left))))


def revoke_user(user_id: str, *, keep: str | None = None) -> Op[int]:
    """Delete every series of ``user_id`` except ``keep``; return how many."""
    n = 0
    for key in (yield Call("keys_of", (user_id,))):
        if not is_series_key(key):
            continue
        if keep is None or not hmac.compare_digest(key, keep):
            yield from revoke_series(key, user_id)
            n += 1
    return n


def forget(view: RequestView, session: BaseSession) -> Op[None]:
    """Revoke this session's series and the one the browser presents; queue the clear."""
    series = session.get_meta(SESSION_FIELD)
    if series:
        yield from revoke_series(series)
    cfg = config_of(view)
    if cfg is None:
        return
    shown = presented(view, cfg)
    verifier = signer(session)
    for value in shown:
        token = read_token(value, verifier)
        if token is not None:
            yield from revoke_series(series_key(token[0]))
    if shown or series:
        queue_cookie(view, "", 0)
