"""Start and stop real redis-server processes on spare loopback ports, for tests.

Used for the Cluster and Sentinel set-ups and for the outage test, which must own
the server it kills. Every process is started here and stopped here, by its PID.
Nothing persists: ``--save ''`` and ``--appendonly no``.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = [
    "Cluster",
    "RedisServer",
    "Sentinel",
    "free_port",
    "running_cluster",
    "running_sentinel",
    "running_server",
]

_READY_DEADLINE = 10.0


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(*, bus: bool = False) -> int:
    """A loopback port nobody listens on right now.

    ``bus=True``: a cluster node also needs port + 10000 for its cluster bus, so the
    port is drawn below the ephemeral range with both halves free.
    """
    if not bus:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 30000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _send(port: int, *args: str | bytes, timeout: float = 1.0) -> bytes:
    """Send one command in RESP and return the raw reply (enough for readiness checks)."""
    raw = [a if isinstance(a, bytes) else a.encode() for a in args]
    payload = b"*%d\r\n" % len(raw) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in raw)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        data = b""
        while not data.endswith(b"\r\n") or (data[:1] == b"$" and data.count(b"\r\n") < 2):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def _wait(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + _READY_DEADLINE
    while True:
        with contextlib.suppress(OSError):
            if check():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {_READY_DEADLINE} s")
        time.sleep(0.05)


class RedisServer:
    """One redis-server process that can be stopped and started again on its port."""

    def __init__(self, workdir: Path, port: int | None = None, *extra: str) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis:// URL of this server, db 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        """The argv that starts this server."""
        return [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.workdir),
            "--logfile", str(self.workdir / f"redis-{self.port}.log"),
            *self.extra,
        ]  # fmt: skip

    def start(self) -> RedisServer:
        """Start the process and wait until it answers PING."""
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL)
        _wait(f"redis-server on port {self.port}", self._ready)
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} exited ({self.proc.returncode})")
        return _send(self.port, "PING").startswith(b"+PONG")

    def send(self, *args: str | bytes) -> bytes:
        """One raw command to this server."""
        return _send(self.port, *args)

    def stop(self) -> None:
        """SIGTERM by PID, then wait for the exit (SIGKILL after 5 s)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def pause(self) -> None:
        """SIGSTOP: the server keeps its socket but answers nothing (a hung Redis)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)


class Cluster:
    """Three cluster-enabled masters joined with ``redis-cli --cluster create``, with
    ``replicas`` replicas each; a node is called failed after ``node_timeout_ms``."""

    def __init__(self, workdir: Path, *, replicas: int = 0, node_timeout_ms: int = 2000) -> None:
        self.nodes = []
        self.replicas_each = replicas
        ports: set[int] = set()
        while len(ports) < 3 * (1 + replicas):
            ports.add(free_port(bus=True))
        for port in sorted(ports):
            conf = str(workdir / f"nodes-{port}.conf")
            extra = ("--cluster-enabled", "yes", "--cluster-config-file", conf)
            self.nodes.append(
                RedisServer(workdir, port, *extra, "--cluster-node-timeout", str(node_timeout_ms),
                            "--repl-diskless-sync-delay", "0")
            )  # fmt: skip

    @property
    def url(self) -> str:
        """redis+cluster:// URL listing every node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> Cluster:
        """Start the nodes, assign the slots, and wait for ``cluster_state:ok`` everywhere
        (and every replica in sync)."""
        for node in self.nodes:
            node.start()
        subprocess.run(
            ["redis-cli", "--cluster", "create",
             *(f"127.0.0.1:{n.port}" for n in self.nodes),
             "--cluster-replicas", str(self.replicas_each), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=60,
        )  # fmt: skip
        for node in self.nodes:
            _wait("cluster_state:ok", lambda n=node: b"state:ok" in n.send("CLUSTER", "INFO"))
        wanted = 3 * self.replicas_each
        _wait("every replica in sync", lambda: len(self.replicas()) == wanted)
        return self

    def replicas(self) -> dict[int, RedisServer]:
        """Each master's port to its replica (one whose link is up)."""
        found = {}
        for node in self.nodes:
            with contextlib.suppress(OSError):  # a node stopped by the test
                info = node.send("INFO", "replication")
                if b"master_link_status:up" in info:
                    port = re.search(rb"master_port:(\d+)", info)
                    assert port is not None
                    found[int(port.group(1))] = node
        return found

    def node(self, port: int) -> RedisServer:
        return next(n for n in self.nodes if n.port == port)

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()


class Sentinel:
    """A master redis-server with one replica, and one sentinel (quorum 1) watching it as
    ``mymaster``: a deployment Sentinel could fail over (the store waits for a replica to
    confirm the deletes that end sessions there)."""

    service = "mymaster"

    def __init__(self, workdir: Path) -> None:
        self.master = RedisServer(workdir, None, "--repl-diskless-sync-delay", "0")
        self.replica: RedisServer | None = None
        self.port = free_port()
        self.conf = workdir / f"sentinel-{self.port}.conf"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis+sentinel:// URL for the watched master, db 0."""
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}/0"

    def start(self) -> Sentinel:
        """Start the master and its replica, then the sentinel, and wait until it names
        the master."""
        self.master.start()
        self.replica = RedisServer(
            self.conf.parent, None, "--replicaof", "127.0.0.1", str(self.master.port)
        ).start()
        _wait("the replica in sync", lambda: b"state=online" in self.master.send("INFO"))
        # A fresh replica's first acknowledgement can wait for its one-second cron.
        self.master.send("SET", "warm", "1")
        self.master.send("WAIT", "1", "5000")
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndaemonize no\n"
            f"dir {self.conf.parent}\nlogfile {self.conf.parent / f'sentinel-{self.port}.log'}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.service} 2000\n"
        )
        self.proc = subprocess.Popen(
            ["redis-server", str(self.conf), "--sentinel"], stdout=subprocess.DEVNULL
        )
        _wait(
            "redis sentinel",
            lambda: (
                str(self.master.port).encode()
                in _send(self.port, "SENTINEL", "get-master-addr-by-name", self.service)
            ),
        )
        return self

    def stop(self) -> None:
        """Stop the sentinel, then the master."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(5)
        if self.replica is not None:
            self.replica.stop()
        self.master.stop()


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="sw-redis-") as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def running_server() -> Iterator[RedisServer]:
    """A standalone redis-server of our own, stopped on exit."""
    with _workdir() as tmp:
        server = RedisServer(tmp)
        try:
            yield server.start()
        finally:
            server.stop()


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """A 3-master Redis Cluster of our own, stopped on exit."""
    with _workdir() as tmp:
        cluster = Cluster(tmp)
        try:
            yield cluster.start()
        finally:
            cluster.stop()


@contextlib.contextmanager
def running_sentinel() -> Iterator[Sentinel]:
    """A master plus one sentinel of our own, stopped on exit."""
    with _workdir() as tmp:
        sentinel = Sentinel(tmp)
        try:
            yield sentinel.start()
        finally:
            sentinel.stop()
