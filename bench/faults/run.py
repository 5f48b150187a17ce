"""Run the fault scenarios and print their table.

    python -m bench.faults.run                          # every scenario (about 50 minutes)
    python -m bench.faults.run --skip soak              # all but the 30-minute soak
    python -m bench.faults.run --scenario flood         # one (repeat --scenario for more)
    python -m bench.faults.run --quick                  # the short versions (smoke)
    python -m bench.faults.run --scenario soak --soak-minutes 30

Needs root for the disk-full scenario (it mounts a small tmpfs), the PostgreSQL server
binaries (it runs clusters of its own as the ``postgres`` user) and ``redis-server``
(the Redis scenarios start their own nodes). Not part of the tests; each scenario is
bounded to about two minutes, the soak to ``--soak-minutes``.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402
from bench.faults.harness import HEADERS, Row, markdown  # noqa: E402
from bench.faults.scenarios import SCENARIOS  # noqa: E402

Scenario = Callable[..., Awaitable["Row | list[Row]"]]


def all_scenarios() -> dict[str, Scenario]:
    """Every registered scenario: these and the Redis ones."""
    found: dict[str, Scenario] = dict(SCENARIOS)
    try:
        from bench.faults.redis_scenarios import SCENARIOS as REDIS
    except ImportError:
        return found
    found.update(REDIS)
    return found


async def run(names: list[str], quick: bool, soak_minutes: float) -> list[Row]:
    """Run ``names`` one after the other, each in a fresh temporary folder."""
    scenarios = all_scenarios()
    rows: list[Row] = []
    for name in names:
        workdir = Path(tempfile.mkdtemp(prefix=f"sw-fault-{name}-"))
        started = time.monotonic()
        print(f"-- {name} ...", flush=True)
        kwargs: dict[str, object] = {"quick": quick}
        if "minutes" in inspect.signature(scenarios[name]).parameters:
            kwargs["minutes"] = soak_minutes
        try:
            found = await scenarios[name](workdir, **kwargs)
            got = found if isinstance(found, list) else [found]
        except (Exception, SystemExit) as exc:
            got = [Row(name, notes=[f"the scenario failed: {type(exc).__name__}: {exc}"])]
        for row in got:
            row.notes.append(f"{time.monotonic() - started:.0f} s")
        print(c.table(HEADERS, [row.cells() for row in got], left=1), flush=True)
        rows += got
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def command() -> str:
    """The command line as it would be typed at the repository's root."""
    return shlex.join(["python", "-m", "bench.faults.run", *sys.argv[1:]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", help="run only these (repeatable)")
    parser.add_argument("--skip", action="append", default=[], help="leave these out")
    parser.add_argument("--quick", action="store_true", help="the short versions")
    parser.add_argument("--soak-minutes", type=float, default=30.0)
    args = parser.parse_args()
    known = all_scenarios()
    names = args.scenario or [n for n in known if n not in args.skip]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown scenario {unknown}; known: {', '.join(known)}")
    facts = c.machine_facts(
        "the fault harness app (bench/faults/app.py) under uvicorn (uvloop + httptools) "
        "or gunicorn (gthread, the Flask twin)",
        placement="not pinned: servers, stores and the load generator share the cores",
    ).splitlines()
    print("\n".join([f"command: {command()}", *facts[1:]]), flush=True)
    rows = asyncio.run(run(names, args.quick, args.soak_minutes))
    print()
    print(markdown(rows))


if __name__ == "__main__":
    main()
