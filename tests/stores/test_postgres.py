"""PostgresStore: the store contract against the real PostgreSQL, plus its own checks."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import psycopg
import pytest

from sessionware.exceptions import ConfigurationError, StoreUnavailableError
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
