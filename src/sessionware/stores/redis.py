"""``RedisStore``: sessions in Redis (standalone, Sentinel or Cluster), one hash each.

Layout (``prefix`` defaults to ``sw:``):

- a session is one hash ``<prefix><first 24 bytes of the SHA-256 key>`` whose
  fields are the record's fields, with a TTL of what the idle and absolute timeouts
  allow, so Redis expires it with no cleanup job. Other keys (``rm:…``, ``th:…``)
  live at ``<prefix><key>``.
- a user's sessions are a set ``<prefix>u{<user id>}`` of store keys; the hash tag
  keeps every per-user key of one user in one Cluster slot.

Why 24 bytes: a small hash costs the Redis key's allocation plus its listpack, and
jemalloc rounds each up to a size class. With a 3-byte prefix a 24-byte digest keeps
the key in the 32-byte class, so a session holding a user id takes 120 bytes of
``MEMORY USAGE`` (connect-redis takes 248 for the same data); the full 32 bytes would
cost 136. 192 bits of SHA-256 are still far beyond guessing or colliding, and the
key is useless as a cookie either way. Prefixes longer than 4 bytes cost 16 bytes
more per session.

Reads take one round trip (HGETALL); every write is one EVALSHA of a short script
that checks the record first (see :mod:`._redis_scripts`). Any failure to reach
Redis raises :class:`~sessionware.exceptions.StoreUnavailableError` (the middleware
answers 503) and the next call simply tries again: no restart is needed after an
outage.

Two faces, one set of operations. Each operation (``_op_load``, ``_op_apply``, ...)
is a generator that builds its keys and arguments, yields the command it needs (a
tuple such as ``("HGETALL", key)``, or a list of independent commands that go
together) and decodes the replies; it does no I/O (see :mod:`sessionware._ops`).
Two drivers in :mod:`._redis_batch` perform the commands:

- the async face (``await store.load(...)``) runs them on a ``redis.asyncio`` client,
  coalescing the commands of concurrent requests into one pipeline per event-loop
  turn;
- the sync face (``store.sync.load(...)``, for WSGI apps, scripts and threads) runs
  them on the synchronous client of the same kind (``redis.Redis``,
  ``redis.cluster.RedisCluster``, ``Sentinel(...).master_for``), a call's several
  commands in one pipeline.

:meth:`RedisStore.from_url` builds both clients from the one URL with the same
options; the synchronous one opens no connection until the sync face is used.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

from sessionware._extras import requires

with requires("redis"):
    from redis.asyncio.cluster import RedisCluster as AsyncCluster
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.cluster import RedisCluster as SyncCluster
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import AbstractRetry
    from redis.retry import Retry as SyncRetry

from sessionware._ops import Op, adrive, drive
from sessionware.exceptions import ConfigurationError, SessionCollisionError, StoreError
from sessionware.stores._redact import redact_url
from sessionware.stores._redis_batch import (
    Batcher,
    Command,
    ForeignValueError,
    SyncSender,
    first_failure,
    store_error,
)
from sessionware.stores._redis_durable import Durability
from sessionware.stores._redis_scripts import APPLY, CREATE, INCR, INCR_EXISTING
from sessionware.stores._redis_sentinel import DEFAULT_INTERVAL
from sessionware.stores._redis_url import FORMS, Parsed, build, parse
from sessionware.stores.base import Fields, StoreBase, SyncFace

__all__ = ["RedisStore"]

T = TypeVar("T")

_DIGEST_BYTES = 24
_DEFAULT_PREFIX = "sw:"
_NO_SYNC = (
    "this RedisStore was built from an asyncio client alone, so it has no sync face: "
    "pass sync_client=redis.Redis(...) (the same server; redis.cluster.RedisCluster for "
    "a cluster) or build the store with RedisStore.from_url(url), which makes both"
)
_NO_ASYNC = (
    "this RedisStore was built from a synchronous client alone, so only store.sync "
    "works: pass a redis.asyncio client (and sync_client=...) or build the store with "
    "RedisStore.from_url(url), which makes both"
)

#: Build the synchronous client when first needed: (client, clients to close).
SyncBuild = Callable[[], tuple[Any, list[Any]]]


def _ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _utf8(text: str) -> bytes:
    """Text as UTF-8 bytes, encoded in the operation rather than when the batch is
    packed: text with no UTF-8 form (a lone surrogate) then fails only the call that
    holds it, not every request coalesced into the same pipeline."""
    if isinstance(text, str):
        try:
            return text.encode()
        except UnicodeEncodeError:
            raise StoreError("redis refuses text that is not valid Unicode") from None
    return text  # not text (bytes, a number): the packer sends it as it is


def _fields(raw: Mapping[Any, Any] | list[Any]) -> Fields:
    if isinstance(raw, list):  # RESP2 sends a hash as a flat list
        raw = dict(zip(raw[::2], raw[1::2], strict=True))
    if type(next(iter(raw))) is str:
        return raw  # decode_responses=True: already text
    return {_text(k): _text(v) for k, v in raw.items()}


def _loaded(raw: Any) -> Fields | None:
    """A record from its HGETALL reply (empty: no record)."""
    return _fields(raw) if raw else None


def _is_async(client: Any) -> bool:
    return inspect.iscoroutinefunction(getattr(client, "execute_command", None))


def _retry(retry: Any, *, sync: bool) -> Any:
    """A redis-py ``Retry`` of the kind the client takes (asyncio or not), so one
    ``retry=`` option serves both clients."""
    want = SyncRetry if sync else AsyncRetry
    if not isinstance(retry, AbstractRetry) or isinstance(retry, want):
        return retry
    # AbstractRetry keeps these three; both kinds take them in this order.
    return want(retry._backoff, retry.get_retries(), retry._supported_errors)


def _client_options(
    parsed: Parsed, connect_timeout: float, timeout: float, options: dict[str, Any], *, sync: bool
) -> dict[str, Any]:
    """The options both clients are built with (each kind gets its own ``Retry``).

    redis-py's ``Retry`` tries a connection once more after a broken one (a restarted
    server), but not after a timeout: it wraps the whole handshake, so a server slower
    than ``timeout`` would cost every new connection two timeouts, where one already
    says the store is unavailable.
    """
    retry = (SyncRetry if sync else AsyncRetry)(NoBackoff(), 1, (RedisConnectionError,))
    out: dict[str, Any] = {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": timeout,
        "retry": retry,
    }
    if parsed.kind != "cluster":
        # A pool of plain connections, no health-check pings or client-side cache.
        out["health_check_interval"] = 0
    # Replies are text: let the parser decode them (in C with hiredis) instead of
    # a Python loop per field. Record keys are bytes, but Redis never sends them back.
    out["decode_responses"] = True
    out.update(options)
    if "retry" in options:
        out["retry"] = _retry(options["retry"], sync=sync)
    return out


def _seconds(name: str, given: float | None, parsed: Parsed, default: float) -> float:
    """A duration from the keyword, else the URL's query, else ``default``; checked."""
    value = given if given is not None else getattr(parsed, name)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 3600:
        raise ConfigurationError(f"{name} must be seconds, above 0 (such as 0.5)")
    return float(value)


