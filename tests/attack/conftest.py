"""Attack fixtures: the real demo served with several worker processes sharing one
real store -- the Starlette app by uvicorn, the Flask app by gunicorn (gthread workers,
as ``sessionware demo --framework flask`` serves it) -- and the store URLs to run it on.
Every test using ``live_demo`` runs against both apps: one HTTP contract.

``live_demo(store_url, env=..., workers=2)`` is a factory (a context manager) that
yields the base URL of a fresh server on a free port of 127.0.0.1, in its own folder
(its users' SQLite file lives there); the URL also carries the server's ``pid`` and
``cpu_seconds()`` of its workers. It stops exactly the process it started, by
its PID (uvicorn's supervisor and gunicorn's arbiter take their workers down
with them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import psycopg
import pytest
import redis

from tests.servers import free_port, stop, wait_ready

REDIS = "redis://127.0.0.1:6379/0"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "attack-test-secret-" + "k" * 40
PASSWORD = "correct horse battery"


class ServerURL(str):
    """The base URL of a live demo, which also knows the PID of the server process."""

    pid: int

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server's worker processes, read
        from /proc: an outside measure of the work a burst of requests caused."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.pid:  # ppid: a worker of our server
                total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / tick


LiveDemo = Callable[..., AbstractContextManager[ServerURL]]


def _command(framework: str, port: int, workers: int) -> list[str]:
    """The server command line: uvicorn for Starlette; for Flask, gunicorn with the
    worker class, threads and proxy settings of ``sessionware.demo.serve``."""
    if framework == "flask":
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "sessionware.demo.flask_app:from_env()",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            "8",
            "--log-level",
            "warning",
            "--graceful-timeout",
            "5",
            "--forwarded-allow-ips",
            "",
            "--no-control-socket",
        ]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "sessionware.demo.app:from_env",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-server-header",
    ]


@pytest.fixture(params=["starlette", "flask"])
def live_demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LiveDemo:
    """A factory: ``with live_demo(store_url, env={...}, workers=2) as url: ...``, for
    each of the demo's two apps."""
    framework: str = request.param

    @contextmanager
    def start(
        store_url: str, *, env: dict[str, str] | None = None, workers: int = 2
    ) -> Iterator[ServerURL]:
        folder = tmp_path_factory.mktemp("live-demo")
        port = free_port()
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SESSION_", "REMEMBER_", "LOGIN_", "REGISTER_"))
        }
        environ |= {"SESSION_SECRET": SECRET, "SESSION_STORE": store_url, **(env or {})}
        log = folder / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                _command(framework, port, workers),
                cwd=folder,
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = ServerURL(f"http://127.0.0.1:{port}")
        url.pid = proc.pid
        try:
            wait_ready(url, proc, log, seconds=20)
            yield url
        finally:
            stop(proc)
            text = log.read_text(errors="replace")
            if "Traceback" in text:
                print(f"server log of {url}:\n{text[-6000:]}")  # shown when the test fails

    return start


@pytest.fixture(params=["redis", "postgres", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty place in each shared store: a Redis key prefix, a PostgreSQL
    schema, a SQLite file; removed afterwards."""
    tag = "swattack" + uuid.uuid4().hex[:10]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sessions.sqlite3'}"
        return
    if request.param == "redis":
        yield f"{REDIS}?prefix={tag}:"
        client = redis.Redis.from_url(REDIS)
        for key in client.scan_iter(match=f"{tag}:*", count=1000):
            client.delete(key)
        client.close()
        return
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {tag}")
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{tag}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {tag} CASCADE")
