"""The two drivers of :class:`~sessionware.stores.redis.RedisStore`: how a command reaches Redis.

The store's operations yield commands; a driver sends them and hands back the
replies. Both drivers send a batch as one non-transactional pipeline (one write, one
read of all the replies), resend a batch of reads once on a broken connection (a
Redis restart leaves stale sockets in the pool) but never writes (they may have
landed), load the scripts and resend on NOSCRIPT (a restarted or new server has an
empty script cache), and map every driver failure with :func:`store_error`.

:class:`Batcher` (the async face) coalesces: every request that needs Redis in one
event-loop turn queues its command here; the first one schedules a flush with
``loop.call_soon``, and the flush sends the whole queue as one pipeline. Under load a
server handles dozens of requests per turn, so the per-request cost of a round trip
(a pooled connection, a syscall each way, a wake-up) is paid once per turn instead
of once per request. A lone request waits for nothing: the flush runs in the very
next turn.

:class:`SyncSender` (the sync face) has no turn to wait for: each call sends its own
commands at once, from whichever thread calls, on a connection that thread holds
alone while it sends.

A pipeline is not a MULTI transaction: each command (a single read, or one Lua
script) is atomic by itself, which is all the store needs.
"""

from __future__ import annotations

import asyncio
import math
import os
import weakref
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from redis import exceptions as rx
from redis.exceptions import NoScriptError

from sessionware._ops import adrive, drive
from sessionware.exceptions import StoreError, StoreUnavailableError
from sessionware.stores._redis_durable import Durability, cluster_writes
from sessionware.stores._redis_scripts import SCRIPTS
from sessionware.stores._redis_sentinel import DEFAULT_INTERVAL, MasterWatch

_pack_one: Callable[[Command], bytes] | None
try:
    from hiredis import pack_command as _pack_one
except ImportError:  # optional: the pure-Python packer below writes the same bytes
    _pack_one = None

try:  # redis-py's hiredis sentinel for "need more bytes" (see _lean_reader)
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH
except ImportError:
    _NOT_ENOUGH = None

__all__ = ["Batcher", "Command", "SyncSender", "first_failure", "pack", "store_error"]

#: Bumped in every forked child, so a sender there drops the idle connections (sockets)
#: it inherited from its parent instead of sharing them.
_fork_generation = [0]


def _forked() -> None:
    _fork_generation[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)

#: One Redis command: its name and arguments, e.g. ``("HGETALL", b"sw:...")``.
Command = tuple[Any, ...]

# Replies a failing or failing-over server gives while it cannot serve: the store is
# unavailable (503), not broken. LOADING/BUSY/MASTERDOWN come as plain error replies.
_DOWN = (
    rx.ConnectionError,
    rx.TimeoutError,
    rx.ClusterError,
    rx.TryAgainError,
    rx.ReadOnlyError,
    rx.OutOfMemoryError,
    rx.RedisClusterException,
    OSError,
    asyncio.TimeoutError,
)
_DOWN_REPLIES = (
    "LOADING",
    "BUSY",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "NOREPLICAS",
    "MISCONF",
)
# Commands safe to send twice: a batch of only these is retried once on a broken
# connection (a Redis restart leaves stale sockets in the pool).
_READS = frozenset({"HGETALL", "EXISTS", "SMEMBERS", "SCARD", "PTTL", "PING"})


class ForeignValueError(StoreError):
    """A key holds what sessionware never writes (another type, bytes that are not
    UTF-8): a load reads it as no record."""


