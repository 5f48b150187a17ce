"""Redis scenarios: Sentinel failover, Cluster failover and resharding, a slow Redis.

Every Redis here is our own (spare ports, nothing persisted), started and stopped by
PID through the test suite's ``redis_servers`` helpers; the shared server is never
touched. Each scenario runs the harness load against the app and reports a Row.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bench.faults.harness import App, Load, Row, client, poll, under_load, waited
from tests.stores.redis_servers import RedisServer, free_port

SERVICE = "mymaster"


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
        poll(lambda: b"state=online" in self.master.send("INFO", "replication"))
        for _ in range(3):
            port = free_port()
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {self.workdir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
            )
            proc = subprocess.Popen(
                ["redis-server", str(conf), "--sentinel"], stdout=subprocess.DEVNULL
            )
            self.sentinels.append((port, proc))
        poll(lambda: all(self.master_port(p) == self.master.port for p, _ in self.sentinels))
        return self

    def master_port(self, sentinel: int) -> int | None:
        from tests.stores.redis_servers import _send

        reply = _send(sentinel, "SENTINEL", "get-master-addr-by-name", SERVICE)
        ports = re.findall(rb"\$\d+\r\n(\d+)\r\n", reply)
        return int(ports[-1]) if ports else None

    def sentinel_command(self, *args: str) -> bytes:
        from tests.stores.redis_servers import _send

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


async def _sentinel(workdir: Path, quick: bool, how: str, ack: int) -> Row:
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
            if how == "kill":
                # The old master comes back (empty: nothing persisted) and Sentinel
                # makes it a replica of the new one; until then no write is confirmed
                # with min_replicas_ack (503s: the documented trade-off).
                sentinels.master.start()
                promoted = sentinels.replica
                assert promoted is not None
                await waited(row, started,
                             lambda: b"state=online" in promoted.send("INFO", "replication"),
                             "a replica again")  # fmt: skip

        with App(sentinels.url + ("?min_replicas_ack=1" if ack else ""), workdir) as app:
            return await under_load(row, app, fault, quick=quick)


async def sentinel_kill(workdir: Path, quick: bool = False) -> Row:
    """The master SIGKILLed under load; Sentinel promotes the replica."""
    return await _sentinel(workdir, quick, "kill", 0)


async def sentinel_kill_ack(workdir: Path, quick: bool = False) -> Row:
    """The same with every write confirmed by the replica first."""
    return await _sentinel(workdir, quick, "kill", 1)


async def sentinel_failover(workdir: Path, quick: bool = False) -> Row:
    """``SENTINEL FAILOVER`` under load: the master steps down to replica."""
    return await _sentinel(workdir, quick, "failover", 0)


async def sentinel_failover_ack(workdir: Path, quick: bool = False) -> Row:
    """The same with every write confirmed by the replica first."""
    return await _sentinel(workdir, quick, "failover", 1)


# -- Cluster ----------------------------------------------------------------------------


class ClusterSet:
    """Three masters with one replica each; a node is called failed after 1 s."""

    def __init__(self, workdir: Path) -> None:
        self.nodes: list[RedisServer] = []
        ports: set[int] = set()
        while len(ports) < 6:
            ports.add(free_port(bus=True))
        for port in sorted(ports):
            conf = str(workdir / f"nodes-{port}.conf")
            self.nodes.append(
                RedisServer(
                    workdir,
                    port,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    conf,
                    "--cluster-node-timeout",
                    "1000",
                )
            )

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def start(self) -> ClusterSet:
        for node in self.nodes:
            node.start()
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=60,
        )  # fmt: skip
        poll(lambda: all(b"cluster_state:ok" in n.send("CLUSTER", "INFO") for n in self.nodes))
        poll(lambda: self.replicas_online() == 3)
        return self

    def replicas_online(self) -> int:
        return sum(b"master_link_status:up" in n.send("INFO", "replication") for n in self.nodes)

    def masters(self) -> list[tuple[str, RedisServer]]:
        """(node id, server) of every live master."""
        found = []
        for node in self.nodes:
            if node.proc is None or node.proc.poll() is not None:
                continue
            with contextlib.suppress(OSError):
                if b"role:master" in node.send("INFO", "replication"):
                    found.append((node.send("CLUSTER", "MYID").split(b"\r\n")[1].decode(), node))
        return found

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()


@contextlib.contextmanager
def cluster_set() -> Iterator[ClusterSet]:
    with tempfile.TemporaryDirectory(prefix="sw-cluster-") as tmp:
        c = ClusterSet(Path(tmp))
        try:
            yield c.start()
        finally:
            c.stop()


async def cluster_kill(workdir: Path, quick: bool = False) -> Row:
    """A master SIGKILLed under load; its replica is promoted and the slots served again."""
    row = Row("cluster-kill")
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

        with App(cluster.url, workdir) as app:
            return await under_load(row, app, fault, quick=quick)


async def cluster_reshard(workdir: Path, quick: bool = False) -> Row:
    """Slots holding live sessions moved between masters under load (``redis-cli
    --cluster reshard``: MIGRATING/IMPORTING, MIGRATE), so requests meet ASK and MOVED."""
    row = Row("cluster-reshard")
    with cluster_set() as cluster:

        async def fault(load: Load) -> None:
            (src_id, src), (dst_id, _) = cluster.masters()[:2]
            started = time.monotonic()
            done = await asyncio.to_thread(
                subprocess.run,
                ["redis-cli", "--cluster", "reshard", f"127.0.0.1:{src.port}",
                 "--cluster-from", src_id, "--cluster-to", dst_id,
                 "--cluster-slots", "300" if quick else "2000", "--cluster-yes",
                 "--cluster-pipeline", "10"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=110, check=False,
            )  # fmt: skip
            moved = len(set(re.findall(rb"Moving slot (\d+) ", done.stdout)))
            took = time.monotonic() - started
            row.notes.append(f"{moved} slots moved in {took:.1f} s under load")

        with App(cluster.url, workdir) as app:
            return await under_load(row, app, fault, quick=quick, warm=5, settle=5)


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


async def redis_slow(workdir: Path, quick: bool = False) -> Row:
    """Every Redis reply held 2 s (above the store's 0.5 s timeout) for a while: requests
    fail with 503 in about the timeout instead of piling up, ``/healthz`` stays quick,
    and service returns once Redis is fast again."""
    row = Row("redis-slow (2 s replies, 0.5 s timeout)")
    with tempfile.TemporaryDirectory(prefix="sw-slow-") as tmp:
        redis = RedisServer(Path(tmp)).start()
        proxy = SlowProxy(redis.port).start()
        app = App(f"redis://127.0.0.1:{proxy.port}/0", workdir).start()
        load = Load(app.base, users=12)
        try:
            await load.start()
            await asyncio.sleep(2 if quick else 5)
            proxy.delay = 2.0
            slow_from = time.monotonic()
            errors_before = sum(load.errors.values())
            health: list[float] = []
            async with client(base_url=app.base, timeout=10) as probe:
                while time.monotonic() - slow_from < (4 if quick else 10):
                    t = time.monotonic()
                    await probe.get("/healthz")
                    health.append(time.monotonic() - t)
                    await asyncio.sleep(0.1)
            refused = sum(load.errors.values()) - errors_before
            proxy.delay = 0.0
            load.mark_back()
            await asyncio.sleep(3 if quick else 8)
            await load.stop()
            await load.verify(row)
            health.sort()
            p99 = health[int(len(health) * 0.99)] * 1000 if health else 0
            row.notes.append(f"{refused} refused while slow; /healthz p99 {p99:.0f} ms")
        finally:
            app.stop()
            proxy.stop()
            redis.stop()
    return row


SCENARIOS = {
    "sentinel-kill": sentinel_kill,
    "sentinel-kill-ack": sentinel_kill_ack,
    "sentinel-failover": sentinel_failover,
    "sentinel-failover-ack": sentinel_failover_ack,
    "cluster-kill": cluster_kill,
    "cluster-reshard": cluster_reshard,
    "redis-slow": redis_slow,
}
