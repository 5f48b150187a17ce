"""``min_replicas_ack``: which writes wait for replicas, and where their ``WAIT`` goes.

Redis replicates asynchronously: the master acknowledges a write before any replica
has it, so a failover (Sentinel or Cluster promoting a replica) drops whatever the
old master took in its last moments. ``WAIT n timeout``, sent on the connection that
made the writes, blocks until ``n`` replicas have everything that connection wrote,
or the timeout passes, and returns how many did. It does not undo anything: a write
fewer replicas confirmed is still on the master (it may reach them later, or be lost
in a failover). The store reports it as an outage, so the app never tells its client
that it was saved.

On Redis Cluster a key lives on its slot's master, and ``WAIT`` there counts that
master's replicas for that connection's writes. redis-py's cluster client cannot
route it: it sends ``WAIT`` to every node and sums the replies (a count that says
nothing about one key), and its pipeline picks each node's connection internally.
So :func:`cluster_writes` splits a batch by the node that owns each key (asking the
client only where a slot lives), sends each part with its own ``WAIT`` on one
connection to that node, and follows ``MOVED`` and ``ASK`` itself: a slot being
migrated answers ``ASK`` for a key that has already left, and the command goes to the
target node behind ``ASKING``, with the ``WAIT`` after it on that connection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import AskError, MovedError, NoScriptError

from sessionware._ops import Op
from sessionware.exceptions import StoreUnavailableError

__all__ = ["LOAD_SCRIPTS", "Durability", "cluster_writes", "key_of"]

#: One Redis command: its name and arguments (as in :mod:`._redis_batch`).
Command = tuple[Any, ...]

#: Commands that change nothing: never followed by WAIT.
READ_ONLY = frozenset({"HGETALL", "EXISTS", "SMEMBERS", "SCARD", "PTTL", "PING", "SCAN"})
#: The deletes that end sessions (logout, revocation, a regenerated session's old id).
DELETES = frozenset({"UNLINK", "DEL"})

#: What :func:`cluster_writes` yields when a node lacked a script: load them everywhere.
LOAD_SCRIPTS = "load scripts"
# A slot moved during a migration redirects once (ASK) or twice (MOVED, then ASK);
# more than this is a cluster still reshuffling: an outage, tried again next request.
_REDIRECTS = 5


class Durability:
    """``WAIT n timeout`` after a batch that writes, on the connection that sent it: a
    write fewer replicas confirmed is an outage (503). ``writes`` replicas for every
    write (``min_replicas_ack``), ``deletes`` for the deletes that end sessions,
    whichever the batch needs most."""

    __slots__ = ("deletes", "timeout_ms", "writes")

    def __init__(self, writes: int, deletes: int, timeout: float) -> None:
        self.writes = writes
        self.deletes = max(writes, deletes)
        self.timeout_ms = max(1, int(timeout * 1000))

    def needed(self, commands: Sequence[Command]) -> int:
        """How many replicas must confirm the batch (0: it only reads, or needs none)."""
        n = 0
        for c in commands:
            if c[0] in DELETES:
                n = max(n, self.deletes)
            elif c[0] not in READ_ONLY:
                n = max(n, self.writes)
        return n

    def wait(self, n: int) -> Command:
        """The WAIT that follows a batch needing ``n`` replicas."""
        return ("WAIT", n, self.timeout_ms)

    def confirm(self, acked: Any, n: int) -> None:
        """Raise the outage unless WAIT's reply says ``n`` replicas have the writes."""
        if isinstance(acked, BaseException):
            raise acked
        if int(acked) < n:
            raise StoreUnavailableError(
                f"redis: {int(acked)} of the {n} replicas required (min_replicas_ack) "
                f"confirmed the write within {self.timeout_ms} ms"
            )


def key_of(command: Command) -> Any:
    """The one key a store command names (every command the store sends names one)."""
    return command[3] if command[0] in ("EVALSHA", "EVAL") else command[1]


def cluster_writes(
    commands: Sequence[Command], durability: Durability, n: int, owner: Callable[[Any], str]
) -> Op[list[Any]]:
    """Send ``commands`` to the nodes owning their keys, each node's part followed by
    ``WAIT n`` on its connection; the replies in order (an error reply in its place).

    ``owner(key)`` names the node (``host:port``) the client believes owns ``key``'s
    slot. The operation yields a list of ``(node name, batch)`` to send, one
    connection per batch, and receives each batch's replies (or the exception that
    sending it raised); it yields :data:`LOAD_SCRIPTS` when a node lacked a script.
    Only commands answered ``MOVED``, ``ASK`` or ``NOSCRIPT`` are sent again: they were
    not run.
    """
    replies: list[Any] = [None] * len(commands)
    # (position, node name, whether the command needs ASKING before it)
    todo = [(i, owner(key_of(c)), False) for i, c in enumerate(commands)]
    for _ in range(_REDIRECTS):
        groups: dict[tuple[str, bool], list[int]] = {}
        for i, node, asking in todo:
            groups.setdefault((node, asking), []).append(i)
        sends = []
        for (node, asking), positions in groups.items():
            batch: list[Command] = []
            for i in positions:
                if asking:  # ASKING holds for the next command only
                    batch.append(("ASKING",))
                batch.append(commands[i])
            sends.append((node, [*batch, durability.wait(n)]))
        results: list[Any] = yield sends
        todo, noscript = [], False
        for ((node, asking), positions), result in zip(groups.items(), results, strict=True):
            if isinstance(result, BaseException):
                raise result
            durability.confirm(result[-1], n)
            own = result[1:-1:2] if asking else result[:-1]
            for i, reply in zip(positions, own, strict=True):
                if isinstance(reply, MovedError):  # the slot has a new owner
                    todo.append((i, f"{reply.host}:{reply.port}", False))
                elif isinstance(reply, AskError):  # the key has left a migrating slot
                    todo.append((i, f"{reply.host}:{reply.port}", True))
                elif isinstance(reply, NoScriptError):
                    todo.append((i, node, asking))
                    noscript = True
                else:
                    replies[i] = reply
        if not todo:
            return replies
        if noscript:
            yield LOAD_SCRIPTS
    raise StoreUnavailableError("redis cluster: still redirected after 5 tries (resharding?)")
