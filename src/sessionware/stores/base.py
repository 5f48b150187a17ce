"""The ``Store`` protocol: a small keyed box with expiry.

A store knows nothing of cookies, signing or passwords. Keys are already hashes of
session ids (never raw ids); a record is a flat mapping of field name to text (see
:mod:`sessionware.session`).

Every store has two faces with the same methods: the store itself, whose methods
are coroutines (for ASGI apps), and ``store.sync``, whose methods are plain calls
(for WSGI apps and scripts). A backend writes each operation once, as an
:mod:`operation <sessionware._ops>` that yields driver requests (a SQL statement, a
Redis command), and two small drivers that perform a request with the synchronous or
the asynchronous client; :class:`StoreBase` builds both faces from them.

What to implement, and what must hold:

``load(key) -> Fields | None``
    One round trip. ``None`` when missing or expired. The returned mapping is
    treated as read-only by the caller.
``create(key, fields, ttl)``
    Store a new record that lives ``ttl`` seconds. Raise
    :class:`~sessionware.exceptions.SessionCollisionError` if the key exists (the
    core retries with a new id).
``apply(key, sets, dels, ttl) -> bool``
    **Atomically**: if the record exists and has not expired, set the fields in
    ``sets``, remove those in ``dels``, reset its lifetime to ``ttl`` and return
    True; otherwise change nothing and return False. This is what keeps two
    concurrent requests from losing each other's writes, and a slow request from
    resurrecting a session that was destroyed or revoked meanwhile.
``delete(key)``
    Remove the record (and nothing else). Deleting a missing key is not an error.
``link(user_id, key)`` / ``unlink(user_id, key)`` / ``keys_of(user_id)``
    The per-user index: find a user's sessions without scanning the store.
    ``keys_of`` returns only keys whose records are still alive (dead members may be
    dropped lazily).
``incr(key, field, amount, ttl, *, create=True) -> int | None``
    **Atomically** add ``amount`` to the integer in ``field`` and return the new
    value; an existing record keeps its expiry. With ``create=True`` a missing or
    expired record is created (holding only that field) to live ``ttl`` seconds:
    counters for login throttling live here, in the same store as the sessions.
    With ``create=False`` a missing or expired record stays missing and ``incr``
    returns ``None``, in the same atomic step, so ``Session.increment`` racing a
    ``destroy`` never brings the session back (the type says ``int`` only for
    ``create=True``).
``purge_expired() -> int`` (optional)
    Remove expired records, for stores that do not expire them by themselves.
``close()``
    Release connections.

Backend failures (down, timed out) must surface as
:class:`~sessionware.exceptions.StoreUnavailableError`, which the middleware turns
into a 503; never let a driver exception escape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Literal, Protocol, TypeVar, overload, runtime_checkable

from sessionware._ops import Op

__all__ = ["Call", "Fields", "Store", "StoreBase", "SyncStore", "acall", "call"]

Fields = Mapping[str, str]
T = TypeVar("T")


class Call:
    """One call of the Store protocol that an operation asks its driver to make.

    The core and the session verbs yield these (``yield Call("load", (key,))``); the
    ASGI adapter awaits ``store.<method>(...)``, a WSGI adapter calls
    ``store.sync.<method>(...)``.
    """

    __slots__ = ("args", "kwargs", "method")

    def __init__(
        self, method: str, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> None:
        self.method = method
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"Call({self.method!r})"  # arguments hold keys: not for logs


def acall(store: Store, request: Call | list[Call]) -> Awaitable[Any]:
    """Make ``request`` on a store's async face: the awaitable of the store's coroutine,
    returned as is (no coroutine of its own: this is on every request). A list of Calls
    runs concurrently (one round trip on Redis) and replies with the list of results."""
    if isinstance(request, list):
        return asyncio.gather(*(acall(store, one) for one in request))
    method: Callable[..., Awaitable[Any]] = getattr(store, request.method)
    if request.kwargs:
        return method(*request.args, **request.kwargs)
    return method(*request.args)


def call(face: SyncStore, request: Call | list[Call]) -> Any:
    """Make ``request`` on a store's sync face (``store.sync``); a list, one by one,
    except several loads, which a face with ``load_many`` makes at once (as the async
    face makes a list concurrently: one round trip on Redis)."""
    if isinstance(request, list):
        many = getattr(face, "load_many", None)
        if many is not None and all(one.method == "load" and not one.kwargs for one in request):
            return many([one.args[0] for one in request])
        return [call(face, one) for one in request]
    method: Callable[..., Any] = getattr(face, request.method)
    if request.kwargs:
        return method(*request.args, **request.kwargs)
    return method(*request.args)


@runtime_checkable
class Store(Protocol):
    """What the session core needs from a storage backend (see the module docstring)."""

    async def load(self, key: str) -> Fields | None: ...

    async def create(self, key: str, fields: Fields, ttl: float) -> None: ...

    async def apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> bool: ...

    async def delete(self, key: str) -> None: ...

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
    ) -> int | None: ...

    async def link(self, user_id: str, key: str) -> None: ...

    async def unlink(self, user_id: str, key: str) -> None: ...

    async def keys_of(self, user_id: str) -> list[str]: ...

    async def close(self) -> None: ...


@runtime_checkable
class SyncStore(Protocol):
    """The synchronous face of a store (``store.sync``): the same methods, plain calls."""

    def load(self, key: str) -> Fields | None: ...

    def create(self, key: str, fields: Fields, ttl: float) -> None: ...

    def apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> bool: ...

    def delete(self, key: str) -> None: ...

    @overload
    def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: Literal[True] = ...
    ) -> int: ...

    @overload
    def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: bool
    ) -> int | None: ...

    def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: bool = True
    ) -> int | None: ...

    def link(self, user_id: str, key: str) -> None: ...

    def unlink(self, user_id: str, key: str) -> None: ...

    def keys_of(self, user_id: str) -> list[str]: ...

    def close(self) -> None: ...


def _set_beside(store: object, attr: str, methods: tuple[str, ...]) -> bool:
    """Whether ``attr`` is set in the class that wrote the last override of ``methods``
    (or below it): a subclass that overrides one of them without setting ``attr`` again
    changed what it does, and must be called as written, never bypassed."""
    for cls in type(store).__mro__:
        if attr in cls.__dict__:
            return True
        if any(name in cls.__dict__ for name in methods):
            return False
    return False


def inline_loader(store: object) -> Callable[[str], Fields | None] | None:
    """``store.load_inline`` when the store's ``load`` (and ``_op_load``, which its sync
    face runs) is the one written beside it; None for a subclass that loads its own way
    (to count, cache or wrap it)."""
    fn: Callable[[str], Fields | None] | None = getattr(store, "load_inline", None)
    if fn is None or not _set_beside(store, "load_inline", ("load", "_op_load")):
        return None
    return fn


_FACE = ("load", "create", "apply", "delete", "incr", "link", "unlink", "keys_of")


def never_waits(store: object) -> bool:
    """Whether every call of ``store`` completes without waiting (``never_waits`` is set
    where its face methods are written): an async adapter may then run operations with
    plain calls on ``store.sync``."""
    return bool(getattr(store, "never_waits", False)) and _set_beside(
        store, "never_waits", _FACE
    )


class StoreBase:
    """Both faces of a store from one set of operations.

    A backend implements ``_op_<name>`` for each method (an :data:`~sessionware._ops.Op`
    that yields its driver's requests) and the two drivers, :meth:`_drive` and
    :meth:`_adrive`, which run an operation with the synchronous or the asynchronous
    client. Methods a backend adds beyond the protocol (``purge_expired``,
    ``user_ids``, ...) follow the same rule: an ``_op_<name>`` and a one-line async
    method; the sync face finds them by name.
    """

    #: A plain function that reads one live record without waiting on a network (an
    #: in-process dict, a local file in WAL mode), or None. The ASGI adapter calls it on
    #: the loop instead of awaiting :meth:`load`: that read is on every request, and a
    #: coroutine and its frame cost more than the read itself.
    load_inline: Callable[[str], Fields | None] | None = None
    #: Every operation completes without waiting on anything (an in-process dict).
    never_waits = False

    def _drive(self, op: Op[T]) -> T:
        raise NotImplementedError

    def _adrive(self, op: Op[T]) -> Coroutine[Any, Any, T]:
        raise NotImplementedError

    def _op_load(self, key: str) -> Op[Fields | None]:
        raise NotImplementedError

    def _op_create(self, key: str, fields: Fields, ttl: float) -> Op[None]:
        raise NotImplementedError

    def _op_apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> Op[bool]:
        raise NotImplementedError

    def _op_delete(self, key: str) -> Op[None]:
        raise NotImplementedError

    def _op_incr(
        self, key: str, field: str, amount: int, ttl: float, create: bool
    ) -> Op[int | None]:
        raise NotImplementedError

    def _op_link(self, user_id: str, key: str) -> Op[None]:
        raise NotImplementedError

    def _op_unlink(self, user_id: str, key: str) -> Op[None]:
        raise NotImplementedError

    def _op_keys_of(self, user_id: str) -> Op[list[str]]:
        raise NotImplementedError

    def _close(self) -> None:
        """Release the synchronous client's resources (the sync face's ``close``)."""

    async def _aclose(self) -> None:
        """Release the asynchronous client's resources (the async face's ``close``)."""

    # -- the async face ----------------------------------------------------------
    # Plain methods handing back the driver's coroutine (``await store.load(key)`` as
    # ever): a coroutine of their own would be one more frame on every store call.

    def load(self, key: str) -> Coroutine[Any, Any, Fields | None]:
        """The live record at ``key``, or None."""
        return self._adrive(self._op_load(key))

    def create(self, key: str, fields: Fields, ttl: float) -> Coroutine[Any, Any, None]:
        """Store a new record; SessionCollisionError if ``key`` is live."""
        return self._adrive(self._op_create(key, fields, ttl))

    def apply(
        self, key: str, sets: Fields, dels: list[str], ttl: float
    ) -> Coroutine[Any, Any, bool]:
        """Apply one request's changes to a live record atomically, or refuse (False)."""
        return self._adrive(self._op_apply(key, sets, dels, ttl))

    def delete(self, key: str) -> Coroutine[Any, Any, None]:
        """Remove the record at ``key``."""
        return self._adrive(self._op_delete(key))

    @overload
    def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: Literal[True] = ...
    ) -> Coroutine[Any, Any, int]: ...

    @overload
    def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: bool
    ) -> Coroutine[Any, Any, int | None]: ...

    def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: bool = True
    ) -> Coroutine[Any, Any, int | None]:
        """Add ``amount`` to an integer field atomically (see the module docstring)."""
        return self._adrive(self._op_incr(key, field, amount, ttl, create))

    def link(self, user_id: str, key: str) -> Coroutine[Any, Any, None]:
        """Index ``key`` under ``user_id``."""
        return self._adrive(self._op_link(user_id, key))

    def unlink(self, user_id: str, key: str) -> Coroutine[Any, Any, None]:
        """Remove ``key`` from ``user_id``'s index."""
        return self._adrive(self._op_unlink(user_id, key))

    def keys_of(self, user_id: str) -> Coroutine[Any, Any, list[str]]:
        """The live keys of ``user_id``."""
        return self._adrive(self._op_keys_of(user_id))

    async def close(self) -> None:
        """Release both faces' connections."""
        self._close()
        await self._aclose()

    # -- the sync face -----------------------------------------------------------

    @property
    def sync(self) -> SyncFace:
        """This store's synchronous face: the same methods as plain calls (made once)."""
        face: SyncFace | None = self.__dict__.get("_sync_face")
        if face is None:
            face = self.__dict__["_sync_face"] = SyncFace(self)
        return face


