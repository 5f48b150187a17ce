"""Flask bench: bare Flask vs Flask + sessionware (memory, SQLite, Redis) vs Flask's
own signed-cookie session (and Flask-Session on Redis, when installed).

Run ``python bench/flask/run.py`` from the repository root (after
``pip install -e '.[test]'``; for the Flask-Session column also
``pip install Flask-Session``, which is skipped when missing). Needs ``wrk`` and
``redis-server`` on the PATH. Not part of the tests.

Each app is served by gunicorn with one ``sync`` worker on 127.0.0.1, pinned to
core 0 with ``taskset`` when there are two cores or more, and ``wrk`` runs on core 1.
The bench's own redis-server (a spare port, nothing persisted) shares core 0 with the
app by default: a sync worker waits while Redis answers, so the two take turns, while
on wrk's busy core every round trip also waits for wrk (``--redis-core 1`` to see it;
both Redis apps lose about a fifth of their throughput). The table gives requests/s,
p99 latency and the ratio to bare Flask for three scenarios:

- read: ``GET /read`` with a session cookie (load the session, read the user id);
- write: ``GET /write`` with a session cookie (load, bump a counter, save);
- create: ``GET /login`` with no cookie (a new session holding a user id, every request).

Then the lost-update line: each server with session state shared between processes
is started again as ``--worker-class gthread --workers 2 --threads 8``; 32 clients on
ONE session each bump their own key (``/inc?k=c<i>``) and we count how many of their
answered writes survive in the session afterwards. The clients share one cookie jar,
as tabs of one browser do: a Set-Cookie from any response replaces the cookie every
client sends next (that is how Flask's cookie session can keep any write at all).
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Pin the server and the load generator to separate cores when we can: on a 2-core
# machine they otherwise fight over both, and the numbers swing by 10-20%.
PIN = bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2
# A cookie shaped like sessionware's (name=<43-char id>.<43-char signature>), sent to
# bare Flask so it parses the same request bytes as the session apps.
BARE_COOKIE = "sid=" + "i" * 43 + "." + "s" * 43
SCENARIOS = {"read": "/read", "write": "/write", "create": "/login"}


@dataclass
class App:
    """One app under test."""

    kind: str
    label: str
    shared: bool  # whether its sessions are shared by several worker processes
    results: dict[str, tuple[float, float]] = field(default_factory=dict)
    lost: tuple[int, int] | None = None


APPS = [
    App("bare", "bare Flask", False),
    App("memory", "sessionware + MemoryStore", False),
    App("sqlite", "sessionware + SQLiteStore", True),
    App("redis", "sessionware + RedisStore", True),
    App("cookie", "Flask signed-cookie session", True),
    App("flask-session", "Flask-Session (Redis)", True),
]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: int, cmd: list[str]) -> list[str]:
    """``cmd`` run on one core, when pinning is possible."""
    return ["taskset", "-c", str(core), *cmd] if PIN else cmd


def start_redis(workdir: str, core: int) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server of the bench's own, on ``core`` (nothing persisted)."""
    port = free_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", workdir]  # fmt: skip
    proc = subprocess.Popen(pinned(core, cmd), stdout=subprocess.DEVNULL)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise SystemExit("redis-server did not start")


def serve(app: App, port: int, env: dict[str, str], workers: list[str]) -> subprocess.Popen[bytes]:
    """Start gunicorn for ``app`` and wait until it answers."""
    cmd = [sys.executable, "-m", "gunicorn", "bench.flask.apps:make_app()",
           "--bind", f"127.0.0.1:{port}", *workers, "--log-level", "warning"]  # fmt: skip
    # One hash seed for every server: dict layouts (and so speed) then match across them.
    env = dict(env, BENCH_KIND=app.kind, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0")
    proc = subprocess.Popen(pinned(0, cmd), env=env, cwd=ROOT, start_new_session=True)
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"{app.label}: gunicorn exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/read", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise SystemExit(f"{app.label}: server did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the gunicorn master we started (it stops its workers); SIGKILL to its
    process group if it hangs."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def session_cookie(port: int) -> str:
    """The Cookie header of a session a fresh /login hands out."""
    resp = urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5)
    cookies = [v.split(";", 1)[0] for k, v in resp.headers.items() if k.lower() == "set-cookie"]
    if not cookies:
        raise SystemExit(f"port {port}: /login set no cookie")
    return "; ".join(cookies)


def wrk(url: str, cookie: str, seconds: int, conns: int) -> tuple[float, float]:
    """Requests/s and p99 (ms) of one wrk run; fails on any error or non-2xx answer."""
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", url]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(pinned(1, cmd), capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else 0.0
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit(f"{url}: {bad.group(1)} failed responses")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(0)}")
    return rps, p99


class Jar:
    """One browser's cookie jar, shared by every client thread: the last Set-Cookie wins."""

    def __init__(self, cookie: str) -> None:
        self.cookies = dict(c.split("=", 1) for c in cookie.split("; "))
        self.lock = threading.Lock()

    def header(self) -> str:
        with self.lock:
            return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def take(self, set_cookies: list[str]) -> None:
        with self.lock:
            for value in set_cookies:
                name, _, rest = value.split(";", 1)[0].partition("=")
                self.cookies[name] = rest


