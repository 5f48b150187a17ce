"""What the bench runners share: servers, wrk, pinning, statistics and the report header.

The runners (``bench/run.py``, ``bench/redis/run.py``, ``bench/flask/run.py``) measure
on a shared, noisy machine, so every cell is run in several interleaved rounds and
reported as the median with its spread, never the best of N: the best hides how much
the figure moves. Ratios are taken per round (both apps ran minutes apart at most) and
their median reported. Nothing here asserts a timing.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
# Separate cores for the server(s) and the load generator when there are two: on a
# 2-core machine they otherwise fight over both, and the numbers swing by 10-20%.
SERVER_CORE = 0
WRK_CORE = 1
# A cookie shaped like sessionware's (name=<43-char id>.<43-char signature>), sent to
# the apps without sessions so they parse the same request bytes as the session apps.
BARE_COOKIE = "sid=" + "i" * 43 + "." + "s" * 43
# The do-nothing middleware must keep this much of bare, or the run is too noisy to judge.
NOISE_BAND = (0.97, 1.03)
VERSIONS = ("uvicorn", "uvloop", "httptools", "gunicorn", "starlette", "flask", "redis",
            "hiredis", "psycopg")  # fmt: skip

A = TypeVar("A")


def can_pin() -> bool:
    """Whether ``taskset`` exists and this process may run on two cores or more."""
    return bool(shutil.which("taskset")) and len(os.sched_getaffinity(0)) >= 2


def pinned(core: int | None, cmd: list[str]) -> list[str]:
    """``cmd`` run on one core when ``core`` is given and pinning is possible."""
    return ["taskset", "-c", str(core), *cmd] if core is not None and can_pin() else cmd


def need(*tools: str) -> None:
    """Stop with the install line when a tool the run needs is missing."""
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        raise SystemExit(f"{', '.join(missing)} missing: apt-get install {' '.join(missing)}")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    """Poll ``url`` until it answers; fail if the process dies or never answers."""
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()  # noqa: S310 - our http:// URL
            return
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise SystemExit(f"{what} did not answer {url}")


def launch(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    """Start a server in a process group of its own, so :func:`stop` reaches its workers."""
    return subprocess.Popen(cmd, env=env, cwd=cwd, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to a process we started (a server master stops its workers); SIGKILL to
    its process group if it hangs."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def start_redis(workdir: str, core: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server of the bench's own on a spare port (nothing persisted), and its URL."""
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
    stop(proc)
    raise SystemExit("redis-server did not start")


def session_cookie(url: str) -> str:
    """The Cookie header a request to ``url`` hands out (the session cookie)."""
    resp = urllib.request.urlopen(url, timeout=5)  # noqa: S310 - our http:// URL
    cookies = [v.split(";", 1)[0] for k, v in resp.headers.items() if k.lower() == "set-cookie"]
    if not cookies:
        raise SystemExit(f"{url} set no cookie")
    return "; ".join(cookies)


def resolve_setup(text: str) -> tuple[str, str]:
    """``loop-http`` (``auto`` allowed, as uvicorn picks it) into uvicorn's two options."""
    loop, sep, http = text.partition("-")
    if not sep or loop not in ("auto", "asyncio", "uvloop") or http not in (
        "auto", "h11", "httptools"
    ):  # fmt: skip
        raise SystemExit(
            f"bad set-up {text!r}: use loop-http, e.g. asyncio-h11 or uvloop-httptools"
        )
    if loop == "auto":
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    if http == "auto":
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    for name in (loop, http):
        if name in ("uvloop", "httptools") and importlib.util.find_spec(name) is None:
            raise SystemExit(f"{name} is not installed: pip install -e '.[bench]'")
    return loop, http


# -- wrk --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One wrk run: requests/s and latency percentiles in milliseconds."""

    rps: float
    p50_ms: float
    p99_ms: float


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _latency(out: str, pct: str) -> float:
    m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\b", out, re.MULTILINE)
    return float(m.group(1)) * _UNIT_MS[m.group(2)] if m else float("nan")