def store_error(exc: BaseException) -> StoreError:
    """Our error for a driver failure, with a message that holds no key, id or value.

    The one mapping both drivers use. Connection errors keep redis-py's text (it
    names host and port, never data); error replies keep only their first word,
    since redis-py may quote the command.
    """
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, UnicodeDecodeError) or (
        isinstance(exc, rx.ResponseError) and str(exc).startswith("WRONGTYPE")
    ):
        return ForeignValueError(
            f"redis holds a value sessionware did not write ({type(exc).__name__})"
        )
    if isinstance(exc, _DOWN) or (
        isinstance(exc, rx.ResponseError) and str(exc).startswith(_DOWN_REPLIES)
    ):
        detail = str(exc)[:160] if isinstance(exc, (rx.ConnectionError, OSError)) else ""
        reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return StoreUnavailableError(f"redis unavailable ({reason})")
    if isinstance(exc, rx.ResponseError):
        word = str(exc).split(" ", 1)[0][:32]
        return StoreError(
            f"redis refused a command ({type(exc).__name__} {word})".replace(" )", ")")
        )
    # Anything else (RuntimeError: Event loop is closed, a DataError) keeps its first
    # line: the cause is the one thing the reader needs, and it quotes no command.
    return StoreError(f"redis refused a command ({type(exc).__name__}: {first_line(exc)})")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text, at most 160 characters (for messages)."""
    return str(exc).strip().split("\n", 1)[0][:160] or "no detail"


def _resendable(commands: Sequence[Command]) -> bool:
    """Whether a batch may go again after a broken connection: only if all are reads."""
    return all(c[0] in _READS for c in commands)


def _noscript(replies: Sequence[Any]) -> list[int]:
    """Positions of the replies saying the server lacks a script (to load and resend)."""
    return [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]


def _owner(client: Any, key: Any) -> str:
    """The node (``host:port``) a cluster client believes owns ``key``'s slot."""
    node = client.nodes_manager.get_node_from_slot(client.keyslot(key))
    return str(node.name)


def first_failure(replies: list[Any]) -> list[Any]:
    """``replies``, or the mapped error of the first failed one (a request fails whole)."""
    for reply in replies:
        if isinstance(reply, BaseException):
            raise store_error(reply) from None
    return replies


def _lean_reader(conn: Any) -> tuple[Any, asyncio.StreamReader] | None:
    """The connection's hiredis reader and stream, when redis-py parses with hiredis.

    Reading a batch's replies straight from them costs one ``gets()`` per reply,
    where ``read_response`` adds a timeout context, error formatting and health-check
    bookkeeping to each. Any other parser (or a redis-py whose internals moved) takes
    the public path instead.
    """
    parser = getattr(conn, "_parser", None)
    reader = getattr(parser, "_reader", None)
    stream = getattr(parser, "_stream", None)
    if _NOT_ENOUGH is None or not hasattr(reader, "gets") or stream is None:
        return None
    if not getattr(parser, "_connected", False):
        return None
    return reader, stream


async def _read_replies(conn: Any, reader: Any, stream: asyncio.StreamReader, n: int) -> list[Any]:
    """``n`` replies from a hiredis reader fed from ``stream``; error replies come back as
    ResponseError values (hiredis builds them with redis-py's own ``parse_error``)."""
    replies: list[Any] = []
    while len(replies) < n:
        reply = reader.gets()
        if reply is _NOT_ENOUGH:
            data = await stream.read(65536)
            if not data:
                raise rx.ConnectionError("Connection closed by server.")
            reader.feed(data)
            continue
        replies.append(reply)
    return replies


