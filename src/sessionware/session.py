"""``Session``: the per-request mapping handlers read and write.

A session is stored as a flat mapping of *fields* to text, so stores can apply one
request's per-key changes atomically (a Redis hash, a JSON object in SQL):

- ``.<key>``: a user value, as compact JSON;
- ``c`` / ``a``: creation and last-activity times (integer seconds);
- any other name without a leading dot: metadata owned by sessionware (the user id,
  a public handle, device details) and kept out of the mapping users see.

The session remembers what it loaded and what this request changed, so an
unchanged session costs no write, and only the keys a request changed are written.

Sync and async verbs, one implementation. Each verb (``regenerate``, ``destroy``,
``save``, ``reload``, ``increment``, ``touch``) is written once in
:class:`BaseSession` as an :mod:`operation <sessionware._ops>` that yields the store
calls it needs. :class:`Session` (ASGI) awaits them; :class:`SyncSession` (WSGI)
performs them with plain calls. The two classes hold nothing but these one-line
dispatchers, so ``await request.session.regenerate()`` in Starlette and
``session.regenerate()`` in Flask run the same code.

The core reads and changes a session only through its public methods
(:meth:`BaseSession.unchanged`, :meth:`~BaseSession.changes`,
:meth:`~BaseSession.commit`, :meth:`~BaseSession.lose`...), never its private state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from sessionware._ops import Op, adrive, drive
from sessionware.exceptions import SessionTooLargeError, StoreError
from sessionware.stores.base import Call

if TYPE_CHECKING:
    from sessionware.config import SessionConfig
    from sessionware.core import SessionCore
    from sessionware.request import RequestView
    from sessionware.stores.base import Store

__all__ = ["CSRF_FIELD", "BaseSession", "Fields", "Session", "SyncSession", "dumps", "loads"]

#: Metadata field holding the session's CSRF secret; dropped by ``regenerate()`` so a
#: new id always comes with a new CSRF secret.
CSRF_FIELD = "k"

Fields = Mapping[str, str]

_SEP = (",", ":")
_encode = json.JSONEncoder(separators=_SEP, ensure_ascii=False, allow_nan=False).encode
# ``scan_once`` is set per instance by the json module (C scanner), so typeshed lacks it.
_scan: Callable[[str, int], tuple[Any, int]]
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def loads(text: str) -> Any:
    """Decode one stored JSON value; the C scanner directly, as this is on every read."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        return json.loads(text)  # the slow path raises a proper error for bad data
    return value


def dumps(value: Any) -> str:
    """Compact JSON, refusing NaN and anything JSON cannot represent."""
    return _encode(value)


def _dump_key(key: str, value: Any) -> str:
    try:
        return _encode(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"session value for key {key!r} is not JSON-serialisable "
            f"({type(value).__name__}): store plain data (str, int, float, bool, None, "
            "list, dict) and nothing was written"
        ) from exc


