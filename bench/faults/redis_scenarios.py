"""Redis scenarios: Sentinel failover, Cluster failover and resharding, a slow Redis, and
what ``min_replicas_ack`` costs.

Every Redis here is our own (spare ports, nothing persisted), started and stopped by
PID through the test suite's ``redis_servers`` helpers; the shared server is never
touched. Each scenario runs the harness load against the app and reports a Row:

- ``sentinel-kill`` / ``sentinel-failover``: a master, a replica and three sentinels;
  the master SIGKILLed (then started again, empty, to come back as a replica), or
  ``SENTINEL FAILOVER`` issued; ``-ack`` runs the app with ``?min_replicas_ack=1``.
- ``cluster-kill``: three masters with a replica each, 1 s node timeout; a master
  SIGKILLed, its replica promoted; ``-ack`` also brings the killed node back (as a
  replica) and runs with ``?min_replicas_ack=1``.
- ``cluster-reshard``: the slots holding the most live sessions migrated one key at
  a time (``CLUSTER SETSLOT ... IMPORTING/MIGRATING``, ``MIGRATE``, ``SETSLOT ... NODE``)
  under load, so requests meet ``ASK`` and then ``MOVED`` (counted on the nodes).
- ``redis-slow``: a proxy holds every reply 2 s, above the store's 0.5 s timeout, for
  10 s: how long a 503 takes, how ``/healthz`` answers, how fast service returns.
- ``redis-ack-cost``: no fault; write latency with and without ``WAIT`` on a master
  and replica of this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

from bench.faults.harness import App, Load, Row, client, poll, under_load, waited
from tests.stores.redis_servers import Cluster, RedisServer, _send, free_port

SERVICE = "mymaster"
ACK = "?min_replicas_ack=1"


def _ms(seconds: Sequence[float]) -> str:
    """ "p50 X ms, p99 Y ms" of durations in seconds."""
    if not seconds:
        return "none"
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


def _many(port: int, commands: Sequence[Sequence[str | bytes]]) -> list[bytes]:
    """Send several commands on one connection and return each raw reply's first line
    (enough for the integer and status replies used here)."""
    payload = b""
    for args in commands:
        raw = [a if isinstance(a, bytes) else a.encode() for a in args]
        payload += b"*%d\r\n" % len(raw) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in raw)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        data = b""
        while data.count(b"\r\n") < len(commands):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n")[: len(commands)]


def _replicated(master: RedisServer) -> bool:
    """Whether a replica is online and has confirmed a write of ours (on one connection:
    WAIT counts the writes of the connection it is sent on)."""
    replies = _many(master.port, [("SET", "sw-probe", "1"), ("WAIT", "1", "200")])
    return replies[-1:] == [b":1"]


# -- Sentinel ---------------------------------------------------------------------------


class SentinelSet:
    """A master, one replica and three sentinels (quorum 2, 1 s to call a master down)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.master = RedisServer(workdir, None, "--repl-diskless-sync-delay", "0")
        self.replica: RedisServer | None = None
        self.sentinels: list[tuple[int, subprocess.Popen[bytes]]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port, _ in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> SentinelSet:
        self.master.start()
        self.replica = RedisServer(
            self.workdir, None, "--replicaof", "127.0.0.1", str(self.master.port),
            "--repl-diskless-sync-delay", "0",
        ).start()  # fmt: skip
        poll(lambda: _replicated(self.master))
        for _ in range(3):
            port = free_port()
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {self.workdir}\n"
                f"logfile {self.workdir / f'sentinel-{port}.log'}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
            )
            proc = subprocess.Popen(
                ["redis-server", str(conf), "--sentinel"], stdout=subprocess.DEVNULL
            )
            self.sentinels.append((port, proc))
        poll(lambda: all(self.master_port(p) == self.master.port for p, _ in self.sentinels))
        # Every sentinel has met the replica (else none could promote it).
        met = b"num-slaves\r\n$1\r\n1\r\n"
        poll(lambda: all(met in _send(p, "SENTINEL", "MASTER", SERVICE) for p, _ in self.sentinels))
        return self

    def master_port(self, sentinel: int) -> int | None:
        reply = _send(sentinel, "SENTINEL", "get-master-addr-by-name", SERVICE)
        ports = re.findall(rb"\$\d+\r\n(\d+)\r\n", reply)
        return int(ports[-1]) if ports else None

    def sentinel_command(self, *args: str) -> bytes:
        return _send(self.sentinels[0][0], *args)

    def stop(self) -> None:
        for _, proc in self.sentinels:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(5)
        for server in (self.replica, self.master):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.stop()


