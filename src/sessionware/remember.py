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

Sync and async, one implementation: the step is one :mod:`operation
<sessionware._ops>` (``_on_request``, with the restore, the confirmation and the theft
response inside it) yielding store calls. :func:`on_request` awaits it on the
session's core; :func:`on_request_sync` runs it with plain calls, for a WSGI adapter
whose requests carry a :class:`~sessionware.session.SyncSession`. The record helpers
re-exported here for their old import path (``issue``, ``series_of``,
``revoke_series``...) stay coroutines over the operations of
:mod:`sessionware.auth.series`.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, Unpack

from sessionware import events as _events
from sessionware._ops import Op
from sessionware.auth import generation as _generation
from sessionware.auth import series as _series
from sessionware.auth._run import on_store
from sessionware.auth._view import async_session, base_session, client_ip, sync_session
from sessionware.auth.fields import HANDLE, IP, USER
from sessionware.auth.login import _begin
from sessionware.auth.revocation import _logout_everywhere, _revoke_series_sessions
from sessionware.auth.series import (
    CONFIG_KEY,
    CURRENT,
    PENDING_MARK,
    SESSION_FIELD,
    RememberConfig,
    RememberOptions,
    clock,
    is_series_key,
    is_sound,
    last_used,
    presented,
    queue_cookie,
    read_token,
    send_cookie,
    series_key,
    signer,
    stamp,
)
from sessionware.exceptions import ConfigurationError, SessionLimitError, StoreUnavailableError
from sessionware.request import RequestView, view_in
from sessionware.session import BaseSession, Session
from sessionware.stores.base import Call, Store
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
    "on_request_sync",
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


def _theft(
    store: Store,
    key: str,
    user: str,
    cfg: RememberConfig,
    session: BaseSession,
    client: str | None,
) -> Op[None]:
    # The series first, then its sessions: a restore racing this finds either.
    yield from _series.revoke_series(key, user)
    if cfg.on_theft == "user":
        ended = yield from _logout_everywhere(store, user, None)
    else:
        ended = yield from _revoke_series_sessions(user, key)
    _events.emit(
        _events.of(session),
        "remember_theft",
        user_id=user,
        client=client,
        reason=f"token reused outside the grace window (possible theft); {ended} session(s) ended",
    )


def _client(view: RequestView, session: BaseSession) -> str | None:
    return client_ip(view, session.config.trust_proxy)


def _restore(view: RequestView, session: BaseSession, cfg: RememberConfig) -> Op[None]:
    """Log the browser back in from its remember-me cookie, or clear a bad cookie."""
    store = session.store
    verifier = signer(session)
    for value in presented(view, cfg):
        token = read_token(value, verifier)
        if token is None:
            continue
        selector, validator = token
        key = series_key(selector)
        fields = yield Call("load", (key,))
        if fields is None or not is_sound(fields):
            continue
        user, now = fields["u"], clock(session)
        expires = float(fields.get("x", "0"))
        if expires <= now:
            yield from _series.revoke_series(key, user)
            security_log.info("remember-me series expired user=%s", user)
            break
        generation = fields.get("g", "0")
        if generation != str((yield from _generation.current(user))):
            # Issued before the user signed out everywhere (or changed the password).
            yield from _series.revoke_series(key, user)
            security_log.info("remember-me series from before a revocation refused user=%s", user)
            break
        digest = sha256_hex(validator)
        state = _match(fields, digest, now, cfg.grace_seconds)
        if state is None:
            yield from _theft(store, key, user, cfg, session, _client(view, session))
            break
        rotated = state != "grace"
        if rotated:
            new = new_split_token()[1]
            sets, dels = _rotation(fields, digest, state, new, now, cfg.grace_seconds)
            if not (yield Call("apply", (key, sets, dels, expires - now))):
                break  # revoked meanwhile
            queue_cookie(view, verifier.sign(f"{selector}:{new}"), int(expires - now))
        try:
            began = yield from _begin(
                session, view, user, fresh=False, series=key, generation=int(generation)
            )
        except SessionLimitError:
            break  # max_sessions_policy="refuse": the series is revoked, the login_failed sent
        if not began:
            security_log.info("remember-me restore lost a race with a revocation user=%s", user)
            break
        if rotated:
            session.set_meta(_UNCONFIRMED, "1")
        _events.emit(
            _events.of(session),
            "remember_restored",
            user_id=user,
            handle=session.get_meta(HANDLE),
            client=session.get_meta(IP),
            reason="remember-me cookie",
        )
        return
    queue_cookie(view, "", 0)


