"""Logging users in and out on top of sessions, and the list of a user's devices.

Auth state is session *metadata* (not in the mapping the app sees): the user id, a
public handle, when the user authenticated, whether that was a real login (fresh)
or a remember-me restore, and the device (user agent, client IP). Every privilege
change goes through :func:`login`'s path, which regenerates the id first: the
library does it so apps cannot forget (Passport CVE-2022-25896, flask-session #173).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from sessionware import _generation, _series
from sessionware._csrf_token import new_secret
from sessionware._http import client_ip, header
from sessionware.exceptions import ConfigurationError, SessionwareError
from sessionware.session import CSRF_FIELD, Session
from sessionware.stores.base import Store
from sessionware.tokens import is_valid_handle, log_id, new_handle

__all__ = [
    "DeviceSession",
    "LoginRequiredError",
    "ReauthenticationRequiredError",
    "authenticated_at",
    "client_ip",
    "current_handle",
    "current_user_id",
    "is_recent_login",
    "is_remembered",
    "login",
    "logout",
    "logout_everywhere",
    "password_changed",
    "reauthenticate",
    "require_user",
    "requires_recent_login",
    "revoke",
    "sessions_of",
]

security_log = logging.getLogger("sessionware.security")

# Metadata field names (see sessionware.session: no leading dot, not "c"/"a"/"k").
USER = "uid"
HANDLE = "hdl"
AUTH_TIME = "at"
FRESH = "fr"
USER_AGENT = "ua"
IP = "ip"
SERIES = _series.SESSION_FIELD  # the remember-me series this session came from (its key)
REMEMBERED = "rr"  # "1" when the session was restored from remember-me

_UA_MAX = 256
_USER_ID_MAX = 256
#: Sessions restored from one series this close together are a browser's parallel tabs.
_SIBLING_WINDOW = 5.0

StoreOrRequest = Store | HTTPConnection


class LoginRequiredError(SessionwareError, HTTPException):
    """Nobody is logged in: a 401 in Starlette and FastAPI apps."""

    def __init__(self) -> None:
        HTTPException.__init__(self, 401, "Not authenticated")


class ReauthenticationRequiredError(SessionwareError, HTTPException):
    """The login is not recent (or came from remember-me): confirm the password first."""

    def __init__(self) -> None:
        HTTPException.__init__(self, 401, "Please confirm your password")


@dataclass(frozen=True, slots=True)
class DeviceSession:
    """One live session of a user, as "your devices" shows it: no id, no store key."""

    handle: str
    created: float | None
    last_seen: float | None
    authenticated_at: float | None
    ip: str | None
    user_agent: str | None
    current: bool
    remembered: bool
    #: False for a remembered browser whose session has ended: its remember-me cookie
    #: would still sign it in, so it is listed (and revocable) all the same.
    session_active: bool = True


# -- helpers ------------------------------------------------------------------


def _session(request: HTTPConnection) -> Session:
    session = request.scope.get("session")
    if not isinstance(session, Session):
        raise ConfigurationError("no sessionware session here: add SessionMiddleware to the app")
    return session


def _clock(session: Session) -> Callable[[], float]:
    return session.config.clock or time.time


def _split(target: StoreOrRequest) -> tuple[Store, HTTPConnection | None]:
    if isinstance(target, HTTPConnection):
        return _session(target).store, target
    return target, None


def _check_user_id(user_id: object) -> str:
    if not isinstance(user_id, str) or not user_id:
        raise TypeError("user_id must be a non-empty str")
    if len(user_id) > _USER_ID_MAX or not user_id.isprintable():
        raise ValueError(
            f"user_id must be printable text of at most {_USER_ID_MAX} characters "
            "(use the account's primary key, not free text)"
        )
    return user_id


def _same(a: str, b: str) -> bool:
    """Constant-time equality of two texts, any characters (compare_digest wants ASCII)."""
    return hmac.compare_digest(a.encode(), b.encode())


async def _rotate(session: Session) -> tuple[str | None, str | None]:
    """Regenerate the id and return ``(user, old store key)`` so the index can follow."""
    user = session.get_meta(USER)
    old = None if session.is_new else session.key
    await session.regenerate()
    return user, old


async def _relink(
    session: Session,
    user_id: str,
    old_user: str | None,
    old: str | None,
    generation: int,
    series: str | None = None,
) -> bool:
    """Store the session, index it under ``user_id``, then check nothing revoked it meanwhile.

    The check comes *after* the index entry (see :mod:`sessionware._generation`): a
    sweep either lists this session or this call sees the sweep's new generation, or
    the series deleted, and ends the session itself. Returns whether it stands.
    """
    store = session.store
    await session.save()  # the record exists before the index points at it
    if old is not None and old_user is not None:
        await store.unlink(old_user, old)
    key = session.key
    await store.link(user_id, key)
    revoked = await _generation.current(store, user_id) != generation
    if not revoked and series is not None:
        revoked = await store.load(series) is None
    if revoked:
        await session.destroy()
        await store.unlink(user_id, key)
        security_log.info("login undone: the user was signed out meanwhile user=%s", user_id)
    return not revoked


async def _limit(session: Session, user_id: str, series: str | None) -> None:
    """One session per remembered device, and at most ``max_sessions_per_user`` in all.

    A restore replaces the sessions its series made before (a client that drops the
    session cookie would otherwise mint one per request), except those made in the
    last few seconds: a browser's parallel tabs restore together, and ending each
    other's sessions would leave the browser with none. Past the cap, sessions of the
    same device go first, then the least recently seen.
    """
    store, current = session.store, session.key
    now = _clock(session)()
    others = [(k, f) for k, f in await _records(store, user_id) if not _same(k, current)]
    siblings = [kf for kf in others if series is not None and _same(kf[1].get(SERIES, ""), series)]
    for key, fields in siblings:
        if now - _num_or_zero(fields.get(AUTH_TIME)) > _SIBLING_WINDOW:
            await _end(store, None, user_id, key, fields, series_too=False)
            others.remove((key, fields))
    cap = session.config.max_sessions_per_user
    if cap is not None and len(others) >= cap:
        same = {k for k, _ in siblings}
        others.sort(key=lambda kf: (kf[0] not in same, _num_or_zero(kf[1].get("a"))))
        for key, fields in others[: len(others) - cap + 1]:
            await _end(store, None, user_id, key, fields, series_too=key not in same)
        security_log.info("session cap reached user=%s: oldest sessions ended", user_id)


async def begin(
    session: Session,
    scope: MutableMapping[str, Any],
    user_id: str,
    *,
    fresh: bool,
    series: str | None,
    generation: int | None = None,
) -> bool:
    """The login path shared by :func:`login` and the remember-me restore.

    ``generation`` is the user's revocation generation the caller's proof of identity
    belongs to (read before the password check, or recorded in the remember-me
    series). Returns False, with the new session already destroyed, when the user was
    signed out everywhere while this login was under way.
    """
    _check_user_id(user_id)
    if generation is None:
        generation = await _generation.current(session.store, user_id)
    previous = session.get_meta(USER)
    if previous is not None and previous != user_id:
        session.clear()  # another user's data never carries over (Django's flush)
    old_user, old = await _rotate(session)
    now = int(_clock(session)())
    ua = header(scope.get("headers", ()), b"user-agent")
    session.set_meta(USER, user_id)
    session.set_meta(HANDLE, new_handle())  # a new handle per login (flask-login #449)
    session.set_meta(AUTH_TIME, str(now))
    session.set_meta(FRESH, "1" if fresh else "0")
    session.set_meta(USER_AGENT, ua[:_UA_MAX] if ua else None)
    session.set_meta(IP, client_ip(scope, session.config.trust_proxy))
    session.set_meta(SERIES, series)
    session.set_meta(REMEMBERED, None if fresh else "1")
    # The CSRF secret is part of the login's own write: pages opened in parallel right
    # after it all read this one instead of each racing to create their own.
    session.set_meta(CSRF_FIELD, new_secret())
    if not await _relink(session, user_id, old_user, old, generation, series):
        return False
    await _limit(session, user_id, series)
    return True


# -- current user ---------------------------------------------------------------


def current_user_id(request: HTTPConnection) -> str | None:
    """The logged-in user's id, or None."""
    return _session(request).get_meta(USER)


