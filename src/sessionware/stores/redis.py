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
that checks the record first (see :mod:`._redis_scripts`). Commands of concurrent
requests are coalesced into one pipeline per event-loop turn (see
:mod:`._redis_batch`). Any failure to reach Redis raises
:class:`~sessionware.exceptions.StoreUnavailableError` (the middleware answers 503)
and the next request simply tries again: no restart is needed after an outage.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any, Literal, overload

from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from sessionware.exceptions import ConfigurationError, SessionCollisionError
from sessionware.stores._redact import redact_url
from sessionware.stores._redis_batch import Batcher
from sessionware.stores._redis_scripts import APPLY, CREATE, INCR, INCR_EXISTING
from sessionware.stores._redis_url import FORMS, build, parse
from sessionware.stores.base import Fields

__all__ = ["RedisStore"]

_SESSION_KEY = re.compile("[0-9a-f]{64}").fullmatch
_DIGEST_BYTES = 24
_DEFAULT_PREFIX = "sw:"


def _ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: Mapping[Any, Any] | list[Any]) -> Fields:
    if isinstance(raw, list):  # RESP2 sends a hash as a flat list
        raw = dict(zip(raw[::2], raw[1::2], strict=True))
    if type(next(iter(raw))) is str:
        return raw  # decode_responses=True: already text
    return {_text(k): _text(v) for k, v in raw.items()}