class RedisStore(StoreBase):
    """Sessions in Redis; build it with :meth:`from_url` or from redis-py clients.

    ``RedisStore(client, sync_client=None, prefix="sw:")`` takes a ``redis.asyncio``
    client, ``Redis`` (also one from ``Sentinel.master_for``) or ``RedisCluster``, for
    the async face; ``sync_client`` is the synchronous client of the same kind and
    server, for ``store.sync``. Without it ``store.sync`` raises ConfigurationError.
    A synchronous client alone (``RedisStore(redis.Redis(...))``) gives a store whose
    sync face works and whose async face raises ConfigurationError. The store closes
    the clients it was given in :meth:`close`. ``coalesce=False`` sends each async
    command on its own instead of one pipeline per event-loop turn (slower under
    load; for comparison). ``min_replicas_ack``, ``min_replicas_ack_deletes`` and
    ``replica_ack_timeout``: as in :meth:`from_url` (keep the timeout below the
    clients' ``socket_timeout``).
    """

    kind = "redis"

    def __init__(
        self,
        client: Any,
        *,
        sync_client: Any = None,
        prefix: str = _DEFAULT_PREFIX,
        coalesce: bool = True,
        min_replicas_ack: int = 0,
        min_replicas_ack_deletes: int | None = None,
        replica_ack_timeout: float = 0.25,
        master_check_interval: float = DEFAULT_INTERVAL,
        _owned: list[Any] | None = None,
        _sync_owned: list[Any] | None = None,
        _sync_build: SyncBuild | None = None,
        _sync_cluster: bool = False,
    ) -> None:
        if not isinstance(prefix, str):
            raise TypeError("prefix must be a str")
        if (
            isinstance(master_check_interval, bool)
            or not isinstance(master_check_interval, (int, float))
            or not 0 < master_check_interval <= 60
        ):
            raise ConfigurationError(
                "master_check_interval must be seconds, above 0 and at most 60 (such as 0.5)"
            )
        if client is None:
            raise TypeError("client must be a redis-py client (asyncio or synchronous)")
        if not _is_async(client):
            if sync_client is not None:
                raise TypeError("client must be a redis.asyncio client when sync_client is given")
            client, sync_client = None, client  # a synchronous client alone
        elif sync_client is not None and _is_async(sync_client):
            raise TypeError(
                "sync_client must be a synchronous client (redis.Redis, redis.cluster.RedisCluster)"
            )
        #: The asyncio client (None for a store built from a synchronous client alone).
        self.client = client
        self.prefix = prefix
        self._prefix = prefix.encode()
        self.cluster = isinstance(client, AsyncCluster) or _sync_cluster
        if sync_client is not None:
            sync_is_cluster = isinstance(sync_client, SyncCluster)
            if client is not None and sync_is_cluster != self.cluster:
                raise ConfigurationError(
                    "client and sync_client must be of one kind: both cluster clients or neither"
                )
            self.cluster = sync_is_cluster
        self._owned = _owned if _owned is not None else [] if client is None else [client]
        self._batch: Batcher | None = None
        self._aone: Callable[[Command], Awaitable[Any]] = self._no_async
        self._amany: Callable[[list[Command]], Awaitable[list[Any]]] = self._no_async
        if client is not None:
            self._batch = Batcher(
                client, coalesce=coalesce, master_check_interval=master_check_interval
            )
            self._aone, self._amany = self._batch.one, self._batch.many
        if min_replicas_ack_deletes is None:
            # Under Sentinel a failover is automatic, and a logout the old master took
            # just before it would come back: ends wait for one replica by default.
            sentinel = (
                "Sentinel" in type(getattr(client or sync_client, "connection_pool", None)).__name__
            )
            min_replicas_ack_deletes = 1 if sentinel else 0
        self._durability = self._durable_writes(
            min_replicas_ack, min_replicas_ack_deletes, replica_ack_timeout
        )
        if self._durability is not None and client is not None:
            self._aone, self._amany = self._durable_one, self._durable_many
        self._sync_lock = threading.Lock()
        self._sender = (
            SyncSender(sync_client, master_check_interval) if sync_client is not None else None
        )
        self._sync_owned: list[Any] = (
            _sync_owned if _sync_owned is not None else [] if sync_client is None else [sync_client]
        )
        self._sync_build = _sync_build

    def _durable_writes(self, writes: int, deletes: int, timeout: float) -> Durability | None:
        """The WAIT after writes that ``min_replicas_ack`` (and ``_deletes``) ask for."""
        for name, n in (("min_replicas_ack", writes), ("min_replicas_ack_deletes", deletes)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ConfigurationError(f"{name} must be a whole number of replicas (0: off)")
        if not (writes or deletes):
            return None
        if not isinstance(timeout, (int, float)) or not 0 < timeout <= 10:
            raise ConfigurationError("replica_ack_timeout must be seconds, above 0 and at most 10")
        return Durability(writes, deletes, float(timeout))

    async def _durable_one(self, command: Command) -> Any:
        batch, durability = self._batch, self._durability
        assert batch is not None and durability is not None
        n = durability.needed((command,))
        if not n:
            return await batch.one(command)
        if batch.coalesces_durable:
            return await batch.call_durable(command, durability, n)
        return (await batch.durable([command], durability, n))[0]

    async def _durable_many(self, commands: list[Command]) -> list[Any]:
        batch, durability = self._batch, self._durability
        assert batch is not None and durability is not None
        n = durability.needed(commands)
        if not n:
            return await batch.many(commands)
        if batch.coalesces_durable:
            queued = (batch.call_durable(c, durability, n) for c in commands)
            return first_failure(await asyncio.gather(*queued, return_exceptions=True))
        return await batch.durable(commands, durability, n)

    def _durable_perform(self, request: Command | list[Command]) -> Any:
        """The sync driver's perform, with WAIT after writes (``min_replicas_ack``)."""
        sender = self._sender or self._sync_sender()
        assert self._durability is not None
        commands: list[Command] = [request] if type(request) is tuple else request  # type: ignore[assignment]
        n = self._durability.needed(commands)
        if not n:
            return sender.perform(request)
        replies = sender.durable(commands, self._durability, n)
        return replies[0] if type(request) is tuple else replies

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str | None = None,
        cluster: bool = False,
        connect_timeout: float | None = None,
        timeout: float | None = None,
        coalesce: bool = True,
        min_replicas_ack: int | None = None,
        min_replicas_ack_deletes: int | None = None,
        replica_ack_timeout: float | None = None,
        master_check_interval: float | None = None,
        **client_options: Any,
    ) -> RedisStore:
        """Build a store, both its clients, from a URL; the forms are listed in :mod:`._redis_url`.

        ``redis://h:6379/0``, ``rediss://…``, ``redis+sentinel://h1:26379,h2/mymaster/0``,
        ``redis+cluster://h1:7000,h2:7001`` (or ``redis://h:7000`` with ``cluster=True``).
        ``connect_timeout`` (1 s) and ``timeout`` (0.5 s: per batch of commands, per
        reply on the sync face) are seconds, also given in the URL
        (``?timeout=0.5&connect_timeout=1``; a keyword wins over the URL). A Redis slower
        than ``timeout`` is an outage: the request gets its 503 after about that long
        instead of queueing behind the slow server. A batch of reads on a broken
        connection (a restarted Redis) is retried once at once, never with a long
        back-off, so an outage shows as a quick 503; writes are not resent, since they
        may have landed. (On Cluster, redis-py's own retry may resend once: ``apply``
        is idempotent, a resent ``create`` reports a collision and the core picks a new
        id, a resent ``incr`` counts one more.) Other keyword arguments go to both
        redis-py clients. The synchronous client connects only when ``store.sync`` is
        first used (a synchronous ``RedisCluster`` is built only then, since building
        one connects).

        ``min_replicas_ack=N`` (also ``?min_replicas_ack=N``) follows every write
        (create, apply, delete, incr, the per-user index, revocations, remember-me
        rotation) with ``WAIT N`` on the connection that sent it (on Cluster, on a
        connection to the node that owns the key): a write fewer than N replicas
        confirmed within ``replica_ack_timeout`` seconds (``?replica_ack_timeout=``;
        0.25 or half of ``timeout``, whichever is less; it must stay below ``timeout``)
        fails as an outage, a 503, though it may still be on the master. Redis
        replicates asynchronously, so without it a write acknowledged to the browser
        in the last moments before a failover (a killed master, ``SENTINEL
        FAILOVER``) can be lost with the old master; with it, only writes the client
        was told failed can be. It costs a replica round trip per write (writes also
        leave the shared pipeline for a connection of their own), and writes stop
        while fewer than N replicas are up: after a master is lost, until a replica
        of the new master has synced.

        ``min_replicas_ack_deletes`` does the same for the deletes that end sessions
        (logout, revocation, a regenerated session's old id) only, so a failover cannot
        bring a signed-out session back. It defaults to 1 under Sentinel (where
        failovers are automatic) and 0 otherwise (a Cluster may have no replicas); a
        logout then fails with 503 while no replica is up.

        Under Sentinel the store asks Sentinel for the master every
        ``master_check_interval`` seconds while it is used (0.5; also
        ``?master_check_interval=``) and moves its connections to a new master as soon
        as one is named, instead of when the old master first refuses a write (which,
        after ``SENTINEL FAILOVER``, can be ten seconds of writes that are then lost).
        """
        parsed = parse(url, cluster=cluster)
        connect_timeout = _seconds("connect_timeout", connect_timeout, parsed, 1.0)
        timeout = _seconds("timeout", timeout, parsed, 0.5)
        default_ack = min(0.25, timeout / 2)
        replica_ack_timeout = _seconds(
            "replica_ack_timeout", replica_ack_timeout, parsed, default_ack
        )
        master_check_interval = _seconds(
            "master_check_interval", master_check_interval, parsed, DEFAULT_INTERVAL
        )
        if min_replicas_ack is None:
            min_replicas_ack = parsed.min_replicas_ack or 0
        if min_replicas_ack_deletes is None:
            min_replicas_ack_deletes = parsed.min_replicas_ack_deletes
        if (min_replicas_ack or min_replicas_ack_deletes) and replica_ack_timeout >= timeout:
            raise ConfigurationError(
                f"replica_ack_timeout ({replica_ack_timeout:g}s) must be shorter than the "
                f"store's timeout ({timeout:g}s), which bounds each reply, WAIT's too: "
                "raise timeout or lower replica_ack_timeout"
            )

        def make(sync: bool) -> tuple[Any, list[Any]]:
            options = _client_options(parsed, connect_timeout, timeout, client_options, sync=sync)
            return build(parsed, options, {}, sync=sync)

        sync_client, sync_owned, sync_build = None, None, None
        try:
            client, owned = make(False)
            if parsed.kind == "cluster":
                sync_build = lambda: make(True)  # noqa: E731 - building connects: later
            else:  # built now (it connects when used), so bad options fail here
                sync_client, sync_owned = make(True)
        except TypeError as exc:  # a keyword the client does not take: names no URL part
            raise ConfigurationError(f"bad Redis store options ({exc}): use {FORMS}") from None
        except ValueError as exc:
            # redis-py quotes pieces of the URL ("... as 'pa'"): repeat its words only
            # when the URL holds no password they could be pieces of.
            detail = str(exc) if redact_url(url) == url else "a part is malformed"
            raise ConfigurationError(
                f"bad Redis store URL or options ({detail}): use {FORMS}"
            ) from None
        chosen = prefix if prefix is not None else parsed.prefix
        return cls(
            client,
            sync_client=sync_client,
            prefix=chosen if chosen is not None else _DEFAULT_PREFIX,
            coalesce=coalesce,
            min_replicas_ack=min_replicas_ack,
            min_replicas_ack_deletes=min_replicas_ack_deletes,
            replica_ack_timeout=replica_ack_timeout,
            master_check_interval=master_check_interval,
            _owned=owned,
            _sync_owned=sync_owned,
            _sync_build=sync_build,
            _sync_cluster=parsed.kind == "cluster",
        )

    def __repr__(self) -> str:
        kind = "cluster" if self.cluster else "redis"
        return f"<RedisStore {kind} prefix={self.prefix!r}>"

    # -- the two drivers -----------------------------------------------------------

    def _adrive(self, op: Op[T]) -> Coroutine[Any, Any, T]:
        return adrive(op, self._aperform)

    def _aperform(self, request: Command | list[Command]) -> Awaitable[Any]:
        """One command, or several independent ones in one batch; the batcher's awaitable
        is handed back as is (no coroutine of its own on the hot path)."""
        if type(request) is tuple:
            return self._aone(request)
        return self._amany(request)  # type: ignore[arg-type]

    def _drive(self, op: Op[T]) -> T:
        if self._durability is not None:
            return drive(op, self._durable_perform)
        return drive(op, (self._sender or self._sync_sender()).perform)

    async def _no_async(self, request: Any) -> Any:
        raise ConfigurationError(_NO_ASYNC)

    def _sync_sender(self) -> SyncSender:
        """The sync driver, building the synchronous client on first use (once, even
        when many threads ask at the same time)."""
        with self._sync_lock:
            if self._sender is None:
                if self._sync_build is None:
                    raise ConfigurationError(_NO_SYNC)
                try:
                    client, self._sync_owned = self._sync_build()
                except TypeError as exc:
                    raise ConfigurationError(f"bad Redis store options ({exc})") from None
                except Exception as exc:  # a cluster that cannot be reached: 503, try again
                    raise store_error(exc) from None
                self._sender = SyncSender(client)
            return self._sender

    @property
    def sync(self) -> SyncFace:
        """The synchronous face; ConfigurationError if the store has no synchronous client."""
        face: SyncFace | None = self.__dict__.get("_sync_face")
        if face is None:
            if self._sender is None and self._sync_build is None:
                raise ConfigurationError(_NO_SYNC)
            face = self.__dict__["_sync_face"] = _SyncFace(self)  # made once
        return face

    @property
    def sync_client(self) -> Any:
        """The synchronous client, or None while it is not built yet (or there is none)."""
        return self._sender.client if self._sender is not None else None

    # -- keys -------------------------------------------------------------------

    def record_key(self, key: str) -> bytes:
        """The Redis key a record lives under (for operators, SCAN and ``MEMORY USAGE``)."""
        if len(key) == 64:
            # A session key is 64 lowercase hex digits; checking the decoded digest's
            # own spelling is half the cost of a regular expression on every load.
            try:
                digest = bytes.fromhex(key)
            except ValueError:
                pass
            else:
                if digest.hex() == key:
                    return self._prefix + digest[:_DIGEST_BYTES]
        raw = _utf8(key)
        # Valid UTF-8 never holds 0xff, so this keeps a 24-byte key apart from a digest.
        return self._prefix + (raw + b"\xff" if len(raw) == _DIGEST_BYTES else raw)

    def user_key(self, user_id: str) -> bytes:
        """The Redis key of ``user_id``'s session set."""
        return self._prefix + b"u{" + _utf8(str(user_id)) + b"}"

    # -- records ----------------------------------------------------------------

    def _op_load(self, key: str) -> Op[Fields | None]:
        """The record's fields in one HGETALL, or None (also for a foreign value there)."""
        try:
            return _loaded((yield ("HGETALL", self.record_key(key))))
        except ForeignValueError:
            return None

    def _op_create(self, key: str, fields: Fields, ttl: float) -> Op[None]:
        """Write a new hash with ``ttl``; SessionCollisionError if the key is live.

        A record needs at least one field: Redis keeps no empty hash.
        """
        args: list[Any] = ["EVALSHA", CREATE.sha, 1, self.record_key(key), _ms(ttl)]
        for name, value in fields.items():
            args += (_utf8(name), _utf8(value))
        if not (yield tuple(args)):
            raise SessionCollisionError("session key already exists")

    def _op_apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> Op[bool]:
        """Set and delete fields and reset the TTL in one script, only if the record lives.

        A change that removes the last field removes the record (Redis keeps no empty
        hash); the core never does that, since it always sets ``a``.
        """
        args: list[Any] = ["EVALSHA", APPLY.sha, 1, self.record_key(key), _ms(ttl), len(sets)]
        for name, value in sets.items():
            args += (_utf8(name), _utf8(value))
        args += (_utf8(name) for name in dels)
        return bool((yield tuple(args)))

    def _op_delete(self, key: str) -> Op[None]:
        """UNLINK the record."""
        yield ("UNLINK", self.record_key(key))

    def _op_incr(
        self, key: str, field: str, amount: int, ttl: float, create: bool
    ) -> Op[int | None]:
        """HINCRBY in a script: one that sets the expiry only on a new record, or (with
        ``create=False``) one that touches only a live record and otherwise returns None."""
        rkey, name = self.record_key(key), _utf8(field)
        if not create:
            value = yield ("EVALSHA", INCR_EXISTING.sha, 1, rkey, name, amount)
            return None if value is None else int(value)
        return int((yield ("EVALSHA", INCR.sha, 1, rkey, name, amount, _ms(ttl))))

    # -- the per-user index -------------------------------------------------------

    def _op_link(self, user_id: str, key: str) -> Op[None]:
        """Add ``key`` to the user's set, pruning dead members once the set grows.

        The set has no TTL (a session may outlive any fixed one); dead members go
        when listed, or here once there are more than 32.
        """
        skey = self.user_key(user_id)
        _, size = yield [("SADD", skey, _utf8(key)), ("SCARD", skey)]
        if int(size) > 32:
            yield from self._op_keys_of(user_id)

    def _op_unlink(self, user_id: str, key: str) -> Op[None]:
        """Remove ``key`` from the user's set."""
        yield ("SREM", self.user_key(user_id), _utf8(key))

    def _members(self, user_id: str) -> Op[list[str]]:
        members = yield ("SMEMBERS", self.user_key(user_id))
        return sorted(_text(m) for m in members)

    def _forget(self, user_id: str, dead: list[str]) -> Op[None]:
        if dead:
            yield ("SREM", self.user_key(user_id), *(_utf8(m) for m in dead))

    def _op_keys_of(self, user_id: str) -> Op[list[str]]:
        """The user's live keys: SMEMBERS, then EXISTS for each in one batch (sessions
        live in other Cluster slots), dropping the dead ones from the set."""
        members = yield from self._members(user_id)
        if not members:
            return []
        alive = yield [("EXISTS", self.record_key(m)) for m in members]
        yield from self._forget(user_id, [m for m, a in zip(members, alive, strict=True) if not a])
        return [m for m, a in zip(members, alive, strict=True) if a]

    def _op_user_sessions(self, user_id: str) -> Op[dict[str, Fields]]:
        """Every live session of the user with its fields (for a "your devices" page)."""
        members = yield from self._members(user_id)
        if not members:
            return {}
        raws = yield [("HGETALL", self.record_key(m)) for m in members]
        yield from self._forget(user_id, [m for m, r in zip(members, raws, strict=True) if not r])
        return {m: _fields(r) for m, r in zip(members, raws, strict=True) if r}

    def _op_delete_user_sessions(self, user_id: str, keep: str | None = None) -> Op[int]:
        """Delete every session of the user but ``keep``; return how many were live.

        "Log out everywhere" (``keep=None``) and "log out other devices" (``keep`` =
        the current key). A session linked meanwhile is not touched.
        """
        targets = [m for m in (yield from self._members(user_id)) if m != keep]
        if not targets:
            return 0
        removed = yield [("UNLINK", self.record_key(m)) for m in targets]
        yield from self._forget(user_id, targets)
        return sum(int(r) for r in removed)

    def _op_user_ids(self) -> Op[list[str]]:
        """Every user id with a session set, by SCAN over ``<prefix>u{*}`` sets (an operator's
        listing, ``sessionware sessions list``: it walks the keyspace, never use it per request).

        Not on Cluster, whose keys are spread over nodes that one SCAN does not visit.
        """
        if self.cluster:
            raise ConfigurationError(
                "on Redis Cluster the user index is spread over every node, which one SCAN "
                "cannot walk: list one user's sessions with --user ID"
            )
        # SCAN's MATCH is a glob: escape the prefix's own glob characters.
        glob = b"".join(b"\\" + bytes([c]) if c in b"*?[]\\" else bytes([c]) for c in self._prefix)
        pattern = glob + b"u{*}"
        start, found = len(self._prefix) + 2, set[str]()
        cursor: Any = 0
        while True:
            cursor, keys = yield ("SCAN", cursor, "MATCH", pattern, "COUNT", 1000, "TYPE", "set")
            found.update(_text(k[start:-1]) for k in keys)
            if int(cursor) == 0:
                return sorted(found)

    def _op_ping(self) -> Op[None]:
        """Check that Redis answers (StoreUnavailableError if not); for health checks."""
        yield ("PING",)

    # -- the async face's extra methods (store.sync finds their _op_ by name) ---------

    async def user_sessions(self, user_id: str) -> dict[str, Fields]:
        """Every live session of the user with its fields (for a "your devices" page)."""
        return await self._adrive(self._op_user_sessions(user_id))

    async def delete_user_sessions(self, user_id: str, keep: str | None = None) -> int:
        """Delete every session of the user but ``keep``; return how many were live."""
        return await self._adrive(self._op_delete_user_sessions(user_id, keep))

    async def user_ids(self) -> list[str]:
        """Every user id with a session set (``sessionware sessions list`` without --user)."""
        return await self._adrive(self._op_user_ids())

    async def ping(self) -> None:
        """Check that Redis answers (StoreUnavailableError if not); for health checks."""
        await self._adrive(self._op_ping())

    # -- lifecycle -------------------------------------------------------------------

    def _close(self) -> None:
        """Close the synchronous client(s) this store owns (if built) and the sync
        driver's own connections."""
        with self._sync_lock:
            owned = list(self._sync_owned)
            sender = self._sender
        if sender is not None:
            sender.close()
        for client in owned:
            client.close()

    async def _aclose(self) -> None:
        """Wait for batches in flight, then close the asyncio client(s) and their pools."""
        if self._batch is not None:
            await self._batch.drain()
        for client in self._owned:
            await client.aclose()


