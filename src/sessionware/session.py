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

import copy as _copy
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sessionware._json import dumps
from sessionware._ops import Op, adrive, drive
from sessionware.events import lifecycle
from sessionware.exceptions import SessionTooLargeError, StoreError
from sessionware.stores.base import Call

if TYPE_CHECKING:
    from sessionware.config import SessionConfig
    from sessionware.core import SessionCore
    from sessionware.request import RequestView
    from sessionware.stores.base import Store

__all__ = [
    "CSRF_FIELD",
    "ISSUED_FIELD",
    "LIFETIME_FIELD",
    "ON_END",
    "ORDER_FIELD",
    "BaseSession",
    "Fields",
    "Session",
    "SyncSession",
    "dumps",
    "loads",
]

#: Metadata field holding the session's CSRF secret; dropped by ``regenerate()`` so a
#: new id always comes with a new CSRF secret.
CSRF_FIELD = "k"

#: Metadata field holding the order of the keys (a JSON list), for stores that do not
#: keep the order fields were written in.
ORDER_FIELD = "o"

#: Metadata field holding this session's own lifetimes (see :meth:`BaseSession.set_lifetime`):
#: ``idle|absolute|since|cookie_max_age`` in seconds, an empty part meaning the global one.
LIFETIME_FIELD = "l"

#: When the current id was issued (integer seconds), for periodic id rotation.
ISSUED_FIELD = "i"

Fields = Mapping[str, str]

#: Operations that end what a session owns outside its record when :meth:`~BaseSession.clear`
#: ends it, each given the record's key and last fields. :mod:`sessionware.auth` adds
#: the one for logins (user index entry, remember-me series) when imported, so this
#: module needs to know nothing of logins.
ON_END: list[Callable[[str, Fields], Op[None]]] = []


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # 1e999 reads as infinity
        raise ValueError("number out of range")
    return value


# Only what dumps() writes: Python's json also reads NaN, Infinity and 1e999, which a
# damaged or foreign record may hold and which dumps() would refuse at the response.
_decoder = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)
# ``scan_once`` is set per instance by the json module (C scanner), so typeshed lacks it.
_scan: Callable[[str, int], tuple[Any, int]]
_scan = _decoder.scan_once  # type: ignore[attr-defined]


def loads(text: str) -> Any:
    """Decode one stored JSON value; the C scanner directly, as this is on every read.

    Raises ValueError for anything :func:`dumps` cannot write back: bad JSON, NaN,
    infinities, and a ``\\ud800`` escape (a lone surrogate has no UTF-8 form).
    """
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        value = _decoder.decode(text)  # the slow path raises a proper error for bad data
    if "\\u" in text:
        dumps(value).encode()  # UnicodeEncodeError (a ValueError) for a lone surrogate
    return value


def _dump_key(key: str, value: Any) -> str:
    try:
        return dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"session value for key {key!r} is not JSON-serialisable "
            f"({type(value).__name__}): store plain data (str, int, float, bool, None, "
            "list, dict) and nothing was written"
        ) from exc


#: Values whose encoded text cannot go stale between ``session[k] = v`` and the write.
_IMMUTABLE = frozenset({str, int, float, bool, type(None)})

# The dict's own methods, untracked, for the session's internals.
_getitem = dict.__getitem__
_setitem = dict.__setitem__
_delitem = dict.__delitem__
_contains = dict.__contains__
_iter = dict.__iter__
_reversed = dict.__reversed__
_len = dict.__len__
_eq = dict.__eq__
_ne = dict.__ne__
_get = dict.get
_keys = dict.keys
_values = dict.values
_items = dict.items
_pop = dict.pop
_popitem = dict.popitem
_clear = dict.clear
_update = dict.update


def _fill(session: dict[str, Any], fields: Fields) -> bool:
    """Decode the stored values into ``session``, in their recorded order; return
    whether any is a list or dict."""
    nested = False
    order = fields.get(ORDER_FIELD)
    if order is not None:
        for k in loads(order):
            v = fields.get("." + k) if isinstance(k, str) else None
            if v is not None:
                _setitem(session, k, loads(v))
                nested = nested or v[:1] in ("[", "{")
    for k, v in fields.items():
        if k[:1] == "." and (order is None or not _contains(session, k[1:])):
            # loads(), inline: this runs for every value of every loaded session.
            try:
                value, end = _scan(v, 0)
            except StopIteration:
                end = -1
            _setitem(session, k[1:], value if end == len(v) and "\\u" not in v else loads(v))
            nested = nested or v[:1] in ("[", "{")
    return nested


