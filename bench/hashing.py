"""Hashing bench: the demo's memory and /healthz latency under a burst of logins.

Run ``python bench/hashing.py``. It serves ``sessionware demo`` with uvicorn on
127.0.0.1 (SQLite store, in a fresh temporary folder), then fires ``--count``
concurrent logins for unknown users (each costs one Argon2id verification against the
dummy hash, 19 MiB) while polling ``/healthz``, and prints the server's RSS before,
at its peak and after the burst, read from ``/proc/<pid>/status`` (Linux only).
Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def status_kib(pid: int, field: str) -> int:
    """One ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM, Threads counts as is)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


async def wait_ready(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the demo exited early")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the demo did not start in 30 s")


async def burst(client: httpx.AsyncClient, origin: str, count: int, tag: str) -> Counter[int]:
    """``count`` logins at once, each for a different unknown user, as a browser posts them."""
    headers = {"origin": origin, "sec-fetch-site": "same-origin"}

    async def one(i: int) -> int:
        form = {"username": f"nobody-{tag}-{i}", "password": f"guess-{i}-xyzzy", "next": ""}
        try:
            r = await client.post("/login", data=form, headers=headers, timeout=120)
        except httpx.TransportError:
            return 0
        return r.status_code

    return Counter(await asyncio.gather(*(one(i) for i in range(count))))


async def poll_health(
    client: httpx.AsyncClient, stop: asyncio.Event, start: float
) -> list[tuple[float, float]]:
    """``(sent at, latency)`` of /healthz probes in ms, one at a time until ``stop``."""
    out: list[tuple[float, float]] = []
    while not stop.is_set():
        t = time.perf_counter()
        await client.get("/healthz", timeout=120)
        out.append(((t - start) * 1000, (time.perf_counter() - t) * 1000))
        await asyncio.sleep(0.02)
    return out


async def sample_rss(pid: int, stop: asyncio.Event) -> int:
    peak = 0
    while not stop.is_set():
        peak = max(peak, status_kib(pid, "VmRSS"))
        await asyncio.sleep(0.01)
    return peak


async def measure(
    port: int, pid: int, proc: subprocess.Popen[bytes], args: argparse.Namespace
) -> None:
    origin = f"http://127.0.0.1:{port}"
    # Drop idle connections before uvicorn's 5 s keep-alive does, so none is reused
    # just as the server closes it (a bench artifact, not a refusal).
    limits = httpx.Limits(max_connections=args.count + 10, keepalive_expiry=1)
    async with httpx.AsyncClient(base_url=origin, limits=limits) as client:
        await wait_ready(client, proc)
        # Warm up: imports, the first SQLite connection, one real verification.
        await client.get("/login")
        await burst(client, origin, 1, "warm")
        idle = [(await _timed(client)) for _ in range(20)]
        await asyncio.sleep(1)
        before = status_kib(pid, "VmRSS")
        print(f"threads {status_kib(pid, 'Threads')}, /healthz idle p50 {_pct(idle, 50):.1f} ms")
        for n in range(args.rounds):
            stop = asyncio.Event()
            t = time.perf_counter()
            health = asyncio.create_task(poll_health(client, stop, t))
            peak_task = asyncio.create_task(sample_rss(pid, stop))
            codes = await burst(client, origin, args.count, str(n))
            took = time.perf_counter() - t
            stop.set()
            probes, peak = await health, await peak_task
            lat = [ms for _, ms in probes]
            worst = max(probes, key=lambda p: p[1])
            await asyncio.sleep(args.settle)
            after = status_kib(pid, "VmRSS")
            print(
                f"round {n + 1}: {args.count} logins in {took:.1f} s "
                f"{dict(sorted(codes.items()))}; "
                f"RSS before {mib(before)}, peak {mib(peak)}, after {mib(after)}; "
                f"/healthz during burst p50 {_pct(lat, 50):.1f} ms, p90 {_pct(lat, 90):.1f} ms, "
                f"max {worst[1]:.1f} ms (sent at +{worst[0]:.0f} ms) "
                f"({len(lat)} probes); threads {status_kib(pid, 'Threads')}"
            )


async def _timed(client: httpx.AsyncClient) -> float:
    t = time.perf_counter()
    await client.get("/healthz")
    return (time.perf_counter() - t) * 1000


def _pct(values: list[float], pct: int) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, len(values) * pct // 100)] if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=80, help="concurrent logins per burst")
    parser.add_argument("--rounds", type=int, default=3, help="bursts, one after another")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before 'after'")
    args = parser.parse_args()
    if not Path("/proc/self/status").exists():
        print("needs Linux (/proc/<pid>/status)", file=sys.stderr)
        return 2
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSION_", "LOGIN_"))}
        # A budget the burst stays under, so every login reaches the password check.
        env.update(SESSION_SECRET="bench-secret-" + "b" * 40, LOGIN_MAX_ATTEMPTS="1000")
        env["PYTHONPATH"] = str(ROOT / "src")
        command = [sys.executable, "-m", "sessionware.cli", "demo", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--store", f"sqlite:///{folder}/demo.sqlite3"]
        log = Path(folder) / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=out)
        try:
            asyncio.run(measure(port, proc.pid, proc, args))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
