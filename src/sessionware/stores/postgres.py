"""``PostgresStore``: sessions in a PostgreSQL table, via psycopg 3's async pool.

Each operation is one statement, so it is atomic without an explicit transaction:
``apply`` merges this request's fields into the row's ``jsonb`` with ``||`` and
removes deleted ones with ``-``, guarded by ``expires > now``, so a destroyed or
expired session is never written back. Expired rows are removed by
:meth:`PostgresStore.purge_expired` (``sessionware purge``) through an index on the
expiry column.

PostgreSQL's ``text`` and ``jsonb`` refuse the NUL character, which every other store
keeps, so text holding NUL is stored escaped (see :func:`_enc`) and comes back as it
went in. Every driver error becomes one of sessionware's: connection trouble a
:class:`~sessionware.exceptions.StoreUnavailableError` (503), anything else a
:class:`~sessionware.exceptions.StoreError` whose message says the fix.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, overload

import psycopg
from psycopg import errors as pgerr
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from sessionware.exceptions import (
    ConfigurationError,
    SessionCollisionError,
    StoreError,
    StoreUnavailableError,
)
from sessionware.stores.base import Fields

__all__ = ["PostgresStore"]

_IDENT_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")

# Text holding NUL (or starting with the marker) is stored as the marker followed by
# the text with "%" and NUL percent-encoded: injective, and any other text, which is
# nearly all of it, is stored unchanged. U+FDD0 is a Unicode noncharacter, reserved
# for exactly this kind of internal use (Unicode 15, section 23.7).
_MARK = "\ufdd0"
_ESCAPED = re.compile("%(00|25)")


def _enc(text: str) -> str:
    """``text`` in a form PostgreSQL's text and jsonb accept (they refuse NUL)."""
    if "\x00" in text or text.startswith(_MARK):
        return _MARK + text.replace("%", "%25").replace("\x00", "%00")
    return text


def _dec(text: str) -> str:
    """The inverse of :func:`_enc`."""
    if text.startswith(_MARK):
        return _ESCAPED.sub(lambda m: "\x00" if m[1] == "00" else "%", text[1:])
    return text


def _enc_fields(fields: Fields) -> dict[str, str]:
    return {_enc(k): _enc(v) for k, v in fields.items()}


def _dec_fields(fields: dict[str, str]) -> dict[str, str]:
    return {_dec(k): _dec(v) for k, v in fields.items()}


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n", 1)[0][:160]


