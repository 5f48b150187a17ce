"""Coalesce the Redis commands of concurrent requests into one round trip.

Every request that needs Redis in one event-loop turn queues its command here; the
first one schedules a flush with ``loop.call_soon``, and the flush sends the whole
queue as one non-transactional pipeline (one write, one read of all the replies).
Under load a server handles dozens of requests per turn, so the per-request cost
of a round trip (a pooled connection, a syscall each way, a wake-up) is paid once
per turn instead of once per request. A lone request waits for nothing: the flush
runs in the very next turn.

The pipeline is not a MULTI transaction: each command (a single read, or one Lua
script) is atomic by itself, which is all the store needs.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from redis import exceptions as rx
from redis.exceptions import NoScriptError

from sessionware.exceptions import StoreError, StoreUnavailableError
from sessionware.stores._redis_scripts import SCRIPTS

__all__ = ["Batcher", "store_error"]

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
_DOWN_REPLIES = ("LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN")
# Commands safe to send twice: a batch of only these is retried once on a broken
# connection (a Redis restart leaves stale sockets in the pool).
_READS = frozenset({"HGETALL", "EXISTS", "SMEMBERS", "SCARD", "PTTL"})


def store_error(exc: BaseException) -> StoreError:
    """Our error for a driver failure, with a message that holds no key, id or value.

    Connection errors keep redis-py's text (it names host and port, never data);
    error replies keep only their first word, since redis-py may quote the command.
    """
    if isinstance(exc, _DOWN) or (
        isinstance(exc, rx.ResponseError) and str(exc).startswith(_DOWN_REPLIES)
    ):
        detail = str(exc)[:160] if isinstance(exc, (rx.ConnectionError, OSError)) else ""
        reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return StoreUnavailableError(f"redis unavailable ({reason})")
    word = str(exc).split(" ", 1)[0][:32] if isinstance(exc, rx.ResponseError) else ""
    return StoreError(f"redis refused a command ({type(exc).__name__} {word})".replace(" )", ")"))


class Batcher:
    """Send the commands queued in one event-loop turn as one pipeline.

    ``client`` is a redis-py asyncio client: ``Redis`` (standalone or from
    ``Sentinel.master_for``), whose batches go to one pooled connection, or
    ``RedisCluster``, whose non-transactional pipeline splits a batch by node and
    sends each part in one round trip. ``coalesce=False`` sends every command on its
    own through the client (the naive baseline, for comparison).
    """

    def __init__(self, client: Any, *, coalesce: bool = True, timeout: float | None = None) -> None:
        self._client = client
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

    def call(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command; the future resolves to its reply or raises a StoreError."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((args, fut))
        return fut

    async def run(self, *args: Any) -> Any:
        """Send one command now (for callers that must not wait for a turn)."""
        if self._coalesce:
            return await self.call(*args)
        try:
            reply = await self._client.execute_command(*args)
        except NoScriptError:
            await self.load_scripts()
            try:
                reply = await self._client.execute_command(*args)
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
            missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
            if missing:
                # A restarted or new server has an empty script cache: load, resend.
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
        retry = all(str(c[0]) in _READS for c in commands)
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
            await conn.send_packed_command(pack(commands), check_health=False)
            replies: list[Any] = []
            try:
                async with asyncio.timeout(self._timeout):
                    for _ in commands:
                        try:
                            # math.inf: no timer per reply; the one above covers the batch.
                            replies.append(await conn.read_response(timeout=math.inf))
                        except rx.ResponseError as exc:
                            replies.append(exc)  # the reply was read; the stream is in sync
            except TimeoutError:
                await conn.disconnect(nowait=True)
                raise rx.TimeoutError("Timeout reading from redis") from None
            return replies
        finally:
            await pool.release(conn)

    async def load_scripts(self) -> None:
        """Load every script (on every primary, for a cluster client)."""
        for script in SCRIPTS:
            await self._client.script_load(script.source)

    async def drain(self) -> None:
        """Wait for batches in flight (before closing the client)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def pack(commands: Sequence[Command]) -> bytes:
    """RESP-encode commands (bytes go as they are, str as UTF-8, numbers as text)."""
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
