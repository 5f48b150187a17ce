"""Scenarios on SQLite, PostgreSQL, the clock, a flood and a soak; each returns a Row.

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
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from bench import _common as c
from bench.faults.harness import (
    COOKIE,
    SECRET,
    App,
    Load,
    Row,
    client,
    set_cookie,
    under_load,
    whole_records,
)

# -- SQLite -----------------------------------------------------------------------------


def _integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


async def _check_file(row: Row, db: Path) -> None:
    """``PRAGMA integrity_check`` and the records opened one by one, into ``row``."""
    check = _integrity(db)
    row.notes.append(f"integrity_check: {check}")
    row.facts["integrity_ok"] = check == "ok"
    await whole_records(row, f"sqlite:///{db}")


async def sqlite_kill(workdir: Path, quick: bool = False, server: str = "uvicorn") -> Row:
    """Worker processes writing one SQLite file; the whole server SIGKILLed under load
    (three times, at random moments), started again on the same port; then the file
    checked with ``PRAGMA integrity_check`` and every record opened."""
    workers = 3 if server == "uvicorn" else 2
    row = Row(f"sqlite-kill ({server}, {workers} workers)")
    db = workdir / f"kill-{server}.sqlite3"
    app = App(f"sqlite:///{db}", workdir, server=server, workers=workers).start()
    load = Load(app.base, users=12)
    in_flight = []
    try:
        await load.start()
        for _ in range(1 if quick else 3):
            await asyncio.sleep(2 if quick else random.uniform(3, 6))
            in_flight.append(load.in_flight)
            app.kill()  # mid-write: the load never pauses
            await asyncio.sleep(0.5)
            app = app.restarted()
            load.mark_back()
        await asyncio.sleep(2 if quick else 5)
        await load.stop()
        await load.verify(row)
    finally:
        app.stop()
    row.notes.append(f"{len(in_flight)} kills with {sum(in_flight)} writes in flight")
    await _check_file(row, db)
    return row


async def sqlite_kill_gunicorn(workdir: Path, quick: bool = False) -> Row:
    """The SQLite kill on gunicorn (the Flask app, gthread workers)."""
    return await sqlite_kill(workdir, quick, server="gunicorn")


@contextlib.contextmanager
def _tmpfs(size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted in a temporary folder (root may mount it)."""
    where = Path(tempfile.mkdtemp(prefix="sw-full-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        shutil.rmtree(where, ignore_errors=True)
        raise SystemExit(f"sqlite-full mounts a {size} tmpfs and could not: "
                         f"{done.stderr.strip()} (run it as root)")  # fmt: skip
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)
        shutil.rmtree(where, ignore_errors=True)


async def sqlite_full(workdir: Path, quick: bool = False) -> Row:
    """SQLite on a 4 MB tmpfs filled up under load: 503s with a log line while full, the
    file intact, and service back without a restart once space is freed."""
    row = Row("sqlite-disk-full (4 MB tmpfs)")
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
            refused = sum(load.errors.values()) - before
            filler.unlink()
            load.mark_back()
            await asyncio.sleep(3 if quick else 6)
            await load.stop()
            await load.verify(row)
        finally:
            app.stop()
        log = app.log_text()
        row.notes.append(f"{refused} refused while full")
        row.facts["refused_while_full"] = refused
        line = next((x for x in log.splitlines() if "store unavailable" in x), None)
        row.notes.append("log: " + (line.split("answering 503: ")[-1][:60] if line else "none"))
        row.facts["log_line"] = line is not None
        await _check_file(row, db)
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
    """A PostgreSQL cluster of our own in a temporary folder on a spare port, run as the
    ``postgres`` user (the server refuses to run as root)."""

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

    def query(self, sql: str) -> float:
        """One number from the server (a connection of its own, closed at once)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as db:
            found = db.execute(sql).fetchone()
        return float(found[0]) if found else 0.0

    def app_connections(self) -> int:
        """Client connections to this server other than the one asking."""
        return int(self.query("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                              "'client backend' AND pid <> pg_backend_pid()"))  # fmt: skip

    def table_mb(self) -> float:
        """The session tables with their indexes, in MB."""
        sizes = "pg_total_relation_size('sessionware_sessions') + pg_total_relation_size("
        return self.query(f"SELECT ({sizes}'sessionware_sessions_users')) / 1e6")


async def postgres_restart(workdir: Path, quick: bool = False, server: str = "uvicorn") -> Row:
    """PostgreSQL stopped the hard way (``-m immediate``, a crash) under load, then started
    again: 503s meanwhile, service back without restarting the app, the pool's
    connections counted afterwards, nothing lost, every record whole."""
    workers = 2
    row = Row(f"postgres-restart ({server}, {workers} workers)")
    pg = Postgres().init()

    async def fault(load: Load) -> None:
        pg.stop("immediate")
        await asyncio.sleep(2 if quick else 5)
        pg.start()
        load.mark_back()

    try:
        pg.start()
        with App(pg.url, workdir, server=server, workers=workers) as app:
            await under_load(row, app, fault, quick=quick, warm=5, settle=8)
            connections = await asyncio.to_thread(pg.app_connections)
            row.notes.append(f"{connections} server connections after (pools of 10 a worker)")
            row.facts["connections"] = connections
        await whole_records(row, pg.url)
    finally:
        pg.remove()
    return row


async def postgres_restart_gunicorn(workdir: Path, quick: bool = False) -> Row:
    """The PostgreSQL restart on gunicorn (the Flask app: the store's sync pool)."""
    return await postgres_restart(workdir, quick, server="gunicorn")


# -- the clock --------------------------------------------------------------------------


async def clock_step(
    workdir: Path, quick: bool = False, *, store: str = "sqlite", raw: bool = False
) -> Row:
    """The app's wall clock stepped an hour forward, back, and an hour back, with short
    timeouts: no session is signed out by a step, and each is refused at its absolute
    timeout in real time (read every second, so idleness never ends one).

    Batch A logs in, sees +1 h, then 0 again (itself a step back), then -1 h; batch B
    logs in at 0 and sees -1 h. ``raw`` runs the app without ``SteadyClock``."""
    absolute, gap = (10.0, 1.0) if quick else (40.0, 2.5)
    label = "PostgreSQL" if store == "postgres" else "SQLite"
    row = Row(f"clock-step ±1 h ({label}{', raw wall clock: contrast' if raw else ''})")
    offset = workdir / "clock-offset"
    offset.write_text("0")
    env = {"FAULT_CLOCK_FILE": str(offset), "FAULT_IDLE": str(absolute / 2),
           "FAULT_ABSOLUTE": str(absolute)}  # fmt: skip
    if raw:
        env["FAULT_RAW_CLOCK"] = "1"
    pg = Postgres().init() if store == "postgres" else None
    url = pg.url if pg else f"sqlite:///{workdir / 'clock.sqlite3'}"
    made: dict[str, tuple[str, float]] = {}  # cookie -> (batch, logged in at)
    ended: dict[str, tuple[float, str]] = {}  # cookie -> (refused at, offset then)
    try:
        if pg:
            pg.start()
        with App(url, workdir, extra_env=env) as app:
            async with client(base_url=app.base, timeout=5) as browser:

                async def login(batch: str, n: int) -> None:
                    for i in range(n):
                        r = await browser.post(f"/login?user={batch}{i}")
                        made[set_cookie(r) or ""] = (batch, time.monotonic())

                async def sweep() -> None:
                    now_offset = offset.read_text()
                    for cookie in [k for k in made if k not in ended]:
                        r = await browser.get("/read", headers={"cookie": f"{COOKIE}={cookie}"})
                        row.served += 1
                        if r.status_code != 200:
                            row.errors[str(r.status_code)] += 1
                        elif not r.json().get("user"):
                            ended[cookie] = (time.monotonic(), now_offset)

                start = time.monotonic()
                plan = [(0.0, "login A"), (gap, "3600"), (2 * gap, "0"), (3 * gap, "login B"),
                        (4 * gap, "-3600")]  # fmt: skip
                while plan or time.monotonic() < start + 3 * gap + absolute + 4:
                    if plan and time.monotonic() >= start + plan[0][0]:  # one a sweep
                        what = plan.pop(0)[1]
                        if what.startswith("login"):
                            await login(what[-1], 10)
                        else:
                            offset.write_text(what)
                            await asyncio.sleep(0.25)  # the app reads the file every 0.1 s
                    await sweep()
                    if len(ended) == len(made) and not plan:
                        break
                    await asyncio.sleep(1.0)
            warned = "clock stepped" in app.log_text()
    finally:
        if pg:
            pg.remove()
    early = Counter(ended[k][1] for k, (_, t) in made.items()
                    if k in ended and ended[k][0] < t + absolute - 1.5)  # fmt: skip
    outlived = [k for k, (_, t) in made.items() if k not in ended or ended[k][0] > t + absolute + 2]
    late = [ended[k][0] - t - absolute for k, (_, t) in made.items() if k in ended]
    forward, back = early.get("3600", 0), early.get("-3600", 0) + early.get("0", 0)
    row.notes.append(f"signed out by +1 h: {forward}/10, by -1 h: {back}/20")
    row.notes.append(f"outlived the {absolute:g} s absolute timeout: {len(outlived)}/20")
    if late and len(late) == len(made):
        row.notes.append(f"refused {min(late):+.1f} to {max(late):+.1f} s from the deadline")
    row.notes.append("step logged" if warned else "step not logged")
    row.facts.update(signed_out=forward + back, outlived=len(outlived))
    return row


async def clock_step_postgres(workdir: Path, quick: bool = False) -> Row:
    """The clock step on PostgreSQL (whose expiry is compared in SQL)."""
    return await clock_step(workdir, quick, store="postgres")


async def clock_step_raw(workdir: Path, quick: bool = False) -> Row:
    """The clock step with the raw wall clock: what the scenario catches without
    ``SteadyClock`` (everyone signed out by +1 h, sessions outliving their timeout)."""
    return await clock_step(workdir, quick, raw=True)


# -- flood ------------------------------------------------------------------------------


class _Raw:
    """One keep-alive HTTP/1.1 connection speaking bytes: the flood sends headers no
    polite client would, and at a rate httpx could not on this machine's cores."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, cookie: str) -> int:
        """The status of ``GET /read`` with ``cookie`` (0: the connection failed)."""
        try:
            if self.conn is None:
                self.conn = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = self.conn
            head = "GET /read HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            head += f"Cookie: {cookie}\r\n" if cookie else ""
            writer.write((head + "\r\n").encode("latin-1"))
            answer = await reader.readuntil(b"\r\n\r\n")
            lines = answer.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            fields = dict(x.lower().split(": ", 1) for x in lines[1:] if ": " in x)
            await reader.readexactly(int(fields.get("content-length", "0")))
            if fields.get("connection") == "close":
                self.close()
            return status
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            self.close()
            return 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn[1].close()
            self.conn = None


async def flood(workdir: Path, quick: bool = False) -> Row:
    """Good users at their normal pace while 32 more connections send ten times their
    request rate, paced: no cookie, garbage, 8 KB, tampered, raw high bytes, a
    signature-valid id of no session (a new one each time: the worst case for a cache
    of verified cookies), 500 cookies in one header, and a valid one. Memory stays
    bounded and the good users are served."""
    from sessionware.signing import Signer
    from sessionware.tokens import new_session_id

    row = Row("flood (10x, bad cookies)")
    seconds = 5 if quick else 60
    signer = Signer([SECRET], salt="session")
    db = workdir / "flood.sqlite3"
    with App(f"sqlite:///{db}", workdir) as app:
        good = Load(app.base, users=8, pause=0.2)
        await good.start()
        await asyncio.sleep(1 if quick else 3)
        calm_from, rss_before = time.monotonic(), app.rss_mb()
        await asyncio.sleep(2 if quick else 5)
        calm_until = time.monotonic()
        calm_rate = sum(calm_from <= t <= calm_until for t, _ in good.latencies) / (
            calm_until - calm_from
        )
        async with client(base_url=app.base, timeout=10) as setup:
            valid = set_cookie(await setup.post("/login?user=flood")) or ""
        body, sig = valid.rsplit(".", 1)
        fixed = [
            "",
            "sid=" + "A" * 8000,
            "sid=not-a-session",
            f"sid={body}.{sig[::-1]}",
            "sid=" + "\xff\xfe" * 50,
            "a=1; " * 500 + f"sid={valid}",
            f"sid={valid}",
        ]

        def cookie(n: int) -> str:
            if n % 2:  # half: a signature that verifies on an id nobody has
                return f"sid={signer.sign(new_session_id())}"
            return fixed[(n // 2) % len(fixed)]

        rate = 10 * calm_rate
        statuses: Counter[int] = Counter()
        rss: list[float] = []
        sent = {"n": 0}
        start = time.monotonic()
        stop = start + seconds

        async def hammer() -> None:
            conn = _Raw(app.port)
            while True:
                n = sent["n"]
                sent["n"] += 1
                at = start + n / rate
                if at >= stop:
                    break
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                statuses[await conn.get(cookie(n))] += 1
            conn.close()

        async def watch() -> None:
            while time.monotonic() < stop:
                await asyncio.sleep(0.5)
                rss.append(app.rss_mb())

        await asyncio.gather(watch(), *(hammer() for _ in range(32)))
        took = time.monotonic() - start
        during = good.good_latency(start, start + took)
        good_rate = sum(start <= t <= start + took for t, _ in good.latencies) / took
        await asyncio.sleep(2)
        rss_after = app.rss_mb()
        await good.stop()
        await good.verify(row)
    calm = good.good_latency(calm_from, calm_until)
    flood_rate = sum(statuses.values()) / took
    failed = sum(n for s, n in statuses.items() if s >= 500 or s == 0)
    if failed:
        row.errors["flood 5xx or no answer"] += failed
    row.notes.append(
        f"flood {flood_rate:.0f} req/s = {flood_rate / calm_rate:.1f}x the good users' "
        f"{calm_rate:.0f}/s; flood answers "
        + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
    )
    row.notes.append(
        f"good users {good_rate:.0f}/s during; p50/p99 {calm[0]:.0f}/{calm[1]:.0f} ms calm, "
        f"{during[0]:.0f}/{during[1]:.0f} ms during"
    )
    peak = max(rss, default=rss_after)
    thirds = [rss[len(rss) * i // 3] for i in range(3)] if len(rss) >= 3 else rss
    row.notes.append(
        f"RSS {rss_before:.0f} MB before, {' / '.join(f'{x:.0f}' for x in thirds)} MB "
        f"at each third, peak {peak:.0f}, {rss_after:.0f} after"
    )
    row.facts.update(flood_failed=failed, rss_before=rss_before, rss_peak=peak,
                     flood_ratio=flood_rate / calm_rate)  # fmt: skip
    return row


# -- soak -------------------------------------------------------------------------------


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t seconds, y), per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    cov = sum((t - mt) * (y - my) for t, y in points)
    return cov / var * 3600 if var else 0.0


async def _soak_one(
    row: Row, app: App, seconds: float, every: float, size_mb: Callable[[], float]
) -> None:
    """Load on ``app`` for ``seconds``, sampling every ``every`` s; the slopes into ``row``."""
    samples: list[tuple[float, float, int, int, float]] = []
    load = Load(app.base, users=6, pause=0.05, logout_share=0.1)
    await load.start()
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        await asyncio.sleep(every)
        files, sockets = app.fds()
        size = await asyncio.to_thread(size_mb)
        samples.append((time.monotonic() - start, app.rss_mb(), files, sockets, size))
    await load.stop()
    await load.verify(row)
    warm = [s for s in samples if s[0] >= seconds / 5] or samples
    slopes = [_slope([(s[0], s[i]) for s in warm]) for i in range(1, 5)]
    first, last = warm[0], samples[-1]
    row.notes.append(
        f"after warm-up: RSS {first[1]:.0f} -> {last[1]:.0f} MB ({slopes[0]:+.1f} MB/h); "
        f"fds {first[2]} -> {last[2]} ({slopes[1]:+.1f}/h); sockets {first[3]} -> "
        f"{last[3]} ({slopes[2]:+.1f}/h); store {first[4]:.2f} -> {last[4]:.2f} MB "
        f"({slopes[3]:+.2f} MB/h)"
    )
    row.facts.update(rss_slope=slopes[0], fd_slope=slopes[1], socket_slope=slopes[2],
                     store_slope=slopes[3])  # fmt: skip


async def soak(workdir: Path, quick: bool = False, minutes: float = 30) -> list[Row]:
    """Steady traffic for ``minutes`` on two apps at once: uvicorn on PostgreSQL and
    gunicorn (Flask) on SQLite. Resident memory, file descriptors, sockets and the
    store's size sampled every 10 s; least-squares slopes after the first fifth."""
    seconds = 20 if quick else minutes * 60
    every = 2 if quick else 10
    pg = Postgres().init()
    db = workdir / "soak.sqlite3"
    span = f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
    rows = [Row(f"soak {span} (uvicorn, 2 workers, PostgreSQL)"),
            Row(f"soak {span} (gunicorn, 2 workers, SQLite)")]  # fmt: skip

    def sqlite_mb() -> float:
        return sum(p.stat().st_size for p in workdir.glob("soak.sqlite3*")) / 1e6

    try:
        pg.start()
        with (
            App(pg.url, workdir, workers=2) as on_pg,
            App(f"sqlite:///{db}", workdir, server="gunicorn", workers=2) as on_sqlite,
        ):
            await asyncio.gather(
                _soak_one(rows[0], on_pg, seconds, every, pg.table_mb),
                _soak_one(rows[1], on_sqlite, seconds, every, sqlite_mb),
            )
    finally:
        pg.remove()
    return rows


SCENARIOS = {
    "sqlite-kill": sqlite_kill,
    "sqlite-kill-gunicorn": sqlite_kill_gunicorn,
    "sqlite-full": sqlite_full,
    "postgres-restart": postgres_restart,
    "postgres-restart-gunicorn": postgres_restart_gunicorn,
    "clock-step": clock_step,
    "clock-step-postgres": clock_step_postgres,
    "clock-step-raw": clock_step_raw,
    "flood": flood,
    "soak": soak,
}
