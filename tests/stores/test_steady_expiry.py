"""A store on its default clock keeps expiry by elapsed time, as the core keeps its
timeouts: a system clock stepped an hour forward expires no record, and one stepped an
hour back keeps no record past its TTL. (The fault harness found the step forward
signing everybody out while the core's own clock ignored it.)"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from sessionware._clock import SteadyClock
from sessionware.stores import MemoryStore, SQLiteStore
from sessionware.stores.base import Store
from sessionware.stores.postgres import PostgresStore
from sessionware.testing import new_key

pytestmark = pytest.mark.anyio


class Step:
    """How far this test has stepped what ``time.time()`` says."""

    seconds = 0.0

    def wall(self) -> float:
        return time.time() + self.seconds


@pytest.fixture
def step(monkeypatch: pytest.MonkeyPatch) -> Iterator[Step]:
    """A stepped system clock as a store's default clock meets it: the wall clock a
    ``SteadyClock()`` reads when built without arguments."""
    s = Step()
    monkeypatch.setattr(SteadyClock.__init__, "__defaults__", (s.wall,))
    yield s


Maker = Callable[[Path, Callable[[], float] | None], Store]
MAKERS: dict[str, Maker] = {
    "memory": lambda _, clock: MemoryStore(development=True, clock=clock),
    "sqlite": lambda tmp, clock: SQLiteStore(tmp / "s.sqlite3", clock=clock),
    "postgres": lambda _, clock: PostgresStore(
        "postgresql://postgres@127.0.0.1:5432/test",
        table="sw_test_" + secrets.token_hex(6),
        clock=clock,
    ),
}


async def _done(*stores: Store) -> None:
    for store in stores:
        if isinstance(store, PostgresStore):
            await store.drop()
        await store.close()


@pytest.mark.parametrize("kind", MAKERS)
async def test_a_clock_stepped_forward_expires_no_record(
    kind: str, step: Step, tmp_path: Path
) -> None:
    """A record with a minute to live is still there after the clock jumps an hour on;
    on the raw wall clock it would be gone (what the default protects against)."""
    (tmp_path / "raw").mkdir()
    store, raw = MAKERS[kind](tmp_path, None), MAKERS[kind](tmp_path / "raw", step.wall)
    assert isinstance(store._clock, SteadyClock)  # type: ignore[attr-defined]
    key = new_key()
    for s in (store, raw):
        await s.create(key, {".v": "1"}, 60)
    step.seconds = 3600
    assert await store.load(key) == {".v": "1"}
    assert await raw.load(key) is None
    await _done(store, raw)


@pytest.mark.parametrize("kind", MAKERS)
async def test_a_clock_stepped_back_keeps_no_record_past_its_ttl(
    kind: str, step: Step, tmp_path: Path
) -> None:
    """A record with half a second to live is gone once that much time has passed, though
    the clock was set an hour back meanwhile."""
    store = MAKERS[kind](tmp_path, None)
    key = new_key()
    await store.create(key, {".v": "1"}, 0.5)
    step.seconds = -3600
    await anyio.sleep(0.7)
    assert await store.load(key) is None
    await _done(store)