def parse_wrk(out: str) -> Sample:
    """A :class:`Sample` from ``wrk --latency`` output; ValueError for failed answers
    or socket errors (a benchmark of errors measures nothing)."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise ValueError("no Requests/sec line in the wrk output")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise ValueError(f"{bad.group(1)} failed responses")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors and any(int(n) for n in errors.groups()):
        raise ValueError(errors.group(0))
    return Sample(float(rps.group(1)), _latency(out, "50"), _latency(out, "99"))


def wrk(
    url: str, cookie: str, seconds: int, connections: int, threads: int = 1,
    core: int | None = WRK_CORE,
) -> Sample:  # fmt: skip
    """One ``wrk`` run against ``url`` with ``cookie`` (none when empty)."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: {cookie}"]
    done = subprocess.run(pinned(core, cmd), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise SystemExit(f"{url}: wrk failed: {why[-1] if why else done.returncode}")
    try:
        return parse_wrk(done.stdout)
    except ValueError as exc:
        raise SystemExit(f"{url}: {exc}") from None


# -- rounds and statistics --------------------------------------------------------------


def interleave(
    rounds: int, scenarios: Sequence[str], apps: Sequence[A],
    run: Callable[[int, str, A], Sample],
) -> None:  # fmt: skip
    """Every app once per scenario per round, the app order rotated each round: a slow
    spell of the machine then hits all apps alike, and no app always runs first."""
    for rnd in range(rounds):
        shift = rnd % len(apps) if apps else 0
        order = [*apps[shift:], *apps[:shift]]
        for scenario in scenarios:
            for app in order:
                run(rnd, scenario, app)


@dataclass(frozen=True)
class Summary:
    """The rounds of one cell: median req/s, its min and max, and the median p99."""

    median: float
    low: float
    high: float
    p99_ms: float
    rounds: int

    @property
    def spread(self) -> str:
        """``min-max`` req/s, as printed."""
        return f"{self.low:.0f}-{self.high:.0f}"


def summarize(samples: Sequence[Sample]) -> Summary:
    """Median and spread over the rounds of one cell (not the best: it hides the noise)."""
    if not samples:
        raise ValueError("no samples")
    rps = [s.rps for s in samples]
    p99 = statistics.median(s.p99_ms for s in samples)
    return Summary(statistics.median(rps), min(rps), max(rps), p99, len(samples))


def paired_ratio(samples: Sequence[Sample], base: Sequence[Sample]) -> float | None:
    """The median over rounds of req/s over the base's req/s in the same round; pairing
    by round cancels a slow spell that hit both (None without a base)."""
    pairs = [s.rps / b.rps for s, b in zip(samples, base, strict=False) if b.rps > 0]
    return statistics.median(pairs) if pairs else None


def noise_warning(ratio: float | None, what: str = "do-nothing middleware") -> str | None:
    """A WARNING line when the do-nothing middleware's ratio to bare leaves
    :data:`NOISE_BAND`: then other load moved the figures more than any layer costs."""
    low, high = NOISE_BAND
    if ratio is None or low <= ratio <= high:
        return None
    return (
        f"WARNING: the {what} keeps {ratio:.3f} of bare (expected {low:.2f}-{high:.2f}): "
        "this run is too noisy to judge; rerun at a quiet moment or with more --rounds"
    )


def fmt_ratio(ratio: float | None) -> str:
    """A ratio for a table cell (``-`` when there is no base)."""
    return "-" if ratio is None else f"{ratio:.2f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 2) -> str:
    """A plain-text table: the first ``left`` columns left-aligned (names), the others
    right-aligned (numbers)."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [str(c).ljust(w) if i < left else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]  # fmt: skip
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


# -- machine facts ----------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _tool_version(cmd: list[str]) -> str:
    if not shutil.which(cmd[0]):
        return "-"
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0] if first else "-"


def machine_facts(setup: str, placement: str | None = None) -> str:
    """The lines a reader needs to judge a table: the command, the machine, the versions,
    the load when it started and how the processes were placed."""
    cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = ", ".join(f"{d} {_version(d)}" for d in VERSIONS)
    pin = (f"server(s) on core {SERVER_CORE}, wrk on core {WRK_CORE} (taskset)"
           if can_pin() else "no pinning (taskset missing or one core)")  # fmt: skip
    return "\n".join([
        f"command: {shlex.join(['python', *sys.argv])}",
        f"cpu: {_cpu_model()}; {cores} cores ({usable} usable); load average {load}",
        f"os: {platform.system()} {platform.release()}; "
        f"python {platform.python_version()} ({platform.python_implementation()})",
        f"packages: {versions}",
        f"tools: {_tool_version(['wrk', '-v'])}; {_tool_version(['redis-server', '--version'])}",
        f"placement: {placement or pin}",
        f"set-up: {setup}",
    ])  # fmt: skip
