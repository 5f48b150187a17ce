"""Is there a sessionware store at this URL? Asked without creating one.

The stores create their file or tables on first use, which is right for an app and
wrong for an operator's command: ``sessionware sessions list`` with a mistyped SQLite
path or the wrong PostgreSQL database would create an empty store and report "no live
sessions", hiding the typo. The command line asks here first, read-only, and answers
"no sessionware store at ..." instead.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from sessionware.exceptions import ConfigurationError, SessionwareError, StoreUnavailableError
from sessionware.stores._redact import redact_url

__all__ = ["NoStoreError", "check_store", "sqlite_hint"]

#: The tables every sessionware SQL store has (SQLite and PostgreSQL alike).
_SQLITE_TABLE = "sessionware_sessions"
_PG_TABLES = ("sessionware_sessions", "sessionware_sessions_users")

MEMORY_REFUSED = (
    "memory:// keeps sessions inside one process, and this command runs in a process of "
    "its own, so it would only ever see an empty store: pass the URL of the store your "
    "app uses (sqlite:///..., redis://..., postgresql://...)"
)


class NoStoreError(SessionwareError):
    """The URL is well formed and the server answers, but it holds no sessionware store."""


def _sqlite_path(url: str) -> str:
    """The file a ``sqlite://`` URL names, read the way :func:`~sessionware.stores.from_url`
    reads it: three slashes for a relative path, four for an absolute one."""
    path = unquote(url[len("sqlite://") :])
    return path[1:] if path.startswith("/") else path


def sqlite_hint(url: str) -> str:
    """A hint when the other reading of a ``sqlite://`` URL names something that exists.

    ``sqlite:///var/lib/app/s.db`` is *relative* (``./var/lib/app/s.db``); the absolute
    file needs four slashes. The mistake the other way round is as common.
    """
    path = _sqlite_path(url)
    if not path:
        return ""
    if path.startswith("/"):
        other, form = path.lstrip("/"), "sqlite:///"
        what = "three slashes: relative to the current folder"
    else:
        other, form, what = "/" + path, "sqlite:////", "four slashes: an absolute path"
    target, given = Path(other), Path(path)
    if target.exists() or (not given.parent.is_dir() and target.parent.is_dir()):
        return f" (did you mean {form}{other.lstrip('/')}? {what})"
    return ""


def _check_sqlite(url: str) -> None:
    path = _sqlite_path(url)
    if not path:
        raise ConfigurationError("sqlite store URL needs a file: sqlite:///sessions.db")
    where = os.path.abspath(path)
    if not os.path.isfile(path):
        raise NoStoreError(f"no sessionware store at {where}: no such file{sqlite_hint(url)}")
    try:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_SQLITE_TABLE,)
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise NoStoreError(f"no sessionware store at {where}: {exc}") from None
    if row is None:
        raise NoStoreError(f"no sessionware store at {where}: the file has no sessionware tables")


def _check_postgres(url: str, timeout: float) -> None:
    from sessionware._extras import requires

    with requires("postgres"):
        import psycopg

    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    shown = redact_url(url)
    try:
        with psycopg.connect(url, connect_timeout=max(1, round(timeout)), autocommit=True) as conn:
            missing = [
                t
                for t in _PG_TABLES
                if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone() == (None,)
            ]
    except psycopg.ProgrammingError:  # a malformed conninfo; never echo it (a password)
        raise ConfigurationError(
            "bad PostgreSQL URL: use postgresql://user@host:5432/dbname"
        ) from None
    except (psycopg.Error, OSError) as exc:
        # libpq's messages name host, port, user and database, never the password.
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if "FATAL" in detail and "database" in detail and "does not exist" in detail:
            # The server answered: this is a typo in the database name, not an outage.
            raise NoStoreError(
                f"no sessionware store at {shown}: the server has no such database"
            ) from None
        raise StoreUnavailableError(f"PostgreSQL at {shown}: {detail}") from None
    if missing:
        raise NoStoreError(
            f"no sessionware store at {shown}: the database has no table {missing[0]} "
            "(an app creates it on its first start; check the database name)"
        )


def check_store(url: str, *, timeout: float = 3.0) -> None:
    """Raise unless ``url`` names an existing sessionware store that answers.

    :class:`NoStoreError` when there is none (a missing SQLite file, a database without
    the tables), :class:`StoreUnavailableError` when the server does not answer within
    about ``timeout`` seconds, :class:`ConfigurationError` for ``memory://``, which no
    other process can see. Redis has no schema: any reachable server qualifies, and
    reachability is checked by the store's own ``ping``.
    """
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return  # from_url words this one
    if scheme == "memory":
        raise ConfigurationError(MEMORY_REFUSED)
    if scheme == "sqlite":
        _check_sqlite(url)
    elif scheme in ("postgres", "postgresql"):
        _check_postgres(url, timeout)
