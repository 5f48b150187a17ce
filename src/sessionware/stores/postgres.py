"""``PostgresStore``: sessions in a PostgreSQL table, via psycopg 3's connection pools.

Each operation is one statement, so it is atomic without an explicit transaction:
``apply`` merges this request's fields into the row's ``jsonb`` with ``||`` and
removes deleted ones with ``-``, guarded by ``expires > now``, so a destroyed or
expired session is never written back. Expired rows are removed by
:meth:`PostgresStore.purge_expired` (``sessionware purge``) through an index on the
expiry column.

Two faces, one set of operations. The store's own methods are coroutines (ASGI
apps) and ``store.sync`` has the same methods as plain calls (WSGI apps, scripts).
Each operation (``_op_load``, ``_op_incr``, ...) is written once, as a generator that
yields :class:`_Stmt` requests and computes its result from the replies (see
:mod:`sessionware._ops`); only the driver differs: :meth:`PostgresStore._adrive`
performs the statements on a connection of a ``psycopg_pool.AsyncConnectionPool``,
:meth:`PostgresStore._drive` on one of a ``psycopg_pool.ConnectionPool`` with the same
options. Each pool is created on its face's first call, so an async app never starts
the sync pool's threads and a WSGI app never needs an event loop. Each face creates
the tables (one more operation, :meth:`PostgresStore._schema_op`) on its first
use, under its own lock.

PostgreSQL's ``text`` and ``jsonb`` refuse the NUL character, which every other store
keeps, so text holding NUL is stored escaped (see :func:`_enc`) and comes back as it
went in. Every driver error, on either face, goes through one function,
:func:`_store_error`: connection trouble becomes a
:class:`~sessionware.exceptions.StoreUnavailableError` (503), anything else a
:class:`~sessionware.exceptions.StoreError` whose message says the fix.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sessionware._clock import SteadyClock
from sessionware._extras import requires

with requires("postgres"):
    import psycopg
    from psycopg import errors as pgerr
    from psycopg.types.json import Jsonb
    from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolClosed

from sessionware._ops import Op, adrive, drive
from sessionware.exceptions import (
    ConfigurationError,
    SessionCollisionError,
    StoreError,
    StoreUnavailableError,
)
from sessionware.stores.base import Fields, StoreBase

__all__ = ["PostgresStore"]

T = TypeVar("T")

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


def _is_record(value: object) -> bool:
    """Whether a row's jsonb is what this store writes (an object of texts): any other
    row under a session's key (foreign, damaged) is no record, never a 500."""
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _dec_fields(fields: dict[str, str]) -> dict[str, str]:
    return {_dec(k): _dec(v) for k, v in fields.items()}


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n", 1)[0][:160]


def _store_error(exc: Exception, table: str) -> StoreError:
    """Our error for a psycopg or pool failure (either face): no value or key in the
    message, and for mistakes of set-up, the fix."""
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
    if not isinstance(exc, psycopg.Error):
        # Not the server's words (a closed pool, "Event loop is closed"): keep the cause.
        return StoreError(f"PostgreSQL store failed ({name}: {_first_line(exc)})")
    # Other messages may quote a value (`invalid input syntax ... "abc"`): keep the class.
    state = getattr(exc, "sqlstate", None)
    code = f", SQLSTATE {state}" if state else ""
    return StoreError(f"PostgreSQL refused a statement ({name}{code})")


@dataclass(frozen=True, slots=True)
class _Stmt:
    """One statement an operation asks its driver to run, and which reply it wants:
    ``rows`` (all rows), ``row`` (the first row or None), ``count`` (rows affected) or
    ``nothing``."""

    sql: str
    params: Sequence[Any] | Mapping[str, Any] | None = None
    want: Literal["rows", "row", "count", "nothing"] = "nothing"


def _perform(conn: psycopg.Connection[Any], stmt: _Stmt) -> Any:
    """The sync driver's half: run ``stmt`` on ``conn`` and give the reply it wants."""
    cur = conn.execute(stmt.sql, stmt.params)
    if stmt.want == "rows":
        return cur.fetchall()
    if stmt.want == "row":
        return cur.fetchone()
    return cur.rowcount if stmt.want == "count" else None


async def _aperform(conn: psycopg.AsyncConnection[Any], stmt: _Stmt) -> Any:
    """The async driver's half: the same as :func:`_perform`, awaited."""
    cur = await conn.execute(stmt.sql, stmt.params)
    if stmt.want == "rows":
        return await cur.fetchall()
    if stmt.want == "row":
        return await cur.fetchone()
    return cur.rowcount if stmt.want == "count" else None


