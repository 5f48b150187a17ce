"""Core bench: bare Starlette against sessionware and the floors any session layer pays.

Run ``python bench/run.py`` (after ``./scripts/test`` or ``pip install -e '.[test,bench]'``;
needs ``wrk``, and ``redis-server`` for the Redis column). Every app is served by uvicorn
on 127.0.0.1 and driven by ``wrk`` with the same load, in interleaved rounds; each cell
is the median req/s of the rounds with its min-max and the median p99. Apps:

- bare Starlette; a do-nothing ASGI middleware (``passthrough``: it only wraps
  ``send``); a middleware that only adds ``Vary: Cookie`` (``vary``: the floor, since
  any correct session layer must send it);
- sessionware on MemoryStore, SQLiteStore and RedisStore (a redis-server the runner
  starts on a spare port); Starlette's own signed-cookie SessionMiddleware.

Scenarios: ``read`` (an existing session, one value read), ``write`` (a counter bumped),
``create`` (no cookie: every request creates a session). Ratios are to bare Starlette
and to the ``vary`` floor, per round, then the median. A WARNING says when the
do-nothing middleware leaves 0.97-1.03 of bare: the run was too noisy to judge.

``--setups asyncio-h11,uvloop-httptools`` runs both server set-ups, ``--workers 1,2``
both process counts (with 2 workers nothing is pinned and MemoryStore is left out: its
sessions are not shared between processes; SQLite uses one file for all workers).
Not part of the tests; timing is never asserted.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402 - needs the path set just above

KINDS = ["bare", "passthrough", "vary", "memory", "sqlite", "redis", "starlette"]
LABELS = {
    "bare": "bare Starlette",
    "passthrough": "do-nothing ASGI middleware",
    "vary": "Vary: Cookie only (floor)",
    "memory": "sessionware + MemoryStore",
    "sqlite": "sessionware + SQLiteStore",
    "redis": "sessionware + RedisStore",
    "starlette": "Starlette SessionMiddleware",
}
SESSIONLESS = ("bare", "passthrough", "vary")
# uvicorn's command line under cProfile in the server process (``--profile``).
PROFILED = """\
import cProfile, os
from uvicorn.main import main
prof = cProfile.Profile()
try:
    prof.runcall(main)
except (SystemExit, KeyboardInterrupt):
    pass
finally:
    prof.dump_stats(os.environ["BENCH_PROFILE"])
