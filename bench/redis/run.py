"""Redis bench: sessionware vs starsessions vs express-session + connect-redis.

Run ``python bench/redis/run.py`` from the repository root (see README.md beside this
file). It starts its own redis-server on a spare port, installs the Node app with
``npm ci`` into bench/node/, serves each app with one worker process on 127.0.0.1,
drives it with wrk in interleaved rounds, and prints the median requests/s with its
min-max, p99, the ratio to each framework's bare app, updates lost under 32
concurrent clients on one session, and bytes per session in Redis. Not part of the
test run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402 - needs the path set just above

NODE_DIR = ROOT / "bench" / "node"


@dataclass
class App:
    """One server under test."""

    label: str
    framework: str  # "starlette" | "express": whose bare app the ratio uses
    kind: str
    sessions: bool
    samples: dict[str, list[c.Sample]] = field(default_factory=lambda: defaultdict(list))
    lost: dict[str, tuple[int, int]] = field(default_factory=dict)
    usage: tuple[int, int] | None = None
    port: int = 0
    cookie: str = ""


APPS = [
    App("bare Starlette", "starlette", "bare", False),
    App("sessionware + RedisStore", "starlette", "sessionware", True),
    App("sessionware, coalesce=False", "starlette", "sessionware-naive", True),
    App("starsessions + Redis", "starlette", "starsessions", True),
    App("bare express", "express", "bare", False),
    App("express-session + connect-redis", "express", "session", True),
]
SCENARIOS = {"read": "/read", "write": "/write", "create": "/login"}


def npm_install() -> None:
    """Install the Node app's locked dependencies (npm ci) unless they are there."""
    if (NODE_DIR / "node_modules" / "connect-redis").is_dir():
        return
    cmd = ["npm", "ci", "--no-audit", "--no-fund"]
    subprocess.run(cmd, cwd=NODE_DIR, check=True, stdout=subprocess.DEVNULL)


