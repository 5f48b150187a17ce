"""The decisions for one request, shared by every adapter, with no I/O.

What to load, whether the session is still alive (idle and absolute timeouts, on the
server), what to write when the response starts (create, apply this request's
changes, refresh the expiry, or nothing), and which ``Set-Cookie`` to send.

Everything that needs the store is an :mod:`operation <sessionware._ops>` that
yields :class:`~sessionware.stores.base.Call` values and takes plain values in:
:meth:`SessionCore.begin` (the Cookie header), :meth:`SessionCore.finish` (status,
header lines, scheme). An adapter runs them with :meth:`SessionCore.arun` (awaiting
the store's async face) or :meth:`SessionCore.run` (plain calls on ``store.sync``);
that and moving bytes is all it does.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Literal, NamedTuple, TypeVar

from sessionware._clock import SteadyClock
from sessionware._http import is_https
from sessionware._ops import Op, adrive, drive
from sessionware.config import SessionConfig
from sessionware.cookies import cookie_values, format_set_cookie, is_prefixed
from sessionware.events import lifecycle
from sessionware.exceptions import (
    ConfigurationError,
    InvalidSignatureError,
    SessionCollisionError,
    SessionTooLargeError,
)
from sessionware.migrate import LegacyCookie, adopted_id
from sessionware.session import ISSUED_FIELD, LIFETIME_FIELD, BaseSession, Fields, Session
from sessionware.signing import Signer
from sessionware.stores.base import Call, Store, SyncStore, acall, call
from sessionware.tokens import is_valid_id, new_session_id, store_key

__all__ = ["MOVED_TTL", "Outgoing", "SessionCore", "Write", "forward_key", "moved_key"]

T = TypeVar("T")
S = TypeVar("S", bound=BaseSession)

log = logging.getLogger("sessionware")
security_log = logging.getLogger("sessionware.security")

_CREATE_TRIES = 3
_VERIFIED_MAX = 8192  # memo entries per process (a few MB at most)
_MEMO_HEADER_MAX = 512  # longer Cookie headers are memoised by our cookie's value only
#: How long a regenerated id is remembered as "moved on": requests of the same browser
#: still in flight with the old cookie must not clear the cookie that replaced it.
MOVED_TTL = 120.0


def moved_key(key: str) -> str:
    """The store key of the marker left when session ``key`` was regenerated."""
    return "mv:" + key


#: Record fields of the rotation: the user id (as sessionware.auth writes it) and the
#: user's revocation generation when the login was stored.
USER_FIELD = "uid"
_GENERATION = "g"


def forward_key(key: str) -> str:
    """The store key of the pointer from a rotated-away session ``key`` to its new key,
    kept for the grace window (a store key, never an id: nothing usable at rest)."""
    return "fw:" + key


def spent_key(key: str) -> str:
    """The store key of the marker saying an old cookie's session ``key`` was made once."""
    return "lg:" + key


class Write(NamedTuple):
    """One store write decided by the core (a tuple: made on every write)."""

    kind: Literal["create", "apply"]
    key: str
    sets: dict[str, str]
    dels: list[str]
    ttl: float
    #: The whole record once written: the session's new baseline.
    after: dict[str, str]


class Outgoing(NamedTuple):
    """What a response must carry for sessions: these Set-Cookie values, ``Vary: Cookie``,
    and (when it hands out a live id or a companion cookie) ``Cache-Control: no-store``."""

    cookies: Sequence[str]
    no_store: bool


_VARY_ONLY = Outgoing((), False)


def _positive(value: float) -> bool:
    """A finite number of seconds above zero (a damaged field may hold nan or inf)."""
    return math.isfinite(value) and value > 0