"""
SCENARIOS = {"read": "/read", "write": "/write", "create": "/login"}
# Per-process state: with several workers a session made in one is unknown to another.
NOT_SHARED = ("memory",)


@dataclass
class Server:
    """One app being served."""

    kind: str
    port: int
    cookie: str
    proc: subprocess.Popen[bytes]


def serve(kind: str, loop: str, http: str, workers: int, env: dict[str, str]) -> Server:
    """Start uvicorn for ``kind`` and wait until it answers."""
    port = c.free_port()
    cmd = [sys.executable, "-m", "uvicorn", "bench.apps:make_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--no-access-log", "--log-level", "warning", "--loop", loop, "--http", http]  # fmt: skip
    # One hash seed for every server: dict layouts (and so speed) then match across them.
    env = dict(env, BENCH_KIND=kind, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0")
    proc = c.launch(c.pinned(c.SERVER_CORE if workers == 1 else None, cmd), env)
    try:
        c.wait_http(f"http://127.0.0.1:{port}/read", proc, LABELS[kind])
        cookie = (
            c.BARE_COOKIE
            if kind in SESSIONLESS
            else c.session_cookie(f"http://127.0.0.1:{port}/write")
        )
    except BaseException:
        c.stop(proc)
        raise
    return Server(kind, port, cookie, proc)


def run_batch(
    kinds: list[str], loop: str, http: str, workers: int, env: dict[str, str],
    args: argparse.Namespace,
) -> dict[tuple[str, str], list[c.Sample]]:  # fmt: skip
    """Serve every app at once, then drive them in interleaved rounds."""
    samples: dict[tuple[str, str], list[c.Sample]] = defaultdict(list)
    servers: list[Server] = []
    core = c.WRK_CORE if workers == 1 else None
    scenarios = args.scenarios.split(",")

    def one(rnd: int, scenario: str, server: Server) -> c.Sample:
        print(f"  round {rnd + 1}: {scenario:6} {LABELS[server.kind]}", flush=True)
        jar = "" if scenario == "create" else server.cookie
        url = f"http://127.0.0.1:{server.port}{SCENARIOS[scenario]}"
        got = c.wrk(url, jar, args.seconds, args.connections, args.threads, core)
        samples[(server.kind, scenario)].append(got)
        return got

    try:
        for kind in kinds:
            servers.append(serve(kind, loop, http, workers, env))
        c.interleave(args.rounds, scenarios, servers, one)
    finally:
        for server in servers:
            c.stop(server.proc)
    return samples


def report(
    kinds: list[str], samples: dict[tuple[str, str], list[c.Sample]], title: str,
    args: argparse.Namespace,
) -> str:  # fmt: skip
    """The table of one batch, and the noise warnings under it."""
    rows = []
    warnings = []
    for scenario in args.scenarios.split(","):
        bare = samples.get(("bare", scenario), [])
        floor = samples.get(("vary", scenario), [])
        for kind in kinds:
            cell = samples[(kind, scenario)]
            s = c.summarize(cell)
            rows.append([
                LABELS[kind], scenario, f"{s.median:.0f}", s.spread, f"{s.p99_ms:.2f}",
                c.fmt_ratio(c.paired_ratio(cell, bare) if bare else None),
                c.fmt_ratio(c.paired_ratio(cell, floor) if floor else None),
            ])  # fmt: skip
        if bare and ("passthrough", scenario) in samples:
            warn = c.noise_warning(c.paired_ratio(samples[("passthrough", scenario)], bare))
            if warn:
                warnings.append(f"{scenario}: {warn}")
    head = ["app", "scenario", "req/s", "min-max", "p99 ms", "vs bare", "vs vary"]
    return "\n".join([f"\n{title}\n", c.table(head, rows), *warnings])


def profile(kind: str, loop: str, http: str, env: dict[str, str], args: argparse.Namespace) -> None:
    """Serve ``kind`` under cProfile (one worker, pinned as in the bench), drive each
    scenario with wrk, and print where the server process spent its time under load:
    what a request costs under a real server differs from an in-process loop."""
    import pstats

    out = os.path.join(env["BENCH_TMP"], "server.prof")
    port = c.free_port()
    cmd = [sys.executable, "-c", PROFILED, "bench.apps:make_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
           "--log-level", "warning", "--loop", loop, "--http", http]  # fmt: skip
    env = dict(env, BENCH_KIND=kind, BENCH_PROFILE=out, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0")
    proc = c.launch(c.pinned(c.SERVER_CORE, cmd), env)
    try:
        c.wait_http(f"http://127.0.0.1:{port}/read", proc, LABELS[kind])
        cookie = (
            c.BARE_COOKIE
            if kind in SESSIONLESS
            else c.session_cookie(f"http://127.0.0.1:{port}/write")
        )
        for scenario in args.scenarios.split(","):
            jar = "" if scenario == "create" else cookie
            url = f"http://127.0.0.1:{port}{SCENARIOS[scenario]}"
            got = c.wrk(url, jar, args.seconds, args.connections, args.threads)
            print(f"{scenario}: {got.rps:.0f} req/s under the profiler (slower than without)")
        # uvicorn re-raises the signal it stopped on: SIGINT ends as KeyboardInterrupt,
        # which the wrapper catches to write the profile (SIGTERM would just kill it).
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    finally:
        c.stop(proc)
    stats = pstats.Stats(out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run (whole seconds)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="apps, comma-separated")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--loop", default="auto", help="uvicorn --loop (auto: uvloop if any)")
    parser.add_argument("--http", default="auto", help="uvicorn --http (auto: httptools if any)")
    parser.add_argument(
        "--setups", default="", help="loop-http pairs, e.g. asyncio-h11,uvloop-httptools"
    )
    parser.add_argument("--workers", default="1", help="uvicorn worker counts, e.g. 1,2")
    parser.add_argument(
        "--profile", default="", metavar="KIND", help="profile one app's server under load"
    )
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    if args.profile:
        kinds = [args.profile]
    unknown = set(kinds) - set(KINDS) | set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown or args.rounds < 1:
        raise SystemExit(
            f"unknown {', '.join(sorted(unknown))}; kinds: {', '.join(KINDS)}; "
            f"scenarios: {', '.join(SCENARIOS)}; --rounds at least 1"
        )
    c.need("wrk", *(["redis-server"] if "redis" in kinds else []))
    setups = [c.resolve_setup(s) for s in (args.setups or f"{args.loop}-{args.http}").split(",")]
    counts = [int(n) for n in args.workers.split(",") if n.isdigit() and int(n) > 0]
    if len(counts) != len(args.workers.split(",")):
        raise SystemExit(f"--workers takes positive counts, e.g. 1,2 (not {args.workers!r})")
    names = ", ".join(f"--loop {lp} --http {h}" for lp, h in setups)
    print(c.machine_facts(f"uvicorn {names}; workers {args.workers}"), flush=True)
    tables = []
    with tempfile.TemporaryDirectory(prefix="sw-bench-") as tmp:
        env = dict(os.environ)
        redis_proc = None
        if "redis" in kinds:
            redis_proc, env["BENCH_REDIS"] = c.start_redis(tmp, c.SERVER_CORE)
        try:
            if args.profile:
                env["BENCH_SQLITE"] = os.path.join(tmp, "profile.sqlite3")
                profile(args.profile, *setups[0], dict(env, BENCH_TMP=tmp), args)
                return
            for n, (loop, http) in enumerate(setups):
                for workers in counts:
                    batch = [k for k in kinds if workers == 1 or k not in NOT_SHARED]
                    env["BENCH_SQLITE"] = os.path.join(tmp, f"s{n}w{workers}.sqlite3")
                    title = (
                        f"uvicorn --loop {loop} --http {http} --workers {workers}; "
                        f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s; "
                        f"median of {args.rounds} interleaved rounds"
                        + ("" if workers == 1 else "; nothing pinned, MemoryStore left out")
                    )
                    print(f"\nrunning: {title}", flush=True)
                    samples = run_batch(batch, loop, http, workers, env, args)
                    tables.append(report(batch, samples, title, args))
                    print(tables[-1], flush=True)
        finally:
            if redis_proc is not None:
                c.stop(redis_proc)
    print("\nratios: per round, req/s over bare Starlette's (vs bare) or the Vary-only "
          "middleware's (vs vary) in the same round, then the median over rounds")  # fmt: skip
    if len(tables) > 1:
        print("\n".join(["\n== all tables ==", *tables]))


if __name__ == "__main__":
    main()