class BaseSession(MutableMapping[str, Any]):
    """The session of one request: a mutable mapping of plain JSON data.

    Adapters hand out :class:`Session` (async verbs) or :class:`SyncSession`.

    Nested containers may be changed in place (``session["cart"].append(x)``): they
    are compared with what was loaded when the response starts.
    """

    __slots__ = (
        "_core",
        "_data",
        "_dirty",
        "_fields",
        "_id",
        "_loaded_key",
        "_meta",
        "_nested",
        "accessed",
        "destroyed",
        "had_cookie",
        "is_new",
        "issued",
        "regenerated",
        "superseded",
        "vanished",
    )

    def __init__(
        self,
        core: SessionCore,
        session_id: str | None,
        fields: Fields | None,
        key: str | None = None,
    ) -> None:
        self._core = core
        self._reset(session_id, fields, key)
        self.had_cookie = session_id is not None
        self.accessed = False
        self.destroyed = False
        self.regenerated = False
        self.vanished = False
        #: The cookie's record was replaced by a login in this browser moments ago.
        self.superseded = False
        self.issued = False

    def _reset(self, session_id: str | None, fields: Fields | None, key: str | None = None) -> None:
        self._id = session_id if fields is not None else None
        if fields is None or not session_id:
            self._loaded_key = None
        else:
            self._loaded_key = key or self._core.key(session_id)
        self._fields: Fields = fields if fields is not None else {}
        self._data: dict[str, Any] | None = None if fields is not None else {}
        # Whether decoded stored values include a list or dict (which the handler may
        # change in place): only then must the response compare them with the record.
        self._nested = False
        self._dirty: set[str] = set()
        self._meta: dict[str, str | None] = {}
        self.is_new = fields is None

    # -- identity -------------------------------------------------------------

    @property
    def id(self) -> str:
        """The raw id of this session: a secret, never logged, never stored."""
        if self._id is None:
            self._id = self._core.new_id()
        return self._id

    @property
    def key(self) -> str:
        """The store key of this session (SHA-256 of the id): safe to keep, useless as a cookie."""
        return self._loaded_key or self._core.key(self.id)

    @property
    def store(self) -> Store:
        """The store this session lives in."""
        return self._core.store

    @property
    def core(self) -> SessionCore:
        """The core this session belongs to: layers run their operations through it
        (``core.arun`` in async code, ``core.run`` in sync code)."""
        return self._core

    @property
    def config(self) -> SessionConfig:
        """The middleware's configuration."""
        return self._core.config

    def will_be_stored(self) -> bool:
        """Whether the record exists, or will be created when the response starts.

        The core's own write decision, for layers (CSRF) that add to a session only
        when it is going to be stored anyway.
        """
        return not self.is_new or self._core.plan(self, self._core.clock()) is not None

    def secure_for(self, view: RequestView) -> bool:
        """Whether a cookie set on this request is marked Secure, as the session cookie is.

        For companion cookies (remember-me), so every cookie of a response agrees.
        """
        return self._core.is_secure(view.headers, view.scheme)

    @property
    def modified(self) -> bool:
        """Whether this request changed any value or metadata."""
        return bool(self._dirty or self._meta) or bool(self._changed_containers())

    @property
    def created(self) -> float | None:
        """When the session was created (epoch seconds), or None if it is new."""
        c = self._fields.get("c")
        return float(c) if c is not None else None

    @property
    def last_seen(self) -> float | None:
        """When the session was last refreshed in the store (epoch seconds)."""
        a = self._fields.get("a")
        return float(a) if a is not None else None

    # -- mapping --------------------------------------------------------------

    def _items(self) -> dict[str, Any]:
        self.accessed = True
        data = self._data
        if data is None:
            data = {}
            nested = False
            for k, v in self._fields.items():
                if k[:1] == ".":
                    data[k[1:]] = loads(v)
                    nested = nested or v[:1] in ("[", "{")
            self._data = data
            self._nested = nested
        return data

    def __getitem__(self, key: str) -> Any:
        return self._items()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        text = _dump_key(key, value)
        size = len(text.encode())  # max_size is bytes at rest, not characters
        if size > self._core.config.max_size:
            raise SessionTooLargeError(
                f"session value for key {key!r} is {size} bytes, over max_size="
                f"{self._core.config.max_size}; keep large data elsewhere and store its id"
            )
        self._items()[key] = value
        self._dirty.add(key)

    def __delitem__(self, key: str) -> None:
        del self._items()[key]
        self._dirty.add(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __contains__(self, key: object) -> bool:
        return key in self._items()

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value for ``key``, or ``default``."""
        return self._items().get(key, default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Return the value for ``key``, setting it to ``default`` first if missing."""
        items = self._items()
        if key not in items:
            self[key] = default
        return items[key]

    def pop(self, key: str, *default: Any) -> Any:
        """Remove ``key`` and return its value (or ``default``)."""
        items = self._items()
        if key in items:
            self._dirty.add(key)
        return items.pop(key, *default)

    def update(self, other: Any = None, /, **kwargs: Any) -> None:
        """Set several keys; each value is checked before any is set."""
        pairs = dict(other or {}, **kwargs)
        for k, v in pairs.items():
            if not isinstance(k, str):
                raise TypeError(f"session keys must be str, not {type(k).__name__}")
            _dump_key(k, v)
        for k, v in pairs.items():
            self[k] = v

    def clear(self) -> None:
        """Remove every user value (metadata such as the login stays)."""
        items = self._items()
        self._dirty.update(items)
        items.clear()

    def __repr__(self) -> str:
        # Not through _items(): printing or logging a session must not count as reading
        # it (that would add Vary: Cookie to the response).
        state = "new" if self.is_new else "loaded"
        keys = sorted(self._data) if self._data is not None else "?"
        return f"<{type(self).__name__} {state} keys={keys}>"

    # -- metadata (for sessionware.auth and friends) ---------------------------

    def get_meta(self, name: str) -> str | None:
        """Read a metadata field (not part of the user-visible mapping)."""
        if name in self._meta:
            return self._meta[name]
        return self._fields.get(name)

    def set_meta(self, name: str, value: str | None) -> None:
        """Set (or with ``None`` delete) a metadata field."""
        if not name or name[0] == "." or name in ("c", "a"):
            raise ValueError(f"{name!r} is not a metadata field name")
        self._meta[name] = value

    # -- change tracking (used by the core) ------------------------------------

    def _changed_containers(self) -> list[str]:
        data = self._data
        if data is None or not self._nested:
            return []
        out = []
        for k, v in data.items():
            if (
                k not in self._dirty
                and isinstance(v, (dict, list))
                and _dump_key(k, v) != self._fields.get("." + k)
            ):
                out.append(k)
        return out

    def changes(self) -> tuple[dict[str, str], list[str]]:
        """Fields this request set, and fields it deleted."""
        sets: dict[str, str] = {}
        dels: list[str] = []
        data = self._data
        if data is not None:
            for k in (*self._dirty, *self._changed_containers()):
                if k in data:
                    sets["." + k] = _dump_key(k, data[k])
                elif "." + k in self._fields:
                    dels.append("." + k)
        for name, value in self._meta.items():
            if value is None:
                if name in self._fields:
                    dels.append(name)
            else:
                sets[name] = value
        return sets, dels

    def all_fields(self) -> dict[str, str]:
        """Every field as it should stand after this request (for create and resave)."""
        return self.merged(*self.changes())

    def merged(self, sets: Fields, dels: list[str]) -> dict[str, str]:
        """The loaded record with ``sets`` and ``dels`` (from :meth:`changes`) applied."""
        merged = dict(self._fields)
        merged.update(sets)
        for name in dels:
            merged.pop(name, None)
        return merged

    def unchanged(self) -> bool:
        """Whether this request changed no value, nested value or metadata."""
        return not self._dirty and not self._meta and not self._changed_containers()

    def commit(self, session_id: str, fields: Fields, key: str | None = None) -> None:
        """Make ``fields`` the new baseline after a successful write."""
        data = self._data
        self._reset(session_id, fields, key)
        self._data = data
        self._nested = data is not None and any(isinstance(v, (dict, list)) for v in data.values())

    def renew_id(self) -> None:
        """Draw a new id for a session not stored yet (its first one collided)."""
        self._id = self._core.new_id()

    def lose(self) -> None:
        """The record vanished (destroyed or revoked elsewhere): become an empty new session."""
        self._reset(None, None)
        self.vanished = True

    def stamped(self, accessed: str) -> None:
        """The store's record was refreshed at ``accessed``: move the baseline with it."""
        self._fields = {**self._fields, "a": accessed}

    # -- lifecycle (express-session's verbs), each written once as an operation --

    def _regenerate(self) -> Op[None]:
        self._items()
        old = self._loaded_key
        if old is not None:
            # The marker first: a request that finds the record gone must also find it.
            yield from self._core.mark_moved(old)
            yield Call("delete", (old,))
            for name in self._fields:
                keep = name[:1] != "." and name not in ("c", "a", CSRF_FIELD)
                if keep and name not in self._meta:
                    self._meta[name] = self._fields[name]
            self._dirty.update(self._data or {})
        self._meta.pop(CSRF_FIELD, None)
        self._id = self._core.new_id()
        self._loaded_key = None
        # The absolute timeout still counts from the first creation: a new id is not
        # a new lifetime.
        created = self._fields.get("c")
        self._fields = {"c": created} if created is not None else {}
        self.is_new = True
        self.regenerated = True

    def _destroy(self) -> Op[None]:
        if self._loaded_key is not None:
            yield Call("delete", (self._loaded_key,))
        self._reset(None, None)
        self.destroyed = True
        self.accessed = True

    def _save(self) -> Op[None]:
        yield from self._core.write(self, force=True)

    def _reload(self) -> Op[None]:
        if self._loaded_key is None:
            return
        fields = yield Call("load", (self._loaded_key,))
        if fields is None:
            self.lose()
        else:
            self._reset(self._id, fields)

    def _increment(self, key: str, amount: int) -> Op[int]:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError("increment() needs an int amount")
        current = self._items().get(key, 0)
        if isinstance(current, bool) or not isinstance(current, int):
            raise TypeError(f"session value for key {key!r} is not an int; cannot increment it")
        if self._loaded_key is None or self.modified:
            yield from self._save()
        key_ = self._loaded_key
        assert key_ is not None  # save() with force always stores the session
        core = self._core
        now = core.clock()
        ttl = core.ttl(self.created or now, now)
        value = yield Call("incr", (key_, "." + key, amount, ttl), {"create": False})
        if value is None:
            # Destroyed or revoked meanwhile: never re-create it (no resurrection).
            self.lose()
            raise StoreError("the session no longer exists in the store")
        # The new value becomes the baseline: nothing left for the response to write.
        self._fields = {**self._fields, "." + key: str(value)}
        self._items()[key] = value
        return int(value)

    def _touch(self) -> Op[None]:
        if self._loaded_key is None:
            return
        if not (yield from self._core.refresh(self)):
            raise StoreError("the session no longer exists in the store")


class Session(BaseSession):
    """The session of an async (ASGI) request: ``await session.regenerate()`` and friends."""

    __slots__ = ()

    async def regenerate(self) -> None:
        """Give the session a new id, keep its data, and delete the old record.

        Call it on every privilege change (login, password change) so an id planted
        before cannot ride along (session fixation).
        """
        await adrive(self._regenerate(), self._core.aperform)

    async def destroy(self) -> None:
        """Delete the record now; the response clears the cookie.

        Values set afterwards start a new session with a new id.
        """
        await adrive(self._destroy(), self._core.aperform)

    async def save(self) -> None:
        """Write this request's changes now instead of when the response starts."""
        await adrive(self._save(), self._core.aperform)

    async def reload(self) -> None:
        """Re-read the record, dropping unsaved changes; a vanished one leaves it empty."""
        await adrive(self._reload(), self._core.aperform)

    async def increment(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to an integer value *in the store*, atomically; return the result.

        ``session[key] += 1`` reads, then writes back the whole value, so concurrent
        requests of one browser overwrite each other's counts (express-session and
        starsessions lose ~95% of them that way). Here the store does the addition.
        Pending changes, and a session not stored yet, are saved first.
        """
        return await adrive(self._increment(key, amount), self._core.aperform)

    async def touch(self) -> None:
        """Refresh the idle expiry now, even if the throttle would have skipped it."""
        await adrive(self._touch(), self._core.aperform)


class SyncSession(BaseSession):
    """The session of a sync (WSGI) request: the same verbs as :class:`Session`, plain calls."""

    __slots__ = ()

    def regenerate(self) -> None:
        """Give the session a new id, keep its data, delete the old record (see Session)."""
        drive(self._regenerate(), self._core.perform)

    def destroy(self) -> None:
        """Delete the record now; the response clears the cookie."""
        drive(self._destroy(), self._core.perform)

    def save(self) -> None:
        """Write this request's changes now instead of when the response starts."""
        drive(self._save(), self._core.perform)

    def reload(self) -> None:
        """Re-read the record, dropping unsaved changes."""
        drive(self._reload(), self._core.perform)

    def increment(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to an integer value in the store, atomically (see Session)."""
        return drive(self._increment(key, amount), self._core.perform)

    def touch(self) -> None:
        """Refresh the idle expiry now."""
        drive(self._touch(), self._core.perform)