def current_handle(request: HTTPConnection) -> str | None:
    """The public handle of this request's session ("this device" in a device list)."""
    return _session(request).get_meta(HANDLE)


def is_remembered(request: HTTPConnection) -> bool:
    """Whether this session was restored from a remember-me cookie (never *fresh*)."""
    return _session(request).get_meta(REMEMBERED) == "1"


def require_user(request: HTTPConnection) -> str:
    """The logged-in user's id; raises :class:`LoginRequiredError` (401) if nobody is."""
    user = current_user_id(request)
    if user is None:
        raise LoginRequiredError()
    return user


def authenticated_at(request: HTTPConnection) -> float | None:
    """When the user last typed their password (or was restored), in epoch seconds."""
    at = _session(request).get_meta(AUTH_TIME)
    return float(at) if at is not None else None


def is_recent_login(request: HTTPConnection, max_age: float) -> bool:
    """Whether the user proved their password within ``max_age`` seconds.

    A session restored from remember-me is never recent (Flask-Login's "fresh").
    """
    session = _session(request)
    at = session.get_meta(AUTH_TIME)
    if session.get_meta(USER) is None or session.get_meta(FRESH) != "1" or at is None:
        return False
    return _clock(session)() - float(at) <= max_age


def requires_recent_login(request: HTTPConnection, max_age: float) -> None:
    """Guard a sensitive action: raise :class:`ReauthenticationRequiredError` unless recent.

    ASVS 4.0.3 3.7.1 / 5.0 7.5.1: the app then asks for the password and calls
    :func:`reauthenticate`.
    """
    require_user(request)
    if not is_recent_login(request, max_age):
        raise ReauthenticationRequiredError()


