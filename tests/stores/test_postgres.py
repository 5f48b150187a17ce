"""PostgresStore: the store contract against the real PostgreSQL, plus its own checks."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import psycopg
import pytest

from sessionware.exceptions import ConfigurationError, StoreError, StoreUnavailableError
from sessionware.stores import from_url
from sessionware.stores.base import Store
from sessionware.stores.postgres import PostgresStore
from sessionware.testing import ManualClock, StoreContract, new_key
from sessionware.tokens import new_session_id, store_key

URL = "postgresql://postgres@127.0.0.1:5432/test"


def _table() -> str:
    return "sw_test_" + secrets.token_hex(6)


class TestPostgresStore(StoreContract):
    """The contract, on tables of their own in the `test` database, with a hand-moved clock."""

    uses_clock = True

    @pytest.fixture
    async def backend(self, clock: ManualClock) -> AsyncIterator[Store]:
        """A fresh PostgresStore on its own tables, dropped afterwards."""
        s = PostgresStore(URL, table=_table(), clock=clock)
        yield s
        await s.drop()
        await s.close()


@pytest.fixture
async def pg_store() -> AsyncIterator[PostgresStore]:
    """A PostgresStore on the real clock with its own tables."""
    s = PostgresStore(URL, table=_table())
    yield s
    await s.drop()
    await s.close()


@pytest.mark.anyio
async def test_rows_hold_only_the_hash_of_the_id(pg_store: PostgresStore) -> None:
    """Reading the table directly finds the SHA-256 of the id and never the id itself."""
    sid = new_session_id()
    await pg_store.create(store_key(sid), {".user": '"alice"', "c": "1", "a": "1"}, 60)
    with psycopg.connect(URL) as conn:
        rows = conn.execute(f"SELECT key, fields::text FROM {pg_store.table}").fetchall()
    assert rows == [(store_key(sid), rows[0][1])]
    assert sid not in repr(rows)


@pytest.mark.anyio
async def test_purge_removes_only_expired_rows(pg_store: PostgresStore) -> None:
    """purge_expired deletes rows past their expiry and keeps live ones."""
    clock = ManualClock()
    s = PostgresStore(URL, table=pg_store.table, clock=clock)
    live, dead = new_key(), new_key()
    await s.create(dead, {"c": "1"}, 1)
    await s.create(live, {"c": "1"}, 100)
    clock.advance(10)
    assert await s.purge_expired() == 1
    assert await s.load(live) is not None
    await s.close()


@pytest.mark.anyio
async def test_from_url_builds_a_postgres_store() -> None:
    """SESSION_STORE=postgresql://... gives a working PostgresStore."""
    s = from_url(URL, table=_table())
    assert isinstance(s, PostgresStore)
    key = new_key()
    await s.create(key, {"x": "1"}, 60)
    assert await s.load(key) == {"x": "1"}
    await s.drop()
    await s.close()


def test_bad_url_is_a_configuration_error() -> None:
    """A URL psycopg cannot parse fails at start-up with the form that works."""
    with pytest.raises(ConfigurationError, match="postgresql://"):
        PostgresStore.from_url("postgresql://host:port:bad/x=y z")


@pytest.mark.anyio
async def test_unreachable_server_is_store_unavailable() -> None:
    """A server nobody listens on raises StoreUnavailableError (the middleware's 503)."""
    s = PostgresStore("postgresql://postgres@127.0.0.1:1/test", timeout=1.0)
    with pytest.raises(StoreUnavailableError):
        await s.load(new_key())
    await s.close()


@pytest.mark.anyio
async def test_missing_table_is_a_store_error_saying_the_fix_then_heals(
    pg_store: PostgresStore,
) -> None:
    """A table dropped under a running store gives a StoreError naming it (not psycopg's
    error), and the next call creates the tables again."""
    key = new_key()
    await pg_store.create(key, {".a": "1"}, 60)
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {pg_store.table}")
    with pytest.raises(StoreError, match=f"{pg_store.table}.*does not exist") as info:
        await pg_store.load(key)
    assert not isinstance(info.value, StoreUnavailableError)
    assert not isinstance(info.value.__cause__, psycopg.Error)
    assert await pg_store.load(key) is None
    await pg_store.create(key, {".a": "2"}, 60)
    assert await pg_store.load(key) == {".a": "2"}