class SyncFace:
    """``store.sync``: each method drives the store's operation with the sync driver."""

    __slots__ = ("_store",)

    def __init__(self, store: StoreBase) -> None:
        self._store = store

    def load(self, key: str) -> Fields | None:
        """The live record at ``key``, or None."""
        s = self._store
        return s._drive(s._op_load(key))

    def load_many(self, keys: list[str]) -> list[Fields | None]:
        """The live records at ``keys`` (None where there is none): in one round trip
        when the store writes ``_op_load_many`` beside its loads, else one by one."""
        s = self._store
        many = getattr(s, "_op_load_many", None)
        if many is None or not _set_beside(s, "_op_load_many", ("load", "_op_load")):
            return [self.load(key) for key in keys]
        result: list[Fields | None] = s._drive(many(keys))
        return result

    def create(self, key: str, fields: Fields, ttl: float) -> None:
        """Store a new record; SessionCollisionError if ``key`` is live."""
        s = self._store
        s._drive(s._op_create(key, fields, ttl))

    def apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> bool:
        """Apply one request's changes to a live record atomically, or refuse (False)."""
        s = self._store
        return s._drive(s._op_apply(key, sets, dels, ttl))

    def delete(self, key: str) -> None:
        """Remove the record at ``key``."""
        s = self._store
        s._drive(s._op_delete(key))

    @overload
    def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: Literal[True] = ...
    ) -> int: ...

    @overload
    def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: bool
    ) -> int | None: ...

    def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: bool = True
    ) -> int | None:
        """Add ``amount`` to an integer field atomically."""
        s = self._store
        return s._drive(s._op_incr(key, field, amount, ttl, create))

    def link(self, user_id: str, key: str) -> None:
        """Index ``key`` under ``user_id``."""
        s = self._store
        s._drive(s._op_link(user_id, key))

    def unlink(self, user_id: str, key: str) -> None:
        """Remove ``key`` from ``user_id``'s index."""
        s = self._store
        s._drive(s._op_unlink(user_id, key))

    def keys_of(self, user_id: str) -> list[str]:
        """The live keys of ``user_id``."""
        s = self._store
        return s._drive(s._op_keys_of(user_id))

    def close(self) -> None:
        """Release the synchronous client's connections."""
        self._store._close()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """A backend's extra method (``purge_expired``, ``user_ids``...) as a plain call."""
        make = getattr(self._store, "_op_" + name, None)
        if make is None:
            raise AttributeError(f"{type(self._store).__name__} has no operation {name!r}")
        store = self._store

        def call(*args: Any, **kwargs: Any) -> Any:
            return store._drive(make(*args, **kwargs))

        return call
