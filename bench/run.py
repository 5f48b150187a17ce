"""Core bench: bare Starlette vs sessionware (memory, SQLite) vs Starlette's sessions.

Run ``python bench/run.py`` (after ``./scripts/test`` or ``pip install -e '.[test,bench]'``).
Each app is served by one uvicorn worker on 127.0.0.1 and driven by ``wrk`` with the
same load; the table gives requests/s, p99 latency and the ratio to bare Starlette for
a request that reads an existing session and one that writes it. Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Pin the server and the load generator to separate cores when we can: on a 2-core
# machine they otherwise fight over both, and the numbers swing by 10-20%.
PIN = bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2
KINDS = ["bare", "passthrough", "memory", "sqlite", "starlette"]
# A cookie shaped like sessionware's (name=<43-char id>.<43-char signature>).
BARE_COOKIE = "sid=" + "i" * 43 + "." + "s" * 43
LABELS = {
    "passthrough": "do-nothing ASGI middleware",
    "bare": "bare Starlette",
    "memory": "sessionware + MemoryStore",
    "sqlite": "sessionware + SQLiteStore",
    "starlette": "Starlette SessionMiddleware",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(kind: str, port: int, loop: str, http: str) -> subprocess.Popen[bytes]:
    # One hash seed for every server: dict layouts (and so speed) then match across them.
    env = dict(os.environ, BENCH_KIND=kind, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0")
    cmd = [
        sys.executable, "-m", "uvicorn", "bench.apps:make_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
        "--loop", loop, "--http", http,
    ]
    if PIN:
        cmd = ["taskset", "-c", "0", *cmd]  # the server on one core, wrk on the other
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/read", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"{kind}: server did not start")


def session_cookie(port: int) -> str:
    resp = urllib.request.urlopen(f"http://127.0.0.1:{port}/write", timeout=2)
    cookies = [v.split(";", 1)[0] for k, v in resp.headers.items() if k.lower() == "set-cookie"]
    return "; ".join(cookies)


def wrk(url: str, cookie: str, seconds: int, conns: int) -> tuple[float, float]:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", url]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: {cookie}"]
    if PIN:
        cmd = ["taskset", "-c", "1", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else 0.0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} failed responses")
    return rps, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="best of N runs per cell")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--loop", default="auto", help="uvicorn --loop (auto: uvloop if installed)")
    parser.add_argument("--http", default="auto", help="uvicorn --http (auto: httptools if any)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    kinds = args.kinds.split(",")
    results: dict[tuple[str, str], tuple[float, float]] = {}
    servers: dict[str, tuple[subprocess.Popen[bytes], int, str]] = {}
    try:
        for kind in kinds:
            port = free_port()
            proc = serve(kind, port, args.loop, args.http)
            # Bare Starlette sets no cookie, but gets the same Cookie header as the
            # sessionware apps: parsing those request bytes is the server's cost, not ours.
            cookie = BARE_COOKIE if kind in ("bare", "passthrough") else session_cookie(port)
            servers[kind] = (proc, port, cookie)
        # Rounds interleave the apps, so a slow spell of the machine hits them all alike.
        for _ in range(args.rounds):
            for scenario in ("read", "write"):
                for kind in kinds:
                    _, port, cookie = servers[kind]
                    url = f"http://127.0.0.1:{port}/{scenario}"
                    r = wrk(url, cookie, args.seconds, args.connections)
                    results[(kind, scenario)] = max(results.get((kind, scenario), (0.0, 0.0)), r)
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait(10)
    print(f"\n{'app':32} {'scenario':8} {'req/s':>9} {'p99 ms':>8} {'vs bare':>8}")
    for scenario in ("read", "write"):
        bare = results.get(("bare", scenario), (0.0, 0.0))[0]
        for kind in kinds:
            rps, p99 = results[(kind, scenario)]
            ratio = f"{rps / bare:.2f}" if bare else "-"
            print(f"{LABELS[kind]:32} {scenario:8} {rps:9.0f} {p99:8.2f} {ratio:>8}")


if __name__ == "__main__":
    main()