@pytest.mark.anyio
async def test_refused_statement_is_a_store_error_without_the_value(
    pg_store: PostgresStore,
) -> None:
    """A statement PostgreSQL refuses (incrementing text) raises StoreError quoting no value."""
    key = new_key()
    await pg_store.create(key, {".n": "secret-not-a-number"}, 60)
    with pytest.raises(StoreError) as info:
        await pg_store.incr(key, ".n", 1, 60)
    assert "secret-not-a-number" not in str(info.value)
    assert type(info.value) is StoreError
    assert "SQLSTATE 22P02" in str(info.value)


@pytest.mark.anyio
async def test_role_without_rights_is_a_store_error_saying_grant() -> None:
    """A role that may not create or use the tables gets a StoreError that says to GRANT."""
    role = "sw_test_role_" + secrets.token_hex(4)
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}")
    s = PostgresStore(f"postgresql://{role}@127.0.0.1:5432/test", table=_table())
    try:
        with pytest.raises(StoreError, match="GRANT") as info:
            await s.load(new_key())
        assert not isinstance(info.value, StoreUnavailableError)
    finally:
        await s.close()
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")


@pytest.mark.anyio
async def test_unreachable_server_message_names_no_password() -> None:
    """The outage error says what failed and never repeats the password of the URL."""
    s = PostgresStore("postgresql://postgres:hunter2pw@127.0.0.1:1/test", timeout=1.0)
    with pytest.raises(StoreUnavailableError, match="unavailable") as info:
        await s.load(new_key())
    assert "hunter2pw" not in str(info.value)
    await s.close()


def test_bad_conninfo_is_a_configuration_error_without_the_password() -> None:
    """A conninfo string psycopg cannot parse fails at construction and is not echoed."""
    with pytest.raises(ConfigurationError, match="postgresql://") as info:
        PostgresStore("host=127.0.0.1 password=hunter2pw dbname")
    assert "hunter2pw" not in str(info.value)


@pytest.mark.anyio
async def test_nul_is_stored_escaped_and_never_reaches_postgresql_raw(
    pg_store: PostgresStore,
) -> None:
    """Text with NUL is stored under the noncharacter marker, and plain text is stored as is."""
    key = new_key()
    await pg_store.create(key, {"ua": "a\x00%b", "c": "1"}, 60)
    with psycopg.connect(URL) as conn:
        row = conn.execute(f"SELECT fields FROM {pg_store.table}").fetchone()
    assert row is not None and row[0] == {"ua": "\ufdd0a%00%25b", "c": "1"}


# -- the sync face (store.sync): the same operations through psycopg's sync pool ------


@pytest.fixture
def sync_store() -> Iterator[PostgresStore]:
    """A PostgresStore used only through its sync face, with its own tables."""
    s = PostgresStore(URL, table=_table())
    yield s
    s.sync.drop()
    s.sync.close()


def _pool_threads() -> set[threading.Thread]:
    """The threads psycopg_pool's sync pools run (``pool-N-worker-i``, ``-scheduler``)."""
    return {
        t for t in threading.enumerate()
        if t.name.startswith("pool-") and ("-worker-" in t.name or t.name.endswith("-scheduler"))
    }


def test_sync_face_concurrent_incr_from_threads_counts_every_call() -> None:
    """Eight threads incrementing one counter through the sync face of a fresh store (their
    first calls racing to build the pool and the tables) count every call, no two calls see
    the same value, and close leaves no pool thread behind (one pool was built, not eight)."""
    before = _pool_threads()
    s = PostgresStore(URL, table=_table())
    key, per_thread = new_key("th:"), 25
    seen: list[int] = []
    seen_lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker() -> None:
        try:
            start.wait()
            for _ in range(per_thread):
                n = s.sync.incr(key, "n", 1, 60)
                with seen_lock:
                    seen.append(n)
        except BaseException as exc:  # handed to the main thread's assertion
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert errors == []
        assert sorted(seen) == list(range(1, 8 * per_thread + 1))
        assert s.sync.load(key) == {"n": str(8 * per_thread)}
    finally:
        s.sync.drop()
        s.sync.close()
    assert _pool_threads() - before == set()


