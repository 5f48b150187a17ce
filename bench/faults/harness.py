"""The fault harness: a real server under steady load, a ledger of what it acknowledged,
and a check of the store at the end.

Writing a scenario
------------------
A scenario is ``async def name(workdir: Path, quick: bool = False) -> Row`` (or a list
of rows; a long one may also take ``minutes``, which ``--soak-minutes`` sets). It
starts an :class:`App` on a store it owns, runs a :class:`Load` against it while it
breaks something, calls :meth:`Load.mark_back` the moment the store is back, and
reads everything back with :meth:`Load.verify`. Most need only :func:`under_load`::

    async def pg_stop(workdir: Path, quick: bool = False) -> Row:
        row = Row("postgres-stop")

        async def fault(load: Load) -> None:
            server.stop()
            await asyncio.sleep(5)
            server.start()
            load.mark_back()

        with App(server.url, workdir) as app:
            return await under_load(row, app, fault, quick=quick)

It is registered by adding it to the ``SCENARIOS`` dict of its module
(``scenarios.py``, ``redis_scenarios.py``): ``run.py`` runs them in that order.
``quick`` is the smoke version (a few seconds of each phase). Every server a
scenario breaks is started by it on a spare port and stopped by its PID.

What is counted
---------------
Each virtual user logs in, writes its own keys (``k0``..``k7``) with increasing values,
reads, and now and then logs out and in again; no two users write one key, so a value
missing afterwards can only be a lost write. A session that answers a read is checked
against the ledger on every read during the run and once more at the end:

- **lost**: an acknowledged write (``POST /write`` answered 200) whose value, or a
  later one, is missing from a read of its session made after the acknowledgement;
- **resurrected**: an acknowledged logout (``POST /logout`` answered 200) whose cookie
  reads as logged in at the end;
- **dropped**: a live session that read as logged out (its login lost);
- **recovery**: from :meth:`Load.mark_back` to the first acknowledged write after it
  (the longest, when the store came back several times).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402 - needs the path set just above

SECRET = "fault-harness-secret-" + "x" * 40  # a bench-only value, never a real secret
COOKIE = "sid"


@dataclass
class Row:
    """One scenario's figures: the table's columns, ``notes`` (printed) and ``facts``
    (the same numbers by name, for the smoke tests)."""

    scenario: str
    served: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    recovery: float | None = None
    lost: int = 0
    resurrected: int = 0
    acknowledged: int = 0
    notes: list[str] = field(default_factory=list)
    facts: dict[str, float] = field(default_factory=dict)

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


def markdown(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def percentiles(seconds: Sequence[float]) -> tuple[float, float]:
    """(p50, p99) of ``seconds``, in milliseconds (0 for none)."""
    if not seconds:
        return 0.0, 0.0
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


# -- the server -------------------------------------------------------------------------


class App:
    """The harness app (``bench/faults/app.py``) served on a spare port, by PID.

    ``server`` is ``uvicorn`` (the Starlette app, uvloop + httptools) or ``gunicorn``
    (the Flask twin, gthread workers); ``port`` reuses a port (a restart after a kill).
    """

    def __init__(
        self,
        store_url: str,
        workdir: Path,
        *,
        server: str = "uvicorn",
        workers: int = 1,
        env: dict[str, str] | None = None,
        extra_env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.store_url = store_url
        self.workdir = workdir
        self.server = server
        self.workers = workers
        self.port = port or c.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **(env or os.environ),
            "SESSION_STORE": store_url,
            "SESSION_SECRET": SECRET,
            "PYTHONPATH": str(ROOT),
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

    def restarted(self) -> App:
        """A new server on the same store, port and options (after :meth:`kill`)."""
        again = App(self.store_url, self.workdir, server=self.server, workers=self.workers,
                    env=self.env, port=self.port)  # fmt: skip
        return again.start()

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
        """The server's processes: the master and its workers (its process group)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        found = [self.proc.pid]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.getpgid(int(entry.name)) == self.proc.pid:
                        found.append(int(entry.name))
        return sorted(set(found))

    def rss_mb(self) -> float:
        """Resident memory of all the server's processes, in MB."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024

    def fds(self) -> tuple[int, int]:
        """(open file descriptors, of which sockets) over the server's processes."""
        files = sockets = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    files += 1
                    with contextlib.suppress(OSError):
                        sockets += os.readlink(fd).startswith("socket:")
        return files, sockets

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> App:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the ledger -------------------------------------------------------------------------


def client(**options: Any) -> httpx.AsyncClient:
    """An HTTP client that keeps no cookies: each virtual user sends its own by hand
    (a shared jar would hand one user's cookie to another's login)."""
    jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(cookies=jar, **options)