class PostgresStore(StoreBase):
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
        clock: Callable[[], float] | None = None,
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
        # Expiry counts elapsed time, as the core's timeouts do: a system clock stepped
        # an hour forward must not expire every record at once (nor purge them).
        self._clock = clock or SteadyClock()
        self._timeout = timeout
        self._conninfo = conninfo
        # Both pools get the same options; each is built on its face's first call.
        self._pool_options: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "timeout": timeout,
            "open": False,
            "kwargs": {"autocommit": True, "connect_timeout": max(1, int(timeout))},
        }
        self._apool: AsyncConnectionPool[Any] | None = None
        self._spool: ConnectionPool[Any] | None = None
        # Whether each face has run the schema set-up (reset when a table vanishes).
        self._aready = False
        self._sready = False
        self._alock = asyncio.Lock()
        self._slock = threading.Lock()
        # A closed face stays closed: no pool (and no threads) built behind close().
        self._aclosed = False
        self._sclosed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresStore:
        """``postgresql://user@host:port/dbname`` (``postgres://`` works too)."""
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        return cls(url, **options)

    # -- the drivers: only here do the two faces differ ------------------------------

    def _failure(self, exc: Exception) -> StoreError:
        """Map a driver error (either face); a vanished table makes both faces set up again."""
        if isinstance(exc, pgerr.UndefinedTable):
            self._aready = self._sready = False
        return _store_error(exc, self.table)

    def _sync_pool(self) -> ConnectionPool[Any]:
        """The sync pool, built and the schema set up on the sync face's first call."""
        pool = self._spool
        if pool is not None and self._sready:
            return pool
        with self._slock:
            if self._spool is None:
                if self._sclosed:
                    raise PoolClosed("the store's sync face is closed")
                self._spool = ConnectionPool(self._conninfo, **self._pool_options)
                self._spool.open(wait=False)
            pool = self._spool
            if not self._sready:
                with pool.connection() as conn:
                    drive(self._schema_op(), lambda s: _perform(conn, s))
                self._sready = True
            return pool

    async def _async_pool(self) -> AsyncConnectionPool[Any]:
        """The async pool, built and the schema set up on the async face's first call."""
        pool = self._apool
        if pool is not None and self._aready:
            return pool
        async with self._alock:
            if self._apool is None:
                if self._aclosed:
                    raise PoolClosed("the store is closed")
                self._apool = AsyncConnectionPool(self._conninfo, **self._pool_options)
                await self._apool.open(wait=False)
            pool = self._apool
            if not self._aready:
                async with pool.connection() as conn:
                    await adrive(self._schema_op(), lambda s: _aperform(conn, s))
                self._aready = True
            return pool

    def _drive(self, op: Op[T]) -> T:
        """Run ``op`` on one connection of the sync pool."""
        try:
            with self._sync_pool().connection() as conn:
                return drive(op, lambda s: _perform(conn, s))
        except (psycopg.Error, OSError) as exc:
            raise self._failure(exc) from None

    async def _adrive(self, op: Op[T]) -> T:
        """Run ``op`` on one connection of the async pool."""
        try:
            pool = await self._async_pool()
            async with pool.connection() as conn:
                return await adrive(op, lambda s: _aperform(conn, s))
        except (psycopg.Error, OSError) as exc:
            raise self._failure(exc) from None

    def _close(self) -> None:
        """Close the sync pool, if the sync face ever opened it."""
        with self._slock:
            self._sclosed = True
            pool = self._spool
        if pool is not None:
            pool.close()

    async def _aclose(self) -> None:
        """Close the async pool, if the async face ever opened it."""
        async with self._alock:
            self._aclosed = True
            apool = self._apool
        if apool is not None:
            await apool.close()

    # -- the operations: written once for both faces ----------------------------------

    def _schema_op(self) -> Op[None]:
        """Create the tables and the expiry index if missing; one creator at a time when
        several processes start together (an advisory lock). Not named ``_op_...``: it is
        no method of either face, the drivers run it themselves."""
        yield _Stmt("SELECT pg_advisory_lock(hashtext('sessionware-schema'))")
        try:
            yield _Stmt(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " key text PRIMARY KEY,"
                " fields jsonb NOT NULL,"
                " expires double precision NOT NULL)"
            )
            yield _Stmt(
                f"CREATE INDEX IF NOT EXISTS {self.table}_expires ON {self.table} (expires)"
            )
            yield _Stmt(
                f"CREATE TABLE IF NOT EXISTS {self._users} ("
                " user_id text NOT NULL, key text NOT NULL,"
                " PRIMARY KEY (user_id, key))"
            )
        finally:
            yield _Stmt("SELECT pg_advisory_unlock(hashtext('sessionware-schema'))")

    def _op_load(self, key: str) -> Op[Fields | None]:
        """One live record, in one round trip."""
        row = yield _Stmt(
            f"SELECT fields FROM {self.table} WHERE key = %s AND expires > %s",
            (_enc(key), self._clock()),
            "row",
        )
        return _dec_fields(row[0]) if row and _is_record(row[0]) else None

    def _op_load_many(self, keys: list[str]) -> Op[list[Fields | None]]:
        """Several live records in one round trip (the sync face's ``load_many``: a
        login lists every session of its user)."""
        rows = yield _Stmt(
            f"SELECT key, fields FROM {self.table} WHERE key = ANY(%s) AND expires > %s",
            ([_enc(key) for key in keys], self._clock()),
            "rows",
        )
        found = {key: _dec_fields(fields) for key, fields in rows if _is_record(fields)}
        return [found.get(_enc(key)) for key in keys]

    def _op_create(self, key: str, fields: Fields, ttl: float) -> Op[None]:
        """Insert; an expired row with the same key is replaced, a live one is a collision."""
        now = self._clock()
        count = yield _Stmt(
            f"INSERT INTO {self.table} (key, fields, expires) VALUES (%s, %s, %s) "
            f"ON CONFLICT (key) DO UPDATE SET fields = EXCLUDED.fields, "
            f"expires = EXCLUDED.expires WHERE {self.table}.expires <= %s",
            (_enc(key), Jsonb(_enc_fields(fields)), now + ttl, now),
            "count",
        )
        if count != 1:
            raise SessionCollisionError("session key already exists")

    def _op_apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> Op[bool]:
        """Merge changes into a live row in one statement; False when the row is gone."""
        now = self._clock()
        count = yield _Stmt(
            f"UPDATE {self.table} SET fields = (fields || %s) - %s::text[], expires = %s "
            "WHERE key = %s AND expires > %s",
            (Jsonb(_enc_fields(sets)), [_enc(d) for d in dels], now + ttl, _enc(key), now),
            "count",
        )
        return bool(count == 1)

    def _op_incr(
        self, key: str, field: str, amount: int, ttl: float, create: bool
    ) -> Op[int | None]:
        """Add to an integer field in one statement; a missing or expired row starts at
        ``amount`` (an upsert) when ``create``, else stays missing and gives None."""
        now = self._clock()
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
            "key": _enc(key),
            "field": _enc(field),
            "amount": amount,
            "start": str(amount),
            "exp": now + ttl,
            "now": now,
        }
        row = yield _Stmt(sql, params, "row")
        if row is None:
            assert not create  # an upsert always returns its row
            return None
        return int(row[0])

    def _op_delete(self, key: str) -> Op[None]:
        """Remove a record."""
        yield _Stmt(f"DELETE FROM {self.table} WHERE key = %s", (_enc(key),))

    def _op_link(self, user_id: str, key: str) -> Op[None]:
        """Index ``key`` under ``user_id``."""
        yield _Stmt(
            f"INSERT INTO {self._users} (user_id, key) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (_enc(user_id), _enc(key)),
        )

    def _op_unlink(self, user_id: str, key: str) -> Op[None]:
        """Remove ``key`` from ``user_id``'s index."""
        yield _Stmt(
            f"DELETE FROM {self._users} WHERE user_id = %s AND key = %s",
            (_enc(user_id), _enc(key)),
        )

    def _op_keys_of(self, user_id: str) -> Op[list[str]]:
        """The user's live keys; index rows of dead sessions are removed on the way."""
        now = self._clock()
        yield _Stmt(
            f"DELETE FROM {self._users} u WHERE u.user_id = %s AND NOT EXISTS "
            f"(SELECT 1 FROM {self.table} s WHERE s.key = u.key AND s.expires > %s)",
            (_enc(user_id), now),
        )
        rows = yield _Stmt(
            f"SELECT key FROM {self._users} WHERE user_id = %s ORDER BY key",
            (_enc(user_id),),
            "rows",
        )
        return [_dec(r[0]) for r in rows]

    def _op_purge_expired(self) -> Op[int]:
        """Delete expired rows (through the expiry index) and dangling index rows."""
        now = self._clock()
        n = yield _Stmt(f"DELETE FROM {self.table} WHERE expires <= %s", (now,), "count")
        yield _Stmt(
            f"DELETE FROM {self._users} u WHERE NOT EXISTS "
            f"(SELECT 1 FROM {self.table} s WHERE s.key = u.key)"
        )
        return int(n)

    def _op_user_ids(self) -> Op[list[str]]:
        """Every user with a live session, from the user index (``sessionware sessions list``)."""
        rows = yield _Stmt(
            f"SELECT DISTINCT u.user_id FROM {self._users} u JOIN {self.table} s "
            "ON s.key = u.key WHERE s.expires > %s ORDER BY u.user_id",
            (self._clock(),),
            "rows",
        )
        return [_dec(r[0]) for r in rows]

    def _op_drop(self) -> Op[None]:
        """Drop both tables; both faces then create them again on their next call."""
        yield _Stmt(f"DROP TABLE IF EXISTS {self._users}")
        yield _Stmt(f"DROP TABLE IF EXISTS {self.table}")
        self._aready = self._sready = False

    # -- extras of the async face (the sync face finds the operations by name) ---------

    async def purge_expired(self) -> int:
        """Delete expired rows and dangling index rows; how many records went."""
        return await self._adrive(self._op_purge_expired())

    async def user_ids(self) -> list[str]:
        """Every user with a live session (for ``sessionware sessions list`` without --user)."""
        return await self._adrive(self._op_user_ids())

    async def drop(self) -> None:
        """Drop both tables (for tests and teardown)."""
        await self._adrive(self._op_drop())
