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
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

__all__ = ["DEFAULT_INTERVAL", "MasterWatch"]

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
        pool = getattr(client, "connection_pool", None)
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
        best, newest = None, -1
        for sentinel, reply in zip(sentinels, replies, strict=True):
            state = reply.get(service) if isinstance(reply, dict) else None
            if not state or not manager.check_master_state(state, service):
                continue
            epoch = state.get("config-epoch", 0)
            if isinstance(epoch, int) and epoch > newest:
                best, newest = sentinel, epoch
        order = manager.sentinels
        if best is not None and order and order[0] is not best and best in order:
            order.remove(best)
            order.insert(0, best)
