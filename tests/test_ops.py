"""Operations and their drivers: replies, failures thrown back in, cancellation, batches."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sessionware._ops import Op, adrive, drive
from sessionware.exceptions import SessionCollisionError
from sessionware.stores import MemoryStore
from sessionware.stores.base import Call, acall, call


def retrying(log: list[str]) -> Op[str]:
    """Asks twice; handles a collision on the first request as the core's create does."""
    try:
        first = yield "a"
    except SessionCollisionError:
        first = "recovered"
    second = yield "b"
    log.append("done")
    return f"{first}+{second}"


def test_drive_feeds_replies_and_throws_failures_into_the_operation() -> None:
    """A perform failure arrives at the yield; the operation handles it and goes on."""
    log: list[str] = []

    def perform(request: str) -> str:
        if request == "a":
            raise SessionCollisionError("taken")
        return request.upper()

    assert drive(retrying(log), perform) == "recovered+B"
    assert log == ["done"]


@pytest.mark.anyio
async def test_adrive_matches_drive() -> None:
    """The async driver gives the same result for the same operation and replies."""

    async def perform(request: str) -> str:
        return request.upper()

    assert await adrive(retrying([]), perform) == "A+B"
    assert drive(retrying([]), str.upper) == "A+B"


@pytest.mark.anyio
async def test_a_cancelled_operation_is_closed_at_once() -> None:
    """Cancellation is not offered to the operation: its finally blocks run right away."""
    events: list[str] = []
    started = asyncio.Event()

    def op() -> Op[None]:
        try:
            yield "wait"
        finally:
            events.append("finally")

    async def perform(request: str) -> None:
        started.set()
        await asyncio.sleep(60)

    task = asyncio.ensure_future(adrive(op(), perform))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["finally"]


@pytest.mark.anyio
async def test_a_batch_of_calls_replies_in_order_on_both_faces() -> None:
    """A list of Calls is one request; the reply lists each call's result in order."""
    store = MemoryStore(development=True)
    await store.create("k1", {"v": "1"}, 60)
    await store.create("k3", {"v": "3"}, 60)
    batch = [Call("load", (k,)) for k in ("k1", "k2", "k3")]
    loaded: list[Any] = await acall(store, batch)
    assert [f and f["v"] for f in loaded] == ["1", None, "3"]
    assert call(store.sync, batch) == loaded
