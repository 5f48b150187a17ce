"""Scenarios on SQLite, PostgreSQL, the clock and a flood; each returns a :class:`Row`.

Every server a scenario breaks is its own (a PostgreSQL cluster in a temporary folder
on a spare port, a tmpfs of a few MB), started and stopped here by PID; the machine's
shared services are never touched. ``quick`` runs a shorter version (the smoke tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import random
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from bench import _common as c
from bench.faults.harness import App, Load, Row, client, under_load

# -- SQLite -----------------------------------------------------------------------------


def _integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


async def sqlite_kill(workdir: Path, quick: bool = False, server: str = "uvicorn") -> Row:
    """Two workers writing one SQLite file; the whole server SIGKILLed mid-load, started
    again on the same port; the file checked with ``PRAGMA integrity_check``."""
    row = Row(f"sqlite-kill ({server}, 2 workers)")
    db = workdir / f"kill-{server}.sqlite3"
    app = App(f"sqlite:///{db}", workdir, server=server, workers=2).start()
    load = Load(app.base, users=12)
    try:
        await load.start()
        for _ in range(1 if quick else 3):
            await asyncio.sleep(random.uniform(2, 4) if not quick else 2)
            app.kill()  # mid-write: the load never pauses
            await asyncio.sleep(0.5)
            port = app.port
            app = App(f"sqlite:///{db}", workdir, server=server, workers=2)
            app.port, app.base = port, f"http://127.0.0.1:{port}"
            app.start()
            load.mark_back()
        await asyncio.sleep(2 if quick else 5)
        await load.stop()
        await load.verify(row)
    finally:
        app.stop()
    check = _integrity(db)
    row.notes.append(f"integrity_check: {check}")
    if check != "ok":
        row.lost += 1
    return row


@contextlib.contextmanager
def _tmpfs(size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted in a temporary folder (needs root)."""
    where = Path(tempfile.mkdtemp(prefix="sw-full-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                   check=True)  # fmt: skip
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)
        shutil.rmtree(where, ignore_errors=True)


async def sqlite_full(workdir: Path, quick: bool = False) -> Row:
    """SQLite on a 4 MB tmpfs filled up under load: 503s with a log line while full, the
    file intact, and service back without a restart once space is freed."""
    row = Row("sqlite-disk-full")
    with _tmpfs("4m") as disk:
        db = disk / "sessions.sqlite3"
        app = App(f"sqlite:///{db}", workdir).start()
        load = Load(app.base, users=8, logout_share=0.3)  # new sessions: the file grows
        try:
            await load.start()
            await asyncio.sleep(0.3)  # before the WAL has grown to its working size
            filler = disk / "filler"
            with filler.open("wb") as f, contextlib.suppress(OSError):
                while True:  # take the rest of the disk
                    f.write(b"\0" * 65536)
                    f.flush()
            before = sum(load.errors.values())
            await asyncio.sleep(3 if quick else 8)
            failed_while_full = sum(load.errors.values()) - before
            filler.unlink()
            load.mark_back()
            await asyncio.sleep(3 if quick else 6)
            await load.stop()
            await load.verify(row)
        finally:
            app.stop()
        log = app.log_text()
        row.notes.append(f"{failed_while_full} refused while full")
        line = next((x for x in log.splitlines() if "store unavailable" in x), None)
        row.notes.append("log: " + (line.split("answering 503: ")[-1][:60] if line else "none"))
        check = _integrity(db)
        row.notes.append(f"integrity_check: {check}")
        if check != "ok":
            row.lost += 1
    return row


# -- PostgreSQL -------------------------------------------------------------------------


def _pg_bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    if found:
        return found[-1]
    which = shutil.which(tool)
    if which is None:
        raise SystemExit(f"{tool} not found: apt-get install postgresql")
    return which


class Postgres:
    """A PostgreSQL cluster of our own in a temporary folder, run as the postgres user."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sw-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.port = c.free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *cmd: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def init(self) -> Postgres:
        self._as_postgres(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U",
                          "postgres", "--no-sync")  # fmt: skip
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                          str(self.dir / "log"), "-w", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


async def postgres_restart(workdir: Path, quick: bool = False) -> Row:
    """PostgreSQL stopped (immediate: a crash) under load for a few seconds, then started
    again: 503s meanwhile, service back without restarting the app, nothing lost."""
    row = Row("postgres-restart")
    pg = Postgres().init()

    async def fault(load: Load) -> None:
        pg.stop("immediate")
        await asyncio.sleep(2 if quick else 5)
        pg.start()
        load.mark_back()

    try:
        pg.start()
        with App(pg.url, workdir) as app:
            await under_load(row, app, fault, quick=quick, warm=5, settle=8)
            row.notes.append(f"{app.fds()[1]} sockets open after")
    finally:
        pg.remove()
    return row


# -- the clock --------------------------------------------------------------------------


async def clock_step(workdir: Path, quick: bool = False) -> Row:
    """The app's wall clock stepped +1 h, then -1 h, with a 20 s idle and 40 s absolute
    timeout: nobody is logged out by the step, and no session outlives its absolute
    timeout by real time."""
    row = Row("clock-step ±1 h")
    offset = workdir / "clock-offset"
    offset.write_text("0")
    env = {"FAULT_CLOCK_FILE": str(offset), "FAULT_IDLE": "20", "FAULT_ABSOLUTE": "40"}
    db = workdir / "clock.sqlite3"
    with App(f"sqlite:///{db}", workdir, extra_env=env) as app:
        async with client(base_url=app.base, timeout=5) as browser:

            async def login(i: int) -> tuple[str, float]:
                r = await browser.post(f"/login?user=c{i}")
                return r.cookies["sid"], time.monotonic()

            async def user(cookie: str) -> str | None:
                r = await browser.get("/read", headers={"cookie": f"sid={cookie}"})
                return r.json().get("user") if r.status_code == 200 else None

            sessions = [await login(i) for i in range(10)]
            for step in ("3600", "-3600"):
                offset.write_text(step)
                await asyncio.sleep(0.3)
                lost = sum([await user(cookie) is None for cookie, _ in sessions])
                row.served += len(sessions)
                row.notes.append(f"{lost}/{len(sessions)} logged out by {int(step):+d} s")
            # Keep them busy (idle never bites) past the absolute timeout, real time.
            outlived = 0
            deadline = max(t for _, t in sessions) + 40
            while time.monotonic() < deadline + 3:
                for cookie, _ in sessions:
                    await user(cookie)
                await asyncio.sleep(2)
            for cookie, made in sessions:
                if await user(cookie) is not None and time.monotonic() > made + 40:
                    outlived += 1
            row.notes.append(f"{outlived}/{len(sessions)} outlived the 40 s absolute timeout")
            warned = "clock stepped" in app.log_text()
    row.notes.append("step logged" if warned else "step not logged")
    return row


# -- flood ------------------------------------------------------------------------------


async def flood(workdir: Path, quick: bool = False) -> Row:
    """Good users at their normal pace while 48 more connections send, as fast as they
    can, requests with no cookie, garbage, oversized (8 KB) and tampered cookies and
    valid ones mixed: memory stays bounded, good users are served."""
    row = Row("flood (10x, bad cookies)")
    db = workdir / "flood.sqlite3"
    with App(f"sqlite:///{db}", workdir) as app:
        good = Load(app.base, users=8, pause=0.2)
        await good.start()
        await asyncio.sleep(2)
        rss_before = app.rss_mb()
        calm_rate = good.served / 2
        async with client(base_url=app.base, timeout=10) as flooder:
            r = await flooder.post("/login?user=flood")
            valid = r.cookies["sid"]
            body, sig = valid.rsplit(".", 1)
            cookies = [
                "",
                "sid=" + "A" * 8000,
                "sid=not-a-session",
                f"sid={body}.{sig[::-1]}",
                f"sid={valid}",
                "sid=" + "%00%ff" * 300,
                "x=" + "y" * 4000 + "; sid=" + valid,
            ]
            sent = {"n": 0, "500": 0}
            stop = time.monotonic() + (5 if quick else 20)

            async def hammer(i: int) -> None:
                while time.monotonic() < stop:
                    cookie = cookies[(i + sent["n"]) % len(cookies)]
                    headers = {"cookie": cookie} if cookie else {}
                    try:
                        r = await flooder.get("/read", headers=headers)
                        sent["n"] += 1
                        if r.status_code >= 500:
                            sent["500"] += 1
                    except httpx.HTTPError:
                        sent["n"] += 1

            start = time.monotonic()
            good_before = good.served
            await asyncio.gather(*(hammer(i) for i in range(48)))
            took = time.monotonic() - start
            good_during = (good.served - good_before) / took
        rss_after = app.rss_mb()
        await good.stop()
        await good.verify(row)
        row.errors["flood 5xx"] += sent["500"]
        lat = sorted(good.latencies)
        p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else 0
        row.notes.append(
            f"flood {sent['n'] / took:.0f} req/s vs good {calm_rate:.0f}/s calm, "
            f"{good_during:.0f}/s during; good p99 {p99:.0f} ms; "
            f"RSS {rss_before:.0f} -> {rss_after:.0f} MB"
        )
    return row


# -- soak -------------------------------------------------------------------------------


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y), per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    cov = sum((t - mt) * (y - my) for t, y in points)
    return cov / var * 3600 if var else 0.0


async def soak(workdir: Path, quick: bool = False, minutes: float = 30) -> Row:
    """Steady traffic for ``minutes`` on SQLite: RSS, file descriptors, sockets and the
    store's size sampled every 10 s; slopes after the first fifth (warm-up)."""
    seconds = 20 if quick else minutes * 60
    row = Row(f"soak ({seconds / 60:g} min)")
    db = workdir / "soak.sqlite3"
    samples: list[tuple[float, float, int, int, int]] = []
    with App(f"sqlite:///{db}", workdir) as app:
        load = Load(app.base, users=8, pause=0.05, logout_share=0.1)
        await load.start()
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            await asyncio.sleep(2 if quick else 10)
            files, sockets = app.fds()
            size = sum(p.stat().st_size for p in workdir.glob("soak.sqlite3*"))
            samples.append((time.monotonic() - start, app.rss_mb(), files, sockets, size))
        await load.stop()
        await load.verify(row)
    warm = [s for s in samples if s[0] >= seconds / 5]
    rss = _slope([(s[0], s[1]) for s in warm])
    fds = _slope([(s[0], s[2]) for s in warm])
    socks = _slope([(s[0], s[3]) for s in warm])
    size = _slope([(s[0], s[4] / 1e6) for s in warm])
    first, last = warm[0] if warm else samples[0], samples[-1]
    row.notes.append(
        f"RSS {first[1]:.0f} -> {last[1]:.0f} MB ({rss:+.1f} MB/h); fds {first[2]} -> {last[2]} "
        f"({fds:+.1f}/h); sockets {socks:+.1f}/h; store {size:+.2f} MB/h"
    )
    return row


async def sqlite_kill_gunicorn(workdir: Path, quick: bool = False) -> Row:
    """The SQLite kill on gunicorn (the Flask app, gthread workers)."""
    return await sqlite_kill(workdir, quick, server="gunicorn")


SCENARIOS = {
    "sqlite-kill": sqlite_kill,
    "sqlite-kill-gunicorn": sqlite_kill_gunicorn,
    "sqlite-full": sqlite_full,
    "postgres-restart": postgres_restart,
    "clock-step": clock_step,
    "flood": flood,
    "soak": soak,
}