@contextlib.contextmanager
def sentinel_set() -> Iterator[SentinelSet]:
    with tempfile.TemporaryDirectory(prefix="sw-sentinel-") as tmp:
        s = SentinelSet(Path(tmp))
        try:
            yield s.start()
        finally:
            s.stop()


async def _sentinel(workdir: Path, quick: bool, how: str, ack: bool) -> Row:
    row = Row(f"sentinel-{how}" + (" (min_replicas_ack=1)" if ack else ""))
    with sentinel_set() as sentinels:
        first = sentinels.sentinels[0][0]

        async def fault(load: Load) -> None:
            old, started = sentinels.master.port, time.monotonic()
            if how == "kill":
                proc = sentinels.master.proc
                assert proc is not None
                proc.kill()  # SIGKILL: no goodbye to anyone
                proc.wait()
            else:
                sentinels.sentinel_command("SENTINEL", "FAILOVER", SERVICE)
            await waited(row, started, lambda: sentinels.master_port(first) != old,
                         "new master named")  # fmt: skip
            load.mark_back()
            promoted = sentinels.replica
            assert promoted is not None
            if how == "kill":
                # The old master comes back (empty: nothing persisted) and Sentinel
                # makes it a replica of the new one; until then no write is confirmed
                # with min_replicas_ack (503s: the documented trade-off).
                sentinels.master.start()
            await waited(row, started, lambda: _replicated(promoted), "a replica again")

        with App(sentinels.url + (ACK if ack else ""), workdir) as app:
            return await under_load(row, app, fault, quick=quick)


async def sentinel_kill(workdir: Path, quick: bool = False) -> Row:
    """The master SIGKILLed under load; Sentinel promotes the replica."""
    return await _sentinel(workdir, quick, "kill", False)


async def sentinel_kill_ack(workdir: Path, quick: bool = False) -> Row:
    """The same with every write confirmed by the replica first."""
    return await _sentinel(workdir, quick, "kill", True)


async def sentinel_failover(workdir: Path, quick: bool = False) -> Row:
    """``SENTINEL FAILOVER`` under load: the master steps down to replica."""
    return await _sentinel(workdir, quick, "failover", False)


async def sentinel_failover_ack(workdir: Path, quick: bool = False) -> Row:
    """The same with every write confirmed by the replica first."""
    return await _sentinel(workdir, quick, "failover", True)


# -- Cluster ----------------------------------------------------------------------------