def set_cookie(response: httpx.Response) -> str | None:
    """The session cookie ``response`` sets: its value, ``""`` when it clears it, None
    when it leaves it alone."""
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == COOKIE:
            value, _, attributes = rest.partition(";")
            cleared = "max-age=0" in attributes.lower().replace(" ", "")
            return "" if cleared or not value else value
    return None


@dataclass
class Tracked:
    """One login: its cookie and every value the app acknowledged, per key."""

    user: str
    cookie: str
    acked: dict[str, list[int]] = field(default_factory=dict)
    lost: set[tuple[str, int]] = field(default_factory=set)
    live: bool = True  # False once logged out, dropped or of unknown fate

    def check(self, data: dict[str, Any]) -> int:
        """Count (once each) the acknowledged values ``data`` no longer holds."""
        found = 0
        for key, values in self.acked.items():
            stored = data.get(key)
            have = stored if isinstance(stored, int) else 0
            for value in values:
                if value > have and (key, value) not in self.lost:
                    self.lost.add((key, value))
                    found += 1
        return found


@dataclass
class User:
    """A virtual user: its current login and the next value it writes."""

    name: str
    session: Tracked | None = None
    next_value: int = 1


class Load:
    """``users`` virtual users against ``base`` from :meth:`start` to :meth:`stop`; see
    the module docstring for what they do and what :meth:`verify` counts."""

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
        self.error_times: list[float] = []
        self.sessions: list[Tracked] = []  # every login, live or ended
        self.logged_out: list[str] = []  # cookies of acknowledged logouts
        self.acknowledged = 0  # writes answered 200
        self.lost = 0
        self.dropped = 0  # live sessions that read as logged out
        self.unknown = 0  # logouts answered neither 200 nor at all
        self.in_flight = 0  # writes sent and not yet answered
        self.write_times: list[float] = []  # acknowledged writes and logins
        self.latencies: list[tuple[float, float]] = []  # (answered at, seconds) of successes
        self.marks: list[float] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def base_for(self, user: User) -> str:
        """The server ``user`` talks to (a subclass may spread users over servers)."""
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
        """The store is back from now: the next acknowledged write ends the recovery."""
        self.marks.append(time.monotonic())

    def recovery(self) -> float | None:
        """Seconds from each :meth:`mark_back` to the first acknowledged write after it,
        the longest of them; None without a mark or when a mark was never followed."""
        waits = []
        for mark in self.marks:
            after = [t for t in self.write_times if t >= mark]
            if not after:
                return None
            waits.append(min(after) - mark)
        return max(waits) if waits else None

    def errors_after_recovery(self) -> int:
        """Failed requests after the last recovery ended (a pool that healed: none)."""
        if not self.marks:
            return 0
        after = [t for t in self.write_times if t >= self.marks[-1]]
        return sum(t > min(after) for t in self.error_times) if after else 0

    def good_latency(self, since: float = 0.0, until: float = float("inf")) -> tuple[float, float]:
        """(p50, p99) in ms of the successful requests answered between two instants."""
        return percentiles([s for t, s in self.latencies if since <= t <= until])

    async def _request(self, user: User, method: str, path: str) -> httpx.Response | None:
        session = user.session
        headers = {"cookie": f"{COOKIE}={session.cookie}"} if session else {}
        start = time.monotonic()
        try:
            r = await self._client.request(method, self.base_for(user) + path, headers=headers)
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] += 1
            self.error_times.append(time.monotonic())
            await asyncio.sleep(0.05)
            return None
        now = time.monotonic()
        if r.status_code < 400:
            self.served += 1
            self.latencies.append((now, now - start))
            moved = set_cookie(r)
            if session is not None and moved and path != "/logout":
                session.cookie = moved  # a rotated id: the browser follows it
        else:
            self.errors[str(r.status_code)] += 1
            self.error_times.append(now)
            await asyncio.sleep(0.05)
        return r

    async def _run(self, user: User) -> None:
        while not self._stop.is_set():
            if user.session is None:
                await self._login(user)
            else:
                roll = self.rng.random()
                if roll < self.logout_share:
                    await self._logout(user)
                elif roll < 0.75:
                    await self._write(user)
                else:
                    await self._read(user)
            await asyncio.sleep(self.pause)

    async def _login(self, user: User) -> None:
        r = await self._request(user, "POST", f"/login?user={user.name}")
        cookie = set_cookie(r) if r is not None and r.status_code == 200 else None
        if cookie:
            user.session = Tracked(user.name, cookie)
            self.sessions.append(user.session)
            self.write_times.append(time.monotonic())

    async def _write(self, user: User) -> None:
        session = user.session
        assert session is not None
        key = f"k{self.rng.randrange(8)}"
        value = user.next_value
        user.next_value += 1
        self.in_flight += 1
        try:
            r = await self._request(user, "POST", f"/write?k={key}&v={value}")
        finally:
            self.in_flight -= 1
        if r is not None and r.status_code == 200:
            session.acked.setdefault(key, []).append(value)
            self.acknowledged += 1
            self.write_times.append(time.monotonic())

    async def _read(self, user: User) -> None:
        session = user.session
        assert session is not None
        r = await self._request(user, "GET", "/read")
        if r is not None and r.status_code == 200:
            data = r.json()
            self.lost += session.check(data)
            if data.get("user") != session.user:  # the login itself is gone
                self.dropped += 1
                session.live = False
                user.session = None

    async def _logout(self, user: User) -> None:
        session = user.session
        assert session is not None
        r = await self._request(user, "POST", "/logout")
        if r is not None and r.status_code == 200:
            self.logged_out.append(session.cookie)
        else:
            # No answer, or a 503 (with min_replicas_ack the delete may have reached
            # the master before the replicas failed to confirm it): it may or may not
            # have happened, so the session is neither checked as live nor as ended.
            self.unknown += 1
        session.live = False
        user.session = None

    async def verify(self, row: Row, base: str | None = None) -> None:
        """Read every session back and fill ``row``: served, errors, recovery,
        acknowledged, lost, resurrected, and notes for what else went wrong."""
        base = base or self.base
        row.served += self.served
        row.errors.update(self.errors)
        if row.recovery is None:
            row.recovery = self.recovery()
        if self.marks and self.recovery() is None:
            row.notes.append("no write succeeded after the store came back")
        unreadable = 0
        async with client(timeout=10) as reader:

            async def read(cookie: str) -> dict[str, Any] | None:
                for _ in range(20):
                    try:
                        r = await reader.get(
                            base + "/read", headers={"cookie": f"{COOKIE}={cookie}"}
                        )
                    except httpx.HTTPError:
                        await asyncio.sleep(0.5)
                        continue
                    if r.status_code == 200:
                        data: dict[str, Any] = r.json()
                        return data
                    await asyncio.sleep(0.5)
                return None

            for s in self.sessions:
                if not s.live:
                    continue
                data = await read(s.cookie)
                if data is None:
                    unreadable += 1
                    data = {}
                self.lost += s.check(data)
                if data.get("user") != s.user:
                    self.dropped += 1
            for cookie in self.logged_out:
                data = await read(cookie)
                if data and data.get("user"):
                    row.resurrected += 1
        row.acknowledged += self.acknowledged
        row.lost += self.lost
        row.facts["dropped"] = row.facts.get("dropped", 0) + self.dropped
        if self.dropped:
            row.notes.append(f"{self.dropped} live sessions read as logged out")
        if unreadable:
            row.notes.append(f"{unreadable} sessions could not be read back")
        if self.unknown:
            row.notes.append(f"{self.unknown} logouts unconfirmed (not counted)")
        if self.marks:
            late = self.errors_after_recovery()
            row.facts["errors_after_recovery"] = late
            row.notes.append(f"{late} errors after recovery")


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
    users: int = 12,
) -> Row:
    """The shape of most scenarios: load on ``app``, ``warm`` seconds, then ``fault``
    (which calls :meth:`Load.mark_back` once the store is back), ``settle`` seconds,
    then every session read back into ``row``."""
    load = Load(app.base, users=users)
    await load.start()
    try:
        await asyncio.sleep(2 if quick else warm)
        await fault(load)
        await asyncio.sleep(4 if quick else settle)
    finally:
        await load.stop()
    await load.verify(row)
    return row


