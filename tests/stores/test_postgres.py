"""PostgresStore: the store contract against the real PostgreSQL, plus its own checks."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import psycopg
import pytest

from sessionware.exceptions import ConfigurationError, StoreError, StoreUnavailableError
from sessionware.stores import from_url
from sessionware.stores.base import Store
from sessionware.stores.postgres import PostgresStore
from sessionware.tokens import new_session_id, store_key
from tests.stores.contract import ManualClock, StoreContract, new_key

URL = "postgresql://postgres@127.0.0.1:5432/test"


def _table() -> str:
    return "sw_test_" + secrets.token_hex(6)


class TestPostgresStore(StoreContract):
    """The contract, on tables of their own in the `test` database, with a hand-moved clock."""

    uses_clock = True

    @pytest.fixture
    async def store(self, clock: ManualClock) -> AsyncIterator[Store]:
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
