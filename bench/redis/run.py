"""Redis bench: sessionware vs starsessions vs express-session + connect-redis.

Run ``python bench/redis/run.py`` from the repository root (see README.md beside this
file). It starts its own redis-server on a spare loopback port, installs the Node app
with ``npm ci`` into bench/node/, serves each app with one worker process on
127.0.0.1, drives it with wrk, and prints requests/s, p99, the ratio to each
framework's bare app, updates lost under 32 concurrent clients on one session, and
bytes per session in Redis. Not part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "bench" / "node"


@dataclass
class App:
    """One server under test."""

    label: str
    framework: str  # "starlette" | "express": whose bare app the ratio uses
    kind: str
    sessions: bool
    results: dict[str, tuple[float, float]] = field(default_factory=dict)
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


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    """Poll ``url`` until it answers, or fail if the process died."""
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()  # noqa: S310 - our http:// URL
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not start")


def start_redis(workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server of the bench's own (nothing persisted)."""
    port = free_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", workdir]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    client.close()
    return proc, f"redis://127.0.0.1:{port}/0"


def npm_install() -> None:
    """Install the Node app's locked dependencies (npm ci) unless they are there."""
    if (NODE_DIR / "node_modules" / "connect-redis").is_dir():
        return
    cmd = ["npm", "ci", "--no-audit", "--no-fund"]
    subprocess.run(cmd, cwd=NODE_DIR, check=True, stdout=subprocess.DEVNULL)


def serve(app: App, port: int, redis_url: str, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """Start one worker process for ``app``."""
    env = dict(os.environ, REDIS_URL=redis_url, PORT=str(port), PYTHONPATH=str(ROOT))
    if app.framework == "express":
        env["KIND"] = app.kind
        proc = subprocess.Popen(["node", "app.js"], cwd=NODE_DIR, env=env)
    else:
        env["BENCH_KIND"] = app.kind
        cmd = [sys.executable, "-m", "uvicorn", "bench.redis.apps:make_app", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--loop", args.loop, "--http", args.http,
               "--no-access-log", "--log-level", "warning"]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    wait_http(f"http://127.0.0.1:{port}/read", proc, app.label)
    return proc


def login_cookie(port: int) -> str:
    """The session cookie a fresh /login hands out."""
    resp = urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5)
    cookies = [v.split(";", 1)[0] for k, v in resp.headers.items() if k.lower() == "set-cookie"]
    return "; ".join(cookies)


def wrk(url: str, cookie: str, seconds: int, conns: int, threads: int) -> tuple[float, float]:
    """Requests/s and p99 (ms) of one wrk run; fails on any non-2xx answer."""
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", url]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else 0.0
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit(f"{url}: {bad.group(1)} failed responses")
    return rps, p99


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
    import json

    cookie = login_cookie(port)
    served = asyncio.run(hammer(port, cookie, clients, seconds, variant))
    req = urllib.request.Request(f"http://127.0.0.1:{port}/dump", headers={"Cookie": cookie})
    data = json.loads(urllib.request.urlopen(req, timeout=5).read())  # noqa: S310
    counted = sum(v for k, v in data.items() if k == "n" or re.fullmatch(r"c\d+", k))
    return served, counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="best of N interleaved rounds")
    parser.add_argument("--lost-seconds", type=float, default=10.0)
    parser.add_argument("--lost-clients", type=int, default=32)
    parser.add_argument("--apps", default="", help="comma-separated kinds to run (default all)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="wrk scenarios to run")
    parser.add_argument("--no-lost", action="store_true", help="skip the lost-update check")
    parser.add_argument("--loop", default="auto", help="uvicorn --loop (auto, asyncio, uvloop)")
    parser.add_argument("--http", default="auto", help="uvicorn --http (auto, h11, httptools)")
    args = parser.parse_args()
    for tool in ("wrk", "redis-server", "node", "npm"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing (wrk and redis-server: apt-get install)")
    npm_install()
    apps = [a for a in APPS if not args.apps or a.kind in args.apps.split(",")]
    with tempfile.TemporaryDirectory(prefix="sw-bench-") as tmp:
        rproc, redis_url = start_redis(tmp)
        rclient = redis.Redis.from_url(redis_url)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            # Every app is up at once (idle ones cost nothing) so the rounds can
            # interleave them: a burst of load from elsewhere on the machine then
            # hits all of them alike instead of one, and best-of-N drops it.
            for app in apps:
                app.port = free_port()
                procs.append(serve(app, app.port, redis_url, args))
            for app in apps:
                if app.sessions:
                    app.usage = session_bytes(rclient, app.port)
                    app.cookie = login_cookie(app.port)
            for rnd in range(args.rounds):
                for name in args.scenarios.split(","):
                    for app in apps:
                        print(f"round {rnd + 1}: {name:6} {app.label}", flush=True)
                        url = f"http://127.0.0.1:{app.port}{SCENARIOS[name]}"
                        # "create" sends no cookie: every request starts a new session.
                        jar = "" if name == "create" else app.cookie
                        got = wrk(url, jar, args.seconds, args.connections, args.threads)
                        app.results[name] = max(app.results.get(name, (0.0, 0.0)), got)
            if not args.no_lost:
                for app in apps:
                    if app.sessions:
                        lost_checks(app, args)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
            rclient.close()
            os.kill(rproc.pid, signal.SIGTERM)
            rproc.wait(10)
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
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.seconds}s, best of {args.rounds} "
        f"interleaved rounds; one worker process per app (uvicorn --loop {args.loop} "
        f"--http {args.http}); ratio = req/s over the same framework's bare app\n"
    )
    print(f"{'app':34} {'scenario':8} {'req/s':>8} {'p99 ms':>8} {'ratio':>6}")
    for name in args.scenarios.split(","):
        for a in apps:
            rps, p99 = a.results[name]
            base = bare.get(a.framework)
            ratio = f"{rps / base.results[name][0]:.2f}" if base else "-"
            print(f"{a.label:34} {name:8} {rps:8.0f} {p99:8.2f} {ratio:>6}")
    print(
        f"\nlost updates: {args.lost_clients} concurrent clients on one session for "
        f"{args.lost_seconds:g} s; 'own keys' = each client bumps its own key, "
        "'one key' = all bump one counter (read-modify-write in the handler), "
        "'one key, incr' = the same through sessionware's session.increment (the store adds)\n"
    )
    head = f"{'app':34} {'variant':13} {'served':>7} {'counted':>8} {'lost':>7} {'lost %':>7}"
    print(head)
    for a in apps:
        for variant, (served, counted) in a.lost.items():
            lost = served - counted
            pct = 100 * lost / served if served else 0.0
            print(f"{a.label:34} {variant:13} {served:7} {counted:8} {lost:7} {pct:6.1f}%")
    print(f"\n{'app':34} {'MEMORY USAGE':>13} {'value bytes':>12}   (a session holding a user id)")
    for a in apps:
        if a.usage:
            print(f"{a.label:34} {a.usage[0]:13} {a.usage[1]:12}")


if __name__ == "__main__":
    main()