@pytest.mark.anyio
async def test_sync_face_writes_are_seen_by_the_async_face_and_back(
    pg_store: PostgresStore,
) -> None:
    """A record created and changed through the sync face (from a thread) loads through the
    async face of the same store, and the async face's changes load through the sync one."""
    key, user = new_key(), "user-" + secrets.token_hex(4)
    face = pg_store.sync

    def sync_writes() -> None:
        face.create(key, {".a": "1", "ua": "x\x00y"}, 60)
        face.link(user, key)

    await anyio.to_thread.run_sync(sync_writes)
    assert await pg_store.load(key) == {".a": "1", "ua": "x\x00y"}
    assert await pg_store.keys_of(user) == [key]
    assert await pg_store.apply(key, {".b": "2"}, [".a"], 60)
    assert await anyio.to_thread.run_sync(face.load, key) == {"ua": "x\x00y", ".b": "2"}
    await pg_store.delete(key)
    assert await anyio.to_thread.run_sync(face.keys_of, user) == []


def test_sync_only_use_never_opens_the_async_pool(sync_store: PostgresStore) -> None:
    """A WSGI app that only calls store.sync builds no async pool (and needs no loop)."""
    key = new_key()
    sync_store.sync.create(key, {".a": "1"}, 60)
    assert sync_store.sync.load(key) == {".a": "1"}
    assert sync_store.sync.purge_expired() == 0
    assert sync_store._spool is not None
    assert sync_store._apool is None


@pytest.mark.anyio
async def test_async_only_use_never_opens_the_sync_pool() -> None:
    """An ASGI app that only awaits the store starts no sync pool and none of its threads."""
    before = _pool_threads()
    s = PostgresStore(URL, table=_table())
    key = new_key()
    await s.create(key, {".a": "1"}, 60)
    assert await s.load(key) == {".a": "1"}
    assert await s.purge_expired() == 0
    assert s._apool is not None
    assert s._spool is None
    assert _pool_threads() - before == set()
    await s.drop()
    await s.close()


def test_sync_face_unreachable_server_is_store_unavailable_quickly() -> None:
    """Through the sync face too, a closed port raises StoreUnavailableError within about
    the pool timeout, without the URL's password, and the sync pool's threads end on close."""
    before = _pool_threads()
    s = PostgresStore("postgresql://postgres:hunter2pw@127.0.0.1:1/test", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="unavailable") as info:
        s.sync.load(new_key())
    assert time.monotonic() - started < 5
    assert "hunter2pw" not in str(info.value)
    assert not isinstance(info.value.__cause__, psycopg.Error)
    s.sync.close()
    assert _pool_threads() - before == set()


@pytest.mark.anyio
async def test_both_faces_unreachable_server_is_store_unavailable_quickly() -> None:
    """One store pointed at a closed port fails fast on both faces with the same error."""
    s = PostgresStore("postgresql://postgres@127.0.0.1:1/test", timeout=1.0)
    for call in (lambda: s.load(new_key()), lambda: anyio.to_thread.run_sync(s.sync.load, "k")):
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            await call()
        assert time.monotonic() - started < 5
    await s.close()


def test_sync_face_missing_table_is_a_store_error_then_heals(sync_store: PostgresStore) -> None:
    """The sync face maps a dropped table as the async face does, then creates it again."""
    key = new_key()
    sync_store.sync.create(key, {".a": "1"}, 60)
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {sync_store.table}")
    with pytest.raises(StoreError, match=f"{sync_store.table}.*does not exist") as info:
        sync_store.sync.load(key)
    assert not isinstance(info.value, StoreUnavailableError)
    assert sync_store.sync.load(key) is None
    sync_store.sync.create(key, {".a": "2"}, 60)
    assert sync_store.sync.load(key) == {".a": "2"}


def test_sync_face_refused_statement_is_a_store_error_without_the_value(
    sync_store: PostgresStore,
) -> None:
    """The sync face maps a refused statement to the same StoreError, quoting no value."""
    key = new_key()
    sync_store.sync.create(key, {".n": "secret-not-a-number"}, 60)
    with pytest.raises(StoreError) as info:
        sync_store.sync.incr(key, ".n", 1, 60)
    assert type(info.value) is StoreError
    assert "SQLSTATE 22P02" in str(info.value)
    assert "secret-not-a-number" not in str(info.value)


@pytest.mark.anyio
async def test_drop_on_one_face_makes_both_faces_create_the_tables_again(
    pg_store: PostgresStore,
) -> None:
    """After drop, the first call on either face works at once (no missing-table error):
    drop resets both faces' set-up, whichever face ran it."""
    face = pg_store.sync
    await anyio.to_thread.run_sync(face.load, new_key())  # the sync face has set up too
    await pg_store.drop()
    key = new_key()
    await anyio.to_thread.run_sync(face.create, key, {".a": "1"}, 60)
    assert await pg_store.load(key) == {".a": "1"}
    await anyio.to_thread.run_sync(face.drop)
    assert await pg_store.load(key) is None
    assert await anyio.to_thread.run_sync(face.load, key) is None