class OutageLog:
    """Log a store outage at most once per ``every`` seconds, with the count suppressed.

    Adapters answer each request of an outage with a 503 and call this for the log line.
    """

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last = -1e18
        self._suppressed = 0

    def __call__(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            self._suppressed += 1
            return
        extra = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        self._last, self._suppressed = now, 0
        # The exception text comes from our stores, which never include session ids.
        log.error("session store unavailable, answering 503: %s%s", exc, extra)


class SessionCore:
    """Config + store + signer: everything a request needs to open and finish a session."""

    @classmethod
    def build(
        cls,
        store: Store | None,
        secrets: Sequence[str] | None,
        config: SessionConfig | None,
        options: Mapping[str, Any],
        *,
        adapter: str,
    ) -> SessionCore:
        """The core an adapter's constructor describes (``store=``, ``secrets=``, options
        or ``config=``), failing at start-up with the fix when something is missing."""
        if config is None:
            config = SessionConfig(secrets=secrets or [], **options)
        elif secrets is not None or options:
            raise ConfigurationError("pass either config=SessionConfig(...) or options, not both")
        if store is None and config.store_url:
            from sessionware.stores import from_url

            store = from_url(config.store_url)
        if store is None:
            raise ConfigurationError(
                f"{adapter} needs a store: store=SQLiteStore('sessions.db') for one "
                "machine, RedisStore.from_url(...) for many, or stores.from_url(SESSION_STORE)"
            )
        settings = ", ".join(f"{k}={v}" for k, v in config.describe().items())
        kind = getattr(store, "kind", type(store).__name__)
        log.info("effective session settings: store=%s, %s", kind, settings)
        warning = config.lifetime_warning()
        if warning is not None:
            log.warning("%s", warning)
        return cls(config, store)

    def __init__(self, config: SessionConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.signer = Signer(config.secrets, salt="session")
        self.clock = config.clock or SteadyClock()
        self._genid = config.genid or new_session_id
        self._prefixed = bool(is_prefixed(config.cookie_name))
        self._warned_insecure = False
        self._verified: dict[str, tuple[str, str]] = {}
        self._cookie_tails: dict[bool, str] = {}
        # Plain attributes for what every request reads (properties cost a call each).
        self._idle = config.idle
        self._absolute = config.absolute
        self._touch = float(config.touch_interval)  # type: ignore[arg-type]
        self._resave = config.resave
        self._rolling = config.rolling
        self._sync: SyncStore | None = None
        self._legacy = tuple(config.legacy_cookies) or None
        self._every: float | None = config.rotate_every  # type: ignore[assignment]
        self._grace = float(config.rotate_grace)  # type: ignore[arg-type]
        #: Make one store call on the store's async face (a partial: no extra frame on
        #: the hot path).
        self.aperform: Callable[[Call], Awaitable[Any]] = partial(acall, store)

    # -- running operations ------------------------------------------------------

    def perform(self, request: Call) -> Any:
        """Make one store call on the store's sync face (``store.sync``)."""
        return call(self.sync_store, request)

    @property
    def sync_store(self) -> SyncStore:
        """The store's sync face; a store with only async methods cannot serve a sync app."""
        if self._sync is None:
            face = getattr(self.store, "sync", None)
            if face is None:
                raise ConfigurationError(
                    f"{type(self.store).__name__} has no sync face (store.sync): a WSGI app "
                    "needs one of sessionware's stores, or a store subclassing StoreBase"
                )
            self._sync = face
        return self._sync

    def arun(self, op: Op[T]) -> Coroutine[Any, Any, T]:
        """Run an operation of this core, awaiting each store call (``await core.arun(op)``;
        the driver's coroutine is handed back as is: no frame of its own per request)."""
        return adrive(op, self.aperform)

    def run(self, op: Op[T]) -> T:
        """Run an operation of this core with plain store calls."""
        return drive(op, self.perform)

    # -- ids ------------------------------------------------------------------

    @staticmethod
    def key(session_id: str) -> str:
        """The store key for a raw id."""
        return store_key(session_id)

    def new_id(self) -> str:
        """A new id from ``genid``, checked for shape."""
        sid = self._genid()
        if self._genid is new_session_id:
            return sid  # 43 url-safe characters by construction
        if not isinstance(sid, str) or not is_valid_id(sid):
            raise ConfigurationError(
                "genid must return 32-128 url-safe characters (A-Z a-z 0-9 _ -) with at "
                "least 128 bits of randomness, e.g. secrets.token_urlsafe(32)"
            )
        return sid

    # -- opening --------------------------------------------------------------

    def read_cookie(self, header: str | None) -> tuple[str, str] | None:
        """``(raw id, store key)`` from the Cookie header, if a value verifies and is id-shaped.

        Results are remembered (bounded) by cookie value and, for short headers, by the
        whole header, so a returning browser costs one dict lookup instead of a parse,
        an HMAC and a SHA-256. Only a string that already verified can hit, so the
        memo tells an attacker nothing they did not already hold.
        """
        if not header:
            return None
        hit = self._verified.get(header)
        if hit is not None:
            return hit
        for value in cookie_values(header, self.config.cookie_name):
            hit = self._verified.get(value)
            if hit is None and len(value) <= 200:
                try:
                    sid = self.signer.unsign(value)
                except InvalidSignatureError:
                    continue
                if not is_valid_id(sid):
                    continue
                hit = self._memo(value, (sid, store_key(sid)))
            if hit is not None:
                if len(header) <= _MEMO_HEADER_MAX:
                    self._memo(header, hit)
                return hit
        return None

    def _memo(self, text: str, hit: tuple[str, str]) -> tuple[str, str]:
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        self._verified[text] = hit
        return hit

    def alive(self, fields: Fields, now: float) -> bool:
        """Whether a loaded record is within both timeouts (the client's word is never asked)."""
        try:
            created = int(fields["c"])  # written as integer seconds; int() parses 2x faster
            accessed = int(fields["a"])
        except (KeyError, ValueError):
            return False
        own = fields.get(LIFETIME_FIELD)
        if own is None:
            return now - accessed < self._idle and now - created < self._absolute
        idle, ends = self.limits(own, created)
        return now - accessed < idle and now < ends

    def limits(self, lifetime: str | None, created: float) -> tuple[float, float]:
        """``(idle seconds, when the absolute timeout ends)`` for a session created at
        ``created`` with its own ``lifetime`` field (see ``BaseSession.set_lifetime``)."""
        idle, ends = self._idle, created + self._absolute
        if lifetime:
            try:
                own_idle, own_absolute, since, _ = lifetime.split("|")
                if own_idle and _positive(float(own_idle)):
                    idle = float(own_idle)
                if own_absolute and _positive(float(own_absolute)) and math.isfinite(float(since)):
                    ends = float(since) + float(own_absolute)
            except ValueError:
                pass  # a damaged field: the global timeouts
        return idle, ends

    @staticmethod
    def own_max_age(lifetime: str | None) -> float | None:
        """The cookie Max-Age a session's own ``lifetime`` field asks for, if any."""
        if not lifetime:
            return None
        try:
            age = float(lifetime.split("|")[3])
        except (IndexError, ValueError):
            return None
        return float(math.ceil(age)) if _positive(age) else None  # Max-Age=0 would delete it

    def open(
        self,
        session_id: str | None,
        fields: Fields | None,
        now: float,
        key: str | None = None,
        cls: type[Any] = Session,
    ) -> tuple[Any, bool]:
        """Build the request's session; the flag says a loaded record had expired."""
        expired = fields is not None and not self.alive(fields, now)
        if expired:
            fields = None
        try:
            session = cls(self, session_id, fields, key)
        except (ValueError, TypeError):
            # A damaged or foreign record (a value that is not our JSON): no session,
            # and the record goes as an expired one does. Never a 500.
            log.warning("a stored session record could not be decoded: treated as expired")
            session, expired = cls(self, session_id, None, key), True
        return session, expired

    def begin(self, cookie: str | None, cls: type[S]) -> Op[S]:
        """Open the session a request's Cookie header points to (a new one if none does).

        The whole opening as one operation, for adapters that run operations (the
        sync one). It is the three steps below, which an adapter may also take itself
        to await the one load directly (the ASGI adapter does: it is on every request).
        """
        found = self.read_cookie(cookie) if cookie else None
        fields = (yield Call("load", (found[1],))) if found is not None else None
        session, after = self.opened(cookie, found, fields, cls)
        if after is not None:
            yield from after
        return session

    def opened(
        self,
        cookie: str | None,
        found: tuple[str, str] | None,
        fields: Fields | None,
        cls: type[S],
    ) -> tuple[S, Op[None] | None]:
        """The session for ``found`` (from :meth:`read_cookie`) and the ``fields`` loaded
        at its key, plus an operation to run before the app when something is off: an
        expired record to delete, or a missing one to ask about (:meth:`superseded`).

        The common case, a live record, needs nothing more: ``(session, None)``.
        """
        if fields is not None:
            # The common case inline (found is set whenever fields are): a live record.
            try:
                now = self.clock()
                if fields.get(LIFETIME_FIELD) is None:
                    live = (
                        now - int(fields["a"]) < self._idle
                        and now - int(fields["c"]) < self._absolute
                    )
                else:
                    live = self.alive(fields, now)
            except (KeyError, ValueError):
                live = False
            if live:
                try:
                    return cls(self, found[0], fields, found[1]), None  # type: ignore[index]
                except (ValueError, TypeError):
                    pass  # undecodable: open() below says so and ends it
        sid, key = found if found is not None else (None, None)
        session, expired = self.open(sid, fields, self.clock(), key, cls)
        if sid is None and cookie and cookie_values(cookie, self.config.cookie_name):
            # A bad or stale cookie of exactly our name: clear it if we answer. A mere
            # substring test would also match "x__Host-sid=" and clear a stranger's.
            session.had_cookie = True
        if sid is None and self._legacy is not None and cookie:
            return session, self._adopt(session, cookie)  # an old framework's cookie?
        if key is None or (fields is not None and not expired):
            return session, None
        return session, self._after_open(session, sid, key, expired)  # type: ignore[arg-type]

    def _after_open(self, session: BaseSession, sid: str, key: str, expired: bool) -> Op[None]:
        if expired:
            yield Call("delete", (key,))
            return
        if self._every is not None:
            # Rotated moments ago by a parallel request? Then the old id works for the
            # grace window, on the new record.
            to = yield from self.forwarded_to(key)
            if to is not None:
                fields = yield Call("load", (to,))
                if fields is not None and self.alive(fields, self.clock()):
                    session.forward(sid, fields, to)
                    return
        session.superseded = yield from self.superseded(key)

    def forwarded_to(self, key: str) -> Op[str | None]:
        """The key session ``key`` was rotated to, within the grace window."""
        pointer = yield Call("load", (forward_key(key),))
        return pointer.get("to") if pointer else None

    def due(self, session: BaseSession, now: float) -> bool:
        """Whether rotation is on and this loaded session's id is old enough to rotate."""
        if self._every is None or session.is_new or session.forwarded or session.ends:
            return False  # nothing stored to move, moved already, or ending (a logout)
        issued = session.get_meta(ISSUED_FIELD) or session.get_meta("c") or ""
        try:
            return bool(now - int(issued) >= self._every)
        except ValueError:
            return False

    def rotate(self, session: BaseSession, now: float) -> Op[bool]:
        """Move a due session to a new id, once, however many requests try at once.

        The new record is made first (the stored record plus this request's changes),
        then the pointer ``old -> new`` is *created*: the one request whose create wins
        rotates; the others drop their copy and follow the pointer. Writes that land on
        the old record until it is deleted are carried over, and any write after that
        follows the pointer (:meth:`write`). If the session ended meanwhile (revoked,
        signed out everywhere, logged out) the new record is removed again. Returns
        whether this request handled the write (False: write as usual).
        """
        from sessionware.auth import generation  # auth imports this module
        from sessionware.auth.fields import USER

        old = session.key
        if (yield from self.forwarded_to(old)) is not None:
            session.forwarded = True  # rotated already: the browser gets the new id there
            return False
        user = session.get_meta(USER)
        before = (yield from generation.current(user)) if user else 0
        made_in = session.get_meta(_GENERATION)
        if user and made_in is not None and made_in != str(before):
            # Signed out everywhere since this login: the sweep is ending it right now.
            yield Call("delete", (old,))
            yield Call("unlink", (user, old))
            session.lose()
            return True
        first: Fields | None = yield Call("load", (old,))
        if first is None or not self.alive(first, now):
            # Rotated by another request a moment ago (then no cookie from this one, even
            # with rolling: it would hand the old id back) or ended: the write finds out.
            session.forwarded = (yield from self.forwarded_to(old)) is not None
            return False
        sets, dels = session.changes()
        record = dict(first)
        record.update(sets)
        for name in dels:
            record.pop(name, None)
        record["a"] = record[ISSUED_FIELD] = str(int(now))
        self._check_size(record)
        ttl = self.ttl(float(record.get("c") or now), now, record.get(LIFETIME_FIELD))
        new_id = self.new_id()
        new = self.key(new_id)
        yield Call("create", (new, record, ttl))
        try:
            yield Call("create", (forward_key(old), {"to": new}, self._grace))
        except SessionCollisionError:
            yield Call("delete", (new,))
            session.forwarded = True
            return False
        if user:
            yield Call("link", (user, new))
        # After the index entry: a sweep either lists the new key or is seen here.
        late: Fields | None = yield Call("load", (old,))
        ended = late is None or bool(user and (yield from generation.current(user)) != before)
        if ended or late is None:
            yield Call("delete", (new,))
            yield Call("delete", (forward_key(old),))
            if user:
                yield Call("unlink", (user, new))
            session.lose()
            session.superseded = yield from self.superseded(old)
            security_log.info("id rotation undone: the session ended meanwhile")
            return True
        keep = ("a", "c", ISSUED_FIELD)
        carry = {
            k: v for k, v in late.items() if k not in sets and k not in keep and first.get(k) != v
        }
        gone = [k for k in first if k not in late and k not in sets]
        if carry or gone:
            # Written under the old id between the two loads: they land on the new one.
            yield Call("apply", (new, carry, gone, ttl))
            record.update(carry)
            for name in gone:
                record.pop(name, None)
        yield Call("delete", (old,))
        if user:
            yield Call("unlink", (user, old))
        session.rotated(new_id, record, new)
        return True

    def _adopt(self, session: BaseSession, cookie: str) -> Op[None]:
        """Exchange a valid old framework cookie for a server-side session holding its
        data (see :mod:`sessionware.migrate`): one session per old cookie, however many
        requests carry it at once, and never again once that session has ended."""
        for legacy in self._legacy or ():
            for value in cookie_values(cookie, legacy.cookie_name):
                data = legacy.read(value) if len(value) <= 8192 else None
                if data is None:
                    continue  # tampered, expired, another secret: no session
                session.legacy = legacy
                if not data:
                    return  # an empty old session: nothing to carry, the cookie is cleared
                sid = adopted_id(self.config.secrets[0], legacy.cookie_name, value)
                key = store_key(sid)
                now = self.clock()
                fields = yield Call("load", (key,))
                if fields is None or not self.alive(fields, now):
                    fields = yield from self._make_adopted(session, key, data, now, legacy)
                    if fields is None:
                        return
                session.adopt(sid, fields, key)
                return

    def _make_adopted(
        self,
        session: BaseSession,
        key: str,
        data: dict[str, Any],
        now: float,
        legacy: LegacyCookie,
    ) -> Op[Fields | None]:
        """The record for an old cookie met without one, made once; None when the cookie
        is spent (its session was made before and has ended since)."""
        if (yield Call("load", (spent_key(key),))) is not None:
            # Made already: by a parallel request just now (the marker is written after
            # the record, so the record is there) or before, and ended since.
            fields: Fields | None = yield Call("load", (key,))
            if fields is None or not self.alive(fields, now):
                security_log.info("an old session cookie came back after its session ended")
                return None
            return fields
        draft = type(session)(self, None, None)
        draft.update(data)
        record = draft.all_fields()
        record["c"] = record["a"] = str(int(now))
        try:
            yield Call("create", (key, record, self.ttl(now, now)))
        except SessionCollisionError:
            # A parallel request with the same old cookie made it first: join it.
            return (yield Call("load", (key,)))  # type: ignore[no-any-return]
        yield Call("incr", (spent_key(key), "n", 1, legacy.lifetime))
        log.info("old session cookie exchanged for a server-side session")
        return record

    def superseded(self, key: str) -> Op[bool]:
        """Whether the record at ``key`` was replaced by ``regenerate()`` lately.

        Asked only when a cookie's record is missing (rare): a login moments ago in the
        same browser, not an expiry or a revocation.
        """
        return (yield Call("load", (moved_key(key),))) is not None

    def mark_moved(self, key: str) -> Op[None]:
        """Leave the short-lived "moved on" marker for a regenerated record."""
        yield Call("incr", (moved_key(key), "n", 1, MOVED_TTL))

    # -- finishing ------------------------------------------------------------

    def ttl(self, created: float, now: float, lifetime: str | None = None) -> float:
        """Seconds the record may live: the smaller of what both timeouts allow (the
        session's own ones when its ``lifetime`` field says so)."""
        if lifetime is None:
            return min(self._idle, created + self._absolute - now)
        idle, ends = self.limits(lifetime, created)
        return min(idle, ends - now)

    def plan(self, session: BaseSession, now: float, *, force: bool = False) -> Write | None:
        """Decide the write for this session, or None when nothing needs storing.

        The request's changes are encoded once here; the write and the new baseline
        reuse them.
        """
        cfg = self.config
        if not force and self._quiet(session, now):
            return None  # the common read: nothing changed, no refresh due
        created = session.created or now
        sets, dels = session.changes()
        after = session.merged(sets, dels)
        stamp = str(int(now))
        if session.is_new:
            if session.superseded and not force:
                # The browser already holds the id that replaced this one: a cookie
                # from this late response would log it out (a spurious logout).
                return None
            unchanged = not (sets or dels)
            if unchanged and session.destroyed:
                return None
            empty = unchanged and not any(k[:1] == "." for k in after)
            if empty and not (cfg.save_uninitialized or force):
                return None
            after["c"] = str(int(created))
            after["a"] = stamp
            if self._every is not None:
                after[ISSUED_FIELD] = stamp
            self._check_size(after)
            ttl = self.ttl(created, now, after.get(LIFETIME_FIELD))
            return Write("create", session.key, after, [], ttl, after)
        if cfg.resave:
            sets = {k: v for k, v in after.items() if k not in ("c", "a")}
        due = now - (session.last_seen or 0) >= self._touch
        if not (sets or dels or due or force):
            return None
        if sets:
            self._check_size(after)
        sets["a"] = after["a"] = stamp
        ttl = self.ttl(created, now, after.get(LIFETIME_FIELD))
        return Write("apply", session.key, sets, dels, ttl, after)

    def untouched(self, session: BaseSession) -> bool:
        """Nothing to write and no cookie to send: the response goes out as the app made it.

        Synchronous, so adapters can skip awaiting :meth:`finish` on the common read.
        """
        now = self.clock()
        return (
            not self._rolling
            and not self._resave
            and not session.is_new
            and not session.issued
            and session.unchanged()
            and now - (session.last_seen or 0) < self._touch
            and (self._every is None or not self.due(session, now))
        )

    def _quiet(self, session: BaseSession, now: float) -> bool:
        """A loaded session this request did not change, with no expiry refresh due."""
        return (
            not session.is_new
            and not self._resave
            and session.unchanged()
            and now - (session.last_seen or 0) < self._touch
        )

    def _check_size(self, fields: Fields) -> None:
        # Bytes, as stored: a character count would let non-ASCII text pass 4x the limit.
        # (isascii() is a flag lookup: only non-ASCII text is encoded to be measured.)
        size = 0
        for k, v in fields.items():
            size += (len(k) if k.isascii() else len(k.encode())) + (
                len(v) if v.isascii() else len(v.encode())
            )
        if size > self.config.max_size:
            raise SessionTooLargeError(
                f"the session would be {size} bytes, over max_size={self.config.max_size}; "
                "nothing was written: keep large data elsewhere and store its id"
            )

    def write(self, session: BaseSession, *, force: bool = False) -> Op[bool]:
        """Carry out :meth:`plan`; return whether anything was written.

        When the record vanished meanwhile (destroyed or revoked by another request)
        nothing is written and the session is left empty: never resurrected.
        """
        ending = session.ending()
        if ending is not None:
            yield from ending  # clear() emptied a stored session: end it first
        now = self.clock()
        w = self.plan(session, now, force=force)
        if w is None:
            return False
        if w.kind == "create":
            if self._every is not None and USER_FIELD in w.sets:
                # The user's revocation generation this login belongs to (a login that
                # races a sweep undoes itself): a later rotation checks it.
                from sessionware.auth import generation

                w.sets[_GENERATION] = str((yield from generation.current(w.sets[USER_FIELD])))
            for attempt in range(_CREATE_TRIES):
                try:
                    yield Call("create", (w.key, w.sets, w.ttl))
                    break
                except SessionCollisionError:
                    if attempt == _CREATE_TRIES - 1:
                        raise
                    session.renew_id()
                    w = Write("create", self.key(session.id), w.sets, [], w.ttl, w.after)
            session.commit(session.id, w.after, w.key)
            session.issued = True
            lifecycle(self.config.events, "session_created", session, "new")
            return True
        ok = yield Call("apply", (w.key, w.sets, w.dels, w.ttl))
        if session.forwarded or (self._every is not None and self.due(session, now)):
            # Rotated by a parallel request around now: the write (also) lands on the
            # new record, whichever side of the old record's deletion it fell on.
            to = yield from self.forwarded_to(w.key)
            if to is not None:
                session.forwarded = True
                if (yield Call("apply", (to, w.sets, w.dels, w.ttl))):
                    session.commit(session.id, w.after, to)
                    return True
                ok = False
        if ok:
            session.commit(session.id, w.after, w.key)
            return True
        session.lose()
        session.superseded = yield from self.superseded(w.key)
        return False

    def refresh(self, session: BaseSession) -> Op[bool]:
        """Refresh the idle expiry of a stored session now."""
        now = self.clock()
        created = session.created or now
        stamp = str(int(now))
        ttl = self.ttl(created, now, session.lifetime)
        ok = yield Call("apply", (session.key, {"a": stamp}, [], ttl))
        if ok:
            # Move the baseline too, or the end of the request would refresh again.
            session.stamped(stamp)
        return bool(ok)

    def watch(self, session: BaseSession, active: bool) -> Op[bool]:
        """Whether a long-lived connection's stored session is still live.

        For WebSockets, which outlive the request that opened them: False once the
        record was revoked, destroyed or expired. A connection ``active`` since the last
        look refreshes the idle expiry (when a refresh is due), as a request would. A
        rotation by a parallel request is followed to the new record.
        """
        fields: Fields | None = yield Call("load", (session.key,))
        if fields is None and self._every is not None:
            to = yield from self.forwarded_to(session.key)
            if to is not None:
                fields = yield Call("load", (to,))
                if fields is not None:
                    session.forward(session.id, fields, to)
        now = self.clock()
        if fields is None or not self.alive(fields, now):
            return False
        if active and now - int(fields["a"]) >= self._touch:
            return (yield from self.refresh(session))
        return True

    def is_secure(self, headers: Iterable[tuple[bytes, bytes]], scheme: str) -> bool:
        """Whether to mark cookies Secure for this request (every cookie of it agrees)."""
        secure = self.config.secure
        if secure != "auto":
            return bool(secure)
        if self._prefixed:
            return True  # the prefix demands it; see the start-up warning
        return is_https(headers, scheme, self.config.trust_proxy)

    def set_cookie(self, session: BaseSession, secure: bool) -> str:
        """The Set-Cookie value that hands the browser this session.

        Everything after the value depends only on the configuration and ``secure``:
        built (and checked) once per flag, then joined to each new signed id. A session
        with its own cookie Max-Age (``set_lifetime``) gets its own.
        """
        own = self.own_max_age(session.lifetime) if session.lifetime else None
        if own is not None:
            cfg = self.config
            return format_set_cookie(
                cfg.cookie_name,
                self.signer.sign(session.id),
                path=cfg.path,
                domain=cfg.domain,
                max_age=int(own),
                secure=secure,
                http_only=cfg.http_only,
                same_site=cfg.same_site,
                partitioned=cfg.partitioned,
            )
        tail = self._cookie_tails.get(secure)
        if tail is None:
            cfg = self.config
            max_age = int(cfg.cookie_max_age) if cfg.cookie_max_age else None
            whole = format_set_cookie(
                cfg.cookie_name,
                "v",
                path=cfg.path,
                domain=cfg.domain,
                max_age=max_age,
                secure=secure,
                http_only=cfg.http_only,
                same_site=cfg.same_site,
                partitioned=cfg.partitioned,
            )
            tail = self._cookie_tails[secure] = whole[len(cfg.cookie_name) + 2 :]
        # A signed id is url-safe base64 and a dot: nothing a cookie cannot carry.
        return f"{self.config.cookie_name}={self.signer.sign(session.id)}{tail}"

    def clear_cookie(self, secure: bool) -> str:
        """A Set-Cookie that deletes the session cookie, with the attributes it was set with.

        Browsers only replace a cookie whose name, Path and Domain match, and refuse a
        prefixed one without Secure (flask-login #683/#734).
        """
        cfg = self.config
        return format_set_cookie(
            cfg.cookie_name,
            "",
            path=cfg.path,
            domain=cfg.domain,
            max_age=0,
            secure=secure,
            http_only=cfg.http_only,
            same_site=cfg.same_site,
            partitioned=cfg.partitioned,
        )

    def finish(
        self,
        session: BaseSession,
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        scheme: str,
    ) -> Op[list[str]]:
        """Write what needs writing and return the Set-Cookie values to send (maybe none).

        ``headers`` and ``scheme`` are the request's, for the Secure decision.

        A 5xx response saves nothing: the handler failed half-way. A cookie whose
        session was regenerated meanwhile is left alone: the browser already has the
        new one, and clearing "the" cookie would clear that.
        """
        cfg = self.config
        wrote = False
        if status < 500:
            if self._every is not None and self.due(session, self.clock()):
                wrote = yield from self.rotate(session, self.clock())
            if not wrote:
                wrote = yield from self.write(session)
        live = not session.is_new
        cookie_age = cfg.max_age or (session.lifetime is not None)
        if live and session.forwarded:
            cookies: list[str] = []  # an old id in its grace window: the browser has the new
        elif live and (session.issued or cfg.rolling or (cookie_age and wrote)):
            secure = self.is_secure(headers, scheme)
            if not secure and self._prefixed and not self._warned_insecure:
                self._warned_insecure = True
                log.warning(
                    "sending %s over plain http: browsers drop __Host-/__Secure- cookies "
                    "without https; for local http development pass cookie_name='sid'",
                    cfg.cookie_name,
                )
            cookies = [self.set_cookie(session, secure)]
        elif not live and session.had_cookie and not session.superseded:
            cookies = [self.clear_cookie(self.is_secure(headers, scheme))]
        else:
            cookies = []
        if session.legacy is not None:
            self._clear_legacy(session.legacy, cookies, headers, scheme)
        return cookies

    def _clear_legacy(
        self,
        legacy: LegacyCookie,
        cookies: list[str],
        headers: Iterable[tuple[bytes, bytes]],
        scheme: str,
    ) -> None:
        """Add the deletion of the old framework cookie this request presented, unless our
        own cookie has its name, Path and Domain and so replaces (or clears) it already."""
        cfg = self.config
        ours = (cfg.cookie_name, cfg.path, cfg.domain)
        if (legacy.cookie_name, legacy.path, legacy.domain) != ours:
            cookies.append(legacy.clear_cookie(self.is_secure(headers, scheme)))

    def outgoing(
        self, session: BaseSession, cookies: list[str], extra: list[str] | None
    ) -> Outgoing | None:
        """The session headers of a response, or None when it goes out as the app made it.

        ``cookies`` come from :meth:`finish`, ``extra`` from other layers (companion
        cookies). Any response that read or had a session varies by Cookie.
        """
        if not (cookies or extra or session.accessed or session.had_cookie):
            return None
        if not extra:
            if not cookies:
                return _VARY_ONLY  # the common read: no allocation
            return Outgoing(cookies, not session.is_new)
        # One Set-Cookie per name (RFC 6265 §4.1.1): a layer that set a cookie twice in
        # one request (remember-me restored, then a logout) means its last value.
        last = {value.split("=", 1)[0]: value for value in (*cookies, *extra)}
        return Outgoing(list(last.values()), True)
