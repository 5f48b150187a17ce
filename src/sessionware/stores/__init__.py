"""Session stores, :func:`from_url` to pick one from a URL, and :func:`redact_url` to
show such a URL without its password.

``RedisStore`` and ``PostgresStore`` import their drivers only when asked for, so
``import sessionware`` pulls in neither redis nor psycopg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from sessionware.exceptions import ConfigurationError
from sessionware.stores._redact import redact_url as redact_url
from sessionware.stores.base import Fields, Store
from sessionware.stores.memory import MemoryStore
from sessionware.stores.sqlite import SQLiteStore

if TYPE_CHECKING:
    from sessionware.stores.postgres import PostgresStore
    from sessionware.stores.redis import RedisStore

__all__ = [
    "Fields",
    "MemoryStore",
    "PostgresStore",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "from_url",
]

_LAZY = {"RedisStore": "sessionware.stores.redis", "PostgresStore": "sessionware.stores.postgres"}
_SCHEMES = (
    "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db, "
    "redis://host:port/db, rediss://, redis+sentinel://, redis+cluster://, postgresql://"
)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sessionware.stores' has no attribute {name!r}")


def from_url(url: str, **options: Any) -> Store:
    """Build a store from a URL such as ``SESSION_STORE``.

    ``memory://``, ``sqlite:///sessions.db`` (relative) or ``sqlite:////var/lib/app/s.db``
    (absolute); Redis and PostgreSQL URLs go to their stores' ``from_url``.
    A URL nobody understands fails with the list of forms that work.
    """
    if not isinstance(url, str) or "://" not in url:
        # The URL itself is not echoed: it may carry a password.
        raise ConfigurationError(f"bad store URL (no scheme): use one of {_SCHEMES}")
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        raise ConfigurationError(f"bad store URL (unreadable): use one of {_SCHEMES}") from None
    if scheme == "memory":
        return MemoryStore(**options)
    if scheme == "sqlite":
        path = unquote(url[len("sqlite://"):])
        if path.startswith("/"):
            path = path[1:]
        if not path:
            raise ConfigurationError("sqlite store URL needs a file: sqlite:///sessions.db")
        try:
            return SQLiteStore(path, **options)
        except ValueError as exc:
            raise ConfigurationError(f"bad sqlite store URL: {exc}") from None
        except OSError as exc:  # a folder, a file we may not open: say which, never a traceback
            reason = exc.strerror or type(exc).__name__
            raise ConfigurationError(
                f"the sqlite store file {path!r} cannot be used ({reason}): "
                "use sqlite:///sessions.db (relative) or sqlite:////var/lib/app/sessions.db"
            ) from None
    if scheme.startswith("redis"):
        from sessionware.stores.redis import RedisStore

        return RedisStore.from_url(url, **options)
    if scheme in ("postgres", "postgresql"):
        from sessionware.stores.postgres import PostgresStore

        return PostgresStore.from_url(url, **options)
    raise ConfigurationError(f"unknown store URL scheme {scheme!r}: use one of {_SCHEMES}")