def test_sync_face_purge_removes_only_expired_rows() -> None:
    """purge_expired, an extra operation, is a plain call on the sync face."""
    clock = ManualClock()
    s = PostgresStore(URL, table=_table(), clock=clock)
    live, dead = new_key(), new_key()
    s.sync.create(dead, {"c": "1"}, 1)
    s.sync.create(live, {"c": "1"}, 100)
    clock.advance(10)
    assert s.sync.purge_expired() == 1
    assert s.sync.purge_expired() == 0
    assert s.sync.load(live) == {"c": "1"}
    s.sync.drop()
    s.sync.close()


@pytest.mark.anyio
async def test_closed_store_stays_closed_on_both_faces() -> None:
    """After close, neither face builds a new pool behind it: calls are StoreUnavailableError."""
    s = PostgresStore(URL, table=_table())
    key = new_key()
    await s.create(key, {".a": "1"}, 60)
    await s.drop()
    await s.close()
    with pytest.raises(StoreUnavailableError):
        await s.load(key)
    with pytest.raises(StoreUnavailableError):
        s.sync.load(key)
    assert s._spool is None


@pytest.mark.anyio
async def test_sync_face_close_closes_only_the_sync_pool(pg_store: PostgresStore) -> None:
    """store.sync.close() closes the sync pool: the sync face then refuses calls while the
    async face goes on working."""
    key = new_key()
    await anyio.to_thread.run_sync(pg_store.sync.create, key, {".a": "1"}, 60)
    await anyio.to_thread.run_sync(pg_store.sync.close)
    assert pg_store._spool is not None and pg_store._spool.closed
    with pytest.raises(StoreUnavailableError):
        await anyio.to_thread.run_sync(pg_store.sync.load, key)
    assert await pg_store.load(key) == {".a": "1"}


def test_sync_face_loads_several_records_in_one_statement(
    sync_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login lists every session of its user: the sync face loads them with one
    statement, each answering as its own ``load`` would (a missing, an expired, a
    foreign row and a key holding NUL included)."""
    import sessionware.stores.postgres as pg
    from sessionware.stores.base import Call, call

    face = sync_store.sync
    keys = [new_key() for _ in range(10)] + ["odd\x00key"]
    for i, key in enumerate(keys):
        face.create(key, {"c": "1", "a": "1", ".n": str(i)}, 60)
    missing, expired, foreign = new_key(), new_key(), new_key()
    face.create(expired, {"c": "1", "a": "1"}, 0.05)
    time.sleep(0.1)
    with psycopg.connect(URL) as conn:
        conn.execute(
            f"INSERT INTO {sync_store.table} (key, fields, expires) VALUES (%s, %s, %s)",
            (foreign, psycopg.types.json.Jsonb([1, 2]), time.time() + 60),
        )
    wanted = [*keys, missing, expired, foreign]
    one_by_one = [face.load(key) for key in wanted]
    assert one_by_one[:11] == [{"c": "1", "a": "1", ".n": str(i)} for i in range(11)]
    assert one_by_one[11:] == [None, None, None]

    statements: list[str] = []
    perform = pg._perform

    def counted(conn: psycopg.Connection[object], stmt: pg._Stmt) -> object:
        statements.append(stmt.sql)
        return perform(conn, stmt)

    monkeypatch.setattr(pg, "_perform", counted)
    assert call(face, [Call("load", (key,)) for key in wanted]) == one_by_one
    assert len(statements) == 1


def test_a_subclass_with_its_own_load_is_loaded_one_by_one(sync_store: PostgresStore) -> None:
    """A store subclass that loads its own way (to count or cache) is never bypassed by
    the several-at-once load."""

    class Counting(PostgresStore):
        loads = 0

        def _op_load(self, key: str):  # type: ignore[no-untyped-def]
            Counting.loads += 1
            return (yield from super()._op_load(key))

    store = Counting(URL, table=sync_store.table)
    try:
        key = new_key()
        store.sync.create(key, {"c": "1", "a": "1"}, 60)
        assert store.sync.load_many([key, new_key()]) == [{"c": "1", "a": "1"}, None]
        assert Counting.loads == 2
    finally:
        store.sync.close()