class _SyncFace(SyncFace):
    """``store.sync`` of a RedisStore: ``load``, on every request of a WSGI app, sends its
    one command straight to the sync driver (``_op_load``'s command and decoding,
    without driving a generator)."""

    __slots__ = ()

    def load(self, key: str) -> Fields | None:
        """The live record at ``key``, or None."""
        s: RedisStore = self._store  # type: ignore[assignment]
        if type(s)._op_load is not RedisStore._op_load:
            return super().load(key)  # a subclass's own load is run as written
        try:
            return _loaded((s._sender or s._sync_sender()).perform(("HGETALL", s.record_key(key))))
        except ForeignValueError:
            return None

    def load_many(self, keys: list[str]) -> list[Fields | None]:
        """The live records at ``keys``, in one round trip: a login lists every session
        of its user, which one load each would make one round trip each."""
        s: RedisStore = self._store  # type: ignore[assignment]
        if type(s)._op_load is not RedisStore._op_load:
            return [self.load(key) for key in keys]
        sender = s._sender or s._sync_sender()
        found: list[Fields | None] = []
        for reply in sender.send([("HGETALL", s.record_key(key)) for key in keys]):
            try:
                if isinstance(reply, Exception):
                    raise store_error(reply) from None
                found.append(_loaded(reply))
            except ForeignValueError:
                found.append(None)
        return found