# -- login and logout -------------------------------------------------------------


async def login(request: HTTPConnection, user_id: str, *, remember: bool = False) -> None:
    """Log ``user_id`` in: new session id, device details, index entry; maybe remember-me.

    Call it after the password checked out. Any remember-me cookie the browser already
    had is revoked; with ``remember=True`` a new series is issued (this needs
    :class:`~sessionware.remember.RememberMeMiddleware` inside ``SessionMiddleware``).
    """
    session = _session(request)
    cfg = _series.config_of(request.scope)
    if remember and cfg is None:
        raise ConfigurationError(
            "login(remember=True) needs RememberMeMiddleware inside SessionMiddleware "
            "(add it to the app before SessionMiddleware)"
        )
    _check_user_id(user_id)
    generation = await _generation.current(session.store, user_id)
    await _series.forget(request.scope, session)
    series = None
    if remember and cfg is not None:
        series = await _series.issue(request.scope, session, user_id, cfg, generation)
    if not await begin(
        session, request.scope, user_id, fresh=True, series=series, generation=generation
    ):
        raise LoginRequiredError()
    security_log.info("login user=%s session=%s", user_id, log_id(session.id))


async def reauthenticate(request: HTTPConnection) -> None:
    """Count a password confirmed again as a fresh login, and rotate the session id (ASVS 7.2.4)."""
    session = _session(request)
    user = require_user(request)
    generation = await _generation.current(session.store, user)
    old_user, old = await _rotate(session)
    session.set_meta(AUTH_TIME, str(int(_clock(session)())))
    session.set_meta(FRESH, "1")
    session.set_meta(REMEMBERED, None)
    session.set_meta(CSRF_FIELD, new_secret())
    if not await _relink(session, user, old_user, old, generation):
        raise LoginRequiredError()
    security_log.info("reauthenticated user=%s session=%s", user, log_id(session.id))


async def logout(request: HTTPConnection) -> None:
    """Delete the session (its cookie is cleared), and revoke and clear remember-me too."""
    session = _session(request)
    user = session.get_meta(USER)
    key = None if session.is_new else session.key
    await _series.forget(request.scope, session)
    await session.destroy()
    if user is not None and key is not None:
        await session.store.unlink(user, key)
        security_log.info("logout user=%s", user)


# -- a user's sessions -----------------------------------------------------------


async def _records(store: Store, user_id: str) -> list[tuple[str, Mapping[str, str]]]:
    """The user's live sessions (the index also lists remember-me series: skipped here)."""
    keys = [k for k in await store.keys_of(user_id) if not _series.is_series_key(k)]
    return await _series.load_all(store, keys, USER, user_id)


def _current_key(request: HTTPConnection | None) -> str | None:
    if request is None:
        return None
    session = _session(request)
    return None if session.is_new else session.key


def _num(value: str | None) -> float | None:
    return float(value) if value is not None else None


