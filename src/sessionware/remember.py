"""Remember-me: split tokens in a long-lived cookie, rotated on use, with theft detection.

The cookie holds ``selector:validator``; the series record, with only hashes of
validators, is described in :mod:`sessionware.auth.series`. Using a token rotates its
validator (Jaspan 2006). The new validator is *pending* until the browser presents
it once: until then the old one stays valid, so a response lost on the way (a
closed tab, an aborted navigation) does not turn the owner's next visit into a
theft alarm. Once the new one is seen, every older validator is retired and still
accepted for ``grace`` seconds, because parallel requests of one browser all carry
it (Miller's post-mortem); after that, presenting a retired or unknown validator for
a known series is theft: the series and every session spawned from it are revoked.
A restored session is never *fresh*.

All of it works on the request's :class:`~sessionware.request.RequestView`:
:func:`on_request` is the whole per-request step, which :class:`RememberMeMiddleware`
runs for ASGI apps, and the cookie goes out through ``view.add_cookie``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, Unpack

from sessionware.auth import generation as _generation
from sessionware.auth._view import session_of
from sessionware.auth.fields import USER
from sessionware.auth.login import begin
from sessionware.auth.revocation import logout_everywhere, revoke_series_sessions
from sessionware.auth.series import (
    CONFIG_KEY,
    CURRENT,
    PENDING_MARK,
    SESSION_FIELD,
    RememberConfig,
    RememberOptions,
    clock,
    is_series_key,
    issue,
    last_used,
    load_all,
    presented,
    queue_cookie,
    read_token,
    revoke_series,
    revoke_user,
    send_cookie,
    series_key,
    series_of,
    signer,
    stamp,
)
from sessionware.exceptions import ConfigurationError, StoreUnavailableError
from sessionware.request import VIEW_KEY, RequestView
from sessionware.session import Session
from sessionware.stores.base import Store
from sessionware.tokens import new_split_token, sha256_hex

if TYPE_CHECKING:
    # Type names only: the middleware speaks raw ASGI, no framework is imported.
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "RememberConfig",
    "RememberMeMiddleware",
    "RememberOptions",
    "is_series_key",
    "issue",
    "last_used",
    "load_all",
    "on_request",
    "read_token",
    "revoke_series",
    "revoke_user",
    "series_key",
    "series_of",
]


security_log = logging.getLogger("sessionware.security")

#: Validators issued but never presented, per series: older ones are retired (they
#: still work for ``grace`` seconds). Far more than a browser's parallel restores.
_MAX_PENDING = 16
#: Retired validators kept for their grace window, per series: a replay flood cannot
#: grow a record without bound.
_MAX_RETIRED = 32
#: Session metadata: this restored session's browser has not shown its new validator yet.
_UNCONFIRMED = "rc"


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
    if found == CURRENT:
        return "current"
    if found[:1] == PENDING_MARK:
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
    now_text = str(int(now))
    used = "v:" + digest
    sets = {} if new is None else {"v:" + sha256_hex(new): PENDING_MARK + now_text}
    dels: list[str] = []
    pending: list[tuple[float, str]] = []
    retired: list[tuple[float, str]] = []
    for name, value in fields.items():
        if name[:2] != "v:" or name == used:
            continue
        live = value == CURRENT or value[:1] == PENDING_MARK
        if state == "pending" and live:
            sets[name] = now_text
        elif value[:1] == PENDING_MARK:
            pending.append((stamp(value), name))
        elif value != CURRENT:
            if now - stamp(value) >= grace:
                dels.append(name)
            else:
                retired.append((stamp(value), name))
    if state == "pending":
        sets[used] = CURRENT
    pending.sort()
    extra = 0 if new is None else 1
    for _, name in pending[: max(0, len(pending) + extra - _MAX_PENDING)]:
        sets[name] = now_text
        retired.append((now, name))
    retired.sort()
    dels.extend(name for _, name in retired[: max(0, len(retired) - _MAX_RETIRED)])
    return sets, dels


async def _theft(store: Store, key: str, user: str, cfg: RememberConfig) -> None:
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


async def _restore(view: RequestView, session: Session, cfg: RememberConfig) -> None:
    """Log the browser back in from its remember-me cookie, or clear a bad cookie."""
    store = session.store
    verifier = signer(session)
    for value in presented(view, cfg):
        token = read_token(value, verifier)
        if token is None:
            continue
        selector, validator = token
        key = series_key(selector)
        fields = await store.load(key)
        if fields is None or "u" not in fields:
            continue
        user, now = fields["u"], clock(session)
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
            queue_cookie(view, verifier.sign(f"{selector}:{new}"), int(expires - now))
        if not await begin(
            session, view, user, fresh=False, series=key, generation=int(generation)
        ):
            security_log.info("remember-me restore lost a race with a revocation user=%s", user)
            break
        if rotated:
            session.set_meta(_UNCONFIRMED, "1")
        security_log.info("restored from remember-me user=%s", user)
        return
    queue_cookie(view, "", 0)


async def _confirm(view: RequestView, session: Session, cfg: RememberConfig) -> None:
    """On the first request after a restore, see whether the browser got the new validator.

    If it did, that validator becomes current and the older ones start their grace
    clock at once, so a copy of the old cookie stops working within ``grace`` seconds
    instead of at the owner's next restore. Checked once per restore.
    """
    session.set_meta(_UNCONFIRMED, None)
    series = session.get_meta(SESSION_FIELD)
    verifier = signer(session)
    for value in presented(view, cfg):
        token = read_token(value, verifier)
        if token is None or series is None or series_key(token[0]) != series:
            continue
        fields = await session.store.load(series)
        now = clock(session)
        if fields is None:
            return
        digest = sha256_hex(token[1])
        if _match(fields, digest, now, cfg.grace_seconds) == "pending":
            sets, dels = _rotation(fields, digest, "pending", None, now, cfg.grace_seconds)
            left = float(fields.get("x", "0")) - now
            if left > 0:
                await session.store.apply(series, sets, dels, left)
            return


async def on_request(view: RequestView, cfg: RememberConfig) -> None:
    """What RememberMeMiddleware does before the app runs, on the request's view.

    Restores an anonymous browser's login from its cookie (or queues a bad cookie's
    clear), or checks once whether a restored browser got its new validator; then
    hands the remember-me cookie, if any, to the response. Raises
    :class:`~sessionware.exceptions.StoreUnavailableError` when the store is down.
    """
    session = session_of(view)
    view.state[CONFIG_KEY] = cfg  # login() and logout() find the settings here
    if session.get_meta(USER) is None:
        if presented(view, cfg):
            await _restore(view, session, cfg)
    elif session.get_meta(_UNCONFIRMED) is not None:
        await _confirm(view, session, cfg)
    send_cookie(view, session)


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
    Its work is :func:`on_request` on the view SessionMiddleware leaves in the scope;
    the cookie goes out with the response through ``view.add_cookie``.
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
        view = scope.get(VIEW_KEY)
        if view is None:
            raise ConfigurationError("RememberMeMiddleware must run inside SessionMiddleware")
        try:
            await on_request(view, self.config)
        except StoreUnavailableError:
            # Fail closed and loudly, never a silently anonymous user.
            security_log.error("remember-me restore failed: the store is unavailable")
            await _unavailable(send)
            return
        await self.app(scope, receive, send)