class ClusterSet(Cluster):
    """Three masters with one replica each; a node is called failed after 1 s."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, replicas=1, node_timeout_ms=1000)

    def alive(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def masters(self) -> list[tuple[str, RedisServer]]:
        """(node id, server) of every live master."""
        found = []
        for node in self.alive():
            with contextlib.suppress(OSError):
                if b"role:master" in node.send("INFO", "replication"):
                    found.append((node.send("CLUSTER", "MYID").split(b"\r\n")[1].decode(), node))
        return found

    def errorstats(self) -> Counter[str]:
        """``ASK`` and ``MOVED`` answers given so far, over the live nodes."""
        seen: Counter[str] = Counter()
        for node in self.alive():
            with contextlib.suppress(OSError):
                info = node.send("INFO", "errorstats")
                for word in ("ASK", "MOVED"):
                    found = re.search(rb"errorstat_" + word.encode() + rb":count=(\d+)", info)
                    seen[word] += int(found.group(1)) if found else 0
        return seen


@contextlib.contextmanager
def cluster_set() -> Iterator[ClusterSet]:
    with tempfile.TemporaryDirectory(prefix="sw-cluster-") as tmp:
        c = ClusterSet(Path(tmp))
        try:
            yield c.start()
        finally:
            c.stop()


async def _cluster_kill(workdir: Path, quick: bool, ack: bool) -> Row:
    row = Row("cluster-kill" + (" (min_replicas_ack=1)" if ack else ""))
    with cluster_set() as cluster:

        async def fault(load: Load) -> None:
            _, victim = cluster.masters()[0]
            started = time.monotonic()
            assert victim.proc is not None
            victim.proc.kill()
            victim.proc.wait()
            others = [n for n in cluster.nodes if n is not victim]

            def healed() -> bool:
                return len(cluster.masters()) == 3 and all(  # the victim's replica promoted
                    b"cluster_state:ok" in n.send("CLUSTER", "INFO") for n in others
                )

            await waited(row, started, healed, "slots served again")
            load.mark_back()
            if ack:  # the promoted master has no replica until the victim rejoins as one
                victim.start()
                await waited(row, started, lambda: len(cluster.replicas()) == 3,
                             "a replica again")  # fmt: skip

        with App(cluster.url + (ACK if ack else ""), workdir) as app:
            return await under_load(row, app, fault, quick=quick)


async def cluster_kill(workdir: Path, quick: bool = False) -> Row:
    """A master SIGKILLed under load; its replica is promoted and the slots served again."""
    return await _cluster_kill(workdir, quick, False)


async def cluster_kill_ack(workdir: Path, quick: bool = False) -> Row:
    """The same with every write confirmed by the key's replica; the killed node comes
    back as the replica of the promoted one."""
    return await _cluster_kill(workdir, quick, True)


def _busiest_slots(node: RedisServer, count: int) -> list[tuple[int, int]]:
    """(slot, keys) of the ``count`` slots of ``node`` holding the most keys."""
    sizes = []
    for start in range(0, 16384, 2048):
        replies = _many(node.port, [("CLUSTER", "COUNTKEYSINSLOT", str(s))
                                    for s in range(start, start + 2048)])  # fmt: skip
        sizes += [(int(r[1:]), start + i) for i, r in enumerate(replies) if r[1:] != b"0"]
    sizes.sort(reverse=True)
    return [(slot, keys) for keys, slot in sizes[:count]]


def _bulk_items(reply: bytes) -> list[bytes]:
    """The items of an array reply of bulk strings, by their lengths (keys are binary)."""
    items, pos = [], reply.index(b"\r\n") + 2
    while pos < len(reply):
        end = reply.index(b"\r\n", pos)
        start = end + 2
        size = int(reply[pos + 1 : end])
        items.append(reply[start : start + size])
        pos = start + size + 2
    return items


def _migrate(cluster: ClusterSet, slots: list[int], pause: float) -> tuple[int, int]:
    """Move ``slots`` from their master to another, key by key with ``pause`` between
    keys, as ``redis-cli --cluster reshard`` does; (slots, keys) moved."""
    masters = cluster.masters()
    ids = {node.port: node_id for node_id, node in masters}
    moved_keys = 0
    moved_slots = 0
    for slot in slots:
        # A slot the load emptied since it was chosen (its sessions logged out) is left
        # alone. (No bare next() here: a StopIteration raised in to_thread never
        # completes its future, and the scenario would hang.)
        owners = [n for _, n in masters
                  if n.send("CLUSTER", "COUNTKEYSINSLOT", str(slot)) != b":0\r\n"]  # fmt: skip
        if not owners:
            continue
        source = owners[0]
        target = next(n for _, n in masters if n is not source)  # three masters
        moved_slots += 1
        target.send("CLUSTER", "SETSLOT", str(slot), "IMPORTING", ids[source.port])
        source.send("CLUSTER", "SETSLOT", str(slot), "MIGRATING", ids[target.port])
        while True:
            time.sleep(pause)  # the slot stays half-moved a while: requests meet ASK
            keys = _bulk_items(source.send("CLUSTER", "GETKEYSINSLOT", str(slot), "1"))
            if not keys:
                break
            done = source.send("MIGRATE", "127.0.0.1", str(target.port), "", "0", "5000",
                               "KEYS", *keys)  # fmt: skip
            if not done.startswith((b"+OK", b"+NOKEY")):
                raise RuntimeError(f"MIGRATE failed: {done[:80]!r}")
            moved_keys += len(keys)
        for node in [target, source, *(n for _, n in masters)]:  # owners first, as redis-cli
            node.send("CLUSTER", "SETSLOT", str(slot), "NODE", ids[target.port])
    return moved_slots, moved_keys


async def _cluster_reshard(workdir: Path, quick: bool, ack: bool) -> Row:
    row = Row("cluster-reshard" + (" (min_replicas_ack=1)" if ack else ""))
    with cluster_set() as cluster:

        async def fault(load: Load) -> None:
            busiest = max(cluster.masters(), key=lambda m: int(m[1].send("DBSIZE")[1:]))[1]
            chosen = _busiest_slots(busiest, 8 if quick else 40)
            before = cluster.errorstats()
            started = time.monotonic()
            slots, keys = await asyncio.to_thread(_migrate, cluster, [s for s, _ in chosen], 0.1)
            took = time.monotonic() - started
            seen = cluster.errorstats() - before
            row.notes.append(f"{slots} slots holding {sum(k for _, k in chosen)} keys moved "
                             f"({keys} by MIGRATE) in {took:.1f} s under load; the nodes "
                             f"answered ASK {seen['ASK']}x, MOVED {seen['MOVED']}x")  # fmt: skip
            load.mark_back()

        with App(cluster.url + (ACK if ack else ""), workdir) as app:
            return await under_load(row, app, fault, quick=quick, warm=8, settle=5)


async def cluster_reshard(workdir: Path, quick: bool = False) -> Row:
    """Slots holding live sessions moved between masters under load: ASK, then MOVED."""
    return await _cluster_reshard(workdir, quick, False)


async def cluster_reshard_ack(workdir: Path, quick: bool = False) -> Row:
    """The same with every write's WAIT following it through ASK and MOVED."""
    return await _cluster_reshard(workdir, quick, True)


