"""starsessions' helpers on sessionware, for code moving from starsessions.

Most of starsessions maps to one line of sessionware (see the migration guide); these
are the ones where the one-liner would surprise:

- sessionware loads the session before the app runs, so :func:`load_session` has
  nothing to do and :class:`SessionAutoloadMiddleware` passes requests through;
- ``request.session.id`` on a session that was never stored draws a new id on the
  spot, while starsessions' ``get_session_id`` says None: :func:`get_session_id` does;
- regenerating deletes the old record at once here, so it is awaited.

Each takes what starsessions' took: a Starlette ``Request``/``HTTPConnection`` (or
anything with an ASGI ``scope``).
"""

from __future__ import annotations

from typing import Any, Protocol, TypedDict

from starlette.types import ASGIApp, Receive, Scope, Send

from sessionware.asgi import get_session
from sessionware.session import Session

__all__ = [
    "SessionAutoloadMiddleware",
    "SessionMetadata",
    "get_session_id",
    "get_session_metadata",
    "get_session_remaining_seconds",
    "is_loaded",
    "load_session",
    "regenerate_session_id",
]


class _Connection(Protocol):
    @property
    def scope(self) -> Scope: ...


class SessionMetadata(TypedDict):
    """starsessions' metadata: epoch seconds, and the cookie's lifetime (0: browser session)."""

    created: int
    last_access: int
    lifetime: int


def _session(connection: _Connection) -> Session:
    return get_session(connection.scope)


async def load_session(connection: _Connection) -> None:
    """Nothing to do: the session was loaded before the app ran (kept so starsessions code
    runs unchanged). Raises RuntimeError when no SessionMiddleware serves the app."""
    _session(connection)


def is_loaded(connection: _Connection) -> bool:
    """Whether a sessionware session is there: always, inside SessionMiddleware."""
    return isinstance(connection.scope.get("session"), Session)


def get_session_id(connection: _Connection) -> str | None:
    """The session's id, or None while it was never stored (no cookie was ever sent).

    ``request.session.id`` would draw a new id for a new session instead. The id is a
    secret: never log it.
    """
    session = _session(connection)
    return None if session.is_new else session.id


async def regenerate_session_id(connection: _Connection) -> str:
    """Give the session a new id, delete the old record, and return the new id
    (starsessions' was not awaited: it only renamed the record at the response)."""
    session = _session(connection)
    await session.regenerate()
    return session.id


def get_session_metadata(connection: _Connection) -> SessionMetadata:
    """When the session was created and last seen (now, for a new one), and the cookie's
    ``max_age`` as starsessions' ``lifetime``."""
    session = _session(connection)
    now = int(session.core.clock())
    max_age = session.config.cookie_max_age
    return {
        "created": int(session.created or now),
        "last_access": int(session.last_seen or now),
        "lifetime": int(max_age or 0),
    }


def get_session_remaining_seconds(connection: _Connection) -> float:
    """Seconds until the server ends the session: the sooner of its idle and absolute
    timeouts (starsessions counted the cookie's lifetime)."""
    session = _session(connection)
    now = session.core.clock()
    cfg = session.config
    created = session.created or now
    seen = session.last_seen or now
    return max(0.0, min(seen + cfg.idle, created + cfg.absolute) - now)


class SessionAutoloadMiddleware:
    """starsessions' autoloading, which sessionware always does: requests pass through.

    ``paths`` is accepted and ignored (every request has its session).
    """

    def __init__(self, app: ASGIApp, paths: Any = None) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
