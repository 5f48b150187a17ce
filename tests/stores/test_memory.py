"""MemoryStore: the store contract, plus LRU eviction, the production warning and hashing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from sessionware.stores import MemoryStore
from sessionware.stores.base import Store
from sessionware.testing import ManualClock, StoreContract, new_key


class TestMemoryStore(StoreContract):
    """The contract, on a MemoryStore driven by a hand-moved clock."""

    uses_clock = True

    @pytest.fixture
    async def backend(self, clock: ManualClock) -> AsyncIterator[Store]:
        """A fresh development MemoryStore on the test clock."""
        s = MemoryStore(development=True, clock=clock)
        yield s
        await s.close()


@pytest.mark.anyio
async def test_max_entries_evicts_least_recently_used() -> None:
    """Over max_entries, the record used least recently goes first, and a load counts as use."""
    store = MemoryStore(max_entries=2, development=True)
    a, b, c = new_key(), new_key(), new_key()
    await store.create(a, {".v": "a"}, 60)
    await store.create(b, {".v": "b"}, 60)
    assert await store.load(a) is not None  # a is now the most recent
    await store.create(c, {".v": "c"}, 60)
    assert await store.load(b) is None
    assert await store.load(a) is not None
    assert await store.load(c) is not None
    assert len(store) == 2


def test_warns_outside_development(caplog: pytest.LogCaptureFixture) -> None:
    """Built without development=True, MemoryStore warns that it is not for production."""
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        MemoryStore()
    assert any(
        r.levelno == logging.WARNING and "MemoryStore" in r.getMessage() for r in caplog.records
    )


def test_no_warning_in_development(caplog: pytest.LogCaptureFixture) -> None:
    """development=True silences the production warning."""
    with caplog.at_level(logging.DEBUG, logger="sessionware"):
        MemoryStore(development=True)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_max_entries_must_be_positive() -> None:
    """max_entries=0 is refused at construction."""
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStore(max_entries=0, development=True)


@pytest.mark.anyio
async def test_purge_expired_counts_and_keeps_live() -> None:
    """purge_expired removes expired records, says how many, and keeps live ones."""
    clock = ManualClock()
    store = MemoryStore(development=True, clock=clock)
    live, dead = new_key(), new_key()
    await store.create(live, {".a": "1"}, 3600)
    await store.create(dead, {".a": "1"}, 1)
    clock.advance(2)
    assert await store.purge_expired() == 1
    assert len(store) == 1
    assert await store.load(live) is not None


@pytest.mark.anyio
async def test_incr_records_count_towards_max_entries() -> None:
    """Counters created by incr are evicted like sessions, so max_entries really bounds memory."""
    store = MemoryStore(max_entries=2, development=True)
    for i in range(5):
        await store.incr(f"th:{i}", "n", 1, 60)
    assert len(store) == 2
    assert await store.load("th:4") == {"n": "1"}
    assert await store.load("th:0") is None


def test_sync_face_extras_and_lru() -> None:
    """store.sync has the extras as plain calls, and a sync load counts as use for LRU."""
    clock = ManualClock()
    store = MemoryStore(max_entries=2, development=True, clock=clock)
    a, b, c = new_key(), new_key(), new_key()
    store.sync.create(a, {".v": "a"}, 60)
    store.sync.create(b, {".v": "b"}, 1)
    store.sync.link("u2", a)
    store.sync.link("u1", b)
    assert store.sync.user_ids() == ["u1", "u2"]
    clock.advance(2)
    assert store.sync.purge_expired() == 1
    assert len(store) == 1
    store.sync.create(b, {".v": "b"}, 60)
    assert store.sync.load(a) == {".v": "a"}  # a is now the most recent
    store.sync.create(c, {".v": "c"}, 60)
    assert store.sync.load(b) is None
    assert store.sync.load(a) == {".v": "a"}
    store.sync.close()
    store.sync.close()
