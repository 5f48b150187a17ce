"""Errors raised by sessionware.

The tree::

    SessionwareError
    ├── ConfigurationError (also ValueError)   bad settings, raised at start-up
    ├── SessionTooLargeError (also ValueError) a payload over ``max_size``
    ├── InvalidSignatureError                  one opaque error for any bad signed value
    ├── HasherBusyError                        every password-hashing slot stayed taken (503)
    ├── HTTPError                              a request must be answered with this status
    │   ├── LoginRequiredError                 nobody is logged in (401)
    │   ├── ReauthenticationRequiredError      the login is not recent enough (401)
    │   ├── TooManyAttemptsError               over a login throttle budget (429)
    │   └── SessionLimitError                  the user is signed in on too many devices (409)
    └── StoreError                             a store could not do its job
        ├── StoreUnavailableError              the backend is down or timed out (503)
        └── SessionCollisionError              ``create`` found the key taken

A value that is not JSON-serialisable raises the builtin ``TypeError``. The first three
``HTTPError`` kinds are also importable where they were first defined
(``sessionware.auth``, ``sessionware.throttle``).
"""

from __future__ import annotations


class SessionwareError(Exception):
    """Root of every error sessionware raises on purpose."""


class ConfigurationError(SessionwareError, ValueError):
    """A setting is wrong; the message says how to fix it."""


class SessionTooLargeError(SessionwareError, ValueError):
    """The session payload would exceed the configured ``max_size``."""


class InvalidSignatureError(SessionwareError):
    """A signed value did not verify (tampered, truncated, wrong secret or purpose)."""


class HasherBusyError(SessionwareError):
    """Password hashing stayed at its concurrency cap for the whole wait; answer 503.

    ``retry_after`` is a suggested wait in seconds, for a ``Retry-After`` header.
    """

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HTTPError(SessionwareError):
    """Answer the request with ``status_code``, ``detail`` and ``headers``.

    sessionware's own, so the layers that raise it need no framework: each adapter
    turns it into its framework's response (the ASGI middleware answers it itself).
    """

    def __init__(
        self, status_code: int, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers or {})


class LoginRequiredError(HTTPError):
    """Nobody is logged in: a 401 (``auth.require_user`` and the guards raise it)."""

    def __init__(self) -> None:
        super().__init__(401, "Not authenticated")


class ReauthenticationRequiredError(HTTPError):
    """The login is not recent (or came from remember-me): confirm the password first (401)."""

    def __init__(self) -> None:
        super().__init__(401, "Please confirm your password")


class TooManyAttemptsError(HTTPError):
    """Too many attempts: a 429 with ``Retry-After`` (RFC 6585 §4), ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429, "Too many attempts. Try again later.", {"Retry-After": str(retry_after)}
        )
        self.retry_after = retry_after


class SessionLimitError(HTTPError):
    """A login refused: the user holds ``max_sessions_per_user`` sessions already and
    ``max_sessions_policy="refuse"`` (409). The user signs out of a device first."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            409,
            f"Already signed in on {limit} devices: sign out of one of them first.",
        )
        self.limit = limit


class StoreError(SessionwareError):
    """A store failed to load or write a record."""


class StoreUnavailableError(StoreError):
    """The store's backend is unreachable or timed out; the request gets a 503."""


class SessionCollisionError(StoreError):
    """``Store.create`` was asked for a key that already exists."""