# -- a slow Redis -----------------------------------------------------------------------


class SlowProxy:
    """A TCP proxy in front of a Redis that can hold every reply for ``delay`` seconds
    (a thread with its own event loop, so the app under test is not slowed by us)."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self.delay = 0.0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, slow: bool) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if slow and self.delay:
                        await asyncio.sleep(self.delay)
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))

    def start(self) -> SlowProxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


Probe = Callable[[], Awaitable[int]]


async def _probe(seconds: float, every: float, call: Probe) -> list[tuple[int, float]]:
    """(status, seconds) of ``call`` made every ``every`` seconds for ``seconds``."""
    found = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            status = await call()
        except Exception:  # a refused or timed-out probe is a failure like any other
            status = 0
        found.append((status, time.monotonic() - started))
        await asyncio.sleep(every)
    return found


async def redis_slow(workdir: Path, quick: bool = False) -> Row:
    """Every Redis reply held 2 s (above the store's 0.5 s timeout, set in the URL) for
    10 s: requests fail with 503 in about the timeout instead of piling up, ``/healthz``
    stays quick, and service returns once Redis is fast again."""
    row = Row("redis-slow (2 s replies, ?timeout=0.5)")
    with tempfile.TemporaryDirectory(prefix="sw-slow-") as tmp:
        redis = RedisServer(Path(tmp)).start()
        proxy = SlowProxy(redis.port).start()
        app = App(f"redis://127.0.0.1:{proxy.port}/0?timeout=0.5", workdir).start()
        load = Load(app.base, users=12)
        try:
            await load.start()
            async with client(base_url=app.base, timeout=10) as probe:
                login = await probe.post("/login?user=probe")
                jar = {"cookie": f"sid={login.cookies['sid']}"}
                await asyncio.sleep(2 if quick else 5)
                served_before = load.served
                proxy.delay = 2.0
                window = 4 if quick else 10

                async def healthz() -> int:
                    return (await probe.get("/healthz")).status_code

                async def read() -> int:
                    return (await probe.get("/read", headers=jar)).status_code

                health, reads = await asyncio.gather(
                    _probe(window, 0.1, healthz), _probe(window, 0.2, read)
                )
                served_slow = load.served - served_before
                proxy.delay = 0.0
                load.mark_back()
                await asyncio.sleep(3 if quick else 8)
            await load.stop()
            await load.verify(row)
            refused = [s for status, s in reads if status == 503]
            others = Counter(status for status, _ in reads if status != 503)
            longest = max(refused, default=0) * 1000
            row.notes.append(
                f"while slow: a store read answered 503 {len(refused)}x ({_ms(refused)}, "
                f"longest {longest:.0f} ms), otherwise {dict(others) or 'never'}; the load "
                f"got {served_slow} answers below 400; /healthz {_ms([s for _, s in health])}"
            )
        finally:
            app.stop()
            proxy.stop()
            redis.stop()
    return row


# -- the cost of min_replicas_ack --------------------------------------------------------


async def _writes(url: str, sequential: int, concurrent: int) -> tuple[list[float], float]:
    """Store-level apply latencies, one at a time, then writes/s with ``concurrent``
    writers at once (the async face, as an ASGI app uses it)."""
    from sessionware.stores import RedisStore
    from sessionware.testing import new_key

    store = RedisStore.from_url(url)
    try:
        keys = [new_key() for _ in range(concurrent)]
        for key in keys:
            await store.create(key, {"a": "1"}, 600)
        times = []
        for i in range(sequential):
            started = time.perf_counter()
            await store.apply(keys[i % len(keys)], {"n": str(i)}, [], 600)
            times.append(time.perf_counter() - started)

        async def writer(key: str) -> None:
            for i in range(sequential // 4):
                await store.apply(key, {"n": str(i)}, [], 600)

        started = time.perf_counter()
        await asyncio.gather(*(writer(k) for k in keys))
        rate = concurrent * (sequential // 4) / (time.perf_counter() - started)
        return times, rate
    finally:
        await store.close()


async def redis_ack_cost(workdir: Path, quick: bool = False) -> Row:
    """No fault: what a write costs with and without ``min_replicas_ack=1`` on a master
    and replica of this machine, at the store and through the app."""
    row = Row("redis-ack-cost (no fault)")
    with tempfile.TemporaryDirectory(prefix="sw-cost-") as tmp:
        master = RedisServer(Path(tmp), None, "--repl-diskless-sync-delay", "0").start()
        replica = RedisServer(Path(tmp), None, "--replicaof", "127.0.0.1", str(master.port)).start()
        try:
            poll(lambda: _replicated(master))
            n = 300 if quick else 2000
            for label, query in (("plain", ""), ("WAIT 1", ACK)):
                times, rate = await _writes(master.url + query, n, 32)
                row.served += n
                row.notes.append(f"store apply, {label}: {_ms(times)}; 32 writers: {rate:.0f}/s")
                with App(master.url + query, workdir) as app:
                    async with client(base_url=app.base, timeout=10) as http:
                        login = await http.post("/login?user=cost")
                        jar = {"cookie": f"sid={login.cookies['sid']}"}
                        spent = []
                        for i in range(n // 4):
                            started = time.perf_counter()
                            r = await http.post(f"/write?k=k&v={i}", headers=jar)
                            spent.append(time.perf_counter() - started)
                            if r.status_code != 200:
                                row.errors[str(r.status_code)] += 1
                        row.served += len(spent)
                row.notes.append(f"POST /write through uvicorn, {label}: {_ms(spent)}")
        finally:
            replica.stop()
            master.stop()
    return row


SCENARIOS = {
    "sentinel-kill": sentinel_kill,
    "sentinel-kill-ack": sentinel_kill_ack,
    "sentinel-failover": sentinel_failover,
    "sentinel-failover-ack": sentinel_failover_ack,
    "cluster-kill": cluster_kill,
    "cluster-kill-ack": cluster_kill_ack,
    "cluster-reshard": cluster_reshard,
    "cluster-reshard-ack": cluster_reshard_ack,
    "redis-slow": redis_slow,
    "redis-ack-cost": redis_ack_cost,
}
