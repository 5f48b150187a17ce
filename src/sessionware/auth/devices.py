"""A user's devices, as "your devices" lists them: live sessions and remembered browsers.

The listing is one :mod:`operation <sessionware._ops>` (``_sessions_of``);
:func:`sessions_of` awaits it, :func:`sessionware.auth.sync.sessions_of` runs it with
plain calls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from sessionware._ops import Op
from sessionware.auth import index
from sessionware.auth import series as _series
from sessionware.auth._run import arunner
from sessionware.auth._view import RequestLike, as_view, base_session
from sessionware.auth.fields import AUTH_TIME, HANDLE, IP, REMEMBERED, SERIES, USER_AGENT
from sessionware.request import RequestView
from sessionware.stores.base import Store

__all__ = ["DeviceSession", "StoreOrRequest", "current_key", "sessions_of", "split"]

#: A store (admin tools, scripts), or a request (see :data:`RequestLike`) whose
#: session is then marked as the current device.
StoreOrRequest: TypeAlias = Store | RequestLike


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
    #: When the browser's remember-me token expires (epoch seconds), if it holds one.
    remembered_until: float | None = None


def split(target: StoreOrRequest) -> tuple[Store, RequestView | None]:
    """The store, and the request's view when ``target`` is a request (its session is
    then the "current" one)."""
    if isinstance(target, Store):
        return target, None
    v = as_view(target)
    return base_session(v).store, v


def current_key(view: RequestView | None) -> str | None:
    """The store key of the request's stored session, or None."""
    if view is None:
        return None
    session = base_session(view)
    return None if session.is_new else session.key


def _num(value: str | None) -> float | None:
    """A stored time, or None when absent or unreadable (a damaged record lists, not fails)."""
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is None or math.isfinite(number) else None


def _sessions_of(target: StoreOrRequest, user_id: str) -> Op[list[DeviceSession]]:
    """:func:`sessions_of`, as an operation."""
    _, request = split(target)
    current = current_key(request)
    records = yield from index.records(user_id)
    series = {k: f for k, f in (yield from _series.series_of(user_id)) if _series.is_sound(f)}
    # One browser is one row: the sessions one remember-me series made (the one the
    # browser lost at a restart, the one its cookie restored, parallel tabs) are the
    # same device, and revoking that row ends them all with the series.
    chosen: dict[str, tuple[str, Mapping[str, str]]] = {}
    for key, f in records:
        group = f.get(SERIES) or key
        held = chosen.get(group)
        if held is None or _before(held, (key, f), current):
            chosen[group] = (key, f)
    out = [
        DeviceSession(
            handle=f.get(HANDLE, ""),
            created=_num(f.get("c")),
            last_seen=_num(f.get("a")),
            authenticated_at=_num(f.get(AUTH_TIME)),
            ip=f.get(IP),
            user_agent=f.get(USER_AGENT),
            current=current is not None and index.same(key, current),
            remembered=f.get(REMEMBERED) == "1",
            remembered_until=_until(series.get(f.get(SERIES) or "")),
        )
        for key, f in chosen.values()
    ]
    for key, f in series.items():
        if key in chosen or not f.get("h"):
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
                remembered_until=_until(f),
            )
        )
    out.sort(key=lambda d: d.last_seen or 0, reverse=True)
    return out


def _before(
    held: tuple[str, Mapping[str, str]], other: tuple[str, Mapping[str, str]], current: str | None
) -> bool:
    """Whether ``held`` stands for its browser less well than ``other``: the current
    session wins, then the last seen, then the last signed in, then a restored one (the
    session a browser restart left behind is the one it no longer has)."""

    def rank(kf: tuple[str, Mapping[str, str]]) -> tuple[bool, float, float, bool]:
        key, f = kf
        this = current is not None and index.same(key, current)
        restored = f.get(REMEMBERED) == "1"
        return (this, _num(f.get("a")) or 0, _num(f.get(AUTH_TIME)) or 0, restored)

    return rank(other) > rank(held)


def _until(fields: Mapping[str, str] | None) -> float | None:
    """A series record's absolute expiry, or None without a series."""
    return _num(fields.get("x")) if fields is not None else None


async def sessions_of(target: StoreOrRequest, user_id: str) -> list[DeviceSession]:
    """The user's devices, most recently seen first, each with a revocation handle.

    A device is a live session (the sessions one remember-me series made count as one
    browser: the current one, else the last seen, is listed), or a remember-me series
    whose session has ended (it would sign the browser back in, so it is listed with
    ``session_active=False``).
    """
    return await arunner(target, "sessionware.auth.sync.sessions_of").arun(
        _sessions_of(target, user_id)
    )
