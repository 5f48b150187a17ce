"""Read the session cookies of Starlette's and Flask's cookie sessions, once, to move
their users to server-side sessions without logging anyone out.

For a transition period (as long as the old cookies live), pass the old cookie's
settings as ``legacy_cookies``::

    app.add_middleware(
        SessionMiddleware, store=store, secrets=[...],
        legacy_cookies=[StarletteCookie(secret_key=os.environ["OLD_SECRET_KEY"])],
    )

The first request that carries a valid old cookie (and no sessionware cookie) gets a
server-side session holding the old cookie's data, under a new id, and the old cookie
is cleared in the same response. A tampered, expired or wrongly signed old cookie is
no session at all. Parallel requests carrying the same old cookie join one session:
its id is derived from the old cookie with a keyed hash, so they find each other's
record instead of each making one. Once that session ends (logout, expiry), a copy of
the old cookie is refused: the store remembers, for the old cookie's lifetime, that it
was spent.

The old formats: Starlette signs ``base64(json)`` with itsdangerous'
``TimestampSigner(secret_key)``; Flask signs its tagged JSON with
``URLSafeTimedSerializer(secret_key, salt="cookie-session")`` (HMAC key derivation,
SHA-1). Both need the ``itsdangerous`` package (``pip install 'sessionware[migrate]'``);
Flask's format also needs Flask, which an app moving off it still has.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from sessionware._extras import requires
from sessionware.config import seconds
from sessionware.cookies import format_set_cookie
from sessionware.exceptions import ConfigurationError

__all__ = ["FlaskCookie", "LegacyCookie", "StarletteCookie", "adopted_id", "plain"]


@runtime_checkable
class LegacyCookie(Protocol):
    """An old session cookie sessionware can read once: its name, where it was set,
    how long it may live, and how to read a value (None when it does not verify)."""

    cookie_name: str
    path: str
    domain: str | None

    @property
    def lifetime(self) -> float:
        """Seconds an old cookie stays valid after it was signed."""

    def read(self, value: str) -> dict[str, Any] | None:
        """The session data in ``value``, or None if it is not a valid cookie of this kind."""

    def clear_cookie(self, secure: bool) -> str:
        """A Set-Cookie header value that deletes the old cookie in the browser."""


class _Cookie:
    """What both old formats share: where the cookie lives, and how to delete it."""

    cookie_name: str
    path: str
    domain: str | None
    max_age: float | timedelta | None

    def _check(self, what: str) -> None:
        if not self.cookie_name:
            raise ConfigurationError(f"{what}: cookie_name must be the old cookie's name")
        limit = seconds(self.max_age, f"{what} max_age")
        if limit is None:
            raise ConfigurationError(
                f"{what} needs max_age: old cookies are read only while they could still "
                "be valid (Starlette's default is 14 days, Flask's 31)"
            )
        object.__setattr__(self, "max_age", limit)

    @property
    def lifetime(self) -> float:
        """Seconds an old cookie stays valid after it was signed."""
        return float(self.max_age)  # type: ignore[arg-type]

    def clear_cookie(self, secure: bool) -> str:
        """A Set-Cookie that deletes the old cookie (same name, Path and Domain)."""
        return format_set_cookie(
            self.cookie_name,
            "",
            path=self.path,
            domain=self.domain,
            max_age=0,
            secure=secure,
            http_only=True,
            same_site="lax",
        )


@dataclass(frozen=True, kw_only=True)
class StarletteCookie(_Cookie):
    """The cookie of ``starlette.middleware.sessions.SessionMiddleware``.

    Pass the arguments that middleware had: ``secret_key``, and ``session_cookie``
    (here ``cookie_name``), ``max_age``, ``path``, ``domain`` if they were changed.
    """

    secret_key: str = field(repr=False)
    cookie_name: str = "session"
    max_age: float | timedelta | None = 14 * 24 * 3600
    path: str = "/"
    domain: str | None = None

    def __post_init__(self) -> None:
        if not self.secret_key:
            raise ConfigurationError("StarletteCookie needs the old secret_key")
        self._check("StarletteCookie")
        with requires("migrate"):
            from itsdangerous import TimestampSigner
        object.__setattr__(self, "_signer", TimestampSigner(str(self.secret_key)))

    def read(self, value: str) -> dict[str, Any] | None:
        """The data of a Starlette session cookie, or None (bad signature, expired, not JSON)."""
        from itsdangerous import BadData

        try:
            data = self._signer.unsign(value.encode("latin-1"), max_age=self.lifetime)  # type: ignore[attr-defined]
            loaded = json.loads(base64.b64decode(data))
        except (BadData, ValueError, UnicodeError):
            return None
        return _mapping(loaded)


@dataclass(frozen=True, kw_only=True)
class FlaskCookie(_Cookie):
    """The cookie of Flask's default (signed cookie) session.

    ``secret_key`` is the app's ``SECRET_KEY``; ``fallbacks`` its
    ``SECRET_KEY_FALLBACKS``; ``max_age`` its ``PERMANENT_SESSION_LIFETIME`` (Flask
    checks every cookie against it); ``cookie_name``, ``path`` and ``domain`` are
    ``SESSION_COOKIE_NAME``, ``_PATH`` and ``_DOMAIN`` if they were changed.
    """

    secret_key: str | bytes = field(repr=False)
    fallbacks: Sequence[str | bytes] = field(default=(), repr=False)
    cookie_name: str = "session"
    max_age: float | timedelta | None = 31 * 24 * 3600
    path: str = "/"
    domain: str | None = None
    salt: str = "cookie-session"

    def __post_init__(self) -> None:
        if not self.secret_key:
            raise ConfigurationError("FlaskCookie needs the old SECRET_KEY")
        self._check("FlaskCookie")
        with requires("migrate"):
            from itsdangerous import URLSafeTimedSerializer
        with requires("flask"):
            from flask.json.tag import TaggedJSONSerializer
        keys = [_bytes(k) for k in (*reversed(list(self.fallbacks)), self.secret_key)]
        serializer = URLSafeTimedSerializer(
            keys,  # itsdangerous: the newest key last
            salt=self.salt,
            serializer=TaggedJSONSerializer(),
            signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
        )
        object.__setattr__(self, "_serializer", serializer)

    def read(self, value: str) -> dict[str, Any] | None:
        """The data of a Flask session cookie, or None (bad signature, expired, not JSON)."""
        from itsdangerous import BadData

        try:
            loaded = self._serializer.loads(value, max_age=self.lifetime)  # type: ignore[attr-defined]
        except (BadData, ValueError, UnicodeError, KeyError):
            return None
        return _mapping(loaded)


def _bytes(key: str | bytes) -> bytes:
    return key if isinstance(key, bytes) else key.encode()


def _mapping(loaded: Any) -> dict[str, Any] | None:
    if not isinstance(loaded, Mapping):
        return None
    out = plain(loaded)
    return out if isinstance(out, dict) else None


def plain(value: Any) -> Any:
    """``value`` as plain JSON data: tuples become lists, keys become text, and what
    JSON cannot hold (Flask's tagged bytes, UUIDs, dates, Markup) becomes its text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def adopted_id(secret: str, cookie_name: str, value: str) -> str:
    """The session id an old cookie value becomes: a keyed hash, so every request that
    carries the same old cookie finds the same session, and nobody without the secret
    can tell which id that is."""
    mac = hmac.new(secret.encode(), f"legacy\0{cookie_name}\0{value}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()