class BaseSession(dict[str, Any]):
    """The session of one request: a ``dict`` of plain JSON data that knows what changed.

    Adapters hand out :class:`Session` (async verbs) or :class:`SyncSession`. Being a
    real dict (as Flask's session is), it goes to ``json.dumps``, ``|``, ``==`` and
    ``isinstance(session, dict)`` checks unchanged; every mutating method records the
    keys it touched, so only those are written. ``copy()`` returns a plain dict.

    Nested containers may be changed in place (``session["cart"].append(x)``): they
    are compared with what was loaded when the response starts.
    """

    __slots__ = (
        "_core",
        "_dirty",
        "_ending",
        "_fields",
        "_id",
        "_loaded_key",
        "_meta",
        "_nested",
        "accessed",
        "destroyed",
        "forwarded",
        "had_cookie",
        "is_new",
        "issued",
        "legacy",
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
        self._ending: tuple[str, Fields] | None = None
        self.had_cookie = session_id is not None
        self.accessed = False
        self.destroyed = False
        self.regenerated = False
        self.vanished = False
        #: The cookie's record was replaced by a login in this browser moments ago.
        self.superseded = False
        #: Opened through an old id within its rotation grace window: the record is the
        #: new id's, and this response hands out no cookie (the browser has the new one).
        self.forwarded = False
        self.issued = False
        if fields and session_id and key:
            # A loaded record, the common case: what _reset does, inline (every request).
            self._id: str | None = session_id
            self._loaded_key: str | None = key
            self._fields: Fields = fields
            self._dirty: dict[str, str | None] = {}
            self._meta: dict[str, str | None] = {}
            self.is_new = False
            self._nested = _fill(self, fields)
        else:
            self._reset(session_id, fields, key)
        #: The old framework cookie this request presented, to clear when it answers
        #: (see :mod:`sessionware.migrate`).
        self.legacy: Any = None

    def _reset(
        self,
        session_id: str | None,
        fields: Fields | None,
        key: str | None = None,
        *,
        keep_data: bool = False,
    ) -> None:
        self._id = session_id if fields is not None else None
        if fields is None or not session_id:
            self._loaded_key = None
        else:
            self._loaded_key = key or self._core.key(session_id)
        self._fields = fields if fields is not None else {}
        # Keys this request set or deleted, in order (a dict: a set's order would
        # depend on PYTHONHASHSEED and reach the store).
        self._dirty = {}
        self._meta = {}
        self.is_new = fields is None
        if keep_data:
            # Whether values include a list or dict (which the handler may change in
            # place): only then must the response compare them with the record.
            self._nested = any(type(v) in (dict, list) for v in _values(self))
            return
        _clear(self)
        # Decoded at once, not on first read: json.dumps and dict(session) read a dict's
        # storage directly, so lazily filled data would look empty to them.
        self._nested = _fill(self, self._fields) if fields else False

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
    def stored(self) -> bool:
        """Whether this session has a record in the store now (it was loaded or written)."""
        return self._loaded_key is not None

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

    @modified.setter
    def modified(self, value: bool) -> None:
        # Flask's idiom for "save even though I changed a nested value in place".
        if value:
            self._dirty.update(dict.fromkeys(_keys(self)))

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

    # -- the dict, with every change recorded ----------------------------------

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return _getitem(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.accessed = True
        text = self._check(key, value)
        _setitem(self, key, value)
        # An immutable value's text is kept for the write; a list or dict may still
        # change in place, so it is encoded again when the response starts.
        self._dirty[key] = text if type(value) in _IMMUTABLE else None

    def _check(self, key: Any, value: Any) -> str:
        if not isinstance(key, str):
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        text = _dump_key(key, value)
        # max_size is bytes at rest, not characters (isascii() is a flag lookup)
        size = len(text) if text.isascii() else len(text.encode())
        if size > self._core.config.max_size:
            raise SessionTooLargeError(
                f"session value for key {key!r} is {size} bytes, over max_size="
                f"{self._core.config.max_size}; keep large data elsewhere and store its id"
            )
        return text

    def __delitem__(self, key: str) -> None:
        self.accessed = True
        _delitem(self, key)
        self._dirty[key] = None

    def __iter__(self) -> Iterator[str]:
        self.accessed = True
        return _iter(self)

    def __reversed__(self) -> Iterator[str]:
        self.accessed = True
        return _reversed(self)

    def __len__(self) -> int:
        self.accessed = True
        return _len(self)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return _contains(self, key)

    def __eq__(self, other: object) -> bool:
        self.accessed = True
        return _eq(self, other)

    def __ne__(self, other: object) -> bool:
        self.accessed = True
        return _ne(self, other)

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value for ``key``, or ``default``."""
        self.accessed = True
        return _get(self, key, default)

    def keys(self) -> Any:
        """The keys (a live view, as a dict's)."""
        self.accessed = True
        return _keys(self)

    def values(self) -> Any:
        """The values (a live view, as a dict's)."""
        self.accessed = True
        return _values(self)

    def items(self) -> Any:
        """The ``(key, value)`` pairs (a live view, as a dict's)."""
        self.accessed = True
        return _items(self)

    def copy(self) -> dict[str, Any]:
        """A plain dict of the values (a snapshot: not a session, not tracked)."""
        self.accessed = True
        return dict(_items(self))

    __copy__ = copy

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return _copy.deepcopy(self.copy(), memo)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (self.copy(),))

    def __or__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = self.copy()
        merged.update(other)
        return merged

    def __ror__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = dict(other)
        merged.update(self.copy())
        return merged

    def __ior__(self, other: Any) -> BaseSession:  # type: ignore[override]
        self.update(other)
        return self

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Return the value for ``key``, setting it to ``default`` first if missing."""
        if not self.__contains__(key):
            self[key] = default
        return _getitem(self, key)

    def pop(self, key: str, *default: Any) -> Any:
        """Remove ``key`` and return its value (or ``default``)."""
        self.accessed = True
        if _contains(self, key):
            self._dirty[key] = None
        return _pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last ``(key, value)`` pair set, as a dict does (LIFO)."""
        self.accessed = True
        key, value = _popitem(self)
        self._dirty[key] = None
        return key, value

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Set several keys; each value is checked before any is set."""
        pairs = dict(other if other is not None else (), **kwargs)
        for k, v in pairs.items():
            self._check(k, v)
        self.accessed = True
        for k, v in pairs.items():
            _setitem(self, k, v)
            self._dirty[k] = None

    def clear(self) -> None:
        """End the session: every value *and* the login it holds.

        ``request.session.clear()`` is how most Starlette and Flask apps log out, so a
        stored session is ended as ``auth.logout`` ends it when the response starts:
        its record deleted, its user's index entry and remember-me series removed, the
        cookie cleared. Values set afterwards start a new session with a new id.
        """
        self.accessed = True
        self._dirty.update(dict.fromkeys(_keys(self)))
        _clear(self)
        if self._loaded_key is not None and self._ending is None:
            self._ending = (self._loaded_key, self._fields)
        for name in (*self._fields, *self._meta):
            if name == LIFETIME_FIELD and self._meta.get(name) is not None:
                continue  # set by this request (a login's own lifetime): it stays
            if name[:1] != "." and name not in ("c", "a", ORDER_FIELD):
                self._meta[name] = None

    @classmethod
    def fromkeys(cls, *args: Any, **kwargs: Any) -> Any:
        """Not for sessions (they belong to a request): a plain dict."""
        return dict.fromkeys(*args, **kwargs)

    def __repr__(self) -> str:
        # Not through the tracked reads: printing or logging a session must not count as
        # reading it (that would add Vary: Cookie to the response).
        state = "new" if self.is_new else "loaded"
        return f"<{type(self).__name__} {state} keys={sorted(_keys(self))}>"

    __str__ = __repr__

    # -- metadata (for sessionware.auth and friends) ---------------------------

    def get_meta(self, name: str) -> str | None:
        """Read a metadata field (not part of the user-visible mapping)."""
        if name in self._meta:
            return self._meta[name]
        return self._fields.get(name)

    def meta_names(self, prefix: str) -> list[str]:
        """The metadata fields starting with ``prefix`` as they stand now (loaded, then
        set by this request, less those it deleted), sorted."""
        names = {n for n in self._fields if n.startswith(prefix)}
        for name, value in self._meta.items():
            if name.startswith(prefix):
                (names.discard if value is None else names.add)(name)
        return sorted(names)

    def set_meta(self, name: str, value: str | None) -> None:
        """Set (or with ``None`` delete) a metadata field."""
        if not name or name[0] == "." or name in ("c", "a", ORDER_FIELD):
            raise ValueError(f"{name!r} is not a metadata field name")
        self._meta[name] = value

    def set_lifetime(
        self,
        *,
        idle: float | timedelta | None = None,
        absolute: float | timedelta | None = None,
        cookie_max_age: float | timedelta | None = None,
    ) -> None:
        """Give this session its own timeouts and cookie Max-Age, enforced on the server.

        ``idle`` replaces ``idle_timeout``; ``absolute`` replaces ``absolute_timeout``
        and counts from now; ``cookie_max_age`` replaces ``max_age`` (express-session's
        ``req.session.cookie.maxAge``). None keeps the global value; with no argument
        at all the session goes back to the global ones. Each is at most
        ``max_lifetime``.
        """
        from sessionware.config import seconds

        cfg = self._core.config
        longest = float(cfg.max_lifetime)  # type: ignore[arg-type]
        parts = []
        for what, value in (
            ("idle", idle),
            ("absolute", absolute),
            ("cookie_max_age", cookie_max_age),
        ):
            found = seconds(value, what)
            if found is not None and found > longest:
                raise ValueError(
                    f"{what}={found:g}s is longer than max_lifetime={longest:g}s: pass a "
                    "shorter one, or raise SessionConfig(max_lifetime=...)"
                )
            parts.append("" if found is None else f"{found:g}")
        self.accessed = True
        if not any(parts):
            self._meta[LIFETIME_FIELD] = None
            return
        since = str(int(self._core.clock()))
        self._meta[LIFETIME_FIELD] = "|".join((parts[0], parts[1], since, parts[2]))
        self.issued = (
            self.issued or not self.is_new
        )  # the cookie goes out again with its new Max-Age

    @property
    def lifetime(self) -> str | None:
        """This session's own lifetimes as stored (see :meth:`set_lifetime`), or None."""
        return self.get_meta(LIFETIME_FIELD)

    # -- change tracking (used by the core) ------------------------------------

    def _changed_containers(self) -> list[str]:
        if not self._nested:
            return []
        out = []
        fields = self._fields
        for k, v in _items(self):
            if (
                k not in self._dirty
                and isinstance(v, (dict, list))
                and _dump_key(k, v) != fields.get("." + k)
            ):
                out.append(k)
        return out

    def changes(self) -> tuple[dict[str, str], list[str]]:
        """Fields this request set, and fields it deleted."""
        sets: dict[str, str] = {}
        dels: list[str] = []
        fields = self._fields
        reordered = False
        dirty = self._dirty
        for k in (*dirty, *self._changed_containers()):
            if _contains(self, k):
                sets["." + k] = dirty.get(k) or _dump_key(k, _getitem(self, k))
                reordered = reordered or "." + k not in fields
            elif "." + k in fields:
                dels.append("." + k)
                reordered = True
        for name, value in self._meta.items():
            if value is None:
                if name in fields:
                    dels.append(name)
            else:
                sets[name] = value
        if reordered:
            # The key order, for stores that keep fields unordered (jsonb, large Redis
            # hashes): a hint only, so concurrent writers cannot lose data through it.
            if _len(self) > 1:
                sets[ORDER_FIELD] = dumps(list(_keys(self)))
            elif ORDER_FIELD in fields:
                dels.append(ORDER_FIELD)
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
        return (
            not self._dirty
            and not self._meta
            and self._ending is None
            and (not self._nested or not self._changed_containers())
        )

    def commit(self, session_id: str, fields: Fields, key: str | None = None) -> None:
        """Make ``fields`` the new baseline after a successful write."""
        self._reset(session_id, fields, key, keep_data=True)

    def adopt(self, session_id: str, fields: Fields, key: str) -> None:
        """Take the stored record ``fields`` as this request's session and hand its cookie
        out with the response (an old framework's cookie was exchanged for it)."""
        self._reset(session_id, fields, key)
        self.issued = True

    def forward(self, session_id: str, fields: Fields, key: str) -> None:
        """Take the record an old id was rotated to (within the grace window) as this
        request's session: reads and writes go to ``key``, no cookie is sent."""
        self._reset(session_id, fields, key)
        self.forwarded = True

    def rotated(self, session_id: str, fields: Fields, key: str) -> None:
        """The core moved this session to a new id holding ``fields``: hand out its cookie."""
        self._reset(session_id, fields, key, keep_data=True)
        self.issued = True

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

    @property
    def ends(self) -> bool:
        """Whether :meth:`clear` emptied this stored session in this request (it ends when
        the response starts)."""
        return self._ending is not None

    def ending(self) -> Op[None] | None:
        """The operation that ends the record :meth:`clear` emptied, if it did (the core
        runs it before writing): None in every other request."""
        if self._ending is None:
            return None
        return self._end()

    def _end(self) -> Op[None]:
        key, fields = self._ending or ("", {})
        self._ending = None
        if self._loaded_key == key:
            # Not regenerated since the clear: this record is the one to end.
            yield Call("delete", (key,))
            values = _items(self)
            after = {k: v for k, v in values}
            meta: dict[str, str | None] = {n: v for n, v in self._meta.items() if v is not None}
            self._reset(None, None)
            _update(self, after)
            self._dirty = {k: None for k in after}
            self._meta = meta
            self._nested = any(type(v) in (dict, list) for v in after.values())
            self.destroyed = True
        for hook in ON_END:
            yield from hook(key, fields)

    # -- lifecycle (express-session's verbs), each written once as an operation --

    def _regenerate(self) -> Op[None]:
        self.accessed = True
        old = self._loaded_key
        if old is not None:
            # The marker first: a request that finds the record gone must also find it.
            yield from self._core.mark_moved(old)
            yield Call("delete", (old,))
            for name in self._fields:
                keep = name[:1] != "." and name not in ("c", "a", ORDER_FIELD, CSRF_FIELD)
                if keep and name not in self._meta:
                    self._meta[name] = self._fields[name]
            self._dirty.update(dict.fromkeys(_keys(self)))
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
            lifecycle(self.config.events, "session_destroyed", self, "destroyed")
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
            self.accessed = True

    def _increment(self, key: str, amount: int) -> Op[int]:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError("increment() needs an int amount")
        current = _get(self, key, 0)
        if isinstance(current, bool) or not isinstance(current, int):
            raise TypeError(f"session value for key {key!r} is not an int; cannot increment it")
        if self._loaded_key is None or self.modified:
            yield from self._save()
        key_ = self._loaded_key
        assert key_ is not None  # save() with force always stores the session
        core = self._core
        now = core.clock()
        ttl = core.ttl(self.created or now, now, self.lifetime)
        value = yield Call("incr", (key_, "." + key, amount, ttl), {"create": False})
        if value is None and core.config.rotate_every is not None:
            # Rotated by a parallel request since this one loaded it: add on the new record.
            to = yield from core.forwarded_to(key_)
            if to is not None:
                value = yield Call("incr", (to, "." + key, amount, ttl), {"create": False})
                self._loaded_key, self.forwarded = to, True
        if value is None:
            # Destroyed or revoked meanwhile: never re-create it (no resurrection).
            self.lose()
            raise StoreError("the session no longer exists in the store")
        # The new value becomes the baseline: nothing left for the response to write.
        self._fields = {**self._fields, "." + key: str(value)}
        _setitem(self, key, value)
        if key in self._dirty:
            self._dirty[key] = None  # set earlier in this request: its kept text is stale
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
