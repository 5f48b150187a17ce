"""The fault harness: a real server under steady load, a ledger of what it acknowledged,
and a check of the store at the end.

A scenario starts an :class:`App` (uvicorn with uvloop + httptools, or gunicorn) on a
store, runs :class:`Load` against it while it injects its fault, marks when the store
is back (:meth:`Load.mark_back`), stops the load and calls :meth:`Load.verify`, which
reads every session back through the app and counts

- acknowledged writes lost: a ``POST /write`` answered 200 whose value (or a later
  one) is not in the session afterwards;
- logged-out sessions that came back: a ``POST /logout`` answered 200 whose cookie
  reads as logged in afterwards.

Each virtual user logs in, writes its own keys with increasing values, reads, and now
and then logs out and in again; every write goes to a key only that user writes, so a
missing value can only be a lost write, never a race between users. The result of a
scenario is a :class:`Row`; ``run.py`` prints them as a table.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402 - needs the path set just above

SECRET = "fault-harness-secret-" + "x" * 40  # a bench-only value, never a real secret


@dataclass
class Row:
    """One scenario's figures."""

    scenario: str
    served: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    recovery: float | None = None
    lost: int = 0
    resurrected: int = 0
    acknowledged: int = 0
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())) or "-"
        recovery = "-" if self.recovery is None else f"{self.recovery:.1f} s"
        return [
            self.scenario,
            str(self.served),
            errors,
            recovery,
            f"{self.lost} / {self.acknowledged}",
            str(self.resurrected),
            "; ".join(self.notes) or "-",
        ]


HEADERS = ["scenario", "served", "errors by status", "recovery", "lost / acked writes",
           "resurrected", "notes"]  # fmt: skip


def markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table (what the README's Reliability section holds)."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


# -- the server -------------------------------------------------------------------------


class App:
    """The harness app (``bench/faults/app.py``) served on a spare port, by PID."""

    def __init__(
        self,
        store_url: str,
        workdir: Path,
        *,
        server: str = "uvicorn",
        workers: int = 1,
        env: dict[str, str] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.store_url = store_url
        self.workdir = workdir
        self.server = server
        self.workers = workers
        self.port = c.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **(env or os.environ),
            "SESSION_STORE": store_url,
            "SESSION_SECRET": SECRET,
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"app-{self.port}.log"

    def command(self) -> list[str]:
        if self.server == "gunicorn":
            return [sys.executable, "-m", "gunicorn", "bench.faults.app:wsgi()",
                    "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
                    "--worker-class", "gthread", "--threads", "4",
                    "--log-level", "warning"]  # fmt: skip
        return [sys.executable, "-m", "uvicorn", "bench.faults.app:asgi", "--factory",
                "--port", str(self.port), "--workers", str(self.workers),
                "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
                "--no-access-log"]  # fmt: skip

    def start(self) -> App:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        c.wait_http(self.base + "/healthz", self.proc, f"the {self.server} app")
        return self

    def kill(self) -> None:
        """SIGKILL the whole server (master and workers): a crash, mid-write."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def pids(self) -> list[int]:
        """The server's processes: the master and its workers."""
        if self.proc is None:
            return []
        found = [self.proc.pid]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == self.proc.pid:
                        found.append(int(entry.name))
                except OSError:
                    continue
        return sorted(set(found))

    def rss_mb(self) -> float:
        """Resident memory of all the server's processes, in MB."""
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    def fds(self) -> tuple[int, int]:
        """(open file descriptors, of which sockets) over the server's processes."""
        files = sockets = 0
        for pid in self.pids():
            try:
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    files += 1
                    try:
                        if os.readlink(fd).startswith("socket:"):
                            sockets += 1
                    except OSError:
                        continue
            except OSError:
                continue
        return files, sockets

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> App:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the load ---------------------------------------------------------------------------


def client(**options: Any) -> httpx.AsyncClient:
    """An HTTP client that keeps no cookies: each virtual user sends its own by hand
    (a shared jar would hand one user's cookie to another's login)."""
    jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(cookies=jar, **options)


@dataclass
class User:
    """A virtual user: its cookie, the values the app acknowledged, its next value."""

    name: str
    cookie: str | None = None
    acked: dict[str, int] = field(default_factory=dict)
    next_value: int = 1


class Load:
    """``users`` virtual users against ``base`` until :meth:`stop`; see the module docstring."""

    def __init__(
        self,
        base: str,
        users: int = 16,
        *,
        pause: float = 0.02,
        logout_share: float = 0.04,
        timeout: float = 5.0,
        seed: int = 1,
    ) -> None:
        self.base = base
        self.users = [User(f"u{seed}-{i}") for i in range(users)]
        self.pause = pause
        self.logout_share = logout_share
        self.timeout = timeout
        self.rng = random.Random(seed)
        self.served = 0
        self.errors: Counter[str] = Counter()
        self.sessions: list[User] = []  # every logged-in session, live or logged out
        self.logged_out: list[str] = []  # cookies of acknowledged logouts
        self.ok_times: list[float] = []
        self.back_at: float | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.latencies: list[float] = []
        self.unknown = 0  # logouts whose answer never came (neither live nor logged out)

    def base_for(self, user: User) -> str:
        return self.base

    async def start(self) -> None:
        self._client = client(
            timeout=self.timeout, limits=httpx.Limits(max_connections=len(self.users) + 4)
        )
        self._tasks = [asyncio.create_task(self._run(u)) for u in self.users]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()

    def mark_back(self) -> None:
        """The store is back from now: the next success ends the recovery."""
        self.back_at = time.monotonic()

    def recovery(self) -> float | None:
        """Seconds from :meth:`mark_back` to the first request that succeeded after it."""
        if self.back_at is None:
            return None
        after = [t for t in self.ok_times if t >= self.back_at]
        return (min(after) - self.back_at) if after else None

    async def _request(self, user: User, method: str, path: str) -> httpx.Response | None:
        headers = {"cookie": f"sid={user.cookie}"} if user.cookie else {}
        start = time.monotonic()
        try:
            r = await self._client.request(method, self.base_for(user) + path, headers=headers)
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.05)
            return None
        now = time.monotonic()
        if r.status_code < 400:
            self.served += 1
            self.ok_times.append(now)
            self.latencies.append(now - start)
        else:
            self.errors[str(r.status_code)] += 1
            await asyncio.sleep(0.05)
        return r

    async def _run(self, user: User) -> None:
        while not self._stop.is_set():
            if user.cookie is None:
                await self._login(user)
            else:
                roll = self.rng.random()
                if roll < self.logout_share:
                    await self._logout(user)
                elif roll < 0.75:
                    await self._write(user)
                else:
                    await self._request(user, "GET", "/read")
            await asyncio.sleep(self.pause)

    async def _login(self, user: User) -> None:
        user.cookie = None
        r = await self._request(user, "POST", f"/login?user={user.name}")
        if r is not None and r.status_code == 200 and "sid" in r.cookies:
            user.cookie = r.cookies["sid"]
            user.acked = {}
            self.sessions.append(user_copy := User(user.name, user.cookie))
            user.acked = user_copy.acked  # the ledger of this session

    async def _write(self, user: User) -> None:
        key = f"k{self.rng.randrange(8)}"
        value = user.next_value
        user.next_value += 1
        r = await self._request(user, "POST", f"/write?k={key}&v={value}")
        if r is not None and r.status_code == 200:
            user.acked[key] = value

    async def _logout(self, user: User) -> None:
        cookie = user.cookie
        r = await self._request(user, "POST", "/logout")
        if r is not None and r.status_code == 200 and cookie is not None:
            self.logged_out.append(cookie)
        else:
            # No answer, or a 503 (with min_replicas_ack the delete may have reached
            # the master before the replicas failed to confirm it): it may or may not
            # have happened, so the session is neither checked as live nor as ended.
            self.unknown += 1
        for s in self.sessions:
            if s.cookie == cookie:
                s.cookie = None  # no longer checked as a live session
        user.cookie = None

    async def verify(self, row: Row, base: str | None = None) -> None:
        """Read every session back and fill ``row``'s served, errors, lost, resurrected."""
        base = base or self.base
        row.served += self.served
        row.errors.update(self.errors)
        if self.unknown:
            row.notes.append(f"{self.unknown} logouts unconfirmed (not counted)")
        if row.recovery is None:
            row.recovery = self.recovery()
        async with client(timeout=10) as reader:

            async def read(cookie: str) -> dict[str, Any] | None:
                for _ in range(20):
                    try:
                        r = await reader.get(base + "/read", headers={"cookie": f"sid={cookie}"})
                    except httpx.HTTPError:
                        await asyncio.sleep(0.5)
                        continue
                    if r.status_code == 200:
                        data: dict[str, Any] = r.json()
                        return data
                    await asyncio.sleep(0.5)
                return None

            for s in self.sessions:
                if s.cookie is None:
                    continue
                row.acknowledged += len(s.acked)
                data = await read(s.cookie)
                if data is None:
                    row.notes.append("a session could not be read back")
                    row.lost += len(s.acked)
                    continue
                for key, value in s.acked.items():
                    stored = data.get(key)
                    if not isinstance(stored, int) or stored < value:
                        row.lost += 1
            for cookie in self.logged_out:
                data = await read(cookie)
                if data and data.get("user"):
                    row.resurrected += 1


async def run_load(base: str, seconds: float, users: int = 16) -> Load:
    """Plain load for ``seconds`` (no fault): warm-up and baselines."""
    load = Load(base, users)
    await load.start()
    await asyncio.sleep(seconds)
    await load.stop()
    return load


def poll(check: Callable[[], object], seconds: float = 30.0) -> bool:
    """Call ``check`` every 50 ms until it is true (a refused connection is "not yet")."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if check():
                return True
        time.sleep(0.05)
    return False


async def waited(row: Row, since: float, check: Callable[[], object], what: str) -> bool:
    """Poll ``check`` (in a thread, up to 30 s) and note in ``row`` how long ``what`` took."""
    ok = await asyncio.to_thread(poll, check, 30.0)
    row.notes.append(f"{what} after {time.monotonic() - since:.1f} s" if ok else f"no {what}")
    return ok


async def under_load(
    row: Row,
    app: App,
    fault: Callable[[Load], Awaitable[None]],
    *,
    quick: bool,
    warm: float = 6.0,
    settle: float = 10.0,
) -> Row:
    """The shape of most scenarios: load on ``app``, ``warm`` seconds, then ``fault``
    (which calls :meth:`Load.mark_back` once the store is back), ``settle`` seconds,
    then every session read back into ``row``."""
    load = Load(app.base, users=12)
    await load.start()
    try:
        await asyncio.sleep(2 if quick else warm)
        await fault(load)
        await asyncio.sleep(4 if quick else settle)
    finally:
        await load.stop()
    await load.verify(row)
    return row
