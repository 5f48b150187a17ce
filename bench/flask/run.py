"""Flask bench: bare Flask vs Flask + sessionware (memory, SQLite, Redis) vs Flask's
own signed-cookie session (and Flask-Session on Redis, when installed).

Run ``python bench/flask/run.py`` from the repository root (after
``pip install -e '.[test,bench]'``; the bench extra brings Flask-Session and
Flask-Login, whose rows are skipped when missing). Needs ``wrk`` and
``redis-server`` on the PATH. Not part of the tests.

Each app is served by gunicorn with one ``sync`` worker on 127.0.0.1, pinned to
core 0 with ``taskset`` when there are two cores or more, and ``wrk`` runs on core 1.
The bench's own redis-server (a spare port, nothing persisted) shares core 0 with the
app by default: a sync worker waits while Redis answers, so the two take turns, while
on wrk's busy core every round trip also waits for wrk (``--redis-core 1`` to see it;
both Redis apps lose about a fifth of their throughput). The table gives requests/s,
p99 latency and the ratio to bare Flask for three scenarios, with a do-nothing WSGI
middleware around bare Flask as the noise gauge (a WARNING when it leaves 0.97-1.03 of
bare: the run is too noisy to judge the other rows):

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
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402 - needs the path set just above

SCENARIOS = {"read": "/read", "write": "/write", "create": "/login"}


@dataclass
class App:
    """One app under test."""

    kind: str
    label: str
    shared: bool  # whether its sessions are shared by several worker processes
    samples: dict[str, list[c.Sample]] = field(default_factory=lambda: defaultdict(list))
    lost: tuple[int, int] | None = None


APPS = [
    App("bare", "bare Flask", False),
    App("passthrough", "do-nothing WSGI middleware", False),
    App("memory", "sessionware + MemoryStore", False),
    App("sqlite", "sessionware + SQLiteStore", True),
    App("redis", "sessionware + RedisStore", True),
    App("cookie", "Flask signed-cookie session", True),
    App("flask-session", "Flask-Session (Redis)", True),
    App("redis-login", "sessionware + RedisStore, login_user/current_user", True),
    App("flask-session-login", "Flask-Session (Redis) + Flask-Login", True),
]


def serve(app: App, port: int, env: dict[str, str], workers: list[str]) -> subprocess.Popen[bytes]:
    """Start gunicorn for ``app`` on the server core and wait until it answers."""
    cmd = [sys.executable, "-m", "gunicorn", "bench.flask.apps:make_app()",
           "--bind", f"127.0.0.1:{port}", *workers, "--log-level", "warning"]  # fmt: skip
    # One hash seed for every server: dict layouts (and so speed) then match across them.
    env = dict(env, BENCH_KIND=app.kind, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0")
    proc = c.launch(c.pinned(c.SERVER_CORE, cmd), env)
    c.wait_http(f"http://127.0.0.1:{port}/read", proc, app.label)
    return proc


def session_cookie(port: int) -> str:
    """The Cookie header of a session a fresh /login hands out."""
    return c.session_cookie(f"http://127.0.0.1:{port}/login")


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
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run (whole seconds)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
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
    c.need("wrk", "redis-server")
    apps = [a for a in APPS if not args.apps or a.kind in args.apps.split(",")]
    for module, kinds in (("flask_session", ("flask-session", "flask-session-login")),
                          ("flask_login", ("flask-session-login",))):  # fmt: skip
        if importlib.util.find_spec(module) is None:
            print(f"{module} is not installed (pip install -e '.[bench]'): {kinds} skipped")
            apps = [a for a in apps if a.kind not in kinds]
    scenarios = args.scenarios.split(",")
    print(c.machine_facts(f"gunicorn sync worker; redis-server on core {args.redis_core}"))
    with tempfile.TemporaryDirectory(prefix="sw-flask-bench-") as tmp:
        rproc, redis_url = c.start_redis(tmp, args.redis_core)
        env = dict(os.environ, BENCH_REDIS=redis_url)
        try:
            run_wrk(apps, scenarios, env, tmp, args)
            if not args.no_lost:
                run_lost(apps, env, tmp, args)
        finally:
            c.stop(rproc)
    report(apps, scenarios, args)


def run_wrk(
    apps: list[App], scenarios: list[str], env: dict[str, str], tmp: str, args: argparse.Namespace
) -> None:
    """Every app up at once, driven by wrk in interleaved rounds (median per cell)."""
    sync = ["--worker-class", "sync", "--workers", "1"]
    servers: dict[str, tuple[subprocess.Popen[bytes], int, str]] = {}

    def one(rnd: int, name: str, app: App) -> c.Sample:
        print(f"round {rnd + 1}: {name:6} {app.label}", flush=True)
        _, port, cookie = servers[app.kind]
        # "create" sends no cookie: every request starts a new session.
        jar = "" if name == "create" else cookie
        got = c.wrk(f"http://127.0.0.1:{port}{SCENARIOS[name]}", jar, args.seconds,
                    args.connections)  # fmt: skip
        app.samples[name].append(got)
        return got

    try:
        for app in apps:
            port = c.free_port()
            app_env = dict(env, BENCH_SQLITE=os.path.join(tmp, "wrk.sqlite3"))
            proc = serve(app, port, app_env, sync)
            bare = app.kind in ("bare", "passthrough")
            cookie = c.BARE_COOKIE if bare else session_cookie(port)
            servers[app.kind] = (proc, port, cookie)
        c.interleave(args.rounds, scenarios, apps, one)
    finally:
        for proc, _, _ in servers.values():
            c.stop(proc)


def run_lost(apps: list[App], env: dict[str, str], tmp: str, args: argparse.Namespace) -> None:
    """The lost-update check on gthread workers, for the apps whose sessions processes share."""
    gthread = ["--worker-class", "gthread", "--workers", "2", "--threads", "8"]
    for app in apps:
        if not app.shared:
            continue
        print(f"lost updates: {app.label}", flush=True)
        port = c.free_port()
        app_env = dict(env, BENCH_SQLITE=os.path.join(tmp, "lost.sqlite3"))
        proc = serve(app, port, app_env, gthread)
        try:
            app.lost = lost_updates(port, args.lost_clients, args.lost_requests)
        finally:
            c.stop(proc)


def report(apps: list[App], scenarios: list[str], args: argparse.Namespace) -> None:
    """Print the tables."""
    pin = (
        f"server core 0, redis core {args.redis_core}, wrk core 1" if c.can_pin() else "no pinning"
    )
    print(
        f"\ngunicorn --worker-class sync --workers 1 ({pin}); wrk -t1 -c{args.connections} "
        f"-d{args.seconds:g}s, median (min-max) of {args.rounds} interleaved rounds; "
        "ratio = req/s over bare Flask's in the same round, median over rounds\n"
    )
    bare = next((a for a in apps if a.kind == "bare"), None)
    rows = []
    for name in scenarios:
        for a in apps:
            s = c.summarize(a.samples[name])
            ratio = c.paired_ratio(a.samples[name], bare.samples[name]) if bare else None
            rows.append([a.label, name, f"{s.median:.0f}", s.spread, f"{s.p99_ms:.2f}",
                         c.fmt_ratio(ratio)])  # fmt: skip
    print(c.table(["app", "scenario", "req/s", "min-max", "p99 ms", "vs bare"], rows))
    gauge = next((a for a in apps if a.kind == "passthrough"), None)
    if gauge is not None and bare is not None:
        for name in scenarios:
            warn = c.noise_warning(c.paired_ratio(gauge.samples[name], bare.samples[name]))
            if warn:
                print(f"{name}: {warn}")
    lost = [a for a in apps if a.lost is not None]
    if not lost:
        return
    print(
        f"\nlost updates: gunicorn --worker-class gthread --workers 2 --threads 8; "
        f"{args.lost_clients} clients x {args.lost_requests} requests on ONE session, each "
        "bumping its own key, one shared cookie jar (MemoryStore: not shared by processes)\n"
    )
    rows = []
    for a in lost:
        assert a.lost is not None
        answered, survived = a.lost
        pct = 100 * (answered - survived) / answered if answered else 0.0
        rows.append([a.label, str(answered), str(survived), str(answered - survived),
                     f"{pct:.1f}%"])  # fmt: skip
    print(c.table(["app", "answered", "survived", "lost", "lost %"], rows, left=1))


if __name__ == "__main__":
    main()
