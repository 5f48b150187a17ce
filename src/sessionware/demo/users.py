"""The demo's users: a small table in a SQLite file (by default the sessions' file).

Plain :mod:`sqlite3`, one short-lived connection per call so it is safe from the
thread pool the views use; the library itself never sees this table, only user ids.
The file is owner-only (0600): it holds password hashes.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from sessionware.demo.files import private_file, tighten

__all__ = ["User", "UserDB"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS demo_users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class User:
    """One registered user (the hash never leaves the server)."""

    id: int
    username: str
    password_hash: str
    created: float


class UserDB:
    """Users by id and by case-insensitive name."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        # Password hashes: the file, and any journal SQLite keeps beside it, owner-only.
        private_file(Path(self.path))
        for suffix in ("-wal", "-shm", "-journal"):
            tighten(Path(self.path + suffix))
        conn = self._connect()
        try:
            conn.executescript(_SCHEMA)
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _one(self, sql: str, args: tuple[object, ...]) -> User | None:
        conn = self._connect()
        try:
            row = conn.execute(sql, args).fetchone()
        finally:
            conn.close()
        return User(*row) if row else None

    def add(self, username: str, password_hash: str) -> User | None:
        """Create a user; ``None`` when the name is taken."""
        conn = self._connect()
        try:
            cur = conn.execute(
                "INSERT INTO demo_users (username, password_hash, created) VALUES (?, ?, ?)",
                (username, password_hash, time.time()),
            )
        except sqlite3.IntegrityError:
            return None
        finally:
            conn.close()
        return self.by_id(int(cur.lastrowid or 0))

    def by_id(self, user_id: int | str) -> User | None:
        """The user with this id, if any."""
        try:
            uid = int(user_id)
        except (TypeError, ValueError):
            return None
        return self._one(
            "SELECT id, username, password_hash, created FROM demo_users WHERE id = ?", (uid,)
        )

    def by_name(self, username: str) -> User | None:
        """The user with this name (case-insensitive), if any."""
        return self._one(
            "SELECT id, username, password_hash, created FROM demo_users WHERE username = ?",
            (username,),
        )

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Replace a user's password hash (password change, or a rehash on login)."""
        conn = self._connect()
        try:
            conn.execute(
                "UPDATE demo_users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
            )
        finally:
            conn.close()

    def count(self) -> int:
        """How many users are registered."""
        conn = self._connect()
        try:
            return int(conn.execute("SELECT count(*) FROM demo_users").fetchone()[0])
        finally:
            conn.close()