class RedisStore:
    """Sessions in Redis; build it with :meth:`from_url` or from a redis-py asyncio client.

    ``RedisStore(client, prefix="sw:")`` takes a ``redis.asyncio.Redis`` (also one from
    ``Sentinel.master_for``) or ``RedisCluster``; the store closes it in :meth:`close`.
    ``coalesce=False`` sends each command on its own instead of one pipeline per
    event-loop turn (slower under load; for comparison).
    """

    kind = "redis"

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = _DEFAULT_PREFIX,
        coalesce: bool = True,
        _owned: list[Any] | None = None,
    ) -> None:
        if not isinstance(prefix, str):
            raise TypeError("prefix must be a str")
        self.client = client
        self.prefix = prefix
        self.cluster = isinstance(client, RedisCluster)
        self._prefix = prefix.encode()
        self._batch = Batcher(client, coalesce=coalesce)
        self._run = self._batch.call if coalesce else self._batch.run
        self._owned = _owned if _owned is not None else [client]

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str | None = None,
        cluster: bool = False,
        connect_timeout: float = 1.0,
        timeout: float = 0.5,
        coalesce: bool = True,
        **client_options: Any,
    ) -> RedisStore:
        """Build a store from a URL; the forms are listed in :mod:`._redis_url`.

        ``redis://h:6379/0``, ``rediss://…``, ``redis+sentinel://h1:26379,h2/mymaster/0``,
        ``redis+cluster://h1:7000,h2:7001`` (or ``redis://h:7000`` with ``cluster=True``).
        ``connect_timeout`` and ``timeout`` (per batch of commands) are seconds. A
        batch of reads on a broken connection (a restarted Redis) is retried once at
        once, never with a long back-off, so an outage shows as a quick 503; writes
        are not resent, since they may have landed. (On Cluster, redis-py's own
        retry may resend once: ``apply`` is idempotent, a resent ``create`` reports a
        collision and the core picks a new id, a resent ``incr`` counts one more.)
        Other keyword arguments go to the redis-py client.
        """
        parsed = parse(url, cluster=cluster)
        defaults: dict[str, Any] = {
            "socket_connect_timeout": connect_timeout,
            "socket_timeout": timeout,
            "retry": Retry(NoBackoff(), 1),
        }
        if parsed.kind != "cluster":
            # A pool of plain connections, no health-check pings or client-side cache.
            defaults["health_check_interval"] = 0
        # Replies are text: let the parser decode them (in C with hiredis) instead of
        # a Python loop per field. Record keys are bytes, but Redis never sends them back.
        defaults["decode_responses"] = True
        try:
            client, owned = build(parsed, defaults, client_options)
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
            prefix=chosen if chosen is not None else _DEFAULT_PREFIX,
            coalesce=coalesce,
            _owned=owned,
        )

    def __repr__(self) -> str:
        kind = "cluster" if self.cluster else "redis"
        return f"<RedisStore {kind} prefix={self.prefix!r}>"

    # -- keys -------------------------------------------------------------------

    def record_key(self, key: str) -> bytes:
        """The Redis key a record lives under (for operators, SCAN and ``MEMORY USAGE``)."""
        if len(key) == 64 and _SESSION_KEY(key):
            return self._prefix + bytes.fromhex(key)[:_DIGEST_BYTES]
        raw = key.encode()
        # Valid UTF-8 never holds 0xff, so this keeps a 24-byte key apart from a digest.
        return self._prefix + (raw + b"\xff" if len(raw) == _DIGEST_BYTES else raw)

    def user_key(self, user_id: str) -> bytes:
        """The Redis key of ``user_id``'s session set."""
        return self._prefix + b"u{" + str(user_id).encode() + b"}"

    # -- records ----------------------------------------------------------------

    async def load(self, key: str) -> Fields | None:
        """The record's fields in one HGETALL, or None."""
        raw = await self._run("HGETALL", self.record_key(key))
        return _fields(raw) if raw else None

    async def create(self, key: str, fields: Fields, ttl: float) -> None:
        """Write a new hash with ``ttl``; SessionCollisionError if the key is live.

        A record needs at least one field: Redis keeps no empty hash.
        """
        args: list[Any] = [_ms(ttl)]
        for name, value in fields.items():
            args += (name, value)
        done = await self._run("EVALSHA", CREATE.sha, 1, self.record_key(key), *args)
        if not done:
            raise SessionCollisionError("session key already exists")

    async def apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> bool:
        """Set and delete fields and reset the TTL in one script, only if the record lives.

        A change that removes the last field removes the record (Redis keeps no empty
        hash); the core never does that, since it always sets ``a``.
        """
        args: list[Any] = [_ms(ttl), len(sets)]
        for name, value in sets.items():
            args += (name, value)
        args += dels
        return bool(await self._run("EVALSHA", APPLY.sha, 1, self.record_key(key), *args))

    async def delete(self, key: str) -> None:
        """UNLINK the record."""
        await self._run("UNLINK", self.record_key(key))

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
    ) -> int | None:
        """HINCRBY in a script: one that sets the expiry only on a new record, or (with
        ``create=False``) one that touches only a live record and otherwise returns None."""
        rkey = self.record_key(key)
        if not create:
            value = await self._run("EVALSHA", INCR_EXISTING.sha, 1, rkey, field, amount)
            return None if value is None else int(value)
        value = await self._run("EVALSHA", INCR.sha, 1, rkey, field, amount, _ms(ttl))
        return int(value)

    # -- the per-user index -------------------------------------------------------

    async def link(self, user_id: str, key: str) -> None:
        """Add ``key`` to the user's set, pruning dead members once the set grows.

        The set has no TTL (a session may outlive any fixed one); dead members go
        when listed, or here once there are more than 32.
        """
        skey = self.user_key(user_id)
        _, size = await asyncio.gather(self._run("SADD", skey, key), self._run("SCARD", skey))
        if int(size) > 32:
            await self.keys_of(user_id)

    async def unlink(self, user_id: str, key: str) -> None:
        """Remove ``key`` from the user's set."""
        await self._run("SREM", self.user_key(user_id), key)

    async def _members(self, user_id: str) -> list[str]:
        return sorted(_text(m) for m in await self._run("SMEMBERS", self.user_key(user_id)))

    async def _forget(self, user_id: str, dead: list[str]) -> None:
        if dead:
            await self._run("SREM", self.user_key(user_id), *dead)

    async def keys_of(self, user_id: str) -> list[str]:
        """The user's live keys: SMEMBERS, then EXISTS for each in one batch (sessions
        live in other Cluster slots), dropping the dead ones from the set."""
        members = await self._members(user_id)
        if not members:
            return []
        alive = await asyncio.gather(*(self._run("EXISTS", self.record_key(m)) for m in members))
        await self._forget(user_id, [m for m, a in zip(members, alive, strict=True) if not a])
        return [m for m, a in zip(members, alive, strict=True) if a]

    async def user_sessions(self, user_id: str) -> dict[str, Fields]:
        """Every live session of the user with its fields (for a "your devices" page)."""
        members = await self._members(user_id)
        if not members:
            return {}
        raws = await asyncio.gather(*(self._run("HGETALL", self.record_key(m)) for m in members))
        await self._forget(user_id, [m for m, r in zip(members, raws, strict=True) if not r])
        return {m: _fields(r) for m, r in zip(members, raws, strict=True) if r}

    async def delete_user_sessions(self, user_id: str, keep: str | None = None) -> int:
        """Delete every session of the user but ``keep``; return how many were live.

        "Log out everywhere" (``keep=None``) and "log out other devices" (``keep`` =
        the current key). A session linked meanwhile is not touched.
        """
        targets = [m for m in await self._members(user_id) if m != keep]
        if not targets:
            return 0
        removed = await asyncio.gather(*(self._run("UNLINK", self.record_key(m)) for m in targets))
        await self._forget(user_id, targets)
        return sum(int(r) for r in removed)

    # -- lifecycle -------------------------------------------------------------------

    async def ping(self) -> None:
        """Check that Redis answers (StoreUnavailableError if not); for health checks."""
        await self._run("PING")

    async def close(self) -> None:
        """Wait for batches in flight, then close the client(s) and their pools."""
        await self._batch.drain()
        for client in self._owned:
            await client.aclose()
