"""Flask + Sessionware under real gunicorn processes: sessions shared by every worker,
no lost updates under 32 concurrent clients, and no event loop on the WSGI path.

Each test starts its own gunicorn (``tests.wsgi.gunicorn_app:app``) on a spare
127.0.0.1 port, with two worker processes, either ``sync`` or ``gthread`` with 8
threads each, over a SQLite file the workers share or over Redis (127.0.0.1:6379)
under a prefix of the test's own, deleted afterwards. The server is stopped by its
PID (its process group if it hangs) and every request has a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from tests.servers import free_port, stop

ROOT = Path(__file__).resolve().parents[2]
SECRET = "gunicorn-test-secret-" + "g" * 40
REDIS_URL = "redis://127.0.0.1:6379/0"
WORKERS = {
    "sync": ["--workers", "2", "--worker-class", "sync"],
    "gthread": ["--workers", "2", "--worker-class", "gthread", "--threads", "8"],
}
CLIENTS = 32
PER_CLIENT = 8
TIMEOUT = 10.0  # seconds, per request
T = TypeVar("T")


@dataclass
class Server:
    """A running gunicorn: its base URL, process and log."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, cookie: str | None = None) -> tuple[dict[str, Any], list[str]]:
        """GET ``path`` on a new connection; the JSON body and the Set-Cookie values."""
        headers = {"Cookie": cookie} if cookie else {}
        req = urllib.request.Request(self.url + path, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as r:  # noqa: S310 - 127.0.0.1
                assert r.status == 200
                body: dict[str, Any] = json.loads(r.read())
                return body, r.headers.get_all("Set-Cookie") or []
        except urllib.error.HTTPError as exc:
            # What the workers logged (a 503 names its store error there) says why.
            tail = self.log.read_text(errors="replace")[-4000:]
            why = f"GET {path} answered {exc.code}; gunicorn's log:\n{tail}"
            raise AssertionError(why) from exc

    def new_session(self, path: str = "/set?user=ada") -> str:
        """The Cookie header of a session created by ``path``."""
        _, cookies = self.get(path)
        (set_cookie,) = cookies
        return set_cookie.split(";", 1)[0]


def _wait_ready(server: Server, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited early:\n{server.log.read_text()}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=1) as r:  # noqa: S310
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"gunicorn did not start in {seconds:.0f} s:\n{server.log.read_text()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _clean_redis(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=[(w, s) for w in WORKERS for s in ("sqlite", "redis")], ids="-".join)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """gunicorn with two workers of the given class, over the given store."""
    worker, store = request.param
    port = free_port()
    env = dict(os.environ, SW_TEST_SECRET=SECRET, SW_TEST_STORE=store, PYTHONPATH=str(ROOT))
    prefix = f"swgunicorn{uuid.uuid4().hex[:10]}:"
    if store == "sqlite":
        env["SW_TEST_SQLITE"] = str(tmp_path / "sessions.db")
    else:
        env.update(SW_TEST_REDIS_URL=REDIS_URL, SW_TEST_PREFIX=prefix)
    cmd = [
        sys.executable, "-m", "gunicorn", "tests.wsgi.gunicorn_app:app",
        "--bind", f"127.0.0.1:{port}", *WORKERS[worker],
        "--timeout", "30", "--graceful-timeout", "5", "--log-level", "warning",
    ]  # fmt: skip
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    srv = Server(f"http://127.0.0.1:{port}", proc, log)
    pids: set[int] = set()
    try:
        _wait_ready(srv)
        yield srv
        # Ask the workers who they are, to check they are gone after the stop.
        pids = {r["pid"] for r in _parallel(lambda _: srv.get("/runtime?hold=0.05")[0], 16)}
    finally:
        stop(proc)
        if store == "redis":
            _clean_redis(prefix)
    assert proc.returncode == 0, log.read_text()
    assert not any(_alive(pid) for pid in pids), "a worker outlived its master"
    errors = [line for line in log.read_text().splitlines() if "Traceback" in line]
    assert errors == [], log.read_text()


def _parallel(fn: Callable[[int], T], count: int, clients: int = CLIENTS) -> list[T]:
    """``fn(0..count-1)`` from ``clients`` threads, results in order; bounded in time."""
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(fn, range(count), timeout=60))


def _id(cookie_header: str) -> str:
    return cookie_header.split("=", 1)[1]


# -- tests ---------------------------------------------------------------------------------


def test_a_session_is_read_by_every_worker(server: Server) -> None:
    """A session set in one request is seen by the following ones, whichever worker
    process serves them (until both have served some)."""
    cookie = server.new_session("/set?user=ada")
    seen: Counter[int] = Counter()
    for _ in range(10):  # bounded: a batch almost always reaches both workers
        results = _parallel(lambda _: server.get("/read?hold=0.02", cookie), 32, clients=8)
        for body, set_cookies in results:
            assert body["session"] == {"user": "ada"}
            assert set_cookies == []  # a read re-issues nothing
            seen[body["pid"]] += 1
        if len(seen) == 2:
            break
    assert len(seen) == 2, f"one worker served every request: {seen}"
    # A write on one worker is read by the next request, wherever it lands.
    for i in range(12):
        body, _ = server.get(f"/set?step={i}", cookie)
        assert server.get("/read", cookie)[0]["session"] == {"user": "ada", "step": str(i)}


def test_32_clients_on_one_session_lose_no_update(server: Server) -> None:
    """32 concurrent clients, each setting its own keys on ONE session: every key of
    every request is in the session at the end (no request overwrote another's)."""
    cookie = server.new_session("/set?start=1")
    expected: dict[str, str] = {}
    pids: set[int] = set()
    for r in range(3):
        # On a busy machine one worker now and then accepts every connection of a burst;
        # another burst (new keys) then, until both workers wrote.

        def client(i: int, r: int = r) -> tuple[set[int], list[str]]:
            served: set[int] = set()
            issued: list[str] = []
            for j in range(PER_CLIENT):
                body, set_cookies = server.get(f"/set?r{r}c{i}_{j}={i * 100 + j}", cookie)
                served.add(body["pid"])
                issued += set_cookies
            return served, issued

        results = _parallel(client, CLIENTS)
        assert [c for _, issued in results for c in issued] == []  # nobody got another id
        pids = pids.union(*(served for served, _ in results))
        expected |= {
            f"r{r}c{i}_{j}": str(i * 100 + j) for i in range(CLIENTS) for j in range(PER_CLIENT)
        }
        if len(pids) == 2:
            break
    final, _ = server.get("/read", cookie)
    missing = sorted(set(expected) - set(final["session"]))
    assert missing == [], f"{len(missing)} of {len(expected)} updates lost"
    assert final["session"] == {"start": "1", **expected}
    assert len(pids) == 2  # both workers wrote


def test_increment_from_32_clients_counts_every_call(server: Server) -> None:
    """session.increment from 32 concurrent clients: every call gets its own value and
    the counter ends at the number of calls."""
    cookie = server.new_session("/set?user=ada")
    total = CLIENTS * PER_CLIENT

    def client(i: int) -> list[tuple[int, int]]:
        return [
            (body["n"], body["pid"])
            # The hold keeps every thread of one worker busy, so both workers serve.
            for body, _ in (server.get("/incr?hold=0.005", cookie) for _ in range(PER_CLIENT))
        ]

    values: list[tuple[int, int]] = []
    for _ in range(3):
        # On a busy machine one worker now and then accepts every connection of a burst;
        # another burst then (the counting is checked over all of them).
        values += [v for batch in _parallel(client, CLIENTS) for v in batch]
        if len({pid for _, pid in values}) == 2:
            break
    calls = len(values)
    assert calls % total == 0
    assert sorted(n for n, _ in values) == list(range(1, calls + 1))
    assert len({pid for _, pid in values}) == 2
    assert server.get("/read", cookie)[0]["session"] == {"user": "ada", "n": calls}


def test_no_event_loop_on_the_wsgi_path(server: Server) -> None:
    """After sessions were created, read, written and incremented in every worker, no
    worker has ever created an asyncio event loop or holds one, none runs a loop in the
    request's thread, and no asyncio or sessionware helper thread exists."""
    cookie = server.new_session("/set?user=ada")

    def traffic(i: int) -> dict[str, Any]:
        server.get(f"/set?k{i}={i}&hold=0.01", cookie)
        server.get("/incr", cookie)
        server.new_session(f"/set?fresh={i}")
        return server.get("/runtime?hold=0.02", cookie)[0]

    reports = {r["pid"]: r for r in _parallel(traffic, 64, clients=16)}
    assert len(reports) == 2, "both workers must have reported"
    for pid, report in reports.items():
        assert report["loops_created"] == [], f"worker {pid} created an event loop"
        assert report["loops_alive"] == [], f"worker {pid} holds an event loop"
        assert report["running"] is False
        helpers = [t for t in report["threads"] if t.startswith(("asyncio", "sessionware"))]
        assert helpers == [], f"worker {pid} runs {helpers}"
