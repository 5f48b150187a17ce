"""What runs auth's operations: the request's core, or a bare store.

Every flow of auth (a login, a sweep, a restore, a throttle reservation) is written
once as an :mod:`operation <sessionware._ops>` yielding
:class:`~sessionware.stores.base.Call` values. A public coroutine runs it with
``runner.arun(op)``, its sync twin with ``runner.run(op)``; the runner is
``session.core`` (a :class:`~sessionware.core.SessionCore`) when a request is at
hand, or a :class:`StoreRunner` over a store passed bare (admin tools, scripts).
"""

from __future__ import annotations

from functools import partial
from typing import Protocol, TypeVar

from sessionware._ops import Op, adrive, drive
from sessionware.auth._view import RequestLike, async_session, sync_session
from sessionware.exceptions import ConfigurationError
from sessionware.stores.base import Store, SyncStore, acall, call

__all__ = ["Runner", "StoreRunner", "arunner", "on_store", "runner", "sync_face"]

T = TypeVar("T")


class Runner(Protocol):
    """Runs an operation yielding store Calls: awaited (``arun``) or with plain calls (``run``)."""

    async def arun(self, op: Op[T]) -> T: ...

    def run(self, op: Op[T]) -> T: ...


def sync_face(store: Store) -> SyncStore:
    """``store.sync``; a store with only async methods cannot serve sync code."""
    face: SyncStore | None = getattr(store, "sync", None)
    if face is None:
        raise ConfigurationError(
            f"{type(store).__name__} has no sync face (store.sync): the sync twins need one "
            "of sessionware's stores, or a store subclassing StoreBase"
        )
    return face


class StoreRunner:
    """Runs operations on a store passed bare: its async face, or ``store.sync``."""

    __slots__ = ("store",)

    def __init__(self, store: Store) -> None:
        self.store = store

    async def arun(self, op: Op[T]) -> T:
        """Run ``op``, awaiting each call on the store's async face."""
        return await adrive(op, partial(acall, self.store))

    def run(self, op: Op[T]) -> T:
        """Run ``op`` with plain calls on the store's sync face."""
        return drive(op, partial(call, sync_face(self.store)))


def on_store(store: Store) -> StoreRunner:
    """The runner of operations on a bare ``store``."""
    return StoreRunner(store)


def arunner(target: Store | RequestLike, use: str, *requests: RequestLike | None) -> Runner:
    """The runner for a coroutine given a store or a request (and maybe other requests,
    such as ``keep=``): every request must carry an async session (``use`` names the
    sync twin)."""
    for request in requests:
        if request is not None:
            async_session(request, use)
    if isinstance(target, Store):
        return StoreRunner(target)
    return async_session(target, use).core


def runner(target: Store | RequestLike, use: str, *requests: RequestLike | None) -> Runner:
    """The runner for a sync twin given a store or a request: every request must carry
    a sync session (``use`` names the coroutine)."""
    for request in requests:
        if request is not None:
            sync_session(request, use)
    if isinstance(target, Store):
        return StoreRunner(target)
    return sync_session(target, use).core
