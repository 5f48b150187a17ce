"""``SQLiteStore``: sessions in one SQLite file, the embedded default.

WAL mode lets readers run beside a writer, so reads run inline on the event loop
(a few microseconds, never waiting on a lock) while writes go to one writer thread,
where ``BEGIN IMMEDIATE`` and a busy timeout make several processes sharing the file
safe. Expired rows are purged through an index on the expiry column, now and then
on write and by :meth:`SQLiteStore.purge_expired`.

The file holds user ids, addresses and CSRF secrets, so a new one is created
owner-only (0600) before SQLite opens it; SQLite gives its ``-wal`` and ``-shm``
files the database file's mode.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

from sessionware.exceptions import SessionCollisionError, StoreError, StoreUnavailableError
from sessionware.stores.base import Fields

__all__ = ["SQLiteStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessionware_sessions (
    key TEXT PRIMARY KEY,
    fields TEXT NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessionware_sessions_expires ON sessionware_sessions (expires);
CREATE TABLE IF NOT EXISTS sessionware_user_sessions (
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
"""
_PURGE_EVERY = 500  # writes between opportunistic purges


def _create_file(path: str, mode: int) -> None:
    """Create ``path`` with exactly ``mode`` unless it exists, before SQLite opens it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, mode)  # open() applies the umask; the mode asked for is the one meant
    finally:
        os.close(fd)


def _dump(fields: Fields) -> str:
    return json.dumps(dict(fields), separators=(",", ":"), ensure_ascii=False)


class SQLiteStore:
    """Sessions in a SQLite file; safe for several processes sharing it."""

    kind = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 5.0,
        file_mode: int | None = 0o600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open (or create) the database at ``path``.

        ``file_mode`` is the mode a new file gets, whatever the umask (0600: owner
        only); ``None`` leaves it to the umask, for a file that processes of several
        users share through a group. An existing file keeps its mode.
        """
        self.path = str(path)
        self._busy_ms = int(busy_timeout * 1000)
        self._clock = clock
        self._local = threading.local()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sessionware-sqlite")
        self._writes = 0
        if self.path == ":memory:" or self.path.startswith("file:"):
            raise ValueError(
                "SQLiteStore needs a file path; for in-memory sessions use MemoryStore"
            )
        parent = Path(self.path).parent
        if not parent.is_dir():
            raise ValueError(f"SQLiteStore: folder {str(parent)!r} does not exist; create it first")
        if file_mode is not None:
            _create_file(self.path, file_mode)
        with self._guard():
            conn = self._conn()
            conn.executescript(_SCHEMA)

    # -- connections ---------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=self._busy_ms / 1000)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            # DatabaseError, not only OperationalError: a corrupt or replaced file
            # ("file is not a database") is an outage too, never a raw driver error.
            raise StoreUnavailableError(f"SQLite store unavailable: {exc}") from exc
        except UnicodeEncodeError:
            # A lone surrogate has no UTF-8 form; every store refuses it the same way.
            raise StoreError("SQLite store cannot keep text that is not valid Unicode") from None

    async def _write(self, fn: Callable[[sqlite3.Connection, float], T]) -> T:
        def run() -> T:
            with self._guard():
                conn = self._conn()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn, self._clock())
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, run)

    def _maybe_purge(self, conn: sqlite3.Connection, now: float) -> None:
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            conn.execute("DELETE FROM sessionware_sessions WHERE expires <= ?", (now,))

    # -- the Store protocol --------------------------------------------------

    async def load(self, key: str) -> Fields | None:
        """Read one live record (inline: WAL readers never wait for writers)."""
        with self._guard():
            row = (
                self._conn()
                .execute(
                    "SELECT fields FROM sessionware_sessions WHERE key = ? AND expires > ?",
                    (key, self._clock()),
                )
                .fetchone()
            )
        return json.loads(row[0]) if row else None

    async def create(self, key: str, fields: Fields, ttl: float) -> None:
        """Insert a new record; an existing live key is a collision."""
        text = _dump(fields)

        def run(conn: sqlite3.Connection, now: float) -> bool:
            self._maybe_purge(conn, now)
            cur = conn.execute(
                "INSERT INTO sessionware_sessions (key, fields, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET fields = excluded.fields, "
                "expires = excluded.expires WHERE sessionware_sessions.expires <= ?",
                (key, text, now + ttl, now),
            )
            return cur.rowcount == 1

        if not await self._write(run):
            raise SessionCollisionError("session key already exists")

    async def apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> bool:
        """Read-modify-write one live record inside one immediate transaction."""

        def run(conn: sqlite3.Connection, now: float) -> bool:
            row = conn.execute(
                "SELECT fields FROM sessionware_sessions WHERE key = ? AND expires > ?",
                (key, now),
            ).fetchone()
            if row is None:
                return False
            merged: dict[str, Any] = json.loads(row[0])
            merged.update(sets)
            for name in dels:
                merged.pop(name, None)
            conn.execute(
                "UPDATE sessionware_sessions SET fields = ?, expires = ? WHERE key = ?",
                (_dump(merged), now + ttl, key),
            )
            return True

        return await self._write(run)

    @overload
    async def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: Literal[True] = ...
    ) -> int: ...

    @overload
    async def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: bool
    ) -> int | None: ...

    async def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: bool = True
    ) -> int | None:
        """Add to an integer field; a missing record is created with ``ttl`` only if ``create``."""

        def run(conn: sqlite3.Connection, now: float) -> int | None:
            row = conn.execute(
                "SELECT fields FROM sessionware_sessions WHERE key = ? AND expires > ?",
                (key, now),
            ).fetchone()
            if row is None:
                if not create:
                    return None
                conn.execute(
                    "INSERT OR REPLACE INTO sessionware_sessions (key, fields, expires) "
                    "VALUES (?, ?, ?)",
                    (key, _dump({field: str(amount)}), now + ttl),
                )
                return amount
            fields: dict[str, Any] = json.loads(row[0])
            value = int(fields.get(field, "0")) + amount
            fields[field] = str(value)
            conn.execute(
                "UPDATE sessionware_sessions SET fields = ? WHERE key = ?", (_dump(fields), key)
            )
            return value

        return await self._write(run)

    async def delete(self, key: str) -> None:
        """Remove a record."""
        await self._write(
            lambda conn, now: conn.execute("DELETE FROM sessionware_sessions WHERE key = ?", (key,))
        )

    async def link(self, user_id: str, key: str) -> None:
        """Index ``key`` under ``user_id``."""
        await self._write(
            lambda conn, now: conn.execute(
                "INSERT OR IGNORE INTO sessionware_user_sessions (user_id, key) VALUES (?, ?)",
                (user_id, key),
            )
        )

    async def unlink(self, user_id: str, key: str) -> None:
        """Remove ``key`` from ``user_id``'s index."""
        await self._write(
            lambda conn, now: conn.execute(
                "DELETE FROM sessionware_user_sessions WHERE user_id = ? AND key = ?",
                (user_id, key),
            )
        )

    async def keys_of(self, user_id: str) -> list[str]:
        """The user's live keys; index rows of dead sessions are removed."""

        def run(conn: sqlite3.Connection, now: float) -> list[str]:
            # NOT EXISTS probes the primary key once per index row; NOT IN would list
            # every live session in the file on each call.
            conn.execute(
                "DELETE FROM sessionware_user_sessions WHERE user_id = ? AND NOT EXISTS "
                "(SELECT 1 FROM sessionware_sessions s "
                "WHERE s.key = sessionware_user_sessions.key AND s.expires > ?)",
                (user_id, now),
            )
            rows = conn.execute(
                "SELECT key FROM sessionware_user_sessions WHERE user_id = ? ORDER BY key",
                (user_id,),
            ).fetchall()
            return [r[0] for r in rows]

        return await self._write(run)

    async def purge_expired(self, limit: int | None = None) -> int:
        """Delete expired records (at most ``limit``, oldest first) and dangling index rows.

        Returns how many records went. A ``limit`` keeps each write transaction short on
        a large file, so ``sessionware purge`` can show progress and never block the app.
        """

        def run(conn: sqlite3.Connection, now: float) -> int:
            if limit is None:
                n = conn.execute(
                    "DELETE FROM sessionware_sessions WHERE expires <= ?", (now,)
                ).rowcount
            else:
                n = conn.execute(
                    "DELETE FROM sessionware_sessions WHERE key IN (SELECT key FROM "
                    "sessionware_sessions WHERE expires <= ? ORDER BY expires LIMIT ?)",
                    (now, limit),
                ).rowcount
            conn.execute(
                "DELETE FROM sessionware_user_sessions WHERE key NOT IN "
                "(SELECT key FROM sessionware_sessions)"
            )
            return n

        return await self._write(run)

    async def count_expired(self) -> int:
        """How many expired records are waiting for :meth:`purge_expired`."""
        with self._guard():
            row = self._conn().execute(
                "SELECT count(*) FROM sessionware_sessions WHERE expires <= ?", (self._clock(),)
            ).fetchone()
        return int(row[0])

    async def user_ids(self) -> list[str]:
        """Every id in the user index (for ``sessionware sessions list`` without --user)."""
        with self._guard():
            rows = self._conn().execute(
                "SELECT DISTINCT user_id FROM sessionware_user_sessions ORDER BY user_id"
            ).fetchall()
        return [r[0] for r in rows]

    async def count(self) -> int:
        """How many live sessions the file holds."""
        with self._guard():
            row = self._conn().execute(
                "SELECT count(*) FROM sessionware_sessions WHERE expires > ?", (self._clock(),)
            ).fetchone()
        return int(row[0])

    async def close(self) -> None:
        """Close the connections of this thread and stop the writer thread."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

        def close_writer() -> None:
            c = getattr(self._local, "conn", None)
            if c is not None:
                c.close()
                self._local.conn = None

        self._writer.submit(close_writer).result()
        self._writer.shutdown(wait=True)