def lost_updates(port: int, clients: int, requests: int) -> tuple[int, int]:
    """(answered, survived): /inc?k=c<i> writes answered 200, and the sum of the
    session's c<i> counters afterwards."""
    jar = Jar(session_cookie(port))
    answered = [0] * clients
    failures: list[str] = []

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for _ in range(requests):
                conn.request("GET", f"/inc?k=c{i}", headers={"Cookie": jar.header()})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    answered[i] += 1
                jar.take(resp.headers.get_all("Set-Cookie") or [])
        except Exception as exc:
            failures.append(repr(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    if failures:
        raise SystemExit(f"lost-update clients failed: {failures[:3]}")
    req = urllib.request.Request(f"http://127.0.0.1:{port}/dump", headers={"Cookie": jar.header()})
    data = json.loads(urllib.request.urlopen(req, timeout=5).read())  # noqa: S310
    survived = sum(v for k, v in data.items() if re.fullmatch(r"c\d+", k))
    return sum(answered), survived


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=2, help="best of N interleaved rounds")
    parser.add_argument("--apps", default="", help="comma-separated kinds (default: all)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--lost-clients", type=int, default=32)
    parser.add_argument("--lost-requests", type=int, default=40, help="per client")
    parser.add_argument("--no-lost", action="store_true", help="skip the lost-update line")
    parser.add_argument(
        "--redis-core",
        type=int,
        default=0,
        help="core for the bench's redis-server: 0 shares the server's (default), 1 wrk's",
    )
    args = parser.parse_args()
    for tool in ("wrk", "redis-server"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: apt-get install {tool}")
    apps = [a for a in APPS if not args.apps or a.kind in args.apps.split(",")]
    if importlib.util.find_spec("flask_session") is None:
        print("Flask-Session is not installed (pip install Flask-Session): column skipped")
        apps = [a for a in apps if a.kind != "flask-session"]
    scenarios = args.scenarios.split(",")
    with tempfile.TemporaryDirectory(prefix="sw-flask-bench-") as tmp:
        rproc, redis_url = start_redis(tmp, args.redis_core)
        env = dict(os.environ, BENCH_REDIS=redis_url)
        try:
            run_wrk(apps, scenarios, env, tmp, args)
            if not args.no_lost:
                run_lost(apps, env, tmp, args)
        finally:
            os.kill(rproc.pid, signal.SIGTERM)
            rproc.wait(10)
    report(apps, scenarios, args)


def run_wrk(
    apps: list[App], scenarios: list[str], env: dict[str, str], tmp: str, args: argparse.Namespace
) -> None:
    """Every app up at once, driven by wrk in interleaved rounds (best of N per cell)."""
    sync = ["--worker-class", "sync", "--workers", "1"]
    servers: dict[str, tuple[subprocess.Popen[bytes], int, str]] = {}
    try:
        for app in apps:
            port = free_port()
            app_env = dict(env, BENCH_SQLITE=os.path.join(tmp, "wrk.sqlite3"))
            proc = serve(app, port, app_env, sync)
            cookie = BARE_COOKIE if app.kind == "bare" else session_cookie(port)
            servers[app.kind] = (proc, port, cookie)
        # Rounds interleave the apps, so a slow spell of the machine hits them all alike.
        for rnd in range(args.rounds):
            for name in scenarios:
                for app in apps:
                    print(f"round {rnd + 1}: {name:6} {app.label}", flush=True)
                    _, port, cookie = servers[app.kind]
                    # "create" sends no cookie: every request starts a new session.
                    jar = "" if name == "create" else cookie
                    url = f"http://127.0.0.1:{port}{SCENARIOS[name]}"
                    got = wrk(url, jar, args.seconds, args.connections)
                    app.results[name] = max(app.results.get(name, (0.0, 0.0)), got)
    finally:
        for proc, _, _ in servers.values():
            stop(proc)


def run_lost(apps: list[App], env: dict[str, str], tmp: str, args: argparse.Namespace) -> None:
    """The lost-update check on gthread workers, for the apps whose sessions processes share."""
    gthread = ["--worker-class", "gthread", "--workers", "2", "--threads", "8"]
    for app in apps:
        if not app.shared:
            continue
        print(f"lost updates: {app.label}", flush=True)
        port = free_port()
        app_env = dict(env, BENCH_SQLITE=os.path.join(tmp, "lost.sqlite3"))
        proc = serve(app, port, app_env, gthread)
        try:
            app.lost = lost_updates(port, args.lost_clients, args.lost_requests)
        finally:
            stop(proc)


def report(apps: list[App], scenarios: list[str], args: argparse.Namespace) -> None:
    """Print the tables."""
    pin = f"server core 0, redis core {args.redis_core}, wrk core 1" if PIN else "no pinning"
    print(
        f"\ngunicorn --worker-class sync --workers 1 ({pin}); wrk -t1 -c{args.connections} "
        f"-d{args.seconds}s, best of {args.rounds} interleaved rounds; "
        "ratio = req/s over bare Flask\n"
    )
    bare = next((a for a in apps if a.kind == "bare"), None)
    print(f"{'app':30} {'scenario':8} {'req/s':>8} {'p99 ms':>8} {'vs bare':>8}")
    for name in scenarios:
        for a in apps:
            rps, p99 = a.results[name]
            base = bare.results[name][0] if bare else 0.0
            ratio = f"{rps / base:.2f}" if base else "-"
            print(f"{a.label:30} {name:8} {rps:8.0f} {p99:8.2f} {ratio:>8}")
    lost = [a for a in apps if a.lost is not None]
    if not lost:
        return
    print(
        f"\nlost updates: gunicorn --worker-class gthread --workers 2 --threads 8; "
        f"{args.lost_clients} clients x {args.lost_requests} requests on ONE session, each "
        "bumping its own key, one shared cookie jar (MemoryStore: not shared by processes)\n"
    )
    print(f"{'app':30} {'answered':>9} {'survived':>9} {'lost':>7} {'lost %':>7}")
    for a in lost:
        assert a.lost is not None
        answered, survived = a.lost
        pct = 100 * (answered - survived) / answered if answered else 0.0
        print(f"{a.label:30} {answered:9} {survived:9} {answered - survived:7} {pct:6.1f}%")


if __name__ == "__main__":
    main()
