"""From the request a caller passes to what auth needs: its session and the clock."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import HTTPConnection

from sessionware.exceptions import ConfigurationError
from sessionware.session import Session

__all__ = ["clock", "session_of"]


def session_of(request: HTTPConnection) -> Session:
    """The request's session; a clear error when SessionMiddleware is missing."""
    session = request.scope.get("session")
    if not isinstance(session, Session):
        raise ConfigurationError("no sessionware session here: add SessionMiddleware to the app")
    return session


def clock(session: Session) -> Callable[[], float]:
    """The session's clock (the configured one in tests, else ``time.time``)."""
    return session.config.clock or time.time