class Batcher:
    """The async driver: send the commands queued in one event-loop turn as one pipeline.

    ``client`` is a redis-py asyncio client: ``Redis`` (standalone or from
    ``Sentinel.master_for``), whose batches go to one pooled connection, or
    ``RedisCluster``, whose non-transactional pipeline splits a batch by node and
    sends each part in one round trip. ``coalesce=False`` sends every command on its
    own through the client (the naive baseline, for comparison).
    """

    def __init__(
        self,
        client: Any,
        *,
        coalesce: bool = True,
        timeout: float | None = None,
        master_check_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self._client = client
        #: Under Sentinel: the master asked for again while in use (a failover followed).
        self._watch = MasterWatch.of(client, master_check_interval)
        self._coalesce = coalesce
        # A plain or Sentinel-managed client: talk to one pooled connection directly
        # (one packed write, one timer per batch) instead of through redis-py's
        # Pipeline, whose per-reply timers and callbacks cost more than the round trip.
        # A cluster client keeps its Pipeline, which routes each command to its node.
        pool = getattr(client, "connection_pool", None)
        self._pool = pool if hasattr(pool, "get_connection") else None
        kwargs = getattr(pool, "connection_kwargs", {})
        self._timeout = timeout if timeout is not None else kwargs.get("socket_timeout")
        self._queue: list[tuple[Command, asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        #: The reply to one command: queued for this turn's batch, or sent alone.
        self.one: Callable[[Command], Awaitable[Any]] = self.call if coalesce else self.run
        #: Writes that replicas must confirm share one pipeline and one WAIT per turn
        #: (:meth:`call_durable`); a cluster's WAIT goes per node (:meth:`durable`).
        self.coalesces_durable = coalesce and self._pool is not None
        self._durable: list[tuple[Command, asyncio.Future[Any], int]] = []
        self._durability: Durability | None = None

    async def many(self, commands: list[Command]) -> list[Any]:
        """The replies to several independent commands, queued together so they share
        one batch; the first failure among them is raised once all have settled."""
        one = self.one
        return first_failure(
            await asyncio.gather(*(one(c) for c in commands), return_exceptions=True)
        )

    async def durable(self, commands: list[Command], durability: Durability, n: int) -> list[Any]:
        """The replies to ``commands`` sent with ``WAIT n`` after them, on one connection
        of their own (not coalesced: WAIT must follow exactly these writes); a script the
        server lacks is loaded and the whole batch sent again, WAIT included. On Cluster,
        one connection and one WAIT per node that owns a key (see :mod:`._redis_durable`)."""
        try:
            if self._pool is None:
                await self._client.initialize()  # a no-op once the slots are known
                op = cluster_writes(commands, durability, n, partial(_owner, self._client))
                return first_failure(await adrive(op, self._to_nodes))
            batch = [*commands, durability.wait(n)]
            replies = await self._pipeline(batch)
            if _noscript(replies):
                await self.load_scripts()
                replies = await self._pipeline(batch)
            durability.confirm(replies[-1], n)
        except Exception as exc:  # every driver failure is mapped
            raise store_error(exc) from None
        return first_failure(replies[:-1])

    async def _to_nodes(self, sends: list[tuple[str, list[Command]]] | str) -> list[Any] | None:
        """Perform a request of :func:`cluster_writes`: each batch on one connection to
        its node, all at once (a failure stands in its batch's place)."""
        if isinstance(sends, str):  # LOAD_SCRIPTS: a node lacked a script
            await self.load_scripts()
            return None
        sent = (self._to_node(name, batch) for name, batch in sends)
        return list(await asyncio.gather(*sent, return_exceptions=True))

    async def _to_node(self, name: str, batch: list[Command]) -> list[Any]:
        node = self._client.get_node(node_name=name)
        if node is None:  # redirected to a node the client has not met: next time
            raise rx.ConnectionError(f"cluster node {name} is not known to the client yet")
        conn = node.acquire_connection()
        try:
            return await self._exchange(conn, batch)
        finally:
            node.release(conn)

    def call_durable(self, command: Command, durability: Durability, n: int) -> asyncio.Future[Any]:
        """Queue one command that ``n`` replicas must confirm. This turn's such commands
        go in one pipeline of their own, on one connection, ended by one ``WAIT`` for
        the most any of them needs: WAIT counts every write its connection made, so it
        confirms them all at once. The reads of the turn go in the other pipeline and
        never wait for replicas."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._durable:
            loop.call_soon(self._flush_durable)
        self._durability = durability
        self._durable.append((command, fut, n))
        return fut

    def _flush_durable(self) -> None:
        batch, self._durable = self._durable, []
        task = asyncio.get_running_loop().create_task(self._send_durable(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_durable(self, batch: list[tuple[Command, asyncio.Future[Any], int]]) -> None:
        durability = self._durability
        assert durability is not None
        pending, last = batch, False
        try:
            while pending:
                n = max(need for _, _, need in pending)
                replies = await self._pipeline([*(c for c, _, _ in pending), durability.wait(n)])
                acked, missing = replies[-1], []
                for (command, fut, need), reply in zip(pending, replies, strict=False):
                    if fut.done():
                        continue  # the request was cancelled meanwhile
                    if isinstance(reply, NoScriptError) and not last:
                        missing.append((command, fut, need))  # not run: send it again
                    elif isinstance(reply, Exception):
                        fut.set_exception(store_error(reply))
                    else:
                        try:
                            durability.confirm(acked, need)
                        except Exception as exc:
                            fut.set_exception(store_error(exc))
                        else:
                            fut.set_result(reply)
                if missing:
                    await self.load_scripts()
                pending, last = missing, True
        except Exception as exc:  # every driver failure is mapped
            for _, fut, _ in batch:
                if not fut.done():
                    fut.set_exception(store_error(exc))

    def call(self, command: Command) -> asyncio.Future[Any]:
        """Queue one command; the future resolves to its reply or raises a StoreError."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((command, fut))
        return fut

    async def run(self, command: Command) -> Any:
        """Send one command now, through the client (the uncoalesced baseline)."""
        if self._coalesce:
            return await self.call(command)
        try:
            reply = await self._client.execute_command(*command)
        except NoScriptError:
            await self.load_scripts()
            try:
                reply = await self._client.execute_command(*command)
            except Exception as exc:  # every driver failure is mapped
                raise store_error(exc) from None
        except Exception as exc:
            raise store_error(exc) from None
        return reply

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        commands = [args for args, _ in batch]
        try:
            replies = await self._pipeline(commands)
            missing = _noscript(replies)
            if missing:
                await self.load_scripts()
                again = await self._pipeline([commands[i] for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
        except Exception as exc:  # every driver failure is mapped
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(store_error(exc))
            return
        for (_, fut), reply in zip(batch, replies, strict=True):
            if fut.done():
                continue  # the request was cancelled meanwhile
            if isinstance(reply, Exception):
                fut.set_exception(store_error(reply))
            else:
                fut.set_result(reply)

    async def _pipeline(self, commands: Sequence[Command]) -> list[Any]:
        retry = _resendable(commands)
        while True:
            try:
                if self._pool is not None:
                    return await self._direct(commands)
                pipe = self._client.pipeline(transaction=False)
                for args in commands:
                    pipe.execute_command(*args)
                return list(await pipe.execute(raise_on_error=False))
            except (rx.ConnectionError, OSError):
                if not retry:
                    raise
                retry = False

    async def _direct(self, commands: Sequence[Command]) -> list[Any]:
        """Write every command in one packet and read the replies in order."""
        pool = self._pool
        assert pool is not None
        conn = await pool.get_connection()
        try:
            watch = self._watch
            if watch is not None:
                watch.check_soon()
                if conn.is_connected and watch.stale(conn):
                    # Through connect(), which asks Sentinel for the master: the send
                    # would reconnect to the address the connection had.
                    await conn.disconnect()
                    await conn.connect()
            return await self._exchange(conn, commands)
        finally:
            await pool.release(conn)

    async def _exchange(self, conn: Any, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` on ``conn`` and read their replies, the whole batch bounded
        by the timeout; an error reply comes back as a ResponseError value."""
        await conn.send_packed_command(pack(commands), check_health=False)
        try:
            async with asyncio.timeout(self._timeout):
                lean = _lean_reader(conn)
                if lean is not None:
                    return await _read_replies(conn, *lean, len(commands))
                replies: list[Any] = []
                for _ in commands:
                    try:
                        # math.inf: no timer per reply; the one above covers the batch.
                        replies.append(await conn.read_response(timeout=math.inf))
                    except rx.ResponseError as exc:
                        replies.append(exc)  # the reply was read; the stream is in sync
                return replies
        except TimeoutError:
            await conn.disconnect(nowait=True)
            raise rx.TimeoutError("Timeout reading from redis") from None
        except BaseException:
            # Replies may be left unread (a broken socket, a cancelled read): this
            # connection must never serve another batch out of step.
            await conn.disconnect(nowait=True)
            raise

    async def load_scripts(self) -> None:
        """Load every script (on every primary, for a cluster client)."""
        for script in SCRIPTS:
            await self._client.script_load(script.source)

    async def drain(self) -> None:
        """Wait for batches in flight (before closing the client)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class SyncSender:
    """The sync driver: send one call's commands at once, as one pipeline.

    ``client`` is a redis-py synchronous client of the same kinds as :class:`Batcher`
    takes: ``redis.Redis`` (also from ``Sentinel.master_for``), whose commands go
    straight to a connection of its kind, or ``redis.cluster.RedisCluster``, whose
    non-transactional pipeline routes each command to its node.

    For ``redis.Redis`` the sender keeps its own stack of idle connections, made from
    the client's pool settings: borrowing one is a ``list.pop()``, atomic under the GIL,
    where the pool's ``get_connection`` takes a lock, records metrics and polls the
    socket before every command (a third of a read's cost). Each calling thread holds
    a connection of its own while it sends; the stack holds as many as were ever in
    use at once. A pool with a client-side cache keeps the pool's own path.
    """

    def __init__(self, client: Any, master_check_interval: float = DEFAULT_INTERVAL) -> None:
        self.client = client
        self._watch = MasterWatch.of(client, master_check_interval)
        pool = getattr(client, "connection_pool", None)
        self._pool = pool if hasattr(pool, "get_connection") else None
        self._make: Callable[[], Any] | None = None
        if self._pool is not None and getattr(self._pool, "cache", None) is None:
            kwargs = dict(self._pool.connection_kwargs)
            self._make = partial(self._pool.connection_class, **kwargs)
        self._idle: list[Any] = []
        #: Every connection made, to close in close() (a connection dropped for good
        #: closes its socket when collected).
        self._made: weakref.WeakSet[Any] = weakref.WeakSet()
        self._generation = _fork_generation[0]

    def close(self) -> None:
        """Close the connections this sender made (a later call connects anew)."""
        for conn in list(self._made):
            conn.disconnect()

    def perform(self, request: Command | list[Command]) -> Any:
        """The reply to one command (a tuple), or the replies to several (a list)."""
        if isinstance(request, tuple):
            reply = self.send([request])[0]
            if isinstance(reply, Exception):
                raise store_error(reply) from None
            return reply
        return first_failure(self.send(request))

    def durable(self, commands: list[Command], durability: Durability, n: int) -> list[Any]:
        """:meth:`Batcher.durable` on the sync face (a cluster's nodes one after another)."""
        try:
            if self._pool is None:
                op = cluster_writes(commands, durability, n, partial(_owner, self.client))
                return first_failure(drive(op, self._to_nodes))
            batch = [*commands, durability.wait(n)]
            replies = self._pipeline(batch)
            if _noscript(replies):
                self.load_scripts()
                replies = self._pipeline(batch)
            durability.confirm(replies[-1], n)
        except Exception as exc:  # every driver failure is mapped
            raise store_error(exc) from None
        return first_failure(replies[:-1])

    def _to_nodes(self, sends: list[tuple[str, list[Command]]] | str) -> list[Any] | None:
        """:meth:`Batcher._to_nodes` on the sync face."""
        if isinstance(sends, str):  # LOAD_SCRIPTS: a node lacked a script
            self.load_scripts()
            return None
        results: list[Any] = []
        for name, batch in sends:
            try:
                results.append(self._to_node(name, batch))
            except Exception as exc:  # stands in its batch's place, as gather's would
                results.append(exc)
        return results

    def _to_node(self, name: str, batch: list[Command]) -> list[Any]:
        node = self.client.get_node(node_name=name)
        if node is None:
            raise rx.ConnectionError(f"cluster node {name} is not known to the client yet")
        pool = self.client.get_redis_connection(node).connection_pool
        conn = pool.get_connection()
        try:
            return _exchange(conn, pack(batch), len(batch))
        finally:
            pool.release(conn)

    def send(self, commands: Sequence[Command]) -> list[Any]:
        """Every command's reply, an error reply standing in its place; a failure to
        reach Redis raises (mapped)."""
        try:
            replies = self._pipeline(commands)
            for reply in replies:
                if isinstance(reply, NoScriptError):
                    break
            else:
                return replies  # the common case, without building the list below
            missing = _noscript(replies)
            if missing:
                self.load_scripts()
                again = self._pipeline([commands[i] for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
        except Exception as exc:  # every driver failure is mapped
            raise store_error(exc) from None
        return replies

    def _pipeline(self, commands: Sequence[Command]) -> list[Any]:
        retried = False
        while True:
            try:
                if self._pool is not None:
                    return self._direct(commands)
                if len(commands) == 1:
                    return [self._one(commands[0])]
                pipe = self.client.pipeline(transaction=False)
                for args in commands:
                    pipe.execute_command(*args)
                return list(pipe.execute(raise_on_error=False))
            except (rx.ConnectionError, OSError):
                if retried or not _resendable(commands):
                    raise
                retried = True

    def _one(self, command: Command) -> Any:
        """One command through the cluster client, an error reply returned in its place.

        Not through a pipeline: redis-py's synchronous ClusterPipeline asks the server
        for an EVALSHA's keys (COMMAND GETKEYS, a round trip per script call) and
        fails to decode a binary key in the answer; ``execute_command`` reads them
        from the arguments. (The store sends several commands at once only for
        reads, SADD and UNLINK, whose key the pipeline finds without asking.)
        """
        try:
            return self.client.execute_command(*command)
        except rx.ResponseError as exc:
            return exc

    def _direct(self, commands: Sequence[Command]) -> list[Any]:
        """Write every command in one packet and read the replies in order (each read
        bounded by the client's ``socket_timeout``)."""
        if self._make is None:
            return self._pooled(commands)
        if self._generation != _fork_generation[0]:
            # A forked child: the parent's sockets are not ours to use (or to close).
            self._generation, self._idle = _fork_generation[0], []
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = self._make()
            self._made.add(conn)
        data = pack(commands)
        try:
            watch = self._watch
            if watch is not None:
                watch.check()
                if getattr(conn, "_sock", None) is not None and watch.stale(conn):
                    conn.disconnect()  # a failover: connect to the new master below
            if getattr(conn, "_sock", None) is None:
                # Through connect(), as the pool does: a Sentinel connection asks for the
                # master there (sending would connect to its default address instead).
                conn.connect()
            replies = _exchange(conn, data, len(commands))
        except BaseException:
            # redis-py disconnects on a failed send or read; anything else that stops
            # us half-way would leave replies unread: never reuse such a connection.
            conn.disconnect()
            raise
        finally:
            self._idle.append(conn)  # closed or in step: either is fit for the next call
        return replies

    def _pooled(self, commands: Sequence[Command]) -> list[Any]:
        """:meth:`_direct` through the client's pool."""
        pool = self._pool
        assert pool is not None
        data = pack(commands)
        conn = pool.get_connection()
        try:
            watch = self._watch
            if watch is not None:
                watch.check()
                if watch.stale(conn):
                    conn.disconnect()
                    conn.connect()
            return _exchange(conn, data, len(commands))
        finally:
            # A failed send or read has disconnected the connection already (redis-py
            # does so on any error), so what goes back to the pool is clean or closed.
            pool.release(conn)

    def load_scripts(self) -> None:
        """Load every script (on every primary, for a cluster client)."""
        for script in SCRIPTS:
            self.client.script_load(script.source)


def _exchange(conn: Any, data: bytes, n: int) -> list[Any]:
    """Send one packed batch on a sync connection and read its ``n`` replies in order;
    an error reply comes back as a ResponseError value (the stream stays in step)."""
    conn.send_packed_command([data], check_health=False)  # a list of chunks
    replies: list[Any] = []
    for _ in range(n):
        try:
            replies.append(conn.read_response())
        except rx.ResponseError as exc:
            replies.append(exc)
    return replies


def pack(commands: Sequence[Command]) -> bytes:
    """RESP-encode commands (bytes go as they are, str as UTF-8, numbers as text).

    hiredis, when installed (the ``redis[hiredis]`` extra), packs a command in C at a
    third of the cost of the Python loop below, which writes the same bytes.
    """
    if _pack_one is not None:
        return b"".join(map(_pack_one, commands))
    out: list[bytes] = []
    for args in commands:
        out.append(b"*%d\r\n" % len(args))
        for arg in args:
            if isinstance(arg, bytes):
                data = arg
            elif isinstance(arg, str):
                data = arg.encode()
            elif isinstance(arg, (int, float)) and not isinstance(arg, bool):
                data = repr(arg).encode()
            else:
                raise TypeError(f"cannot send a {type(arg).__name__} to redis")
            out += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(out)