def serve(app: App, port: int, redis_url: str, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """Start one worker process for ``app`` on the server core."""
    env = dict(os.environ, REDIS_URL=redis_url, PORT=str(port), PYTHONPATH=str(ROOT))
    if app.framework == "express":
        env["KIND"] = app.kind
        proc = c.launch(c.pinned(c.SERVER_CORE, ["node", "app.js"]), env, NODE_DIR)
    else:
        # One hash seed for every server: dict layouts (and so speed) then match.
        env.update(BENCH_KIND=app.kind, PYTHONHASHSEED="0")
        cmd = [sys.executable, "-m", "uvicorn", "bench.redis.apps:make_app", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--loop", args.loop, "--http", args.http,
               "--no-access-log", "--log-level", "warning"]  # fmt: skip
        proc = c.launch(c.pinned(c.SERVER_CORE, cmd), env)
    c.wait_http(f"http://127.0.0.1:{port}/read", proc, app.label)
    return proc


def login_cookie(port: int) -> str:
    """The session cookie a fresh /login hands out."""
    return c.session_cookie(f"http://127.0.0.1:{port}/login")


def session_bytes(client: redis.Redis, port: int) -> tuple[int, int]:
    """MEMORY USAGE and value length of the record of a session holding only a user id."""
    client.flushdb()
    login_cookie(port)
    # express-session sends the body before its store write completes: poll a little.
    for _ in range(100):
        keys = list(client.scan_iter(count=100))
        if keys:
            break
        time.sleep(0.01)
    if len(keys) != 1:
        raise SystemExit(f"expected one key after a login, found {len(keys)}")
    key = keys[0]
    usage = int(client.memory_usage(key) or 0)  # type: ignore[arg-type]
    if client.type(key) == b"hash":
        length = sum(len(f) + len(v) for f, v in client.hgetall(key).items())  # type: ignore[union-attr]
    else:
        length = int(client.strlen(key))  # type: ignore[arg-type]
    return usage, length


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    await reader.readexactly(int(m.group(1)) if m else 0)
    return status


async def hammer(port: int, cookie: str, clients: int, seconds: float, variant: str) -> int:
    """``clients`` keep-alive connections send /inc on one session for ``seconds``; each
    client bumps its own key ("own keys") or all bump one ("one key", "one key, incr").
    Returns how many 200 answers came back."""
    deadline = time.monotonic() + seconds
    served = 0

    async def client(i: int) -> None:
        nonlocal served
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        query = {"own keys": f"k=c{i}", "one key": "k=n", "one key, incr": "k=n&atomic=1"}[variant]
        req = f"GET /inc?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode()
        try:
            while time.monotonic() < deadline:
                if await _get(reader, writer, req) == 200:
                    served += 1
        finally:
            writer.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    return served


def lost_updates(port: int, clients: int, seconds: float, variant: str) -> tuple[int, int]:
    """(served, counted): requests answered vs the sum of the session's counters."""
    cookie = login_cookie(port)
    served = asyncio.run(hammer(port, cookie, clients, seconds, variant))
    req = urllib.request.Request(f"http://127.0.0.1:{port}/dump", headers={"Cookie": cookie})
    data = json.loads(urllib.request.urlopen(req, timeout=5).read())  # noqa: S310
    counted = sum(v for k, v in data.items() if k == "n" or re.fullmatch(r"c\d+", k))
    return served, counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run (whole seconds)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--lost-seconds", type=float, default=10.0)
    parser.add_argument("--lost-clients", type=int, default=32)
    parser.add_argument("--apps", default="", help="comma-separated kinds to run (default all)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="wrk scenarios to run")
    parser.add_argument("--no-lost", action="store_true", help="skip the lost-update check")
    parser.add_argument("--loop", default="auto", help="uvicorn --loop (auto, asyncio, uvloop)")
    parser.add_argument("--http", default="auto", help="uvicorn --http (auto, h11, httptools)")
    args = parser.parse_args()
    args.loop, args.http = c.resolve_setup(f"{args.loop}-{args.http}")
    apps = [a for a in APPS if not args.apps or a.kind in args.apps.split(",")]
    express = any(a.framework == "express" for a in apps)
    c.need("wrk", "redis-server", *(["node", "npm"] if express else []))
    if express:
        npm_install()
    print(c.machine_facts(f"uvicorn --loop {args.loop} --http {args.http}; node app.js"))
    with tempfile.TemporaryDirectory(prefix="sw-bench-") as tmp:
        # Redis shares the server core: the app waits while Redis answers, so the two
        # take turns, while on wrk's busy core every round trip would also wait for wrk.
        rproc, redis_url = c.start_redis(tmp, c.SERVER_CORE)
        rclient = redis.Redis.from_url(redis_url)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            # Every app is up at once (idle ones cost nothing) so the rounds can
            # interleave them: a burst of load from elsewhere on the machine then
            # hits all of them alike instead of one.
            for app in apps:
                app.port = c.free_port()
                procs.append(serve(app, app.port, redis_url, args))
            for app in apps:
                if app.sessions:
                    app.usage = session_bytes(rclient, app.port)
                    app.cookie = login_cookie(app.port)
                else:
                    app.cookie = c.BARE_COOKIE  # the same request bytes to parse

            def one(rnd: int, name: str, app: App) -> c.Sample:
                print(f"round {rnd + 1}: {name:6} {app.label}", flush=True)
                url = f"http://127.0.0.1:{app.port}{SCENARIOS[name]}"
                # "create" sends no cookie: every request starts a new session.
                jar = "" if name == "create" else app.cookie
                got = c.wrk(url, jar, args.seconds, args.connections, args.threads)
                app.samples[name].append(got)
                return got

            c.interleave(args.rounds, args.scenarios.split(","), apps, one)
            if not args.no_lost:
                for app in apps:
                    if app.sessions:
                        lost_checks(app, args)
        finally:
            for proc in procs:
                c.stop(proc)
            rclient.close()
            c.stop(rproc)
    report(apps, args)


def lost_checks(app: App, args: argparse.Namespace) -> None:
    """Run the lost-update variants against ``app``."""
    variants = ["own keys", "one key"]
    if app.kind.startswith("sessionware"):
        variants.append("one key, incr")
    for variant in variants:
        print(f"lost updates: {variant:13} {app.label}", flush=True)
        app.lost[variant] = lost_updates(app.port, args.lost_clients, args.lost_seconds, variant)


def report(apps: list[App], args: argparse.Namespace) -> None:
    """Print the tables."""
    bare = {a.framework: a for a in apps if not a.sessions}
    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s, median (min-max) "
        f"of {args.rounds} interleaved rounds; one worker process per app (uvicorn --loop "
        f"{args.loop} --http {args.http}); ratio = req/s over the same framework's bare app "
        "in the same round, median over rounds\n"
    )
    rows = []
    for name in args.scenarios.split(","):
        for a in apps:
            s = c.summarize(a.samples[name])
            base = bare.get(a.framework)
            ratio = c.paired_ratio(a.samples[name], base.samples[name]) if base else None
            rows.append([a.label, name, f"{s.median:.0f}", s.spread, f"{s.p99_ms:.2f}",
                         c.fmt_ratio(ratio)])  # fmt: skip
    print(c.table(["app", "scenario", "req/s", "min-max", "p99 ms", "ratio"], rows))
    rows = []
    for a in apps:
        for variant, (served, counted) in a.lost.items():
            lost = served - counted
            pct = 100 * lost / served if served else 0.0
            rows.append([a.label, variant, str(served), str(counted), str(lost), f"{pct:.1f}%"])
    if rows:
        print(
            f"\nlost updates: {args.lost_clients} concurrent clients on one session for "
            f"{args.lost_seconds:g} s; 'own keys' = each client bumps its own key, "
            "'one key' = all bump one counter (read-modify-write in the handler), "
            "'one key, incr' = the same through sessionware's session.increment "
            "(the store adds)\n"
        )
        print(c.table(["app", "variant", "served", "counted", "lost", "lost %"], rows))
    print("\nbytes per session in Redis (a session holding a user id):\n")
    sizes = [[a.label, str(a.usage[0]), str(a.usage[1])] for a in apps if a.usage]
    print(c.table(["app", "MEMORY USAGE", "value bytes"], sizes, left=1))


if __name__ == "__main__":
    main()
