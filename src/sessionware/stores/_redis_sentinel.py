"""Following a Sentinel failover within a fraction of a second, not ten.

redis-py's Sentinel connections ask Sentinel for the master only when they connect, and
notice a failover only when the old master refuses a write (``READONLY``). After a
``SENTINEL FAILOVER`` (or a master cut off, not dead), Sentinel reconfigures the old
master as a replica only when it next polls it, about ten seconds later; until then
the old master still takes writes, which its full resync from the new master then
erases, and after it its connections serve reads from a replica's stale copy (a
signed-out session read back as signed in). The fault harness lost about one
acknowledged write in seven in that window.

:class:`MasterWatch` asks Sentinel for the master at most every ``interval`` seconds
while the store is used, believing the Sentinel with the newest configuration epoch
(redis-py believes the first that answers, and Sentinels learn of a failover a second
or two apart), and tells the drivers to reconnect any connection of theirs that still
talks to another server (redis-py's ``get_master_address`` drops the pool's idle
ones). What the old master took between its replica's promotion and Sentinel naming
the new master (about a second) can still be lost: ``min_replicas_ack`` closes that
window.

Every connection the store opens asks all the Sentinels and believes the newest
configuration too (:func:`sentinel_class`): redis-py believes the first healthy
answer, and after a crash a Sentinel that has not heard of the failover yet names the
old master, which, restarted without persistence, is a healthy *empty* master until
Sentinel demotes it. A connection opened there reads signed-in sessions as gone (and
a new session is minted over each); the fault harness lost acknowledged writes that way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from redis.asyncio.sentinel import Sentinel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import MasterNotFoundError
from redis.sentinel import Sentinel as SyncSentinel

__all__ = ["DEFAULT_INTERVAL", "MasterWatch", "sentinel_class"]

#: Seconds between two questions to Sentinel (only while the store is in use).
DEFAULT_INTERVAL = 0.5


class MasterWatch:
    """The master Sentinel names for one connection pool, asked again every ``interval``."""

    __slots__ = ("_due", "_interval", "_pool", "_task")

    def __init__(self, pool: Any, interval: float) -> None:
        self._pool = pool
        self._interval = interval
        self._due = 0.0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, client: Any, interval: float) -> MasterWatch | None:
        """A watch for a client from ``Sentinel.master_for``; None for any other."""
        pool: Any = getattr(client, "connection_pool", None)
        if not getattr(pool, "is_master", False) or not hasattr(pool, "get_master_address"):
            return None
        return cls(pool, interval)

    def stale(self, conn: Any) -> bool:
        """Whether ``conn`` (connected) talks to a server that is no longer the master."""
        master = self._pool.master_address
        return master is not None and (conn.host, conn.port) != tuple(master)

    def check_soon(self) -> None:
        """Async face: ask Sentinel in a task of its own when due (no request waits)."""
        now = time.monotonic()
        if now < self._due or self._task is not None:
            return
        self._due = now + self._interval
        self._task = asyncio.get_running_loop().create_task(self._ask())

    async def _ask(self) -> None:
        try:
            manager = self._pool.sentinel_manager
            sentinels = list(manager.sentinels)
            replies = await asyncio.gather(
                *(sentinel.sentinel_masters() for sentinel in sentinels), return_exceptions=True
            )
            self._trust_newest(sentinels, replies)
            await self._pool.get_master_address()
        except Exception:  # noqa: S110 - no Sentinel answered: keep the master we know
            pass
        finally:
            self._task = None

    def check(self) -> None:
        """Sync face: ask Sentinel now when due (one round trip per interval per process)."""
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + self._interval  # first: other threads go on meanwhile
        # No Sentinel answered: keep the master we know (the connection says the rest).
        with contextlib.suppress(Exception):
            manager = self._pool.sentinel_manager
            sentinels = list(manager.sentinels)
            replies: list[Any] = []
            for sentinel in sentinels:
                try:
                    replies.append(sentinel.sentinel_masters())
                except Exception as exc:  # one Sentinel down: ask the others
                    replies.append(exc)
            self._trust_newest(sentinels, replies)
            self._pool.get_master_address()

    def _trust_newest(self, sentinels: list[Any], replies: list[Any]) -> None:
        """Put first the Sentinel that knows the newest configuration (the highest
        config epoch), which redis-py asks first: for a second or two after a failover,
        the Sentinels that have not heard of it yet still name the old master, and
        redis-py believes whichever answers first."""
        manager, service = self._pool.sentinel_manager, self._pool.service_name
        found = newest_master(replies, service, manager.check_master_state)
        best = sentinels[found[0]] if found is not None else None
        order = manager.sentinels
        if best is not None and order and order[0] is not best and best in order:
            order.remove(best)
            order.insert(0, best)



def newest_master(states: list[Any], service: str, healthy: Any) -> tuple[int, Any] | None:
    """(index, state) of the healthy master state with the highest config epoch among
    the Sentinels' answers (an exception or a missing service counts for nothing)."""
    best: tuple[int, Any] | None = None
    newest = -1
    for i, reply in enumerate(states):
        state = reply.get(service) if isinstance(reply, dict) else None
        if not state or not healthy(state, service):
            continue
        epoch = state.get("config-epoch", 0)
        epoch = epoch if isinstance(epoch, int) else 0
        if epoch > newest:
            best, newest = (i, state), epoch
    return best


def _address(manager: Any, found: tuple[int, Any] | None, service: str, errors: list[Any]) -> Any:
    if found is None:
        seen = ", ".join(repr(e) for e in errors if isinstance(e, Exception))
        detail = f" : {seen}" if seen else ""
        raise MasterNotFoundError(f"No master found for {service!r}{detail}")
    i, state = found
    order = manager.sentinels
    order.insert(0, order.pop(i))  # asked first next time (by redis-py's own calls too)
    ip = manager._force_master_ip if manager._force_master_ip is not None else state["ip"]
    return ip, state["port"]


class _NewestSentinel(Sentinel):
    """redis-py's async Sentinel manager, naming the master of the newest configuration."""

    async def discover_master(self, service_name: str) -> Any:
        sentinels = list(self.sentinels)
        replies = await asyncio.gather(
            *(s.sentinel_masters() for s in sentinels), return_exceptions=True
        )
        for reply in replies:
            if isinstance(reply, BaseException) and not isinstance(
                reply, (RedisConnectionError, RedisTimeoutError)
            ):
                raise reply
        found = newest_master(replies, service_name, self.check_master_state)
        return _address(self, found, service_name, replies)


class _SyncNewestSentinel(SyncSentinel):
    """The same for the sync face."""

    def discover_master(self, service_name: str) -> Any:
        replies: list[Any] = []
        for sentinel in self.sentinels:
            try:
                replies.append(sentinel.sentinel_masters())
            except (RedisConnectionError, RedisTimeoutError) as exc:
                replies.append(exc)
        found = newest_master(replies, service_name, self.check_master_state)
        return _address(self, found, service_name, replies)


def sentinel_class(sync: bool) -> type[Any]:
    """The Sentinel manager the store builds its clients with (async or sync face)."""
    return _SyncNewestSentinel if sync else _NewestSentinel
