"""``SQLiteStore``: sessions in one SQLite file, the embedded default.

Each operation is written once, as a generator that yields jobs: "run this function
on a connection, as a read" or "... in a write transaction". Two drivers perform them:

* the async face (the store's coroutine methods, for ASGI apps) runs reads inline on
  the event loop (a few microseconds: in WAL mode readers never wait for a writer)
  and writes on one writer thread, so the loop never waits on the file lock;
* the sync face (``store.sync``, for WSGI apps and scripts) runs both in the calling
  thread.

Every thread has its own connection. Writes run in ``BEGIN IMMEDIATE`` transactions
and a busy timeout makes others wait for the lock, so many threads and several
processes can share the file. Expired rows are purged through an index on the expiry
column, now and then on write and by :meth:`SQLiteStore.purge_expired`.

``store.sync.close()`` closes every connection the store opened, in any thread;
``await store.close()`` also stops the writer thread. Either is safe to call twice,
and a call made afterwards opens a new connection (a forked worker can go on).

The file holds user ids, addresses and CSRF secrets, so a new one is created
owner-only (0600) before SQLite opens it; SQLite gives its ``-wal`` and ``-shm``
files the database file's mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

from sessionware._clock import SteadyClock
from sessionware._json import dumps
from sessionware._ops import Op, adrive, drive
from sessionware.exceptions import SessionCollisionError, StoreError, StoreUnavailableError
from sessionware.stores.base import Fields, StoreBase

__all__ = ["SQLiteStore"]

log = logging.getLogger("sessionware")

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
_CHECKPOINT_EVERY = 200  # write groups committed on the loop between WAL checkpoints
_WAL_BACKSTOP_PAGES = 2000
_LIVE = "SELECT fields FROM sessionware_sessions WHERE key = ? AND expires > ?"

# One request's changes as one statement: SQLite merges them into the stored object
# itself (RFC 7396: a text replaces, a null deletes; keys keep their order, new ones go
# last, as a dict's update does). No read of the row into Python and back: a third less
# work per write than a SELECT, a decode, an encode and an UPDATE. A row that is not a
# JSON object (damaged, foreign) is left alone and the write answers "gone", as the
# read-modify-write does (the CASE checks validity before json_type may see the text).
_PATCH = (
    "UPDATE sessionware_sessions SET fields = json_patch(fields, ?), expires = ? "
    "WHERE key = ? AND expires > ? "
    "AND CASE WHEN json_valid(fields) THEN json_type(fields) = 'object' ELSE 0 END"
)


def _has_json_patch() -> bool:
    """Whether this Python's SQLite has the JSON functions (built in since 3.38)."""
    try:
        with contextlib.closing(sqlite3.connect(":memory:")) as conn:
            row = conn.execute("""SELECT json_patch('{"a":"1","b":"2"}', '{"a":null,"c":"3"}')""")
            return bool(row.fetchone()[0] == '{"b":"2","c":"3"}')
    except sqlite3.Error:
        return False


_JSON_PATCH = _has_json_patch()


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


# The C scanner directly (typeshed lacks it): the record is decoded on every read.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _load(text: str) -> Fields | None:
    """Decode a stored record; what this store wrote has no whitespace around it.

    A row this store cannot have written (not a JSON object of texts, or text with no
    UTF-8 form, as a ``\\ud800`` escape decodes to) reads as no record: a damaged or
    foreign row must not fail every request that presents its cookie.
    """
    try:
        value, end = _scan(text, 0)
    except StopIteration:  # whitespace first, say
        end = -1
    except (TypeError, ValueError):  # not text, not JSON
        return None
    if end != len(text):
        try:
            value = json.loads(text)  # whitespace around it: written by someone else
        except ValueError:
            return None
    if type(value) is not dict or not all(type(v) is str for v in value.values()):
        return None
    if "\\u" in text:
        try:
            _dump(value).encode()
        except UnicodeEncodeError:
            return None
    return value