def _num_or_zero(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


async def sessions_of(target: StoreOrRequest, user_id: str) -> list[DeviceSession]:
    """The user's devices, most recently seen first, each with a revocation handle.

    A device is a live session, or a remember-me series whose session has ended (it
    would sign the browser back in, so it is listed with ``session_active=False``).
    """
    store, request = _split(target)
    current = _current_key(request)
    records = await _records(store, user_id)
    out = [
        DeviceSession(
            handle=f.get(HANDLE, ""),
            created=_num(f.get("c")),
            last_seen=_num(f.get("a")),
            authenticated_at=_num(f.get(AUTH_TIME)),
            ip=f.get(IP),
            user_agent=f.get(USER_AGENT),
            current=current is not None and _same(key, current),
            remembered=f.get(REMEMBERED) == "1",
        )
        for key, f in records
    ]
    in_use = {f.get(SERIES) for _, f in records}
    for key, f in await _series.series_of(store, user_id):
        if key in in_use or not f.get("h"):
            continue
        out.append(
            DeviceSession(
                handle=f["h"],
                created=_num(f.get("c")),
                last_seen=_series.last_used(f),
                authenticated_at=None,
                ip=f.get("ip") or None,
                user_agent=f.get("ua") or None,
                current=False,
                remembered=True,
                session_active=False,
            )
        )
    out.sort(key=lambda d: d.last_seen or 0, reverse=True)
    return out


async def _end(
    store: Store,
    request: HTTPConnection | None,
    user_id: str,
    key: str,
    fields: Mapping[str, str],
    *,
    series_too: bool = True,
) -> None:
    """End one session: through the request when it is the current one (cookies cleared).

    Its remember-me series goes first, so no restore can follow the session's end.
    """
    series = fields.get(SERIES)
    if series and series_too:
        await _series.revoke_series(store, series, user_id)
    if request is not None and key == _current_key(request):
        await logout(request)
        return
    await store.delete(key)
    await store.unlink(user_id, key)


async def revoke(target: StoreOrRequest, user_id: str, handle: str) -> bool:
    """End the session of ``user_id`` shown with ``handle`` (and its remember-me series).

    Returns whether one was found. Ask for the password before offering this (ASVS 5.0
    7.5.2). A handle of the wrong shape (any non-ASCII text, say) is simply not found.
    """
    if not is_valid_handle(handle):
        return False
    store, request = _split(target)
    for key, fields in await _records(store, user_id):
        if _same(fields.get(HANDLE, ""), handle):
            await _end(store, request, user_id, key, fields)
            series = fields.get(SERIES)
            if series:  # a restore that was under way when the series went
                await revoke_series_sessions(store, user_id, series)
            security_log.info("revoked one session of user=%s", user_id)
            return True
    for key, fields in await _series.series_of(store, user_id):
        if _same(fields.get("h", ""), handle):
            await _series.revoke_series(store, key, user_id)
            await revoke_series_sessions(store, user_id, key)
            security_log.info("revoked one remembered device of user=%s", user_id)
            return True
    return False


async def revoke_series_sessions(store: Store, user_id: str, series: str) -> int:
    """End every session of ``user_id`` spawned from remember-me ``series``; return how many.

    Call it after the series is gone: a restore racing it either is listed here or
    finds the series missing and ends its own session.
    """
    n = 0
    for key, fields in await _records(store, user_id):
        if _same(fields.get(SERIES, ""), series):
            await _end(store, None, user_id, key, fields, series_too=False)
            n += 1
    return n


async def logout_everywhere(
    target: StoreOrRequest, user_id: str, *, keep: HTTPConnection | None = None
) -> int:
    """Sign ``user_id`` out of every device but ``keep``'s: sessions and remember-me series.

    Returns how many sessions ended. Without ``keep`` every session ends, the current
    one included (its cookies cleared) when ``target`` is a request.
    """
    store, request = _split(target)
    kept_key = _current_key(keep)
    kept_series = _session(keep).get_meta(SERIES) if keep is not None and kept_key else None
    # First a new generation: any login or restore still under way undoes itself
    # (sessionware._generation), so what this sweep does not find cannot survive it.
    generation = await _generation.bump(store, user_id)
    if kept_series and keep is not None:
        now = _clock(_session(keep))()
        if not await _series.adopt(store, kept_series, generation, now):
            kept_series = None
    await _series.revoke_user(store, user_id, keep=kept_series)
    n = 0
    for key, fields in await _records(store, user_id):
        if kept_key is not None and _same(key, kept_key):
            continue
        # Their series went just above: no second delete per session.
        await _end(store, keep or request, user_id, key, fields, series_too=False)
        n += 1
    security_log.info("logout everywhere user=%s ended=%d", user_id, n)
    return n


async def password_changed(request: HTTPConnection, user_id: str) -> int:
    """After a password change: end every other session and every remember-me series,
    and give the current session a new id (ASVS 3.3.3 / 7.4.3; docs/security.md,
    "Ending sessions for good").

    Returns how many other sessions ended (for "3 other devices were signed out").
    """
    session = _session(request)
    await _series.forget(request.scope, session)
    session.set_meta(SERIES, None)
    keep = request if current_user_id(request) == user_id else None
    ended = await logout_everywhere(session.store, user_id, keep=keep)
    if keep is not None:
        await reauthenticate(request)
    security_log.info("password changed user=%s", user_id)
    return ended