def _store_error(exc: Exception, table: str) -> StoreError:
    """Our error for a psycopg or pool failure: no value or key in the message, and
    for mistakes of set-up, the fix."""
    name = type(exc).__name__
    if isinstance(exc, pgerr.UndefinedTable):
        return StoreError(
            f"PostgreSQL table {table!r} or {table + '_users'!r} does not exist (dropped "
            "while the app ran?): the store creates both again on its next call; check "
            "that nothing else drops them"
        )
    if isinstance(exc, pgerr.InsufficientPrivilege):
        return StoreError(
            f"the PostgreSQL role may not use the session tables: GRANT SELECT, INSERT, "
            f"UPDATE, DELETE ON {table}, {table}_users TO the app's role (and CREATE on "
            "the schema for the first start, which creates them)"
        )
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, OSError)):
        # libpq's connection messages name host, port and user, never the password.
        return StoreUnavailableError(f"PostgreSQL store unavailable ({name}: {_first_line(exc)})")
    if isinstance(exc, pgerr.ReadOnlySqlTransaction):
        # A fail-over left us on a standby: an outage until the pool reconnects.
        return StoreUnavailableError(f"PostgreSQL store unavailable ({name}: read-only server)")
    # Other messages may quote a value (`invalid input syntax ... "abc"`): keep the class.
    state = getattr(exc, "sqlstate", None)
    code = f", SQLSTATE {state}" if state else ""
    return StoreError(f"PostgreSQL refused a statement ({name}{code})")


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
        try:
            psycopg.conninfo.conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError:
            # Never echo the conninfo: it may carry a password.
            raise ConfigurationError(
                "bad PostgreSQL conninfo: use postgresql://user@host:5432/dbname "
                "or 'host=... dbname=...'"
            ) from None
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
        """A pooled connection; every driver error raised while it is used is mapped."""
        try:
            if not self._ready:
                await self._setup()
            async with self._pool.connection() as conn:
                yield conn
        except (psycopg.Error, OSError) as exc:
            if isinstance(exc, pgerr.UndefinedTable):
                self._ready = False  # the next call creates the tables again
            raise _store_error(exc, self.table) from None

    async def load(self, key: str) -> Fields | None:
        """One live record, in one round trip."""
        async with self._conn() as conn:
            cur = await conn.execute(
                f"SELECT fields FROM {self.table} WHERE key = %s AND expires > %s",
                (_enc(key), self._clock()),
            )
            row = await cur.fetchone()
        return _dec_fields(row[0]) if row else None

    async def create(self, key: str, fields: Fields, ttl: float) -> None:
        """Insert; an expired row with the same key is replaced, a live one is a collision."""
        now = self._clock()
        async with self._conn() as conn:
            cur = await conn.execute(
                f"INSERT INTO {self.table} (key, fields, expires) VALUES (%s, %s, %s) "
                f"ON CONFLICT (key) DO UPDATE SET fields = EXCLUDED.fields, "
                f"expires = EXCLUDED.expires WHERE {self.table}.expires <= %s",
                (_enc(key), Jsonb(_enc_fields(fields)), now + ttl, now),
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
                (Jsonb(_enc_fields(sets)), [_enc(d) for d in dels], now + ttl, _enc(key), now),
            )
            return cur.rowcount == 1

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
        """Add to an integer field in one statement; a missing or expired row starts at
        ``amount`` (an upsert) when ``create``, else stays missing and gives None."""
        now = self._clock()
        key, field = _enc(key), _enc(field)
        added = (
            "t.fields || jsonb_build_object(%(field)s::text, "
            "(coalesce((t.fields->>%(field)s)::bigint, 0) + %(amount)s)::text)"
        )
        if create:
            sql = (
                f"INSERT INTO {self.table} AS t (key, fields, expires) "
                "VALUES (%(key)s, jsonb_build_object(%(field)s::text, %(start)s::text), %(exp)s) "
                "ON CONFLICT (key) DO UPDATE SET "
                f"fields = CASE WHEN t.expires <= %(now)s THEN EXCLUDED.fields ELSE {added} END, "
                "expires = CASE WHEN t.expires <= %(now)s THEN EXCLUDED.expires ELSE t.expires END "
                "RETURNING (fields->>%(field)s)::bigint"
            )
        else:
            sql = (
                f"UPDATE {self.table} AS t SET fields = {added} "
                "WHERE t.key = %(key)s AND t.expires > %(now)s "
                "RETURNING (t.fields->>%(field)s)::bigint"
            )
        params = {
            "key": key, "field": field, "amount": amount, "start": str(amount),
            "exp": now + ttl, "now": now,
        }
        async with self._conn() as conn:
            cur = await conn.execute(sql, params)
            row = await cur.fetchone()
        if row is None:
            assert not create  # an upsert always returns its row
            return None
        return int(row[0])

    async def delete(self, key: str) -> None:
        """Remove a record."""
        async with self._conn() as conn:
            await conn.execute(f"DELETE FROM {self.table} WHERE key = %s", (_enc(key),))

    async def link(self, user_id: str, key: str) -> None:
        """Index ``key`` under ``user_id``."""
        async with self._conn() as conn:
            await conn.execute(
                f"INSERT INTO {self._users} (user_id, key) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (_enc(user_id), _enc(key)),
            )

    async def unlink(self, user_id: str, key: str) -> None:
        """Remove ``key`` from ``user_id``'s index."""
        async with self._conn() as conn:
            await conn.execute(
                f"DELETE FROM {self._users} WHERE user_id = %s AND key = %s",
                (_enc(user_id), _enc(key)),
            )

    async def keys_of(self, user_id: str) -> list[str]:
        """The user's live keys; index rows of dead sessions are removed on the way."""
        now = self._clock()
        async with self._conn() as conn:
            await conn.execute(
                f"DELETE FROM {self._users} u WHERE u.user_id = %s AND NOT EXISTS "
                f"(SELECT 1 FROM {self.table} s WHERE s.key = u.key AND s.expires > %s)",
                (_enc(user_id), now),
            )
            cur = await conn.execute(
                f"SELECT key FROM {self._users} WHERE user_id = %s ORDER BY key", (_enc(user_id),)
            )
            return [_dec(r[0]) for r in await cur.fetchall()]

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