def _dump(fields: Fields) -> str:
    return dumps(fields if type(fields) is dict else dict(fields))


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the store tracks its open ones)."""


def _store_error(exc: Exception) -> StoreError:
    """Our error for a driver failure."""
    if isinstance(exc, UnicodeEncodeError):
        # A lone surrogate has no UTF-8 form; every store refuses it the same way.
        return StoreError("SQLite store cannot keep text that is not valid Unicode")
    # DatabaseError, not only OperationalError: a corrupt or replaced file ("file is
    # not a database") is an outage too, never a raw driver error.
    return StoreUnavailableError(f"SQLite store unavailable: {exc}")


class _Job(Generic[T]):
    """A driver request: run ``fn(connection, now)``, in a write transaction or not."""

    __slots__ = ("fn", "write")

    def __init__(self, fn: Callable[[sqlite3.Connection, float], T], write: bool) -> None:
        self.fn = fn
        self.write = write


def _read(fn: Callable[[sqlite3.Connection, float], T]) -> Op[T]:
    """Run ``fn`` on a connection, outside any explicit transaction."""
    result: T = yield _Job(fn, write=False)
    return result


def _write(fn: Callable[[sqlite3.Connection, float], T]) -> Op[T]:
    """Run ``fn`` in a ``BEGIN IMMEDIATE`` transaction; ``now`` is read once it holds the lock."""
    result: T = yield _Job(fn, write=True)
    return result


def _in_transaction(
    conn: sqlite3.Connection, clock: Callable[[], float], jobs: list[_Job[Any]]
) -> list[Any]:
    """Run write jobs in one ``BEGIN IMMEDIATE`` ... ``COMMIT``, ``now`` read once the
    lock is held; on any failure roll back (unless SQLite already did, as on a full
    disk) and raise."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        now = clock()
        results = [job.fn(conn, now) for job in jobs]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return results


def _when_unlocked(busy_ms: int, fn: Callable[[], Any]) -> Any:
    """``fn()``, tried again for up to ``busy_ms`` while SQLite answers "locked"/"busy"."""
    deadline = time.monotonic() + busy_ms / 1000
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class _Group:
    """One event loop's writes waiting for the writer thread (see ``_aperform``)."""

    __slots__ = ("queued", "running")

    def __init__(self) -> None:
        self.queued: list[tuple[_Job[Any], asyncio.Future[Any]]] = []
        self.running = False


def _settle(
    batch: list[tuple[_Job[Any], asyncio.Future[Any]]], outcomes: list[tuple[bool, Any]]
) -> None:
    """Give each waiting write its outcome (a request cancelled meanwhile takes none)."""
    for (_, done), (ok, value) in zip(batch, outcomes, strict=True):
        if done.done():
            continue
        if ok:
            done.set_result(value)
        else:
            done.set_exception(value)


