"""``PostgresStore``: sessions in a PostgreSQL table, via psycopg 3's async pool.

Each operation is one statement, so it is atomic without an explicit transaction:
``apply`` merges this request's fields into the row's ``jsonb`` with ``||`` and
removes deleted ones with ``-``, guarded by ``expires > now``, so a destroyed or
expired session is never written back. Expired rows are removed by
:meth:`PostgresStore.purge_expired` (``sessionware purge``) through an index on the
expiry column.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from sessionware.exceptions import (
    ConfigurationError,
    SessionCollisionError,
    StoreUnavailableError,
)
from sessionware.stores.base import Fields

__all__ = ["PostgresStore"]

_IDENT_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


class PostgresStore:
    """Sessions in PostgreSQL; safe for any number of app processes and machines."""

    kind = "postgres"

    def __init__(
        self,
        conninfo: str,
        *,
        table: str = "sessionware_sessions",
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not table or not set(table) <= _IDENT_OK or table[0].isdigit():
            raise ConfigurationError("table must be a lower-case SQL identifier (a-z, 0-9, _)")
        self.table = table
        self._users = f"{table}_users"
        self._clock = clock
        self._timeout = timeout
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
        )
        self._ready = False
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresStore:
        """``postgresql://user@host:port/dbname`` (``postgres://`` works too)."""
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://"):]
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ConfigurationError(
                "bad PostgreSQL store URL: use postgresql://user@host:5432/dbname"
            ) from exc
        return cls(url, **options)

    async def _setup(self) -> None:
        async with self._lock:
            if self._ready:
                return
            await self._pool.open(wait=False)
            async with self._pool.connection() as conn:
                # One creator at a time when several processes start together.
                await conn.execute("SELECT pg_advisory_lock(hashtext('sessionware-schema'))")
                try:
                    await conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {self.table} ("
                        " key text PRIMARY KEY,"
                        " fields jsonb NOT NULL,"
                        " expires double precision NOT NULL)"
                    )
                    await conn.execute(
                        f"CREATE INDEX IF NOT EXISTS {self.table}_expires ON {self.table} (expires)"
                    )
                    await conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {self._users} ("
                        " user_id text NOT NULL, key text NOT NULL,"
                        " PRIMARY KEY (user_id, key))"
                    )
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(hashtext('sessionware-schema'))")
            self._ready = True

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            if not self._ready:
                await self._setup()
            async with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout, OSError) as exc:
            raise StoreUnavailableError(
                f"PostgreSQL store unavailable: {type(exc).__name__}"
            ) from exc

    async def load(self, key: str) -> Fields | None:
        """One live record, in one round trip."""
        async with self._conn() as conn:
            cur = await conn.execute(
                f"SELECT fields FROM {self.table} WHERE key = %s AND expires > %s",
                (key, self._clock()),
            )
            row = await cur.fetchone()
        return dict(row[0]) if row else None

    async def create(self, key: str, fields: Fields, ttl: float) -> None:
        """Insert; an expired row with the same key is replaced, a live one is a collision."""
        now = self._clock()
        async with self._conn() as conn:
            cur = await conn.execute(
                f"INSERT INTO {self.table} (key, fields, expires) VALUES (%s, %s, %s) "
                f"ON CONFLICT (key) DO UPDATE SET fields = EXCLUDED.fields, "
                f"expires = EXCLUDED.expires WHERE {self.table}.expires <= %s",
                (key, Jsonb(dict(fields)), now + ttl, now),
            )
            if cur.rowcount != 1:
                raise SessionCollisionError("session key already exists")

    async def apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> bool:
        """Merge changes into a live row in one statement; False when the row is gone."""
        now = self._clock()
        async with self._conn() as conn:
            cur = await conn.execute(
                f"UPDATE {self.table} SET fields = (fields || %s) - %s::text[], expires = %s "
                "WHERE key = %s AND expires > %s",
                (Jsonb(dict(sets)), list(dels), now + ttl, key, now),
            )
            return cur.rowcount == 1

    async def incr(self, key: str, field: str, amount: int, ttl: float) -> int:
        """Add to an integer field; a missing or expired row starts at ``amount``."""
        now = self._clock()
        async with self._conn() as conn:
            cur = await conn.execute(
                f"INSERT INTO {self.table} AS t (key, fields, expires) "
                "VALUES (%s, jsonb_build_object(%s::text, %s::text), %s) "
                "ON CONFLICT (key) DO UPDATE SET "
                "fields = CASE WHEN t.expires <= %s THEN EXCLUDED.fields ELSE "
                "t.fields || jsonb_build_object(%s::text, "
                "(coalesce((t.fields->>%s)::bigint, 0) + %s)::text) END, "
                "expires = CASE WHEN t.expires <= %s THEN EXCLUDED.expires ELSE t.expires END "
                "RETURNING (fields->>%s)::bigint",
                (key, field, str(amount), now + ttl, now, field, field, amount, now, field),
            )
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def delete(self, key: str) -> None:
        """Remove a record."""
        async with self._conn() as conn:
            await conn.execute(f"DELETE FROM {self.table} WHERE key = %s", (key,))

    async def link(self, user_id: str, key: str) -> None:
        """Index ``key`` under ``user_id``."""
        async with self._conn() as conn:
            await conn.execute(
                f"INSERT INTO {self._users} (user_id, key) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (user_id, key),
            )

    async def unlink(self, user_id: str, key: str) -> None:
        """Remove ``key`` from ``user_id``'s index."""
        async with self._conn() as conn:
            await conn.execute(
                f"DELETE FROM {self._users} WHERE user_id = %s AND key = %s", (user_id, key)
            )

    async def keys_of(self, user_id: str) -> list[str]:
        """The user's live keys; index rows of dead sessions are removed on the way."""
        now = self._clock()
        async with self._conn() as conn:
            await conn.execute(
                f"DELETE FROM {self._users} u WHERE u.user_id = %s AND NOT EXISTS "
                f"(SELECT 1 FROM {self.table} s WHERE s.key = u.key AND s.expires > %s)",
                (user_id, now),
            )
            cur = await conn.execute(
                f"SELECT key FROM {self._users} WHERE user_id = %s ORDER BY key", (user_id,)
            )
            return [r[0] for r in await cur.fetchall()]

    async def purge_expired(self) -> int:
        """Delete expired rows (through the expiry index) and dangling index rows."""
        now = self._clock()
        async with self._conn() as conn:
            cur = await conn.execute(f"DELETE FROM {self.table} WHERE expires <= %s", (now,))
            n = cur.rowcount
            await conn.execute(
                f"DELETE FROM {self._users} u WHERE NOT EXISTS "
                f"(SELECT 1 FROM {self.table} s WHERE s.key = u.key)"
            )
        return n

    async def drop(self) -> None:
        """Drop both tables (for tests and teardown)."""
        async with self._conn() as conn:
            await conn.execute(f"DROP TABLE IF EXISTS {self._users}")
            await conn.execute(f"DROP TABLE IF EXISTS {self.table}")
        self._ready = False

    async def close(self) -> None:
        """Close the pool."""
        await self._pool.close()