# -- the store, read directly -----------------------------------------------------------


def _record_keys(url: str) -> list[str]:
    """The session keys in a SQLite or PostgreSQL store (markers left out)."""
    if url.startswith("sqlite:"):
        path = url[len("sqlite:///") :]
        with contextlib.closing(sqlite3.connect(path)) as db:
            found = db.execute("SELECT key FROM sessionware_sessions").fetchall()
    else:
        import psycopg

        with psycopg.connect(url) as db:
            found = db.execute("SELECT key FROM sessionware_sessions").fetchall()
    return [k for (k,) in found if ":" not in k]  # "mv:", "fw:", "lg:" are markers


async def whole_records(row: Row, url: str) -> None:
    """Open every session record through the store itself and note how many are not
    whole: a record the store cannot load, or one without the user every session of
    this app is created with (a login half-written)."""
    from sessionware.session import loads
    from sessionware.stores import from_url

    keys = await asyncio.to_thread(_record_keys, url)
    store = from_url(url)
    partial = 0
    try:
        for key in keys:
            try:
                fields = await store.load(key)
                if fields is not None:  # None: expired since the listing
                    values = {k[1:]: loads(v) for k, v in fields.items() if k.startswith(".")}
                    partial += not isinstance(values.get("user"), str)
            except Exception:  # any failure to open the record counts
                partial += 1
    finally:
        await store.close()
    row.facts["partial"] = partial
    row.notes.append(f"{len(keys)} records, {partial} partial")
