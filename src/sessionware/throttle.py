"""Login and registration throttling: the public names, from :mod:`sessionware.auth.throttle`.

How the budgets work is described there and in docs/security.md, "Login throttling".
Only :func:`too_many_attempts` needs Starlette, and imports it when called.

Sync code uses the same throttles through their ``sync`` face
(``with throttle.sync.attempt(request, username) as attempt: ... attempt.succeeded()``);
its classes (``SyncAttempt``, ``SyncLoginThrottle``, ``SyncRegistrationThrottle``) are
importable from here, for type hints, beside the pinned ``__all__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessionware.auth.throttle import Attempt, LoginThrottle, RegistrationThrottle
from sessionware.auth.throttle import SyncAttempt as SyncAttempt
from sessionware.auth.throttle import SyncLoginThrottle as SyncLoginThrottle
from sessionware.auth.throttle import SyncRegistrationThrottle as SyncRegistrationThrottle
from sessionware.exceptions import TooManyAttemptsError

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = [
    "Attempt",
    "LoginThrottle",
    "RegistrationThrottle",
    "TooManyAttemptsError",
    "too_many_attempts",
]


def too_many_attempts(retry_after: int) -> Response:
    """A plain 429 Starlette response with ``Retry-After`` (RFC 6585 §4), for handlers
    that return one instead of raising :class:`TooManyAttemptsError`."""
    from starlette.responses import PlainTextResponse

    return PlainTextResponse(
        "Too many attempts. Try again later.\n",
        status_code=429,
        headers={"Retry-After": str(retry_after), "Cache-Control": "no-store"},
    )