class SQLiteStore(StoreBase):
    """Sessions in a SQLite file; safe for many threads and several processes sharing it."""

    kind = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 5.0,
        file_mode: int | None = 0o600,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Open (or create) the database at ``path``.

        ``file_mode`` is the mode a new file gets, whatever the umask (0600: owner
        only); ``None`` leaves it to the umask, for a file that processes of several
        users share through a group. An existing file keeps its mode.
        """
        self.path = str(path)
        self._busy_ms = int(busy_timeout * 1000)
        # Expiry counts elapsed time, as the core's timeouts do: a system clock stepped
        # an hour forward must not expire every record at once (nor purge them).
        self._clock = clock or SteadyClock()
        self._local = threading.local()
        self._opened: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._lock = threading.Lock()  # guards _opened, _local and _writer
        self._writer: ThreadPoolExecutor | None = None
        self._writes = itertools.count(1)  # next() is atomic: threads share it safely
        # Per event loop: a store may serve several loops (one per thread, or tests).
        self._groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Group]
        self._groups = weakref.WeakKeyDictionary()
        self._inline_commits = 0
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
            # A connection of its own, closed at once: the thread that builds the store
            # (perhaps a server's master, about to fork) keeps none open.
            _when_unlocked(self._busy_ms, self._create_schema)

    def _create_schema(self) -> None:
        conn = self._connect()
        try:
            conn.executescript(_SCHEMA)
        finally:
            conn.close()

    # -- connections ---------------------------------------------------------

    def _connect(self, busy_ms: int | None = None) -> _Connection:
        # check_same_thread=False only so that close() may close every thread's
        # connection; each is still used by its own thread alone.
        busy = self._busy_ms if busy_ms is None else busy_ms
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            timeout=busy / 1000,
            check_same_thread=False,
            factory=_Connection,
        )
        try:
            # Switching a new file to WAL needs the exclusive lock, and SQLite answers
            # "locked" at once (no busy wait) when another process is switching it too:
            # several workers starting on one new file. Retried within the busy timeout.
            _when_unlocked(busy, lambda: conn.execute("PRAGMA journal_mode=WAL"))
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={busy}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _inline_conn(self) -> sqlite3.Connection:
        """This thread's connection for writes tried on the event loop: it never waits
        for the lock (busy there means "let the writer thread do it") and leaves the
        checkpoints (an fsync) to the writer thread."""
        local = self._local
        conn: _Connection | None = getattr(local, "inline", None)
        if conn is None:
            conn = self._connect(busy_ms=0)
            # The writer thread checkpoints every few hundred loop commits; this is only
            # the backstop that bounds the WAL if those cannot keep up (2000 pages, 8 MB).
            conn.execute(f"PRAGMA wal_autocheckpoint={_WAL_BACKSTOP_PAGES}")
            with self._lock:
                self._opened.add(conn)
            local.inline = conn
        return conn

    def _try_inline(self, jobs: list[_Job[Any]]) -> list[tuple[bool, Any]] | None:
        """Run a group in one transaction right here, if the write lock is free at once.

        In WAL mode with ``synchronous=NORMAL`` a commit is a write to the WAL, no
        fsync: cheaper than the two thread hops of the writer. None when the lock is
        held (another process is writing) or anything fails: nothing was written, and
        the writer thread takes the group as before.
        """
        conn = None
        try:
            conn = self._inline_conn()
            results = _in_transaction(conn, self._clock, jobs)
        except Exception:
            if conn is not None and conn.in_transaction:
                self._forget_inline(conn)  # the rollback failed: a new connection next time
            return None
        self._inline_commits += 1
        if self._inline_commits % _CHECKPOINT_EVERY == 0:
            # RuntimeError: the writer was shut down; the next store use restarts it.
            with contextlib.suppress(RuntimeError):
                self._writer_thread().submit(self._checkpoint)
        return [(True, result) for result in results]

    def _forget_inline(self, conn: sqlite3.Connection) -> None:
        self._local.inline = None
        conn.close()

    def _checkpoint(self) -> None:
        """Move the WAL's pages into the database file and start the WAL over.

        RESTART holds off writers while it runs, so it completes even under steady
        writes (a passive one would chase them and let the WAL grow). A write tried on
        the loop meanwhile finds the lock busy and queues here, behind it: the loop
        itself never waits.
        """
        try:
            self._conn().execute("PRAGMA wal_checkpoint(RESTART)")
        except sqlite3.Error as exc:
            log.debug("SQLite checkpoint skipped: %s", exc)

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            conn = self._connect()
            with self._lock:
                self._opened.add(conn)
            local.conn = conn
        return conn

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise _store_error(exc) from exc
        except UnicodeEncodeError as exc:
            raise _store_error(exc) from None

    # -- the drivers ------------------------------------------------------------

    def _perform(self, job: _Job[T]) -> T:
        """Run one job on this thread's connection (both faces end here).

        The error mapping is a plain try, not :meth:`_guard`: this is on every read.
        """
        try:
            conn = self._conn()
            if not job.write:
                return job.fn(conn, self._clock())
            result: T = _in_transaction(conn, self._clock, [job])[0]
            return result
        except sqlite3.DatabaseError as exc:
            raise _store_error(exc) from exc
        except UnicodeEncodeError as exc:
            raise _store_error(exc) from None

    def _perform_group(self, jobs: list[_Job[Any]]) -> list[tuple[bool, Any]]:
        """Run several write jobs in ONE transaction (group commit); each job's outcome.

        One ``BEGIN IMMEDIATE`` ... ``COMMIT`` for every write one event-loop turn
        queued: the lock, the WAL append and the commit are paid once for the group.
        If anything fails, the whole transaction is rolled back and each job runs again
        in a transaction of its own, so every write gets its own answer.
        """
        if len(jobs) > 1:
            try:
                return [(True, r) for r in _in_transaction(self._conn(), self._clock, jobs)]
            except Exception:  # noqa: S110 -- each job is retried alone just below
                pass
        outcomes: list[tuple[bool, Any]] = []
        for job in jobs:
            try:
                outcomes.append((True, self._perform(job)))
            except Exception as exc:
                outcomes.append((False, exc))
        return outcomes

    async def _aperform(self, job: _Job[T]) -> T:
        """Reads inline on the loop; writes on the writer thread, so the loop never
        waits on the file lock, grouped: the writes queued while the writer is busy
        (or in the same loop turn) commit together in one transaction."""
        if not job.write:
            return self._perform(job)
        loop = asyncio.get_running_loop()
        group = self._groups.get(loop)
        if group is None:
            group = self._groups[loop] = _Group()
        done: asyncio.Future[T] = loop.create_future()
        group.queued.append((job, done))
        if not group.running:
            group.running = True
            loop.call_soon(self._flush, loop, group)  # after this turn's other writes
        return await done

    def _flush(self, loop: asyncio.AbstractEventLoop, group: _Group) -> None:
        """Hand the queued writes to the writer thread as one group."""
        batch, group.queued = group.queued, []
        if not batch:
            group.running = False
            return
        jobs = [job for job, _ in batch]
        outcomes = self._try_inline(jobs)
        if outcomes is not None:
            group.running = False
            _settle(batch, outcomes)
            return
        try:
            running = loop.run_in_executor(self._writer_thread(), self._perform_group, jobs)
        except Exception as exc:  # the executor was shut down under us
            group.running = False
            _settle(batch, [(False, exc)] * len(batch))
            return

        def finished(result: asyncio.Future[list[tuple[bool, Any]]]) -> None:
            if result.cancelled():
                outcomes: list[tuple[bool, Any]] = [(False, asyncio.CancelledError())]
                outcomes *= len(batch)
            elif result.exception() is not None:
                outcomes = [(False, result.exception())] * len(batch)
            else:
                outcomes = result.result()
            _settle(batch, outcomes)
            self._flush(loop, group)  # the writes that queued meanwhile, if any

        running.add_done_callback(finished)

    def _writer_thread(self) -> ThreadPoolExecutor:
        writer = self._writer
        if writer is None:
            with self._lock:
                writer = self._writer
                if writer is None:
                    writer = self._writer = ThreadPoolExecutor(
                        max_workers=1, thread_name_prefix="sessionware-sqlite"
                    )
        return writer

    def _drive(self, op: Op[T]) -> T:
        return drive(op, self._perform)

    def _adrive(self, op: Op[T]) -> Coroutine[Any, Any, T]:
        return adrive(op, self._aperform)

    def _close(self) -> None:
        """Close every connection opened so far, in any thread; a later call opens anew.

        Call it when no call is running: a connection in use is closed under it.
        """
        with self._lock:
            opened = list(self._opened)
            self._opened = weakref.WeakSet()
            self._local = threading.local()  # other threads' old connections are forgotten
        for conn in opened:
            conn.close()

    async def _aclose(self) -> None:
        """Stop the writer thread once the writes queued on it are done."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            # Queued after any pending write, so those finish first; awaited, not
            # waited for, so the loop keeps serving meanwhile.
            await asyncio.wrap_future(writer.submit(self._forget_thread_connection))
            writer.shutdown(wait=True)

    def _forget_thread_connection(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()

    # -- the operations ------------------------------------------------------------

    def load_inline(self, key: str) -> Fields | None:
        """Read one live record on this thread's connection (in WAL mode a reader never
        waits for a writer, so the async face runs it on the loop)."""
        try:
            conn = getattr(self._local, "conn", None) or self._conn()
            row = conn.execute(_LIVE, (key, self._clock())).fetchone()
        except sqlite3.DatabaseError as exc:
            raise _store_error(exc) from exc
        except UnicodeEncodeError as exc:
            raise _store_error(exc) from None
        return _load(row[0]) if row else None

    def _op_load(self, key: str) -> Op[Fields | None]:
        """Read one live record (see :meth:`load_inline`)."""
        return self.load_inline(key)
        yield  # unreachable: makes this a generator, an operation like any store's

    async def load(self, key: str) -> Fields | None:
        """The live record at ``key``, or None."""
        return self.load_inline(key)

    def _op_create(self, key: str, fields: Fields, ttl: float) -> Op[None]:
        """Insert a new record; an existing live key is a collision."""
        text = _dump(fields)

        def run(conn: sqlite3.Connection, now: float) -> bool:
            if next(self._writes) % _PURGE_EVERY == 0:
                conn.execute("DELETE FROM sessionware_sessions WHERE expires <= ?", (now,))
            cur = conn.execute(
                "INSERT INTO sessionware_sessions (key, fields, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET fields = excluded.fields, "
                "expires = excluded.expires WHERE sessionware_sessions.expires <= ?",
                (key, text, now + ttl, now),
            )
            return cur.rowcount == 1

        if not (yield from _write(run)):
            raise SessionCollisionError("session key already exists")

    def _op_apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> Op[bool]:
        """Merge one request's changes into a live record inside one immediate
        transaction (by ``json_patch`` where SQLite has it, else read-modify-write)."""
        if _JSON_PATCH:
            patch = dumps({**sets, **dict.fromkeys(dels)})

            def patched(conn: sqlite3.Connection, now: float) -> bool:
                return conn.execute(_PATCH, (patch, now + ttl, key, now)).rowcount == 1

            return (yield from _write(patched))

        def run(conn: sqlite3.Connection, now: float) -> bool:
            row = conn.execute(_LIVE, (key, now)).fetchone()
            if row is None:
                return False
            loaded = _load(row[0])
            if loaded is None:
                return False  # damaged since it was read: as good as gone
            merged = dict(loaded)
            merged.update(sets)
            for name in dels:
                merged.pop(name, None)
            conn.execute(
                "UPDATE sessionware_sessions SET fields = ?, expires = ? WHERE key = ?",
                (_dump(merged), now + ttl, key),
            )
            return True

        return (yield from _write(run))

    def _op_incr(
        self, key: str, field: str, amount: int, ttl: float, create: bool
    ) -> Op[int | None]:
        """Add to an integer field; a missing record is created with ``ttl`` only if ``create``."""

        def run(conn: sqlite3.Connection, now: float) -> int | None:
            row = conn.execute(_LIVE, (key, now)).fetchone()
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

        return (yield from _write(run))

    def _op_delete(self, key: str) -> Op[None]:
        """Remove a record."""
        yield from _write(
            lambda conn, now: conn.execute("DELETE FROM sessionware_sessions WHERE key = ?", (key,))
        )

    def _op_link(self, user_id: str, key: str) -> Op[None]:
        """Index ``key`` under ``user_id``."""
        yield from _write(
            lambda conn, now: conn.execute(
                "INSERT OR IGNORE INTO sessionware_user_sessions (user_id, key) VALUES (?, ?)",
                (user_id, key),
            )
        )

    def _op_unlink(self, user_id: str, key: str) -> Op[None]:
        """Remove ``key`` from ``user_id``'s index."""
        yield from _write(
            lambda conn, now: conn.execute(
                "DELETE FROM sessionware_user_sessions WHERE user_id = ? AND key = ?",
                (user_id, key),
            )
        )

    def _op_keys_of(self, user_id: str) -> Op[list[str]]:
        """The user's live keys; index rows of dead sessions are removed (so: a write)."""

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

        return (yield from _write(run))

    def _op_purge_expired(self, limit: int | None = None) -> Op[int]:
        """Delete expired records (at most ``limit``, oldest first) and dangling index rows."""

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

        return (yield from _write(run))

    def _op_count_expired(self) -> Op[int]:
        """How many expired records are waiting for :meth:`purge_expired`."""
        row = yield from _read(
            lambda conn, now: conn.execute(
                "SELECT count(*) FROM sessionware_sessions WHERE expires <= ?", (now,)
            ).fetchone()
        )
        return int(row[0])

    def _op_user_ids(self) -> Op[list[str]]:
        """Every id in the user index."""
        rows = yield from _read(
            lambda conn, now: conn.execute(
                "SELECT DISTINCT user_id FROM sessionware_user_sessions ORDER BY user_id"
            ).fetchall()
        )
        return [r[0] for r in rows]

    def _op_count(self) -> Op[int]:
        """How many live sessions the file holds."""
        row = yield from _read(
            lambda conn, now: conn.execute(
                "SELECT count(*) FROM sessionware_sessions WHERE expires > ?", (now,)
            ).fetchone()
        )
        return int(row[0])

    # -- extras on the async face (``store.sync`` finds the operations by name) ---

    async def purge_expired(self, limit: int | None = None) -> int:
        """Delete expired records (at most ``limit``, oldest first) and dangling index rows.

        Returns how many records went. A ``limit`` keeps each write transaction short on
        a large file, so ``sessionware purge`` can show progress and never block the app.
        """
        return await self._adrive(self._op_purge_expired(limit))

    async def count_expired(self) -> int:
        """How many expired records are waiting for :meth:`purge_expired`."""
        return await self._adrive(self._op_count_expired())

    async def user_ids(self) -> list[str]:
        """Every id in the user index (for ``sessionware sessions list`` without --user)."""
        return await self._adrive(self._op_user_ids())

    async def count(self) -> int:
        """How many live sessions the file holds."""
        return await self._adrive(self._op_count())