def _confirm(view: RequestView, session: BaseSession, cfg: RememberConfig) -> Op[None]:
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
        fields = yield Call("load", (series,))
        now = clock(session)
        if fields is None or not is_sound(fields):
            return
        digest = sha256_hex(token[1])
        if _match(fields, digest, now, cfg.grace_seconds) == "pending":
            sets, dels = _rotation(fields, digest, "pending", None, now, cfg.grace_seconds)
            left = float(fields.get("x", "0")) - now
            if left > 0:
                yield Call("apply", (series, sets, dels, left))
            return


def _on_request(view: RequestView, cfg: RememberConfig) -> Op[None]:
    """:func:`on_request`, as an operation."""
    session = base_session(view)
    view.state[CONFIG_KEY] = cfg  # login() and logout() find the settings here
    if session.get_meta(USER) is None:
        if presented(view, cfg):
            yield from _restore(view, session, cfg)
    elif session.get_meta(_UNCONFIRMED) is not None:
        yield from _confirm(view, session, cfg)
    send_cookie(view, session)


async def on_request(view: RequestView, cfg: RememberConfig) -> None:
    """What RememberMeMiddleware does before the app runs, on the request's view.

    Restores an anonymous browser's login from its cookie (or queues a bad cookie's
    clear), or checks once whether a restored browser got its new validator; then
    hands the remember-me cookie, if any, to the response. Raises
    :class:`~sessionware.exceptions.StoreUnavailableError` when the store is down.
    """
    return await async_session(view, "remember.on_request_sync").core.arun(_on_request(view, cfg))


def on_request_sync(view: RequestView, cfg: RememberConfig) -> None:
    """:func:`on_request` for a sync request (a :class:`~sessionware.session.SyncSession`),
    with plain store calls: the same operation."""
    return sync_session(view, "remember.on_request").core.run(_on_request(view, cfg))


# -- the record helpers, under their old import path ---------------------------------


async def issue(
    view: RequestView,
    session: Session,
    user_id: str,
    cfg: RememberConfig,
    generation: int,
) -> str:
    """Start a new series for ``user_id`` under its revocation ``generation``, queue its
    cookie, and return its store key."""
    return await session.core.arun(_series.issue(view, session, user_id, cfg, generation))


async def load_all(
    store: Store, keys: list[str], owner_field: str, user_id: str
) -> list[tuple[str, Mapping[str, str]]]:
    """Load ``keys`` and keep the records that still belong to ``user_id``."""
    return await on_store(store).arun(_series.load_all(keys, owner_field, user_id))


async def series_of(store: Store, user_id: str) -> list[tuple[str, Mapping[str, str]]]:
    """The user's live remember-me series: ``(store key, record)`` pairs."""
    return await on_store(store).arun(_series.series_of(user_id))


async def revoke_series(store: Store, key: str, user_id: str | None = None) -> None:
    """Delete one series (and its index entry)."""
    return await on_store(store).arun(_series.revoke_series(key, user_id))


async def revoke_user(store: Store, user_id: str, *, keep: str | None = None) -> int:
    """Delete every series of ``user_id`` except ``keep``; return how many."""
    return await on_store(store).arun(_series.revoke_user(user_id, keep=keep))


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
        view = view_in(scope)
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
